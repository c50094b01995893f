"""HTTP for the player: shaped GETs with timeouts and error translation, and the pathway set.

`Fetcher.get` is the one place the client touches aiohttp. It waits the link's round trip,
sends the request, and reads the body in link-sized chunks, pacing each through the
`network.ShapedLink`. Every wait has a media-clock timeout: ``ttfb_s`` from the request to
the response headers, ``stall_s`` between two body chunks, and a per-request ``deadline_s``
for the whole transfer. With a ``guard`` (`TransferGuard`: the buffer at the request and the
`giveup.GiveUpPolicy`), every chunk of a media body is judged by `giveup.judge_transfer`, timed
on the link's (the session's) clock: a body that trickles so slowly that it cannot end before
the buffer runs dry plus the stall budget is abandoned with `TransferTooSlow` (the reader's waits
on the server are timed apart from its own pacing, so a slow access network never trips it).
aiohttp and OS errors become `client.errors.FetchError` subclasses here and nowhere else. A ``progress`` hook sees
each chunk and may end the download early (abandonment): the connection is then closed, not
reused. Bodies are kept only when asked (playlists); segment bytes are counted and dropped.

`PathwaySet` is pure: the ranked pathways (steering order), a penalty box (hls.js style: a
pathway that failed is skipped for ``penalty_s``), and which pathway to use next. The session
calls `choose` before each request, `penalize` on a failure and `apply_priority` when the
content-steering manifest changes. `run_on_pathways` is the failover loop over it: one request
tried on the current pathway, then the next ones in priority order, in ``retry_rounds + 1``
rounds, until one works or `AllPathwaysFailed` (`AllPathwaysTooSlow` when every pathway was too slow). `resolve_via_steering` asks the steering
service's playback API where a title plays.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence, TypeVar
from urllib.parse import quote, urlencode

import aiohttp

from httpsem.cmcd import CmcdValue
from httpsem.cmsd import CmsdError, parse_dynamic
from manifests import ByteRange
from serverkit.tls import tls_failure

from .errors import (AllPathwaysFailed, AllPathwaysTooSlow, BodyTooLarge, ConnectError, FetchError, FetchTimeout,
                     HttpStatusError, PlaylistError, RequestContext, SteeringError, TransferTooSlow)
from .cmcd import CmcdObject, CmcdReporter, object_type
from .report import RequestRecord
from .giveup import GiveUpPolicy, TransferProgress, judge_transfer
from .network import Clock, Link

__all__ = ["FetchTimeouts", "FetchResult", "Fetcher", "PathwaySet", "ProgressHook", "TransferGuard",
           "range_header", "run_on_pathways", "SteeringAnswer", "resolve_via_steering"]

T = TypeVar("T")

log = logging.getLogger(__name__)

#: ``progress(downloaded_bytes, total_bytes_or_None, elapsed_s, ttfb_s)`` -> None to go on,
#: anything else to stop (the value comes back in `FetchResult.stopped`).
ProgressHook = Callable[[int, "int | None", float, float], object]

def range_header(byterange: ByteRange) -> str:
    """The ``Range`` request header (RFC 9110 §14.2) asking for a playlist byte range."""
    return f"bytes={byterange.offset}-{byterange.end - 1}"


_NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)


@dataclass(frozen=True)
class FetchTimeouts:
    """Media-clock timeouts of one request."""

    ttfb_s: float = 3.0
    """Request sent (round trip included) to response headers."""
    stall_s: float = 3.0
    """Longest wait for the next body chunk."""
    playlist_deadline_s: float = 15.0
    """Whole playlist or steering request."""
    segment_deadline_s: float = 40.0
    """Whole segment request (the session may pass a larger one for long segments)."""


@dataclass(frozen=True)
class TransferGuard:
    """Give up on a trickling body (`giveup.judge_transfer`): the buffer when the request is sent,
    the policy, and the expected size when the response may not say it."""

    buffer_s: float
    policy: GiveUpPolicy = GiveUpPolicy()
    expected_bytes: int | None = None


@dataclass(slots=True)
class FetchResult:
    """One finished (or stopped) request, times on the media clock."""

    url: str
    status: int
    size_bytes: int
    start_s: float
    ttfb_s: float
    end_s: float
    body: bytes | None = None
    stopped: object = None
    """The progress hook's value when it ended the download early, else None."""
    cmsd: dict[str, CmcdValue] | None = None
    """The nearest server's ``CMSD-Dynamic`` parameters (``etp``, ``rtt``, ``mb``, ``du``...) and its id
    as ``server``, when it sent them."""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Fetcher:
    """Shaped, time-limited GETs over a shared ``aiohttp.ClientSession`` (not owned: not closed)."""

    __slots__ = ("http", "link", "timeouts", "max_redirects", "headers", "bytes_read", "cmcd", "records")

    def __init__(self, http: aiohttp.ClientSession, link: Link, timeouts: FetchTimeouts = FetchTimeouts(), *,
                 max_redirects: int = 5, headers: dict[str, str] | None = None,
                 cmcd: CmcdReporter | None = None) -> None:
        self.http = http
        self.link = link
        self.timeouts = timeouts
        self.max_redirects = max_redirects
        self.headers = headers
        self.bytes_read = 0
        self.cmcd = cmcd  #: adds CMCD to every request but steering's (``client/cmcd.py``)
        #: every answered request to a media server (not steering), times on the link's clock, when not None
        self.records: list[RequestRecord] | None = None

    async def get(self, url: str, *, max_bytes: int, keep_body: bool = False, byterange: ByteRange | None = None,
                  pathway: str | None = None, progress: ProgressHook | None = None,
                  deadline_s: float | None = None, error_body: bool = False,
                  guard: TransferGuard | None = None, cmcd: CmcdObject | None = None,
                  send_cmcd: bool = True) -> FetchResult:
        """GET ``url``; `FetchError` subclasses on failure (see errors.py). With ``error_body``,
        a 4xx/5xx answer is returned (body kept) instead of raising `HttpStatusError`; with
        ``guard``, a body too slow to arrive in time raises `TransferTooSlow`. The request carries
        CMCD (what ``cmcd`` says of the object) unless ``send_cmcd`` is False (steering)."""
        clock = self.link.clock
        start = clock.now_s()
        if deadline_s is None:
            deadline_s = self.timeouts.playlist_deadline_s if keep_body else self.timeouts.segment_deadline_s
        headers = dict(self.headers or {})
        if byterange is not None:
            headers["Range"] = range_header(byterange)
        sent = self.cmcd.apply(url, headers, cmcd) if self.cmcd is not None and send_cmcd else url
        ctx: RequestContext = {"url": url, "pathway": pathway}
        try:
            async with clock.timeout(deadline_s):
                result = await self._get(url, sent, start, headers, max_bytes, keep_body, byterange, progress, ctx,
                                         error_body, guard)
            if self.records is not None and send_cmcd:
                self.records.append(RequestRecord(
                    ot=(cmcd.ot if cmcd is not None else None) or object_type(url) or "", url=result.url,
                    range=headers.get("Range", ""), start_s=start, ttfb_s=result.ttfb_s, end_s=result.end_s,
                    size_bytes=result.size_bytes, status=result.status, complete=result.stopped is None))
            return result
        except TimeoutError:
            raise FetchTimeout(f"{url}: not complete within {deadline_s:g} s", kind="total", **ctx) from None

    async def _get(self, url: str, sent: str, start: float, headers: dict[str, str], max_bytes: int, keep_body: bool,
                   byterange: ByteRange | None, progress: ProgressHook | None, ctx: RequestContext,
                   error_body: bool, guard: TransferGuard | None) -> FetchResult:
        clock = self.link.clock
        link_s = 0.0  # time spent in the viewer's own shaped link (round trip, pacing): not the server's
        try:
            async with clock.timeout(self.timeouts.ttfb_s):
                t = clock.now_s()
                await self.link.round_trip()
                link_s += clock.now_s() - t
                resp = await self.http.get(sent, headers=headers or None, max_redirects=self.max_redirects,
                                           timeout=_NO_AIOHTTP_TIMEOUT)
        except TimeoutError:
            raise FetchTimeout(f"{url}: no response within {self.timeouts.ttfb_s:g} s", kind="ttfb", **ctx) from None
        except aiohttp.TooManyRedirects:
            raise FetchError(f"{url}: more than {self.max_redirects} redirects (loop?)", **ctx) from None
        except aiohttp.InvalidURL as e:
            raise FetchError(f"{url}: invalid URL ({e})", **ctx) from None
        except (aiohttp.ClientError, OSError) as e:
            raise ConnectError(f"{url}: {_describe(e)}", **ctx) from None
        stopped = None
        try:
            ttfb = clock.now_s() - start
            if resp.status >= 400 and not error_body:
                raise HttpStatusError(f"{url}: HTTP {resp.status}", status=resp.status, **ctx)
            if byterange is not None and resp.status != 206:
                ignored = " (the server ignores Range requests)" if resp.status == 200 else ""
                raise HttpStatusError(f"{url}: asked for {range_header(byterange)}, got HTTP {resp.status}{ignored}",
                                      status=resp.status, **ctx)
            length = resp.content_length
            if length is not None and length > max_bytes:
                raise BodyTooLarge(f"{url}: body of {length} bytes is over the {max_bytes} byte limit", **ctx)
            body = bytearray() if keep_body else None
            size = 0
            content = resp.content
            stall = self.timeouts.stall_s
            expected = length if length is not None else (guard.expected_bytes if guard is not None else None)
            # the floor of every timeout on this clock (a compressed clock on a busy machine)
            min_budget_s = clock.speed * clock.min_timeout_real_s
            body_wait_s = 0.0  # time spent waiting on the server's bytes, the link's pacing left out
            while True:
                try:
                    waited_from = clock.now_s()
                    async with clock.timeout(stall):
                        chunk = await content.read(self.link.chunk_bytes())
                    body_wait_s += clock.now_s() - waited_from
                except TimeoutError:
                    raise FetchTimeout(f"{url}: body stalled for {stall:g} s at {size} bytes", kind="stall",
                                       **ctx) from None
                if not chunk:
                    break
                size += len(chunk)
                self.bytes_read += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge(f"{url}: body is over the {max_bytes} byte limit", **ctx)
                t = clock.now_s()
                await self.link.consume(len(chunk), continuing=size > len(chunk))
                link_s += clock.now_s() - t
                if body is not None:
                    body += chunk
                if guard is not None:
                    verdict = judge_transfer(TransferProgress(
                        received_bytes=size, expected_bytes=expected, elapsed_s=clock.now_s() - start,
                        body_wait_s=body_wait_s, link_s=link_s, buffer_s=guard.buffer_s, min_budget_s=min_budget_s),
                        guard.policy)
                    if verdict.abandon:
                        raise TransferTooSlow(f"{url}: {verdict.reason}", verdict=verdict, **ctx)
                if progress is not None:
                    stopped = progress(size, length, clock.now_s() - start, ttfb)
                    if stopped is not None:
                        break
            if stopped is None and length is not None and size < length:
                raise ConnectError(f"{url}: body ended at {size} of {length} bytes", **ctx)
            final = str(resp.url)
            if sent != url:  # the URL as the session knows it: without its CMCD argument
                final = url if not resp.history else str(resp.url.without_query_params("CMCD"))
            return FetchResult(url=final, status=resp.status, size_bytes=size, start_s=start, ttfb_s=ttfb,
                               end_s=clock.now_s(), body=bytes(body) if body is not None else None, stopped=stopped,
                               cmsd=_cmsd(resp.headers.get("CMSD-Dynamic")))
        except (aiohttp.ClientError, OSError) as e:
            stopped = True  # do not reuse the connection
            raise ConnectError(f"{url}: {_describe(e)}", **ctx) from None
        except BaseException:
            stopped = True
            raise
        finally:
            if stopped is not None:
                resp.close()
            else:
                resp.release()


