"""The side tracks of a session: the audio and subtitle segments that go with each video segment.

`SideTracks.fetch(kind, rung, until_s)` fetches the ``kind`` (``audio`` or ``subtitles``)
segments of rung ``rung``'s rendition, on the session's pathways (`pathways.Failover`), until
media time ``until_s`` is covered; it remembers how far each kind is fetched, so consecutive
video segments fetch only what is new, and `seek` moves that to where the buffer starts over. A rung whose copy carries no such rendition counts as
covered. Bytes go to the session's counters under ``kind``.
"""
from __future__ import annotations

from .cmcd import CmcdObject
from .context import SessionContext
from .pathways import Failover
from .playlists import Rendition, resolve

__all__ = ["SideTracks"]


class SideTracks:
    """How far the audio and subtitles are fetched, and the fetching."""

    def __init__(self, ctx: SessionContext, failover: Failover) -> None:
        self.ctx = ctx
        self.failover = failover
        self.until_s = {"audio": 0.0, "subtitles": 0.0}

    def seek(self, at_s: float) -> None:
        """The buffer now starts at ``at_s`` (a start position, a seek that flushed it): fetch from there."""
        for kind in self.until_s:
            self.until_s[kind] = at_s

    async def fetch(self, kind: str, rung: int, until_s: float) -> None:
        """Fetch the audio or subtitle segments that cover media time up to ``until_s``."""
        ctx = self.ctx
        done = self.until_s
        assert ctx.selection is not None

        async def attempt(pathway: str) -> None:
            copy = ctx.copy(rung, pathway)
            rendition: Rendition | None = copy.audio if kind == "audio" else copy.subtitles
            if rendition is None or rendition.uri is None:
                done[kind] = until_s
                return
            playlist, base = await ctx.playlist(rendition.uri, pathway)
            while done[kind] < until_s - 1e-3:
                if done[kind] >= playlist.duration_s - 1e-3:
                    done[kind] = until_s
                    return
                index = playlist.index_at(done[kind] + 1e-3)
                seg = playlist.segments[index]
                track_key = f"{kind}:{rendition.stable_id or rendition.name}"
                init_task = ctx.init_task(track_key, seg, base, pathway)
                verifier = ctx.verifier if ctx.verifier is not None and ctx.verifier.wants(kind, index) else None
                url = resolve(base, seg.uri)
                res = await ctx.fetcher.get(url, byterange=seg.byterange,
                                            max_bytes=ctx.config.max_segment_bytes, pathway=pathway,
                                            cmcd=CmcdObject(ot="a" if kind == "audio" else "c",
                                                            d_ms=seg.duration_s * 1000),
                                            guard=ctx.guard(seg.byterange.length if seg.byterange else None),
                                            keep_body=verifier is not None,
                                            deadline_s=ctx.config.timeouts.segment_deadline_s)
                if init_task is not None:
                    await init_task
                if verifier is not None:
                    verifier.add_segment(kind, index, seg=seg, base=base, url=url, body=res.body,
                                         track_key=track_key, track=rendition, keys=ctx.keys)
                ctx.bytes[kind] += res.size_bytes
                done[kind] = max(done[kind], seg.start_s + seg.duration_s)

        await self.failover.run(attempt)
