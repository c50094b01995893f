"""Build a session's `report.SessionReport` from its shared state and its parts' records.

The buffer model is advanced to now; an ongoing stall is reported as lasting until now; bytes
not counted as media (video, audio, subtitles, init, abandoned) are the playlists'.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from .context import SessionContext
from .playback import PlaybackState
from .report import FailoverRecord, SegmentRecord, SessionReport, StallRecord

__all__ = ["build_report"]


def build_report(ctx: SessionContext, *, error: str | None, source: str, device: str, network: str, abr: str,
                 segments: list[SegmentRecord], failovers: list[FailoverRecord],
                 steering_reloads: int) -> SessionReport:
    now = ctx.clock.now_s()
    st = ctx.state
    stalls: list[StallRecord] = []
    startup = None
    played = 0.0
    content = 0.0
    if st is not None:
        st.advance(now)
        stalls = [StallRecord(at_s=a - ctx.start_s, duration_s=d) for a, d in st.stalls]
        if st.stall_at is not None:
            stalls.append(StallRecord(at_s=st.stall_at - ctx.start_s, duration_s=now - st.stall_at))
        startup = None if st.started_at is None else st.started_at - ctx.start_s
        played, content = st.watched_s, st.content_s
    counted = sum(v for k, v in ctx.bytes.items() if k != "playlists")
    ctx.bytes["playlists"] = max(ctx.fetcher.bytes_read - counted, 0)
    return SessionReport(
        ok=error is None, error=error, source=source, device=device, network=network,
        abr=abr, speed=ctx.clock.speed, startup_s=startup, played_s=played, content_s=content,
        session_s=now - ctx.start_s, segments=segments, stalls=stalls, failovers=failovers,
        tracks=ctx.selection.describe() if ctx.selection else {}, bytes=dict(ctx.bytes),
        steering_reloads=steering_reloads, samples=ctx.samples, session_id=ctx.session_id,
        requests=[replace(r, start_s=r.start_s - ctx.start_s, end_s=r.end_s - ctx.start_s)
                  for r in ctx.fetcher.records or ()],
        behaviour=behaviour(st, ctx.start_s, now) if st is not None and not st.script.plays_from_0 else None)


def behaviour(st: PlaybackState, start_s: float, now_s: float) -> dict[str, Any]:
    """What the viewer did, for `SessionReport.behaviour` (times from the session's start)."""
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    seeks = [{"at_s": r(e.at_s - start_s), "from_s": r(e.from_s), "to_s": r(e.to_s),
              "wait_s": r(e.wait_s if e.wait_s is not None else now_s - e.at_s), "flushed": e.flushed,
              "resumed": e.wait_s is not None} for e in st.seeks]
    return {"script": st.script.as_dict(), "name": st.script.name, "start_s": r(st.start_s),
            "seeks": seeks, "pauses": [{"at_s": r(a - start_s), "duration_s": r(d)} for a, d in st.pauses],
            "quit_early": st.quit, "watched_s": r(st.watched_s),
            "seek_wait_s": r(sum(x["wait_s"] or 0.0 for x in seeks))}
