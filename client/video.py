"""The video download loop of a session: ABR snapshot, decision, download, abandonment, playout.

`VideoLoop.play()` plays the title (or ``duration_s`` of it) segment by segment:

1. before segment ``i``, wait while the buffer is over ``max_buffer_s`` minus one segment;
2. ask the ABR object for a rung with an `AbrSnapshot` (buffer, samples, sizes ahead when
   ``segment_sizes`` read them from ``title.json``, idle time since the last decision);
3. fetch the video segment (its init section when the rung changed) beside the audio and
   subtitle segments covering the same media time (`sidetracks.SideTracks`), on the session's
   pathways (`pathways.Failover`). While the video downloads, every ``abandon_check_s`` the
   ABR's ``abandon`` sees a `DownloadProgress`; a rung it returns replaces the download (same
   segment, lower rung), the abandoned attempt an incomplete sample of its video bytes;
4. the segment becomes one `ThroughputSample` (video + audio bytes, request to last byte of
   everything it needed) and one `SegmentRecord`; `PlaybackState` learns the media is in;

then plays out what is buffered. With ``record_abr`` it keeps ``abr_log``: every (snapshot,
decision) and (progress, abandonment) pair, in order.
"""
from __future__ import annotations

import asyncio
import logging
import math
import posixpath
from urllib.parse import urlsplit
from typing import Any, Callable

from .abr.base import Abr
from .cmcd import CmcdObject, cap_to_max_bitrate
from .abr.snapshot import AbrSnapshot, Decision, DownloadProgress, ThroughputSample
from .context import SessionContext
from .errors import PlaybackError
from .fetch import FetchResult
from .pathways import Failover
from .playback import PlaybackState
from .playlists import resolve, sizes_from_title_json
from .report import SegmentRecord
from .sidetracks import SideTracks

__all__ = ["VideoLoop"]

log = logging.getLogger("client.session")