def _cmsd(text: str | None) -> dict[str, CmcdValue] | None:
    """The first (nearest) member of a ``CMSD-Dynamic`` header, its id as ``server``; None if absent or malformed."""
    if not text:
        return None
    try:
        members = parse_dynamic(text)
    except CmsdError:
        return None
    if not members:
        return None
    server, params = members[0]
    return {**params, "server": server}


def _describe(e: BaseException) -> str:
    if isinstance(e, aiohttp.ClientSSLError):
        return f"TLS handshake failed ({tls_failure(e)})"
    if isinstance(e, aiohttp.ClientConnectorError):
        return f"cannot connect ({e.os_error.strerror or e.os_error})"
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(e, aiohttp.ClientPayloadError):
        return "body cut short"
    text = str(e) or type(e).__name__
    return text if len(text) < 200 else text[:200] + "..."


class PathwaySet:
    """Ranked pathways with a penalty box. Pure: every method takes the time it should use."""

    __slots__ = ("order", "known", "penalty_s", "_penalized_until", "current")

    def __init__(self, pathways: Sequence[str], penalty_s: float = 300.0, current: str | None = None) -> None:
        if not pathways:
            raise ValueError("a pathway set needs at least one pathway")
        self.known = tuple(dict.fromkeys(pathways))
        self.order: tuple[str, ...] = self.known
        self.penalty_s = penalty_s
        self._penalized_until: dict[str, float] = {}
        self.current = current if current in self.known else self.known[0]

    def add(self, pathway: str) -> None:
        """A pathway cloned by the steering manifest."""
        if pathway not in self.known:
            self.known += (pathway,)
            self.order += (pathway,)

    def penalized(self, pathway: str, now_s: float) -> bool:
        return self._penalized_until.get(pathway, float("-inf")) > now_s

    def penalize(self, pathway: str, now_s: float) -> None:
        self._penalized_until[pathway] = now_s + self.penalty_s

    def choose(self, now_s: float, exclude: Sequence[str] = ()) -> str | None:
        """The pathway to use: the current one while it is healthy, else the first healthy one in
        priority order; when every pathway not in ``exclude`` is penalized, the one whose penalty
        ends first (a last resort beats giving up); None when all are excluded."""
        candidates = [p for p in self.order if p not in exclude]
        if not candidates:
            return None
        if self.current in candidates and not self.penalized(self.current, now_s):
            return self.current
        healthy = [p for p in candidates if not self.penalized(p, now_s)]
        chosen = healthy[0] if healthy else min(candidates, key=lambda p: self._penalized_until.get(p, 0.0))
        self.current = chosen
        return chosen

    def apply_priority(self, priority: Sequence[str], now_s: float) -> str | None:
        """Follow a steering manifest's PATHWAY-PRIORITY: known pathways it names come first in its
        order, the others keep their order after them (a last resort). The current pathway moves to
        the first healthy one named. Returns the new current pathway if it changed."""
        named = [p for p in dict.fromkeys(priority) if p in self.known]
        if not named:
            return None
        self.order = tuple(named) + tuple(p for p in self.order if p not in named)
        best = next((p for p in named if not self.penalized(p, now_s)), None)
        if best is not None and best != self.current:
            self.current = best
            return best
        return None


