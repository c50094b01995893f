"""Failover across pathways and the content-steering reload loop of one player session.

* `Failover.run(attempt)` runs ``attempt(pathway)`` on the current pathway and, when it fails
  (`fetch.run_on_pathways`: penalty box, retry rounds, backoff), on the next one in steering
  order; a request that ended on another pathway than it started on becomes one `FailoverRecord`
  (the same switch seen by a concurrent request, audio next to video, is recorded once).
* `SteeringLoop.run(uri)` fetches the steering manifest now and then every TTL (with
  ``_HLS_pathway`` and ``_HLS_throughput``), follows PATHWAY-PRIORITY, adds PATHWAY-CLONES to the
  session's tracks and pathways, and follows RELOAD-URI. It never ends on its own: the session
  cancels it.
"""
from __future__ import annotations

import logging
from typing import Awaitable, Callable, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from .context import SessionContext
from .errors import PlaybackError
from .fetch import run_on_pathways
from .playlists import fetch_text, parse_steering_manifest, resolve
from .report import FailoverRecord
from .tracks import PathwayClone, add_clones

__all__ = ["Failover", "SteeringLoop", "with_query"]

log = logging.getLogger("client.session")
T = TypeVar("T")


class Failover:
    """Requests of one session run on its pathways, failing over in steering order."""

    def __init__(self, ctx: SessionContext) -> None:
        self.ctx = ctx
        self.records: list[FailoverRecord] = []

    async def run(self, attempt: Callable[[str], Awaitable[T]]) -> T:
        """Run ``attempt(pathway)`` on the current pathway, failing over in steering order."""
        ctx = self.ctx
        assert ctx.pathways is not None
        first: list[tuple[float, str, Exception, float]] = []

        def failed(pathway: str, error: Exception, now: float) -> None:
            if not first:
                first.append((now, pathway, error, ctx.level(now)))
            log.warning("pathway failed", extra={"kv": {"session": ctx.session_id, "pathway": pathway,
                                                         "error": str(error)}})

        result, pathway = await run_on_pathways(ctx.pathways, ctx.clock, attempt,
                                                retry_rounds=ctx.config.retry_rounds,
                                                backoff_s=ctx.config.retry_backoff_s, on_failure=failed)
        if first and first[0][1] != pathway:
            self._record(first[0], pathway)
        return result

    def _record(self, first: tuple[float, str, Exception, float], to: str) -> None:
        ctx = self.ctx
        at, frm, exc, level = first
        now = ctx.clock.now_s()
        for f in self.records[-3:]:
            if f.from_pathway == frm and f.to_pathway == to and abs(f.at_s - (at - ctx.start_s)) < 2.0:
                return  # the same switch seen by a concurrent request (audio next to video)
        self.records.append(FailoverRecord(at_s=at - ctx.start_s, from_pathway=frm, to_pathway=to,
                                           error=str(exc), buffer_s=level, gap_s=now - at,
                                           cause=type(exc).__name__))
        log.warning("failover", extra={"kv": {"session": ctx.session_id, "from": frm, "to": to,
                                              "gap_s": round(now - at, 3), "buffer_s": round(level, 2)}})


class SteeringLoop:
    """The content-steering reload loop (see the module docstring); ``reloads`` counts manifests."""

    def __init__(self, ctx: SessionContext) -> None:
        self.ctx = ctx
        self.reloads = 0

    async def run(self, uri: str) -> None:
        ctx = self.ctx
        assert ctx.pathways is not None and ctx.selection is not None
        while True:
            wait = ctx.config.steering_retry_s
            try:
                prefix = "_DASH" if ctx.manifest_format == "dash" else "_HLS"  # DASH-IF CTS 001 / RFC 8216bis
                params = {f"{prefix}_pathway": ctx.pathways.current}
                if ctx.recent:
                    params[f"{prefix}_throughput"] = str(int(ctx.recent[-1].throughput_bps))
                url = with_query(uri, params)
                text, final = await fetch_text(ctx.fetcher, url, ctx.config.limits, send_cmcd=False)
                manifest = parse_steering_manifest(text, final, ctx.config.limits)
                self.reloads += 1
                if manifest.clones:
                    clones = [PathwayClone(base_id=b, id=i, host=h, params=p) for b, i, h, p in manifest.clones]
                    ctx.selection = add_clones(ctx.selection, clones, ctx.master_base)
                    for p in ctx.selection.pathways:
                        ctx.pathways.add(p)
                changed = ctx.pathways.apply_priority(manifest.pathway_priority, ctx.clock.now_s())
                if changed:
                    log.info("steered", extra={"kv": {"session": ctx.session_id, "pathway": changed,
                                                       "priority": ",".join(manifest.pathway_priority)}})
                if manifest.reload_uri:
                    uri = resolve(final, manifest.reload_uri)
                wait = manifest.ttl_s
            except PlaybackError as e:
                log.warning("steering manifest failed", extra={"kv": {"session": ctx.session_id, "error": str(e)}})
            except Exception:  # noqa: BLE001 - never let steering kill playback
                log.exception("steering loop error")
            await ctx.clock.sleep(max(wait, 0.5))


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` set in its query (replacing any of the same names)."""
    parts = urlsplit(url)
    query = "&".join(q for q in parts.query.split("&") if q and q.split("=", 1)[0] not in params)
    extra = urlencode(params)
    return urlunsplit(parts._replace(query=f"{query}&{extra}" if query else extra))