class VideoLoop:
    """The segment loop of one session (see the module docstring)."""

    def __init__(self, ctx: SessionContext, abr: Abr, failover: Failover, side: SideTracks) -> None:
        self.ctx = ctx
        self.abr = abr
        self.failover = failover
        self.side = side
        self.abr_log: list[tuple[Any, Decision | None]] = []
        self.segments: list[SegmentRecord] = []
        self.sizes: tuple[tuple[int, ...], ...] | None = None
        self._last_rung: int | None = None
        self._idle_s = 0.0
        self._seg_duration_s = 0.0
        self._epoch = 0

    async def play(self) -> None:
        ctx = self.ctx
        assert ctx.selection is not None
        ladder = ctx.selection.ladder
        first = await self.failover.run(lambda p: ctx.playlist(ctx.copy(0, p).variant.uri, p))
        reference = first[0]
        n = len(reference.segments)
        if ctx.config.duration_s is not None:
            n = max(1, sum(1 for t in reference.starts_s if t < ctx.config.duration_s - 1e-6))
        last_seg = reference.segments[n - 1]
        content_s = last_seg.start_s + last_seg.duration_s
        ctx.state = state = PlaybackState(content_s, ctx.config.startup_buffer_s, ctx.config.resume_buffer_s,
                                          ctx.config.min_playable_s, script=ctx.config.script)
        self._seg_duration_s = reference.segments[0].duration_s
        if ctx.config.segment_sizes:
            self.sizes = await self._segment_sizes(n)
        # segment after segment from the start position; after a seek that flushed the buffer, from the
        # segment at the seek's target. A full buffer (or a pause, or all of it in) waits, waking when
        # the viewer's script acts, so that a seek is followed at once.
        i = reference.index_at(state.start_s) if state.start_s > 0 else 0
        if i > 0:
            self.side.seek(reference.segments[i].start_s)
        while state.ended_at is None:
            now = ctx.clock.now_s()
            state.advance(now)
            if state.ended_at is not None:
                break
            if state.epoch != self._epoch:
                self._epoch = state.epoch
                i = reference.index_at(state.buffered_s)
                self.side.seek(reference.segments[i].start_s)
            if i >= n:  # all of it is in: play it out
                if not (state.playing or state.paused):
                    break
                await ctx.clock.sleep(min(state.level(now) + 1e-3 if state.playing else math.inf,
                                          state.next_act_in_s(now) + 1e-3))
                continue
            seg = reference.segments[i]
            if await self._wait_for_room(seg.duration_s):
                continue
            decision = self._decide(i, n, ladder)
            if await self._segment(i, seg.start_s, seg.duration_s, decision):
                i += 1

    async def _wait_for_room(self, duration_s: float) -> bool:
        """Wait while the buffer is too full for one more segment (or paused full); True when it waited."""
        ctx = self.ctx
        st = ctx.state
        assert st is not None
        now = ctx.clock.now_s()
        excess = st.level(now) + duration_s - ctx.config.max_buffer_s
        if excess > 1e-6 and (st.playing or st.paused):
            wait = min(excess if st.playing else math.inf, st.next_act_in_s(now) + 1e-3)
            await ctx.clock.sleep(wait)
            self._idle_s += wait
            return True
        return False

    def _decide(self, i: int, n: int, ladder: tuple[Any, ...]) -> Decision:
        ctx = self.ctx
        st = ctx.state
        assert st is not None and ctx.selection is not None
        now = ctx.clock.now_s()
        snapshot = AbrSnapshot(
            buffer_s=st.level(now), ladder_bps=ctx.selection.ladder_bps, segment_duration_s=self._seg_duration_s,
            segment_index=i, segments_total=n, samples=tuple(ctx.recent),
            sizes_ahead_bytes=self.sizes[i:i + ctx.config.sizes_ahead] if self.sizes else None,
            last_index=self._last_rung, max_buffer_s=ctx.config.max_buffer_s,
            startup=st.started_at is None or st.seeking,
            rebuffering=st.started_at is not None and not st.playing, idle_s=self._idle_s)
        decision = self.abr.decide(snapshot)
        if ctx.config.cmsd_mb:  # the edge's CMSD max suggested bitrate, when the session honours it
            decision = cap_to_max_bitrate(decision, ctx.selection.ladder_bps, ctx.cmsd_mb_bps)
        self._idle_s = 0.0
        if ctx.config.record_abr:
            self.abr_log.append((snapshot, decision))
        index = min(max(int(decision.index), 0), len(ladder) - 1)
        return decision if index == decision.index else Decision(index, decision.reason)

    async def _segment(self, i: int, start_s: float, duration_s: float, decision: Decision) -> bool:
        """Fetch segment ``i`` at ``decision``'s rung; False when a seek flushed it from the buffer on arrival."""
        ctx = self.ctx
        st = ctx.state
        assert st is not None and ctx.selection is not None
        requested = ctx.clock.now_s()
        buffer_before = st.level(requested)
        stalled_before = st.stalled_s(requested)
        rung = decision.index
        reason = decision.reason
        end_s = start_s + duration_s
        side = [asyncio.create_task(self.side.fetch("audio", rung, end_s))]
        if ctx.config.subtitles and ctx.selection.subtitles is not None:
            side.append(asyncio.create_task(self.side.fetch("subtitles", rung, end_s)))
        abandoned = 0
        audio_before = ctx.bytes["audio"]
        try:
            while True:
                attempt_start = ctx.clock.now_s()
                result, pathway = await self.failover.run(lambda p: self._video(p, rung, start_s))
                if result.stopped is None:
                    ctx.bytes["video"] += result.size_bytes
                    break
                ctx.add_sample(ThroughputSample(
                    seq=ctx.seq, size_bytes=result.size_bytes, duration_s=result.end_s - attempt_start,
                    ttfb_s=result.start_s + result.ttfb_s - attempt_start, end_s=result.end_s - ctx.start_s,
                    rung=rung, complete=False))
                ctx.bytes["abandoned"] += result.size_bytes
                new = result.stopped
                assert isinstance(new, Decision)  # _video's progress hook stops with the ABR's abandon decision
                log.info("abandon", extra={"kv": {"session": ctx.session_id, "segment": i, "from": rung,
                                                  "to": new.index, "reason": new.reason}})
                abandoned += 1
                reason = f"{reason}; {new.reason}"
                rung = new.index
            await asyncio.gather(*side)
        finally:
            for task in side:
                if not task.done():
                    task.cancel()
                elif not task.cancelled():
                    task.exception()  # retrieved: the video error is the one reported
        now = ctx.clock.now_s()
        # one sample per segment: its video and audio bytes (they share the link, and the ladder's
        # bitrates include the audio), from the request to the last byte of everything it needed
        ctx.add_sample(ThroughputSample(
            seq=ctx.seq, size_bytes=result.size_bytes + ctx.bytes["audio"] - audio_before,
            duration_s=now - attempt_start,
            ttfb_s=result.start_s + result.ttfb_s - attempt_start, end_s=now - ctx.start_s, rung=rung,
            complete=True))
        now = ctx.clock.now_s()
        kept = st.add(end_s, now, start_s=start_s)  # False: a seek flushed the buffer while it downloaded
        rebuffer = st.stalled_s(now) - stalled_before if self.segments else 0.0
        r = ctx.selection.ladder[rung]
        transfer = max(result.end_s - result.start_s, 1e-6)
        self.segments.append(SegmentRecord(
            index=i, rung=rung, bitrate_bps=r.nominal_bps, label=r.label, size_bytes=result.size_bytes,
            requested_s=requested - ctx.start_s, done_s=now - ctx.start_s, ttfb_s=result.ttfb_s,
            throughput_bps=8 * result.size_bytes / transfer, buffer_before_s=buffer_before,
            buffer_after_s=st.level(now), rebuffer_s=rebuffer, pathway=pathway, abandoned=abandoned, reason=reason,
            mb_bps=int(ctx.cmsd_mb_bps) if ctx.cmsd_mb_bps is not None else None, start_s=start_s,
            media_s=duration_s, discarded=not kept))
        self._last_rung = rung
        return kept

    async def _video(self, pathway: str, rung: int, start_s: float) -> tuple[FetchResult, str]:
        ctx = self.ctx
        copy = ctx.copy(rung, pathway)
        playlist, base = await ctx.playlist(copy.variant.uri, pathway)
        seg = playlist.segments[playlist.index_at(start_s + 1e-3)]
        key = ctx.selection.ladder[rung].key if ctx.selection else copy.variant.uri
        init_task = ctx.init_task(key, seg, base, pathway)
        index = playlist.index_at(start_s + 1e-3)
        hook = (self._abandon_hook(rung, index) if rung > 0 and ctx.state and ctx.state.started_at is not None
                else None)
        try:
            nominal = ctx.selection.ladder[rung].nominal_bps if ctx.selection else 0
            expected = seg.byterange.length if seg.byterange else int(nominal * seg.duration_s / 8) or None
            url = resolve(base, seg.uri)
            verifier = ctx.verifier if ctx.verifier is not None and ctx.verifier.wants("video", index) else None
            result = await ctx.fetcher.get(url, byterange=seg.byterange,
                                           max_bytes=ctx.config.max_segment_bytes, pathway=pathway, progress=hook,
                                           deadline_s=max(ctx.config.timeouts.segment_deadline_s,
                                                          6 * seg.duration_s), guard=ctx.guard(expected),
                                           cmcd=_video_object(playlist, index, base, url, nominal),
                                           keep_body=verifier is not None)
            mb = result.cmsd.get("mb") if result.cmsd is not None else None
            ctx.cmsd_mb_bps = 1000.0 * mb if isinstance(mb, (int, float)) and not isinstance(mb, bool) else None
            if init_task is not None:
                await init_task
            if verifier is not None and result.stopped is None:  # an abandoned download is not media
                verifier.add_segment("video", index, seg=seg, base=base, url=url, body=result.body, track_key=key,
                                     track=copy.variant, keys=ctx.keys)
                result.body = None
        finally:
            if init_task is not None and not init_task.done():
                init_task.cancel()
        return result, pathway

    def _abandon_hook(self, rung: int, index: int) -> Callable[[int, int | None, float, float], object]:
        ctx = self.ctx
        last_check = [0.0]
        st = ctx.state
        assert st is not None and ctx.selection is not None
        ladder_bps = ctx.selection.ladder_bps
        sizes = self.sizes

        def hook(downloaded: int, total: int | None, elapsed_s: float, ttfb_s: float) -> object:
            if total is None or elapsed_s - last_check[0] < ctx.config.abandon_check_s:
                return None
            last_check[0] = elapsed_s
            progress = DownloadProgress(rung=rung, size_bytes=total, downloaded_bytes=downloaded, elapsed_s=elapsed_s,
                                        ttfb_s=ttfb_s, buffer_s=st.level(ctx.clock.now_s()), ladder_bps=ladder_bps,
                                        segment_duration_s=self._seg_duration_s,
                                        sizes_bytes=sizes[index] if sizes and index < len(sizes) else None)
            decision = self.abr.abandon(progress)
            if decision is not None and 0 <= decision.index < rung:
                if ctx.config.record_abr:
                    self.abr_log.append((progress, decision))
                return decision
            return None

        return hook

    async def _segment_sizes(self, n: int) -> tuple[tuple[int, ...], ...] | None:
        """Every rung's segment sizes from ``title.json``, or None (logged) when it cannot be had."""
        ctx = self.ctx
        assert ctx.selection is not None

        def first_segment(uri: str) -> str:  # DASH: a Representation is known by its first segment's URL
            playlist, base = ctx.playlists[uri]
            return resolve(base, playlist.segments[0].uri)

        async def attempt(pathway: str) -> tuple[tuple[int, ...], ...] | None:
            uri = resolve(ctx.master_base, ctx.copy(0, pathway).variant.uri)
            dash = ctx.manifest_format == "dash"  # title.json sits beside the MPD, under the location's base
            res = await ctx.fetcher.get(resolve(uri, "title.json" if dash else "../../title.json"), keep_body=True,
                                        pathway=pathway, max_bytes=ctx.config.limits.max_playlist_bytes * 4)
            assert ctx.selection is not None
            copies = [ctx.copy(rung, pathway) for rung in range(len(ctx.selection.ladder))]
            video = [resolve(ctx.master_base, c.variant.uri) for c in copies]
            audio = [resolve(ctx.master_base, c.audio.uri) if c.audio and c.audio.uri else None for c in copies]
            if dash:
                video = [first_segment(u) for u in video]
                audio = [first_segment(u) if u else None for u in audio]
            return sizes_from_title_json(res.body or b"", video, audio, n, by="segment" if dash else "playlist")
        try:
            return await self.failover.run(attempt)
        except (PlaybackError, ValueError) as e:
            log.warning("no segment sizes", extra={"kv": {"session": ctx.session_id, "error": str(e)}})
            return None


def _video_object(playlist: Any, index: int, base: str, url: str, nominal_bps: float) -> CmcdObject:
    """CMCD of a video segment: ``br``, ``d`` and the next one (``nor`` relative to this one, or ``nrr``
    when the next is a range of the same file)."""
    seg = playlist.segments[index]
    nor = nrr = None
    if index + 1 < len(playlist.segments):
        nxt = playlist.segments[index + 1]
        next_url = resolve(base, nxt.uri)
        if next_url == url and nxt.byterange is not None:
            nrr = f"{nxt.byterange.offset}-{nxt.byterange.end - 1}"
        else:
            here, there = urlsplit(url), urlsplit(next_url)
            if (here.scheme, here.netloc) == (there.scheme, there.netloc):
                nor = posixpath.relpath(there.path, posixpath.dirname(here.path))
                if nxt.byterange is not None:
                    nrr = f"{nxt.byterange.offset}-{nxt.byterange.end - 1}"
    return CmcdObject(ot="v", br_kbps=nominal_bps / 1000 if nominal_bps else None, d_ms=seg.duration_s * 1000,
                      nor=nor, nrr=nrr)