async def run_on_pathways(pathways: PathwaySet, clock: Clock, attempt: Callable[[str], Awaitable[T]], *,
                          retry_rounds: int = 2, backoff_s: float = 0.5,
                          on_failure: Callable[[str, Exception, float], None] | None = None) -> tuple[T, str]:
    """``(attempt(pathway), pathway)`` on the first pathway where it works. A `FetchError` or
    `PlaylistError` penalises the pathway and moves on; after every pathway failed, another round
    after ``backoff_s * round`` (media seconds); then `AllPathwaysFailed` naming each error."""
    errors: dict[str, str] = {}
    too_slow: dict[str, bool] = {}
    for round_ in range(retry_rounds + 1):
        if round_:
            await clock.sleep(backoff_s * round_)
        tried: list[str] = []
        while True:
            pathway = pathways.choose(clock.now_s(), exclude=tried)
            if pathway is None:
                break
            try:
                return await attempt(pathway), pathway
            except (FetchError, PlaylistError) as e:
                now = clock.now_s()
                errors[pathway] = str(e)
                too_slow[pathway] = isinstance(e, TransferTooSlow)
                tried.append(pathway)
                pathways.penalize(pathway, now)
                if on_failure is not None:
                    on_failure(pathway, e, now)
    detail = "; ".join(f"{p}: {e}" for p, e in errors.items())
    if too_slow and all(too_slow.values()):
        raise AllPathwaysTooSlow(f"all pathways too slow: {detail}", errors)
    raise AllPathwaysFailed(f"every pathway failed ({detail})", errors)


