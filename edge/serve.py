"""``GET|HEAD /t/{token}/{title}/{path}``: the serving path, from token check to the last byte.

HTTP semantics (ranges, conditionals, validators, content types, cache-control) come from
``origin.server.semantics.plan_response``, the same core the origin uses; this module only finds
the bytes and sends them: what to do with a cache key is ``lookup.plan_lookup``'s decision (an enum,
from the negative cache, the tiers' entry, its freshness and the request), carried out by
:func:`_respond`. Every request ends in one access log line and one metrics count with its cache result.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass, replace
from http import HTTPStatus

from aiohttp import ClientConnectionResetError, hdrs, web
from multidict import CIMultiDict

from httpsem.semantics import ResponsePlan, is_playlist, plan_response
from httpsem.keys import InvalidKey, validate_key

from .accesslog import AccessLog
from .cmcd import NO_CMCD, RequestCmcd, cmcd_argument, log_fields, request_cmcd
from .errors import CircuitOpen, EdgeError, ObjectChanged, UpstreamRefused
from .fill import CACHE_ONLY_HEADER, EDGE_HEADER
from .inflight import Fill, FillSpec
from .lookup import CacheResult, Found, LookupPlan, TierName, plan_lookup
from .node import Edge
from .objects import CachedPart, ObjectMeta
from .slices import slices_covering

log = logging.getLogger("edge.access")

EDGE_KEY: web.AppKey[Edge] = web.AppKey("edge", Edge)
ACCESS_LOG_KEY: web.AppKey[AccessLog] = web.AppKey("access_log", AccessLog)
CLIENT_GONE = (ConnectionResetError, ClientConnectionResetError, ConnectionAbortedError)


class StaleReason(enum.Enum):
    """Why a stale copy was served (``vodstack_edge_stale_served_total{reason}``)."""

    REVALIDATING = "revalidating"      # within stale-while-revalidate: served at once, revalidation behind
    DEADLINE = "deadline"              # the revalidation did not answer within stale_deadline_s
    UPSTREAM_ERROR = "upstream_error"  # the revalidation failed: 5xx, timeout, connection error
    CIRCUIT_OPEN = "circuit_open"      # every upstream's circuit was open: nothing was asked


@dataclass
class Outcome:
    """What one request came to, for the access log and metrics."""

    status: int = 0
    cache: CacheResult | str = CacheResult.NONE  # or a refused token's reason (tokens.py)
    tier: TierName = TierName.RAM
    sent_bytes: int = 0
    aborted: bool = False  # the client went away mid-body
    cmcd: RequestCmcd = NO_CMCD  #: what the request said of its viewer (CTA-5004)
    upstream_s: float = 0.0  #: time this answer waited on upstream bytes (fill, revalidation), not on the client
    started: float = 0.0  #: ``time.perf_counter()`` when the request came in


#: The request's `Outcome`, for the response-prepare hook (CMSD headers: ``app.py``).
OUTCOME: web.RequestKey[Outcome] = web.RequestKey("outcome", Outcome)


#: The request headers ``plan_response`` reads; a request with none of them is "plain". (aiohttp's
#: ``istr`` names: a lookup in the request's headers skips case-folding the name.)
PLAN_HEADERS = (hdrs.RANGE, hdrs.IF_MATCH, hdrs.IF_NONE_MATCH, hdrs.IF_MODIFIED_SINCE, hdrs.IF_UNMODIFIED_SINCE,
                hdrs.IF_RANGE)


def _plan(request: web.Request, meta: ObjectMeta, path: str) -> ResponsePlan:
    playlist_age = int(meta.max_age_s) if is_playlist(path) else 2
    return plan_response(request.method, request.headers, path=path, size_bytes=meta.size_bytes,
                         etag=meta.etag, last_modified_s=meta.last_modified_s, playlist_max_age_s=playlist_age)


def _part_plan(request: web.Request, part: CachedPart, path: str) -> ResponsePlan:
    """The plan for a cached part: a plain request's from the part's memo, any other planned afresh."""
    headers = request.headers
    for name in PLAN_HEADERS:
        if name in headers:
            return _plan(request, part.meta, path)
    return plain_plan(part, request.method, path)


_NO_HEADERS: CIMultiDict[str] = CIMultiDict()


def plain_plan(part: CachedPart, method: str, path: str) -> ResponsePlan:
    """The plan for a request with none of ``PLAN_HEADERS``. It depends on the part and the method only,
    so it is made once per part and method (``part.plans``; the fast path reads the same memo)."""
    plan = part.plans.get(method)
    if plan is None:  # headers as a CIMultiDict: each response copies them without case-folding again
        meta = part.meta
        playlist_age = int(meta.max_age_s) if is_playlist(path) else 2
        plan = plan_response(method, _NO_HEADERS, path=path, size_bytes=meta.size_bytes, etag=meta.etag,
                             last_modified_s=meta.last_modified_s, playlist_max_age_s=playlist_age)
        plan = part.plans[method] = replace(plan, headers=CIMultiDict(plan.headers))
    return plan


def _status(status: int, out: Outcome, retry_after_s: int = 0, text: str = "") -> web.Response:
    out.status = status
    headers = {"Cache-Control": "no-store"}
    if retry_after_s:
        headers["Retry-After"] = str(retry_after_s)
    return web.Response(status=status, text=text, headers=headers)


async def handle_object(request: web.Request) -> web.StreamResponse:
    app = request.app
    edge = app[EDGE_KEY]
    started = time.perf_counter()
    mi = request.match_info
    title, path = mi["title"], mi["path"]
    out = Outcome(started=started)
    request[OUTCOME] = out
    raw_query = request.rel_url.raw_query_string  # not request.query: decoding every argument costs more
    out.cmcd = request_cmcd(cmcd_argument(raw_query) if raw_query else None, request.headers)
    edge.active_requests += 1
    try:
        if edge.draining:
            resp: web.StreamResponse = _status(503, out, retry_after_s=5, text="draining\n")
            resp.force_close()
            return resp
        refusal = edge.token_ok(mi["token"], title)
        if refusal:
            out.cache = refusal
            return _status(403, out, text="forbidden\n")
        key = f"{title}/{path}"
        part = edge.fresh_in_ram(key)  # the hot path
        if part is not None:
            out.cache = CacheResult.RAM_HIT
            return _send_part(request, part, path, out)
        try:
            validate_key(key)
        except InvalidKey as e:  # HiddenKey (a dot-file, never an object) is a 404, the rest 400
            return _status(e.status_hint, out, text="not found\n" if e.status_hint == 404 else "bad path\n")
        return await _respond(request, edge, key, path, out)
    finally:
        edge.active_requests -= 1
        headers = request.headers
        account(app, request.method, request.path, out, started, range_header=headers.get(hdrs.RANGE, "-"),
                peer=request.remote or "-", via=headers.get(EDGE_HEADER, "-"))


def account(app: web.Application, method: str, path: str, out: Outcome, started: float, *, range_header: str,
            peer: str, via: str) -> None:
    """What every object request ends in, whichever path answered it (``fastpath.py`` too): the request
    and byte counters, the out-rate meter and one access-log line."""
    edge = app[EDGE_KEY]
    metrics = edge.metrics
    metrics.count_request(out.status, out.cache)
    if out.sent_bytes:
        metrics.count_served(out.tier, out.sent_bytes)
        edge.out_meter.add(out.sent_bytes, edge.clock())
    cmcd = out.cmcd.keys
    if cmcd is not None:
        metrics.count_cmcd(cmcd)
    elif out.cmcd.malformed:
        metrics.count_cmcd_malformed()
    if edge.cfg.access_log:
        app[ACCESS_LOG_KEY].request(
            method, path, status=out.status if not out.aborted else f"{out.status}-aborted", cache=out.cache,
            tier=out.tier, sent_bytes=out.sent_bytes, ms=round((time.perf_counter() - started) * 1000, 2),
            range_header=range_header, peer=peer, via=via, cmcd=log_fields(cmcd),
            up_ms=round(out.upstream_s * 1000, 1))


async def _respond(request: web.Request, edge: Edge, key: str, path: str, out: Outcome) -> web.StreamResponse:
    """Carry out the lookup plan for ``key`` (``lookup.plan_lookup``)."""
    cache_only = request.headers.get(CACHE_ONLY_HEADER) == "1"
    negative = edge.negative.get(key)
    meta = edge.sliced_meta(key) if negative is None else None
    ranged_media = "Range" in request.headers and not is_playlist(path)
    found: Found | None = None
    plan = LookupPlan.LOOK_IN_TIERS
    for looked in (False, True):
        if looked:
            found = await edge.cached(key)
        plan = plan_lookup(negative_status=negative, sliced=meta is not None, looked_in_tiers=looked,
                           part=found.part if found is not None else None, now_s=edge.clock(),
                           defaults=edge.stale_defaults, cache_only=cache_only, ranged_media=ranged_media)
        if plan is not LookupPlan.LOOK_IN_TIERS:
            break
    if plan is LookupPlan.NEGATIVE or plan is LookupPlan.NEGATIVE_TO_PEER:
        # an upstream's 4xx, remembered: the same status (a peer asking: "not here")
        out.cache = CacheResult.NEGATIVE
        status = 404 if plan is LookupPlan.NEGATIVE_TO_PEER else int(negative or 0)
        return _status(status, out, text=_reason_text(status))
    if plan is LookupPlan.SLICED:
        assert meta is not None
        return await _send_sliced(request, edge, meta, path, out, cache_only)
    if plan is LookupPlan.NOT_CACHED_CACHE_ONLY:  # a peer asking: say "not here" at once, fill nothing
        out.cache = CacheResult.MISS
        return _status(404, out, text="not cached\n")
    if plan is LookupPlan.FILL or plan is LookupPlan.FILL_PROBE:
        return await _fill(request, edge, key, path, out, probe=plan is LookupPlan.FILL_PROBE)
    assert found is not None and found.part is not None
    if plan is LookupPlan.SERVE_FRESH or plan is LookupPlan.SERVE_TO_PEER:
        out.cache, out.tier = found.tier.hit, found.tier
        return _send_part(request, found.part, path, out)
    return await _revalidate(request, edge, key, path, found.part, plan, found.tier, out)


async def _fill(request: web.Request, edge: Edge, key: str, path: str, out: Outcome,
                probe: bool) -> web.StreamResponse:
    """Nothing cached: fill (or join the fill in flight) and stream it; a probe asks first for one slice."""
    spec = FillSpec(object_key=key, cache_key=key, probe_bytes=edge.cfg.slice_bytes if probe else None)
    fill, started = edge.fills.get_or_start(spec)
    out.cache, out.tier = (CacheResult.MISS if started else CacheResult.COALESCED), TierName.FILL
    waited = time.perf_counter()
    try:
        meta = await fill.wait_meta()
    except EdgeError as e:
        return _fill_failed(edge, key, e, out)
    finally:
        out.upstream_s += time.perf_counter() - waited
    if meta.sliced:
        return await _send_sliced(request, edge, meta, path, out, False)
    return await _stream_fill(request, fill, meta, path, out)


def _reason_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase.lower()}\n"
    except ValueError:
        return f"{status}\n"


def _fill_failed(edge: Edge, key: str, e: EdgeError, out: Outcome) -> web.Response:
    """The answer to a fill that brought no bytes: an upstream's 4xx passes through (and is remembered
    for ``negative_ttl_s``); a failure (5xx, timeout, connection, open circuit) is 502/504, never remembered."""
    if isinstance(e, UpstreamRefused):
        if edge.cfg.negative_ttl_s > 0:
            edge.negative[key] = e.status_hint
        return _status(e.status_hint, out, text=_reason_text(e.status_hint))
    return _status(e.status_hint, out, text=f"{e.status_hint} upstream unavailable\n")


async def _revalidate(request: web.Request, edge: Edge, key: str, path: str, part: CachedPart,
                      plan: LookupPlan, tier: TierName, out: Outcome) -> web.StreamResponse:
    """A stale part: one revalidation (coalesced). Within stale-while-revalidate the stale copy is the answer
    at once; past it the request waits up to ``stale_deadline_s`` (an expired part: as long as the fill
    takes), and a slow or failed revalidation is answered from the stale copy. An upstream's 4xx is final:
    the part is dropped and the 4xx passed on. An error never replaces the cached part."""
    fill, started = edge.fills.get_or_start(FillSpec(object_key=key, cache_key=key, validator=part))
    if plan is LookupPlan.SERVE_STALE_AND_REVALIDATE:
        if started:
            edge.fills.run_behind(_drop_if_refused(edge, key, fill))
        return _send_stale(request, edge, part, path, out, StaleReason.REVALIDATING)
    waited = time.perf_counter()
    try:
        if plan is LookupPlan.REVALIDATE_WITHIN_DEADLINE:
            async with asyncio.timeout(edge.cfg.stale_deadline_s):
                fresh = await fill.wait_done()
        else:
            fresh = await fill.wait_done()
    except TimeoutError:
        if started:
            edge.fills.run_behind(_drop_if_refused(edge, key, fill))
        return _send_stale(request, edge, part, path, out, StaleReason.DEADLINE)
    except UpstreamRefused as e:
        await edge.purge(keys=[key])
        return _fill_failed(edge, key, e, out)
    except EdgeError as e:
        if plan is LookupPlan.REVALIDATE_WITHIN_DEADLINE:
            reason = StaleReason.CIRCUIT_OPEN if isinstance(e, CircuitOpen) else StaleReason.UPSTREAM_ERROR
            return _send_stale(request, edge, part, path, out, reason)
        return _fill_failed(edge, key, e, out)
    finally:
        out.upstream_s += time.perf_counter() - waited
    out.cache, out.tier = CacheResult.REVALIDATED, (tier if fill.not_modified else TierName.FILL)
    return _send_part(request, fresh, path, out)


async def _drop_if_refused(edge: Edge, key: str, fill: Fill) -> None:
    """Behind a revalidation nobody waits for: an upstream's 4xx drops the cached part (and is remembered)."""
    try:
        await fill.wait_done()
    except UpstreamRefused as e:
        await edge.purge(keys=[key])
        if edge.cfg.negative_ttl_s > 0:
            edge.negative[key] = e.status_hint
    except EdgeError:
        pass  # a failure: the stale part stays


