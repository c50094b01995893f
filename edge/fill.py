"""Filling the cache from upstreams: one fetch per missing part, streamed to every waiter as it arrives.

A :class:`~edge.inflight.Fill` is one upstream fetch of one part (a whole object, or one slice of a large one). The
:class:`FillManager` keeps at most one fill per cache key: requests that miss while a fill is in flight
join it (coalescing) and read its chunks as they arrive; the fill runs in a task of its own, so a client
that goes away stops only its own reading. Upstreams are tried in :func:`edge.upstreams.upstream_order`;
each attempt is bounded by a connect and a read timeout; a failure moves on to the next upstream, and
a failure in the middle of a body resumes from the next upstream with ``Range`` + ``If-Range``.

A whole-object fill whose reply turns out larger than ``large_object_bytes`` becomes the fill of that
object's slice 0 (the rest of the reply is not read); the object is then served in slices.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Coroutine
from urllib.parse import quote

import aiohttp
from yarl import URL

from httpsem.semantics import is_playlist, parse_http_date
from serverkit.tls import client_context, tls_failure

from .config import EdgeConfig
from .breaker import Admit, Breaker, BreakerConfig
from .circuits import Circuits
from .errors import (CircuitOpen, EdgeError, ObjectChanged, UpstreamError, UpstreamNotFound, UpstreamRefused,
                     UpstreamTimeout)
from .freshness import parse_max_age, parse_stale_windows
from .inflight import Fill, FillSpec
from .lookup import Found, TierName
from .metrics import EdgeMetrics
from .objects import CachedPart, ObjectMeta, slice_key
from .slices import UpstreamBody, locate_body, parse_unsatisfied_range, range_header
from .tokens import sign_token
from .upstreams import Upstream, UpstreamKind, build_upstreams, upstream_order

if TYPE_CHECKING:
    from .workers import FillLock

log = logging.getLogger(__name__)

MEDIA_MAX_AGE_S = 31536000.0
#: Header asking an edge to answer from its cache only (404 on a miss, no fill of its own).
CACHE_ONLY_HEADER = "X-Vodstack-Cache-Only"
EDGE_HEADER = "X-Vodstack-Edge"

class FailReason(enum.Enum):
    """Why one upstream attempt failed: the ``reason`` label of ``vodstack_edge_fill_errors_total`` and the
    log. Every one but the last three counts against the upstream's circuit breaker."""

    TIMEOUT = "timeout"                  # no headers or no next body bytes in time
    CONNECT = "connect"                  # refused, reset, unreachable
    TLS = "tls"                          # the TLS handshake failed (certificate not trusted, wrong host...)
    BROKEN = "broken"                    # another client-side HTTP error (a payload cut short...)
    HTTP_5XX = "http_5xx"                # the upstream answered 5xx
    UNEXPECTED_STATUS = "unexpected_status"  # 1xx/3xx, or 304 to a request that was not conditional
    EDGE_REFUSED = "edge_refused"        # a peer's 4xx other than 404, an edge's 403 (our token refused)
    BAD_FRAMING = "bad_framing"          # Content-Length / Content-Range that make no sense
    BAD_RANGE = "bad_range"              # a partial reply that starts after what was asked
    SHORT_BODY = "short_body"            # the body ended before its length
    CHANGED = "changed"                  # the ETag or size changed under a slice or a resume (not counted)
    CANNOT_RESUME = "cannot_resume"      # a body of unknown length broke midway (not counted)

    @property
    def is_timeout(self) -> bool:
        return self is FailReason.TIMEOUT

    @property
    def counts_against_upstream(self) -> bool:
        return self not in (FailReason.CHANGED, FailReason.CANNOT_RESUME)


class _Attempt(Exception):
    """One upstream attempt failed (``reason``); ``fatal``: no other upstream would do better."""

    def __init__(self, reason: FailReason, fatal: bool = False, detail: str = "") -> None:
        super().__init__(f"{reason.value}{': ' + detail if detail else ''}")
        self.reason, self.fatal = reason, fatal