@dataclass(frozen=True)
class SteeringAnswer:
    """What ``GET /play/{title}`` says: the steered playlist, the chosen edge's own, the steering URI."""

    multivariant_url: str
    fallback_url: str | None
    steering_uri: str | None


async def resolve_via_steering(fetcher: Fetcher, steering_url: str, title: str, *, device: str,
                               region: str | None, session: str, format: str = "hls") -> SteeringAnswer:
    """``GET {steering}/play/{title}?device=&region=&session=[&format=]``; `SteeringError` (one line,
    naming the valid regions/devices/formats on a 400) when it cannot be used. ``format`` ``auto``
    lets the service choose (the device's first)."""
    fields = {"device": device, "region": region or "", "session": session}
    if format != "auto":
        fields["format"] = format
    query = urlencode(fields)
    url = f"{steering_url.rstrip('/')}/play/{quote(title, safe='')}?{query}"
    try:
        res = await fetcher.get(url, max_bytes=1024 * 1024, keep_body=True, error_body=True, send_cmcd=False)
    except FetchError as e:
        raise SteeringError(f"steering service unreachable: {e}") from None
    try:
        doc = json.loads(res.body or b"")
    except ValueError:
        doc = None
    if res.status >= 400:
        why = doc.get("error") if isinstance(doc, dict) else None
        extra = ""
        if isinstance(doc, dict):
            for key in ("valid_regions", "valid_devices", "valid_formats"):
                if doc.get(key):
                    extra = f" ({key.replace('_', ' ')}: {', '.join(map(str, doc[key]))})"
        raise SteeringError(f"steering refused {title!r}: HTTP {res.status} {why or ''}{extra}".rstrip())
    if not isinstance(doc, dict) or not isinstance(doc.get("multivariant_url"), str):
        raise SteeringError(f"steering answer for {title!r} has no multivariant_url")
    fallback = doc.get("edge_manifest_url") or doc.get("edge_multivariant_url")
    steer = doc.get("content_steering_uri")
    manifest = doc.get("manifest_url")
    return SteeringAnswer(multivariant_url=manifest if isinstance(manifest, str) else doc["multivariant_url"],
                          fallback_url=fallback if isinstance(fallback, str) else None,
                          steering_uri=steer if isinstance(steer, str) else None)