def _send_stale(request: web.Request, edge: Edge, part: CachedPart, path: str, out: Outcome,
                reason: StaleReason) -> web.Response:
    out.cache, out.tier = CacheResult.STALE, TierName.STALE
    edge.metrics.stale_served.labels(reason.value).inc()
    return _send_part(request, part, path, out)


def _send_part(request: web.Request, part: CachedPart, path: str, out: Outcome) -> web.Response:
    plan = _part_plan(request, part, path)
    out.status = plan.status
    if not plan.send_body:
        return web.Response(status=plan.status, headers=plan.headers)
    out.sent_bytes = plan.length
    body = part.body if plan.length == len(part.body) else memoryview(part.body)[plan.start:plan.end]
    return web.Response(status=plan.status, headers=plan.headers, body=body)


async def _stream_fill(request: web.Request, fill: Fill, meta: ObjectMeta, path: str,
                       out: Outcome) -> web.StreamResponse:
    plan = _plan(request, meta, path)
    out.status = plan.status
    if not plan.send_body or plan.length == 0:
        return web.Response(status=plan.status, headers=plan.headers)
    resp = web.StreamResponse(status=plan.status, headers=plan.headers)
    await resp.prepare(request)
    try:
        await _write_fill(resp, fill, plan.start, plan.end, out)
        await resp.write_eof()
    except CLIENT_GONE:
        out.aborted = True  # only this client's reading stops; the fill goes on for the others
    except EdgeError as e:  # the fill broke after the headers went out: cut the connection, never pad
        log.warning("fill failed mid-response", extra={"kv": {"key": meta.key, "error": e}})
        out.aborted = True
        if request.transport is not None:
            request.transport.close()
    return resp