class FillManager:
    """At most one fill per cache key; upstream order, timeouts, failover, resume, metrics. The last tier
    of the edge's chain (a ``lookup.Tier``): it holds no parts, only the fills in flight."""

    name = TierName.FILL

    def __init__(self, cfg: EdgeConfig, metrics: EdgeMetrics,
                 on_filled: Callable[[Fill, CachedPart], None],
                 on_sliced: Callable[[ObjectMeta], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.upstreams = build_upstreams(cfg.peers, cfg.parents, cfg.origin)
        self.fills: dict[str, Fill] = {}
        self.circuits = Circuits(self.upstreams, BreakerConfig(failures_to_open=cfg.breaker_failures,
                                                               open_s=cfg.breaker_open_s), metrics, clock)
        self._on_filled = on_filled
        self._on_sliced = on_sliced
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._tokens: dict[str, tuple[str, float]] = {}
        self.session: aiohttp.ClientSession | None = None
        #: with several workers (``edge/workers.py``): one upstream fetch per part across all of them
        self.lock: FillLock | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=64, ttl_dns_cache=300,
                                         ssl=client_context(self.cfg.upstream_ca))
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                             headers={"User-Agent": f"vodstack-edge/{self.cfg.name}",
                                                      EDGE_HEADER: self.cfg.name,
                                                      "Accept-Encoding": "identity"})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()

    def run_behind(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in a task of the fills' lifetime (cancelled by :meth:`close`), e.g. the follow-up of
        a revalidation nobody waits for (stale-while-revalidate)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ the Tier protocol (lookup.py)
    async def lookup(self, key: str) -> Found | None:
        """The fill in flight for ``key``, joined; None if there is none (nothing is started)."""
        fill = self.fills.get(key)
        return None if fill is None else Found(TierName.FILL, fill=fill)

    def admit(self, key: str, part: CachedPart, *, force: bool = False) -> bool:
        return False  # fills hold no parts: what they bring goes to the store tiers (Edge._filled)

    async def purge(self, matches: Callable[[str], bool]) -> int:
        """Fills in flight under a matching key still answer their waiters but store nothing."""
        for fill in self.fills.values():
            if matches(fill.cache_key):
                fill.purged = True
        return 0

    def __contains__(self, key: str) -> bool:
        return key in self.fills

    @property
    def in_flight(self) -> int:
        return len(self.fills)

    def get_or_start(self, spec: FillSpec) -> tuple[Fill, bool]:
        """The fill in flight for ``spec.cache_key`` (joined: False), or a new one (started: True)."""
        fill = self.fills.get(spec.cache_key)
        if fill is not None:
            if spec.pace is None:
                fill.pace = None  # a client is waiting: stop pacing a prefill
            return fill, False
        fill = Fill(spec)
        self.fills[spec.cache_key] = fill
        task = asyncio.get_running_loop().create_task(self._run_locked(fill))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return fill, True

    # ------------------------------------------------------------ the fetch
    def _url(self, upstream: Upstream, object_key: str) -> URL:
        path = quote(object_key, safe="/")
        if not upstream.is_edge:
            return URL(f"{upstream.base_url}/{path}", encoded=True)
        title = object_key.split("/", 1)[0]
        return URL(f"{upstream.base_url}/t/{self._token(title)}/{path}", encoded=True)

    def _token(self, title: str) -> str:
        now = self._clock()
        cached = self._tokens.get(title)
        if cached is not None and cached[1] - now > 60:
            return cached[0]
        kid, secret = next(iter(self.cfg.token_keys.items()))
        expires = now + 300
        token = sign_token(kid, secret, title, expires)
        if len(self._tokens) > 10000:
            self._tokens.clear()
        self._tokens[title] = (token, expires)
        return token

    async def _run_locked(self, fill: Fill) -> None:
        """:meth:`_run` under the cross-worker fill lock when there is one: a new part is fetched by one
        worker of the edge, the others wait and read its committed copy (``edge/workers.py``)."""
        lock, spec = self.lock, fill.spec
        if lock is None or spec.validator is not None or spec.probe_bytes is not None:
            await self._run(fill)
            return
        key = fill.cache_key
        try:
            part = await lock.acquire(key)
        except OSError as e:
            log.warning("fill lock unusable; fetching without it", extra={"kv": {"key": key, "error": e}})
            await self._run(fill)
            return
        if part is not None:
            if not self._from_sibling(fill, part):
                await self._run(fill)
            return
        try:
            await self._run(fill)
        finally:
            self.run_behind(lock.release(key))

    def _from_sibling(self, fill: Fill, part: CachedPart) -> bool:
        """Complete ``fill`` with the part another worker (or an earlier fill of this one) fetched and
        committed while it waited on the lock; False if it is not the part this fill wants (another
        version, another range)."""
        spec = fill.spec
        if spec.expect is not None and part.meta.etag != spec.expect.etag:
            return False
        if spec.range is not None and (part.base_bytes, part.base_bytes + part.nbytes) != spec.range:
            return False
        fill.meta, fill.upstream, fill.borrowed = part.meta, "disk", True
        fill.length_bytes = part.nbytes
        if part.body:
            fill._append(part.body)  # noqa: SLF001
        self._complete(fill, part, None)
        return True

    async def _run(self, fill: Fill) -> None:
        timed_out = False
        failed = 0
        skipped: list[Breaker] = []
        last = "no upstream"
        try:
            for upstream in upstream_order(self.upstreams):
                if self.circuits.admit(upstream) is Admit.SKIP:
                    skipped.append(self.circuits.state(upstream))
                    self.metrics.upstream_skipped.labels(upstream.label).inc()
                    continue
                self.metrics.upstream_attempts.labels(upstream.label).inc()
                try:
                    done = await self._attempt(fill, upstream)
                except _Attempt as e:
                    failed += 1
                    last = f"{upstream.label}: {e}"
                    timed_out = timed_out or e.reason.is_timeout
                    self.metrics.fill_errors.labels(upstream.label, e.reason.value).inc()
                    log.warning("upstream failed", extra={"kv": {"key": fill.cache_key, "upstream": upstream.label,
                                                                 "reason": e.reason.value, "error": str(e),
                                                                 "received": fill.received_bytes}})
                    if e.reason.counts_against_upstream:
                        self.circuits.failed(upstream, timeout=e.reason.is_timeout)
                    else:
                        self.circuits.answered(upstream)
                    if e.fatal:
                        err_cls = ObjectChanged if e.reason is FailReason.CHANGED else UpstreamError
                        self._complete(fill, None, err_cls(f"{fill.cache_key}: {last}"))
                        return
                    continue
                except UpstreamRefused as e:  # an answer: final, and no failure of the upstream
                    self.circuits.answered(upstream)
                    self.metrics.upstream_refused.labels(upstream.label, str(e.status_hint)).inc()
                    self._complete(fill, None, e)
                    return
                except BaseException:  # cancelled (shutdown) or a crash: no verdict, free a probe slot
                    self.circuits.abandoned(upstream)
                    raise
                self.circuits.answered(upstream)
                if done:
                    return
                # a peer without the object: the next upstream
            # none left: 504 if a timeout failed this fill or opened a circuit it skipped, else 502
            skipped_timeout = any(b.last_failure_timeout for b in skipped)
            if not failed and skipped:  # nothing failed now: the circuits kept it from asking (or a peer lacked it)
                self._complete(fill, None, CircuitOpen(f"{fill.cache_key}: every upstream that may have it is "
                                                       "behind an open circuit", timeout=skipped_timeout))
                return
            err_cls = UpstreamTimeout if timed_out or skipped_timeout else UpstreamError
            self._complete(fill, None, err_cls(f"{fill.cache_key}: every upstream failed (last: {last})"))
        except asyncio.CancelledError:
            self._complete(fill, None, UpstreamError("edge shutting down"))
            raise
        except Exception as e:  # noqa: BLE001 - a fill must always finish its waiters
            log.error("fill crashed", exc_info=True, extra={"kv": {"key": fill.cache_key}})
            self._complete(fill, None, UpstreamError(f"fill failed: {e}"))

    def circuit_phases(self) -> dict[str, str]:
        """Each upstream's circuit phase, by label (health, tests)."""
        return self.circuits.phases()

    def _complete(self, fill: Fill, part: CachedPart | None, error: EdgeError | None) -> None:
        if self.fills.get(fill.cache_key) is fill:
            del self.fills[fill.cache_key]
        if part is not None and not fill.purged:
            try:
                self._on_filled(fill, part)
            except Exception:  # noqa: BLE001
                log.error("storing a filled part failed", exc_info=True, extra={"kv": {"key": fill.cache_key}})
        fill._finish(part, error)  # noqa: SLF001

    async def _attempt(self, fill: Fill, upstream: Upstream) -> bool:
        """One upstream: True when the fill completed, False for a peer's 404; raises _Attempt.

        Several requests may go to the same upstream: after a probe (``spec.probe_bytes``) of an object
        that is not large, the rest is asked for with ``Range`` + ``If-Range``."""
        started = time.perf_counter()
        try:
            while True:
                more = await self._request(fill, upstream)
                if more is None:
                    return False
                if not more:
                    break
        except (UpstreamRefused, _Attempt):
            raise
        except asyncio.TimeoutError:
            raise _Attempt(FailReason.TIMEOUT) from None
        except aiohttp.ClientSSLError as e:
            raise _Attempt(FailReason.TLS, detail=tls_failure(e)) from None
        except (aiohttp.ClientConnectionError, OSError) as e:
            raise _Attempt(FailReason.CONNECT, detail=type(e).__name__) from None
        except aiohttp.ClientError as e:
            raise _Attempt(FailReason.BROKEN, detail=type(e).__name__) from None
        self.metrics.fill_seconds.labels(upstream.label).observe(time.perf_counter() - started)
        if fill.not_modified:
            return True
        assert fill.meta is not None
        part = CachedPart(meta=fill.meta, base_bytes=fill.base_bytes, body=b"".join(fill.chunks),
                          fetched_at_s=self._clock())
        fill.upstream = upstream.label
        self._complete(fill, part, None)
        return True

    async def _request(self, fill: Fill, upstream: Upstream) -> bool | None:
        """One HTTP request; None: a peer's 404; False: the part is complete; True: ask for the rest."""
        assert self.session is not None
        spec = fill.spec
        headers: dict[str, str] = {}
        want_start = fill.base_bytes + fill.received_bytes
        if fill.received_bytes or spec.range:
            want_end = fill.base_bytes + fill.length_bytes if fill.length_bytes is not None else None
            if want_end is None:
                raise _Attempt(FailReason.CANNOT_RESUME, fatal=True)
            headers["Range"] = range_header(want_start, want_end)
            known = fill.meta or spec.expect
            if known is not None:
                headers["If-Range"] = f'"{known.etag}"'
        elif spec.probe_bytes and not fill.probe_refused:
            headers["Range"] = range_header(0, spec.probe_bytes)
        if spec.validator is not None and not fill.received_bytes:
            headers["If-None-Match"] = f'"{spec.validator.meta.etag}"'
        if upstream.kind is UpstreamKind.PEER:
            headers[CACHE_ONLY_HEADER] = "1"
        # The read timeout is ours, not aiohttp's sock_read: aiohttp 3.14.5 under uvloop still re-arms
        # sock_read on a connection already back in the keep-alive pool when the body's last bytes
        # paused reading (the paused-reading variant of aio-libs/aiohttp#12953, which the fix for it,
        # #12954, does not cover), and the next request on that connection fails at once with a
        # "timeout" (seen here as a 504 within 2 ms while the origin was answering;
        # tests/edge/test_edge_process.py reproduces it).
        connect_s, read_s = self.cfg.upstream_connect_timeout_s, self.cfg.upstream_read_timeout_s
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_s, connect=connect_s, sock_read=None)
        request = self.session.get(self._url(upstream, fill.object_key), headers=headers, timeout=timeout,
                                   allow_redirects=False)
        async with asyncio.timeout(connect_s + read_s):  # to the response's headers
            resp = await request
        async with resp:
            status = resp.status
            if status == 416 and "Range" in headers:
                return self._unsatisfiable(fill, resp, upstream)
            if 400 <= status < 500:
                self._refused(fill, status, upstream)
                return None  # a peer's 404: "not here"
            if status == 304 and spec.validator is not None:
                self._not_modified(fill, spec.validator, resp, upstream)
                return False
            if status >= 500:
                raise _Attempt(FailReason.HTTP_5XX, detail=str(status))
            if status not in (200, 206):
                raise _Attempt(FailReason.UNEXPECTED_STATUS, detail=str(status))
            body = locate_body(status, resp.headers.get("Content-Length"), resp.headers.get("Content-Range"))
            if body is None:
                raise _Attempt(FailReason.BAD_FRAMING)
            if fill.meta is None:
                self._set_meta(fill, resp, body, upstream)
            elif _etag_of(resp) != fill.meta.etag:
                raise _Attempt(FailReason.CHANGED, fatal=True, detail="while resuming")
            if body.start > want_start:
                raise _Attempt(FailReason.BAD_RANGE)
            before = fill.received_bytes
            await self._read_body(fill, resp, skip=want_start - body.start, upstream=upstream)
            if fill.length_bytes is None or fill.received_bytes >= fill.length_bytes:
                return False
            declared = None if body.end is None else body.end - want_start
            if declared is not None and fill.received_bytes - before >= declared:
                return True  # a partial reply delivered all it promised: ask for the rest
            raise _Attempt(FailReason.SHORT_BODY)

    def _unsatisfiable(self, fill: Fill, resp: aiohttp.ClientResponse, upstream: Upstream) -> bool:
        """A 416 to one of our ranged requests is an answer about the object's size (``bytes */N``), not a
        failure. To a probe (``bytes=0-...`` of an object not yet known) it can only mean an empty
        object: ask again without ``Range`` (True). To a slice or a resume it means the object changed."""
        size = parse_unsatisfied_range(resp.headers.get("Content-Range"))
        if fill.spec.probe_bytes and not fill.spec.range and not fill.received_bytes and not fill.probe_refused \
                and size in (0, None):
            fill.probe_refused = True
            return True
        raise _Attempt(FailReason.CHANGED, fatal=True, detail=f"416, size now {size}")

    def _refused(self, fill: Fill, status: int, upstream: Upstream) -> None:
        """A 4xx answer. From a peer, a 404 means "not here" (returns: ask the next upstream) and any other
        4xx is the peer's failure; an edge's 403 refuses our token (a failure); otherwise it is the
        object's final answer, raised as UpstreamRefused (UpstreamNotFound for 404)."""
        if upstream.kind is UpstreamKind.PEER:
            if status == 404:
                return
            raise _Attempt(FailReason.EDGE_REFUSED, detail=str(status))
        if upstream.is_edge and status == 403:
            raise _Attempt(FailReason.EDGE_REFUSED, detail="403")
        message = f"{fill.object_key}: {status} from {upstream.label}"
        if status == 404:
            raise UpstreamNotFound(message)
        raise UpstreamRefused(message, status=status)

    def _set_meta(self, fill: Fill, resp: aiohttp.ClientResponse, body: UpstreamBody, upstream: Upstream) -> None:
        spec = fill.spec
        size = body.size_bytes
        etag = _etag_of(resp) or f"{size or 0:x}-{int(self._clock()):x}"
        if spec.expect is not None:
            if etag != spec.expect.etag or (size is not None and size != spec.expect.size_bytes):
                raise _Attempt(FailReason.CHANGED, fatal=True, detail="ETag or size of the object")
            fill.meta = spec.expect
        else:
            default_age = self.cfg.playlist_ttl_s if is_playlist(fill.object_key) else MEDIA_MAX_AGE_S
            cache_control = resp.headers.get("Cache-Control")
            windows = parse_stale_windows(cache_control)
            meta = ObjectMeta(key=fill.object_key, size_bytes=size if size is not None else -1, etag=etag,
                              last_modified_s=parse_http_date(resp.headers.get("Last-Modified")) or self._clock(),
                              max_age_s=parse_max_age(cache_control, default_age),
                              stale_while_revalidate_s=windows.while_revalidate_s,
                              stale_if_error_s=windows.if_error_s)
            if spec.range is None and size is not None:
                if spec.allow_slicing and size > self.cfg.large_object_bytes and not is_playlist(fill.object_key):
                    meta = replace(meta, sliced=True)
                    self._become_slice_zero(fill, meta)
                else:
                    fill.length_bytes = size
            fill.meta = meta if size is not None else None
            if size is None:
                fill.pending_meta = meta  # complete when the body ends (_read_body)
        fill.upstream = upstream.label
        fill._notify()  # noqa: SLF001

    def _become_slice_zero(self, fill: Fill, meta: ObjectMeta) -> None:
        new_key = slice_key(meta.key, self.cfg.slice_bytes, 0)
        if self.fills.get(fill.cache_key) is fill:
            del self.fills[fill.cache_key]
        fill.cache_key = new_key
        fill.length_bytes = min(self.cfg.slice_bytes, meta.size_bytes)
        self.fills.setdefault(new_key, fill)
        self._on_sliced(meta)

    async def _read_body(self, fill: Fill, resp: aiohttp.ClientResponse, skip: int, upstream: Upstream) -> None:
        counter = self.metrics.fill_bytes.labels(upstream.label)
        read, chunk_bytes, read_s = resp.content.read, self.cfg.fill_chunk_bytes, self.cfg.upstream_read_timeout_s
        while True:
            async with asyncio.timeout(read_s):  # between bytes, as sock_read would (pacing not counted)
                chunk = await read(chunk_bytes)
            if not chunk:
                break
            if skip:
                cut = min(skip, len(chunk))
                chunk, skip = chunk[cut:], skip - cut
                if not chunk:
                    continue
            if fill.length_bytes is not None:
                room = fill.length_bytes - fill.received_bytes
                if len(chunk) > room:
                    chunk = chunk[:room]
            counter.inc(len(chunk))
            fill._append(chunk)  # noqa: SLF001
            if fill.pace is not None:
                await fill.pace(len(chunk))
            if fill.length_bytes is not None and fill.received_bytes >= fill.length_bytes:
                resp.close()  # a slice cut from a longer reply: drop the rest
                return
        if fill.length_bytes is None:
            assert fill.pending_meta is not None  # _set_meta left it: the reply had no length
            meta = replace(fill.pending_meta, size_bytes=fill.received_bytes)
            fill.meta, fill.length_bytes = meta, fill.received_bytes

    def _not_modified(self, fill: Fill, validator: CachedPart, resp: aiohttp.ClientResponse,
                      upstream: Upstream) -> None:
        old = validator.meta
        cache_control = resp.headers.get("Cache-Control")
        windows = parse_stale_windows(cache_control)
        meta = replace(old, max_age_s=parse_max_age(cache_control, old.max_age_s),
                       stale_while_revalidate_s=(windows.while_revalidate_s if cache_control
                                                 else old.stale_while_revalidate_s),
                       stale_if_error_s=windows.if_error_s if cache_control else old.stale_if_error_s)
        fill.meta, fill.not_modified = meta, True
        fill.length_bytes = validator.nbytes
        fill.chunks, fill.offsets, fill.received_bytes = [validator.body], [0], validator.nbytes
        fill.upstream = upstream.label
        self._complete(fill, validator.refreshed(meta, self._clock()), None)


def _etag_of(resp: aiohttp.ClientResponse) -> str:
    raw = resp.headers.get("ETag", "").strip()
    return raw.removeprefix("W/").strip('"')