async def _send_sliced(request: web.Request, edge: Edge, meta: ObjectMeta, path: str, out: Outcome,
                       cache_only: bool) -> web.StreamResponse:
    plan = _plan(request, meta, path)
    out.status = plan.status
    if not plan.send_body or plan.length == 0:
        out.cache = out.cache if out.cache is not CacheResult.NONE else CacheResult.RAM_HIT
        return web.Response(status=plan.status, headers=plan.headers)
    slice_bytes = edge.cfg.slice_bytes
    wanted = slices_covering(plan.start, plan.end, slice_bytes)
    # find the first slice before answering, so that a failure can still be a clean 502/504
    first = await _slice(edge, meta, wanted[0], cache_only, out)
    if not isinstance(first, Found):
        return first
    resp = web.StreamResponse(status=plan.status, headers=plan.headers)
    await resp.prepare(request)
    try:
        await _write_slices(request, edge, meta, plan, wanted, first, resp, cache_only, out)
    except CLIENT_GONE:
        out.aborted = True
    except EdgeError as e:
        log.warning("slice fill failed mid-response", extra={"kv": {"key": meta.key, "error": e}})
        out.aborted = True
        if request.transport is not None:
            request.transport.close()
    return resp


async def _write_slices(request: web.Request, edge: Edge, meta: ObjectMeta, plan: ResponsePlan, wanted: range,
                        first: Found, resp: web.StreamResponse, cache_only: bool, out: Outcome) -> None:
    slice_bytes = edge.cfg.slice_bytes
    found = first
    for n in wanted:
        if n != wanted[0]:
            got = await _slice(edge, meta, n, cache_only, out)
            if not isinstance(got, Found):
                log.warning("slice unavailable mid-response, closing", extra={"kv": {"key": meta.key, "slice": n}})
                if request.transport is not None:
                    request.transport.close()  # the client sees a short body, never wrong bytes
                out.aborted = True
                return
            found = got
        base = n * slice_bytes
        lo, hi = max(plan.start, base) - base, min(plan.end, base + slice_bytes) - base
        if found.part is not None:
            chunk = memoryview(found.part.body)[lo:hi]
            await resp.write(chunk)
            out.sent_bytes += len(chunk)
        else:
            assert found.fill is not None
            await _write_fill(resp, found.fill, lo, hi, out)
    await resp.write_eof()


async def _write_fill(resp: web.StreamResponse, fill: Fill, start: int, end: int, out: Outcome) -> None:
    """Stream ``fill``'s bytes ``start:end`` as they arrive; the waits on them are ``out.upstream_s``
    (the waits on the client, ``resp.write``, are not)."""
    chunks = fill.iter_range(start, end).__aiter__()
    while True:
        waited = time.perf_counter()
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return
        finally:
            out.upstream_s += time.perf_counter() - waited
        await resp.write(chunk)
        out.sent_bytes += len(chunk)


async def _slice(edge: Edge, meta: ObjectMeta, n: int, cache_only: bool, out: Outcome) -> Found | web.Response:
    found = await edge.find_slice(meta, n, cache_only=cache_only)
    if found is None:
        out.cache = CacheResult.MISS
        return _status(404, out, text="not cached\n")
    result = found.result
    if result.rank > (out.cache.rank if isinstance(out.cache, CacheResult) else 0):
        out.cache, out.tier = result, found.tier
    if found.fill is not None:
        waited = time.perf_counter()
        try:
            await found.fill.wait_meta()
        except EdgeError as e:
            if isinstance(e, ObjectChanged):
                await edge.purge(keys=[meta.key])
            return _fill_failed(edge, meta.key, e, out)
        finally:
            out.upstream_s += time.perf_counter() - waited
    return found
