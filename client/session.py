"""The player session: resolve, choose tracks, start, fetch segments by ABR decisions, fail over.

One `PlayerSession` is one viewer. ``report = await PlayerSession(http, ...).run()`` never
raises for playback problems: the `report.SessionReport` says ``ok`` or why not. It only shares
what it is given: the ``aiohttp.ClientSession`` (a load tester passes one to thousands of
sessions), the optional `playlists.PlaylistCache`, and the clock if one is passed.

The loop, all on the media clock (`network.Clock`):

1. **Resolve.** ``master_url`` directly, or ``GET {steering}/play/{title}?device=&region=&session=``
   for the steered multivariant URL (falling back to the chosen edge's own playlist if the steered
   one cannot be fetched).
2. **Tracks.** `tracks.select_tracks` on the multivariant playlist; a `fetch.PathwaySet` over
   the pathways that carry them. A content-steering task fetches the steering manifest now and
   then every TTL (with ``_HLS_pathway``/``_HLS_throughput``), follows PATHWAY-PRIORITY and adds
   PATHWAY-CLONES.
3. **Segments.** Before segment ``i``: wait while the buffer is over ``max_buffer_s`` minus one
   segment, then ask the ABR object (``client.abr.create(name, cfg)``) for a rung with an
   `AbrSnapshot`. The video segment, its init section when the rung changed, and the audio and
   subtitle segments covering the same media time are fetched concurrently over the shared link.
   While the video downloads, every ``abandon_check_s`` the ABR's ``abandon`` sees a
   `DownloadProgress`; a rung it returns replaces the download (same segment, lower rung).
   Each segment becomes one `ThroughputSample`: its video and audio bytes (they share the link,
   and the ladder's bitrates include the audio), from its request to the last byte of everything
   it needed (subtitles and init sections are fetched alongside, not counted), so that a session
   replays in the simulator as one download per segment; an abandoned attempt becomes an
   incomplete sample of its video bytes. With ``segment_sizes`` the snapshots' sizes are the
   same video + audio sums, read from ``title.json``.
4. **Playback.** `PlaybackState` (pure): playback starts when the first segment is in (or
   ``startup_buffer_s``), the playhead moves with the clock, a stall starts when it reaches the
   buffered end, and playback resumes at ``resume_buffer_s`` (or at the end of the content).
5. **Failover.** A request that fails on a pathway (refused/reset connection, TTFB or stall
   timeout, a body too slow to arrive before the buffer runs dry plus ``stall_budget_s``
   (`giveup.judge_transfer`, on every media request), 5xx, 403, a broken playlist) penalises the pathway for ``pathway_penalty_s`` and is
   re-sent on the next one in steering order, media playlist fetched there if needed. When every
   pathway failed the same request ``retry_rounds`` times, the session ends with
   `errors.AllPathwaysFailed` (`errors.AllPathwaysTooSlow`: "all pathways too slow: ...").

For replay through the simulator: ``report.samples`` holds every download sample; with
``SessionConfig.record_abr`` the session keeps ``abr_log``: every (snapshot, decision) pair
and every abandonment (progress, decision), in order.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp

from . import abr as abr_registry
from .abr.config import AbrConfig
from .abr.snapshot import AbrSnapshot, Decision, DownloadProgress, ThroughputSample
from .devices import DeviceProfile
from .errors import FetchError, PlaybackError, ProfileError
from .fetch import (Fetcher, FetchResult, FetchTimeouts, PathwaySet, TransferGuard, resolve_via_steering,
                    run_on_pathways)
from .giveup import GiveUpPolicy
from .network import BandwidthSchedule, Clock, make_link
from .playback import PlaybackState
from .playlists import (MediaPlaylist, PlaylistCache, PlaylistLimits, Rendition, fetch_media, fetch_multivariant,
                        fetch_text, parse_steering_manifest, resolve, sizes_from_title_json)
from .report import FailoverRecord, SegmentRecord, SessionReport, StallRecord
from .tracks import PathwayClone, TrackPreferences, TrackSelection, add_clones, select_tracks

__all__ = ["SessionConfig", "PlaybackState", "PlayerSession"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class SessionConfig:
    """How a session plays; every time is media-clock seconds."""

    abr: str = "default"
    max_buffer_s: float = 30.0
    startup_buffer_s: float = 0.0
    """Start once this much is buffered (0: as soon as the first segment is in)."""
    resume_buffer_s: float = 0.0
    """After a stall, resume once this much is buffered (0: as soon as a segment lands)."""
    min_playable_s: float = 0.1
    """Playback never starts or resumes on less media than this ahead (unless it is the rest of
    the title): segments shorter than this are waited for together, as a gap under hls.js's
    ``maxBufferHole`` (0.1 s) is not something a viewer could watch."""
    duration_s: float | None = None
    """Play only this much of the title (whole segments)."""
    pathway_penalty_s: float = 300.0
    retry_rounds: int = 2
    retry_backoff_s: float = 0.5
    timeouts: FetchTimeouts = field(default_factory=FetchTimeouts)
    stall_budget_s: float = 10.0
    """Give up on a media transfer (and fail over) when it cannot end before the buffer runs dry
    plus this long; at start-up, when it cannot end within this long (`giveup.GiveUpPolicy`)."""
    give_up_grace_s: float = 1.0
    """Judge a transfer's rate only after this long spent waiting on the server's bytes."""
    limits: PlaylistLimits = field(default_factory=PlaylistLimits)
    subtitles: bool = True
    max_segment_bytes: int = 512 * 1024 * 1024
    abandon_check_s: float = 0.1
    sample_window: int = 16
    steering_retry_s: float = 10.0
    record_abr: bool = False
    segment_sizes: bool = False
    """Fetch the title's ``title.json`` (vodstack layout: ``../../title.json`` from a video playlist)
    before the first decision so that snapshots carry every rung's segment sizes, as the
    simulator's do (Netflix-style players know chunk sizes from their manifests)."""
    sizes_ahead: int = 16


class PlayerSession:
    """One viewer; see the module docstring. ``run()`` returns a `SessionReport`."""

    def __init__(self, http: aiohttp.ClientSession, *, device: DeviceProfile, master_url: str | None = None,
                 steering_url: str | None = None, title: str | None = None, region: str | None = None,
                 network: BandwidthSchedule | None = None, network_name: str = "", speed: float = 1.0,
                 prefs: TrackPreferences = TrackPreferences(), config: SessionConfig = SessionConfig(),
                 abr_config: AbrConfig = AbrConfig(), clock: Clock | None = None,
                 playlist_cache: PlaylistCache | None = None, session_id: str | None = None,
                 trace_offset_s: float = 0.0) -> None:
        if (master_url is None) == (steering_url is None):
            raise ProfileError("give either a master playlist URL or a steering URL and a title")
        if steering_url is not None and not title:
            raise ProfileError("playing through steering needs a title")
        self.http = http
        self.device = device
        self.master_url = master_url
        self.steering_url = steering_url.rstrip("/") if steering_url else None
        self.title = title
        self.region = region
        self.network_name = network_name or ("none" if network is None else network.name)
        self.prefs = prefs
        self.config = config
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self.clock = clock or Clock(speed)
        # trace time = media time since this session started + trace_offset_s
        self.link = make_link(network, self.clock, offset_s=self.clock.now_s() - trace_offset_s)
        self.fetcher = Fetcher(http, self.link, config.timeouts)
        self.give_up = GiveUpPolicy(stall_budget_s=config.stall_budget_s, grace_s=config.give_up_grace_s)
        self.cache = playlist_cache
        try:
            self.abr = abr_registry.create(config.abr, abr_config)
        except KeyError:
            known = ", ".join(sorted(abr_registry.ALGORITHMS))
            raise ProfileError(f"unknown ABR algorithm {config.abr!r} (known: {known})") from None
        self.abr_name = config.abr
        self.abr_log: list[tuple[Any, Decision | None]] = []
        self.selection: TrackSelection | None = None
        self.pathways: PathwaySet | None = None
        self.state: PlaybackState | None = None
        self.segments: list[SegmentRecord] = []
        self.failovers: list[FailoverRecord] = []
        self.samples: list[ThroughputSample] = []
        self.bytes = {"video": 0, "audio": 0, "subtitles": 0, "init": 0, "playlists": 0, "abandoned": 0}
        self.steering_reloads = 0
        self._recent: deque[ThroughputSample] = deque(maxlen=config.sample_window)
        self._seq = 0
        self._last_rung: int | None = None
        self._idle_s = 0.0
        self._playlists: dict[str, tuple[MediaPlaylist, str]] = {}
        self._inits: set[tuple[str, str]] = set()
        self._media_until = {"audio": 0.0, "subtitles": 0.0}
        self._master_base = ""
        self._fallback_master: str | None = None
        self._start_s = self.clock.now_s()
        self._seg_duration_s = 0.0
        self._sizes: tuple[tuple[int, ...], ...] | None = None

    # --- public -------------------------------------------------------------------------------

    async def run(self) -> SessionReport:
        """Play the session to its end; the report says whether it worked."""
        error = None
        steering_task = None
        try:
            master_url, steering_uri = await self._resolve()
            master, self._master_base = await self._fetch_master(master_url)
            self.selection = select_tracks(master, self.device, self.prefs)
            self.pathways = PathwaySet(self.selection.pathways, self.config.pathway_penalty_s,
                                       current=self.selection.pathways[0])
            steering_uri = steering_uri or (resolve(self._master_base, master.steering_uri)
                                            if master.steering_uri else None)
            if steering_uri and len(self.selection.pathways) > 0:
                steering_task = asyncio.create_task(self._steering_loop(steering_uri))
            log.info("session start", extra={"kv": {"session": self.session_id, "device": self.device.name,
                                                     "network": self.network_name, "abr": self.abr_name,
                                                     "rungs": len(self.selection.ladder),
                                                     "pathways": ",".join(self.selection.pathways)}})
            await self._play()
        except PlaybackError as e:
            error = str(e)
            log.warning("session failed", extra={"kv": {"session": self.session_id, "error": error}})
        finally:
            if steering_task is not None:
                steering_task.cancel()
                try:
                    await steering_task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the loop logs its own errors
                    pass
        return self._report(error)

    @property
    def segment_sizes(self) -> tuple[tuple[int, ...], ...] | None:
        """``sizes[segment][rung]`` (video + audio bytes) when ``segment_sizes`` found them."""
        return self._sizes

    def status(self) -> dict[str, Any]:
        """A live view for status lines: state, position, buffer, rung, throughput, stalls, pathway."""
        now = self.clock.now_s()
        st = self.state
        last = self.segments[-1] if self.segments else None
        return {
            "t_s": now - self._start_s,
            "state": st.state if st else "resolving",
            "position_s": st.playhead_s if st else 0.0,
            "content_s": st.content_s if st else 0.0,
            "buffer_s": st.level(now) if st else 0.0,
            "rung": last.label if last else None,
            "bitrate_bps": last.bitrate_bps if last else 0,
            "throughput_bps": last.throughput_bps if last else 0.0,
            "stalls": len(st.stalls) + (1 if st and st.stall_at is not None else 0) if st else 0,
            "pathway": self.pathways.current if self.pathways else None,
            "failovers": len(self.failovers),
        }

    # --- resolve ------------------------------------------------------------------------------

    async def _resolve(self) -> tuple[str, str | None]:
        if self.master_url is not None:
            return self.master_url, None
        answer = await resolve_via_steering(self.fetcher, self.steering_url or "", self.title or "",
                                            device=self.device.name, region=self.region, session=self.session_id)
        self._fallback_master = answer.fallback_url
        return answer.multivariant_url, answer.steering_uri

    async def _fetch_master(self, url: str) -> tuple[Any, str]:
        try:
            master, final = await fetch_multivariant(self.fetcher, url, self.config.limits, self.cache)
        except PlaybackError as e:
            fallback = self._fallback_master
            if not fallback:
                raise
            log.warning("steered playlist failed, using the edge's", extra={"kv": {"error": str(e)}})
            master, final = await fetch_multivariant(self.fetcher, fallback, self.config.limits, self.cache)
        return master, final

    # --- failover -----------------------------------------------------------------------------

    async def _on_pathways(self, attempt: Callable[[str], Awaitable[T]]) -> T:
        """Run ``attempt(pathway)`` on the current pathway, failing over in steering order."""
        assert self.pathways is not None
        first: list[tuple[float, str, Exception, float]] = []

        def failed(pathway: str, error: Exception, now: float) -> None:
            if not first:
                first.append((now, pathway, error, self.state.level(now) if self.state else 0.0))
            log.warning("pathway failed", extra={"kv": {"session": self.session_id, "pathway": pathway,
                                                         "error": str(error)}})

        result, pathway = await run_on_pathways(self.pathways, self.clock, attempt, retry_rounds=self.config.retry_rounds,
                                                backoff_s=self.config.retry_backoff_s, on_failure=failed)
        if first and first[0][1] != pathway:
            self._record_failover(first[0], pathway)
        return result

    def _record_failover(self, first: tuple[float, str, Exception, float], to: str) -> None:
        at, frm, exc, level = first
        error = str(exc)
        now = self.clock.now_s()
        for f in self.failovers[-3:]:
            if f.from_pathway == frm and f.to_pathway == to and abs(f.at_s - (at - self._start_s)) < 2.0:
                return  # the same switch seen by a concurrent request (audio next to video)
        self.failovers.append(FailoverRecord(at_s=at - self._start_s, from_pathway=frm, to_pathway=to,
                                             error=error, buffer_s=level, gap_s=now - at,
                                             cause=type(exc).__name__))
        log.warning("failover", extra={"kv": {"session": self.session_id, "from": frm, "to": to,
                                              "gap_s": round(now - at, 3), "buffer_s": round(level, 2)}})

    async def _playlist(self, uri: str, pathway: str) -> tuple[MediaPlaylist, str]:
        url = resolve(self._master_base, uri)
        hit = self._playlists.get(url)
        if hit is None:
            hit = await fetch_media(self.fetcher, url, self.config.limits, self.cache, pathway)
            self._playlists[url] = hit
        return hit

    # --- steering -----------------------------------------------------------------------------

    async def _steering_loop(self, uri: str) -> None:
        assert self.pathways is not None and self.selection is not None
        while True:
            wait = self.config.steering_retry_s
            try:
                params = {"_HLS_pathway": self.pathways.current}
                if self._recent:
                    params["_HLS_throughput"] = str(int(self._recent[-1].throughput_bps))
                url = _with_query(uri, params)
                text, final = await fetch_text(self.fetcher, url, self.config.limits)
                manifest = parse_steering_manifest(text, final, self.config.limits)
                self.steering_reloads += 1
                if manifest.clones:
                    clones = [PathwayClone(base_id=b, id=i, host=h, params=p) for b, i, h, p in manifest.clones]
                    self.selection = add_clones(self.selection, clones, self._master_base)
                    for p in self.selection.pathways:
                        self.pathways.add(p)
                changed = self.pathways.apply_priority(manifest.pathway_priority, self.clock.now_s())
                if changed:
                    log.info("steered", extra={"kv": {"session": self.session_id, "pathway": changed,
                                                       "priority": ",".join(manifest.pathway_priority)}})
                if manifest.reload_uri:
                    uri = resolve(final, manifest.reload_uri)
                wait = manifest.ttl_s
            except PlaybackError as e:
                log.warning("steering manifest failed", extra={"kv": {"session": self.session_id, "error": str(e)}})
            except Exception:  # noqa: BLE001 - never let steering kill playback
                log.exception("steering loop error")
            await self.clock.sleep(max(wait, 0.5))

    # --- playback -----------------------------------------------------------------------------

    async def _play(self) -> None:
        assert self.selection is not None
        ladder = self.selection.ladder
        first = await self._on_pathways(lambda p: self._playlist(self._copy(0, p).variant.uri, p))
        reference = first[0]
        n = len(reference.segments)
        if self.config.duration_s is not None:
            n = max(1, sum(1 for t in reference.starts_s if t < self.config.duration_s - 1e-6))
        last_seg = reference.segments[n - 1]
        content_s = last_seg.start_s + last_seg.duration_s
        self.state = PlaybackState(content_s, self.config.startup_buffer_s, self.config.resume_buffer_s,
                                   self.config.min_playable_s)
        self._seg_duration_s = reference.segments[0].duration_s
        if self.config.segment_sizes:
            self._sizes = await self._segment_sizes(n)
        for i in range(n):
            seg = reference.segments[i]
            await self._wait_for_room(seg.duration_s)
            decision = self._decide(i, n, ladder)
            await self._segment(i, seg.start_s, seg.duration_s, decision)
        # play out what is buffered
        while self.state.ended_at is None:
            now = self.clock.now_s()
            level = self.state.level(now)
            if not self.state.playing:
                break
            await self.clock.sleep(level + 1e-3)

    def _copy(self, rung: int, pathway: str):  # -> RungCopy
        assert self.selection is not None
        copy = self.selection.ladder[rung].copy_for(pathway)
        if copy is None:
            raise FetchError(f"pathway {pathway} does not carry {self.selection.ladder[rung].label}", pathway=pathway)
        return copy

    async def _wait_for_room(self, duration_s: float) -> None:
        st = self.state
        assert st is not None
        now = self.clock.now_s()
        excess = st.level(now) + duration_s - self.config.max_buffer_s
        if excess > 0 and st.playing:
            await self.clock.sleep(excess)
            self._idle_s += excess

    def _decide(self, i: int, n: int, ladder: tuple[Any, ...]) -> Decision:
        st = self.state
        assert st is not None and self.selection is not None
        now = self.clock.now_s()
        snapshot = AbrSnapshot(
            buffer_s=st.level(now), ladder_bps=self.selection.ladder_bps, segment_duration_s=self._seg_duration_s,
            segment_index=i, segments_total=n, samples=tuple(self._recent),
            sizes_ahead_bytes=self._sizes[i:i + self.config.sizes_ahead] if self._sizes else None,
            last_index=self._last_rung, max_buffer_s=self.config.max_buffer_s, startup=st.started_at is None,
            rebuffering=st.started_at is not None and not st.playing, idle_s=self._idle_s)
        decision = self.abr.decide(snapshot)
        self._idle_s = 0.0
        if self.config.record_abr:
            self.abr_log.append((snapshot, decision))
        index = min(max(int(decision.index), 0), len(ladder) - 1)
        return decision if index == decision.index else Decision(index, decision.reason)

    async def _segment(self, i: int, start_s: float, duration_s: float, decision: Decision) -> None:
        st = self.state
        assert st is not None and self.selection is not None
        requested = self.clock.now_s()
        buffer_before = st.level(requested)
        stalled_before = st.stalled_s(requested)
        rung = decision.index
        reason = decision.reason
        end_s = start_s + duration_s
        side = [asyncio.create_task(self._side_track("audio", rung, end_s))]
        if self.config.subtitles and self.selection.subtitles is not None:
            side.append(asyncio.create_task(self._side_track("subtitles", rung, end_s)))
        abandoned = 0
        audio_before = self.bytes["audio"]
        try:
            while True:
                attempt_start = self.clock.now_s()
                result, pathway = await self._on_pathways(lambda p: self._video(p, rung, start_s))
                if result.stopped is None:
                    self.bytes["video"] += result.size_bytes
                    break
                self._add_sample(ThroughputSample(
                    seq=self._seq, size_bytes=result.size_bytes, duration_s=result.end_s - attempt_start,
                    ttfb_s=result.start_s + result.ttfb_s - attempt_start, end_s=result.end_s - self._start_s,
                    rung=rung, complete=False))
                self.bytes["abandoned"] += result.size_bytes
                new: Decision = result.stopped  # type: ignore[assignment]
                log.info("abandon", extra={"kv": {"session": self.session_id, "segment": i, "from": rung,
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
        now = self.clock.now_s()
        # one sample per segment: its video and audio bytes (they share the link, and the ladder's
        # bitrates include the audio), from the request to the last byte of everything it needed
        self._add_sample(ThroughputSample(
            seq=self._seq, size_bytes=result.size_bytes + self.bytes["audio"] - audio_before,
            duration_s=now - attempt_start,
            ttfb_s=result.start_s + result.ttfb_s - attempt_start, end_s=now - self._start_s, rung=rung,
            complete=True))
        now = self.clock.now_s()
        st.add(end_s, now)
        rebuffer = st.stalled_s(now) - stalled_before if i > 0 else 0.0
        r = self.selection.ladder[rung]
        transfer = max(result.end_s - result.start_s, 1e-6)
        self.segments.append(SegmentRecord(
            index=i, rung=rung, bitrate_bps=r.nominal_bps, label=r.label, size_bytes=result.size_bytes,
            requested_s=requested - self._start_s, done_s=now - self._start_s, ttfb_s=result.ttfb_s,
            throughput_bps=8 * result.size_bytes / transfer, buffer_before_s=buffer_before,
            buffer_after_s=st.level(now), rebuffer_s=rebuffer, pathway=pathway, abandoned=abandoned, reason=reason))
        self._last_rung = rung

    def _add_sample(self, sample: ThroughputSample) -> None:
        self._seq += 1
        self._recent.append(sample)
        self.samples.append(sample)

    async def _video(self, pathway: str, rung: int, start_s: float) -> tuple[FetchResult, str]:
        copy = self._copy(rung, pathway)
        playlist, base = await self._playlist(copy.variant.uri, pathway)
        seg = playlist.segments[playlist.index_at(start_s + 1e-3)]
        key = self.selection.ladder[rung].key if self.selection else copy.variant.uri
        init_task = self._init_task(key, seg, base, pathway)
        index = playlist.index_at(start_s + 1e-3)
        hook = (self._abandon_hook(rung, index) if rung > 0 and self.state and self.state.started_at is not None
                else None)
        try:
            nominal = self.selection.ladder[rung].nominal_bps if self.selection else 0
            expected = seg.byterange.length if seg.byterange else int(nominal * seg.duration_s / 8) or None
            result = await self.fetcher.get(resolve(base, seg.uri), byterange=seg.byterange,
                                            max_bytes=self.config.max_segment_bytes, pathway=pathway, progress=hook,
                                            deadline_s=max(self.config.timeouts.segment_deadline_s,
                                                           6 * seg.duration_s), guard=self._guard(expected))
            if init_task is not None:
                await init_task
        finally:
            if init_task is not None and not init_task.done():
                init_task.cancel()
        return result, pathway

    def _guard(self, expected_bytes: int | None) -> TransferGuard:
        """Give-up rule of a media request sent now: the buffer the viewer has (0 before playback
        starts and in a stall), the policy, the size expected when the response may not say it."""
        st = self.state
        buffer_s = st.level(self.clock.now_s()) if st is not None and st.playing else 0.0
        return TransferGuard(buffer_s=buffer_s, policy=self.give_up, expected_bytes=expected_bytes)

    def _init_task(self, key: str, seg: Any, base: str, pathway: str) -> asyncio.Task[None] | None:
        if seg.init is None:
            return None
        init_key = (key, f"{seg.init.uri}#{seg.init.byterange}")
        if init_key in self._inits:
            return None

        async def fetch() -> None:
            res = await self.fetcher.get(resolve(base, seg.init.uri), byterange=seg.init.byterange,
                                         max_bytes=self.config.max_segment_bytes, pathway=pathway,
                                         guard=self._guard(seg.init.byterange.length if seg.init.byterange
                                                           else None))
            self.bytes["init"] += res.size_bytes
            self._inits.add(init_key)

        return asyncio.create_task(fetch())

    def _abandon_hook(self, rung: int, index: int) -> Callable[[int, int | None, float, float], object]:
        last_check = [0.0]
        st = self.state
        assert st is not None and self.selection is not None
        ladder_bps = self.selection.ladder_bps

        def hook(downloaded: int, total: int | None, elapsed_s: float, ttfb_s: float) -> object:
            if total is None or elapsed_s - last_check[0] < self.config.abandon_check_s:
                return None
            last_check[0] = elapsed_s
            progress = DownloadProgress(rung=rung, size_bytes=total, downloaded_bytes=downloaded, elapsed_s=elapsed_s,
                                        ttfb_s=ttfb_s, buffer_s=st.level(self.clock.now_s()), ladder_bps=ladder_bps,
                                        segment_duration_s=self._seg_duration_s,
                                        sizes_bytes=self._sizes[index] if self._sizes and index < len(self._sizes)
                                        else None)
            decision = self.abr.abandon(progress)
            if decision is not None and 0 <= decision.index < rung:
                if self.config.record_abr:
                    self.abr_log.append((progress, decision))
                return decision
            return None

        return hook

    async def _segment_sizes(self, n: int) -> tuple[tuple[int, ...], ...] | None:
        """Every rung's segment sizes from ``title.json``, or None (logged) when it cannot be had."""
        assert self.selection is not None

        async def attempt(pathway: str) -> tuple[tuple[int, ...], ...] | None:
            uri = resolve(self._master_base, self._copy(0, pathway).variant.uri)
            res = await self.fetcher.get(resolve(uri, "../../title.json"), keep_body=True, pathway=pathway,
                                         max_bytes=self.config.limits.max_playlist_bytes * 4)
            copies = [r.copy_for(pathway) for r in self.selection.ladder]
            return sizes_from_title_json(
                res.body or b"", [resolve(self._master_base, c.variant.uri) for c in copies],
                [resolve(self._master_base, c.audio.uri) if c.audio and c.audio.uri else None for c in copies], n)
        try:
            return await self._on_pathways(attempt)
        except (PlaybackError, ValueError) as e:
            log.warning("no segment sizes", extra={"kv": {"session": self.session_id, "error": str(e)}})
            return None

    async def _side_track(self, kind: str, rung: int, until_s: float) -> None:
        """Fetch the audio or subtitle segments that cover media time up to ``until_s``."""
        assert self.selection is not None

        async def attempt(pathway: str) -> None:
            copy = self._copy(rung, pathway)
            rendition: Rendition | None = copy.audio if kind == "audio" else copy.subtitles
            if rendition is None or rendition.uri is None:
                self._media_until[kind] = until_s
                return
            playlist, base = await self._playlist(rendition.uri, pathway)
            while self._media_until[kind] < until_s - 1e-3:
                if self._media_until[kind] >= playlist.duration_s - 1e-3:
                    self._media_until[kind] = until_s
                    return
                seg = playlist.segments[playlist.index_at(self._media_until[kind] + 1e-3)]
                init_task = self._init_task(f"{kind}:{rendition.stable_id or rendition.name}", seg, base, pathway)
                res = await self.fetcher.get(resolve(base, seg.uri), byterange=seg.byterange,
                                             max_bytes=self.config.max_segment_bytes, pathway=pathway,
                                             guard=self._guard(seg.byterange.length if seg.byterange else None))
                if init_task is not None:
                    await init_task
                self.bytes[kind] += res.size_bytes
                self._media_until[kind] = max(self._media_until[kind], seg.start_s + seg.duration_s)

        await self._on_pathways(attempt)

    # --- report -------------------------------------------------------------------------------

    def _report(self, error: str | None) -> SessionReport:
        now = self.clock.now_s()
        st = self.state
        stalls: list[StallRecord] = []
        startup = None
        played = 0.0
        content = 0.0
        if st is not None:
            st.advance(now)
            stalls = [StallRecord(at_s=a - self._start_s, duration_s=d) for a, d in st.stalls]
            if st.stall_at is not None:
                stalls.append(StallRecord(at_s=st.stall_at - self._start_s, duration_s=now - st.stall_at))
            startup = None if st.started_at is None else st.started_at - self._start_s
            played, content = st.playhead_s, st.content_s
        counted = sum(v for k, v in self.bytes.items() if k != "playlists")
        self.bytes["playlists"] = max(self.fetcher.bytes_read - counted, 0)
        source = self.master_url or f"{self.title} via {self.steering_url}"
        return SessionReport(
            ok=error is None, error=error, source=source, device=self.device.name, network=self.network_name,
            abr=self.abr_name, speed=self.clock.speed, startup_s=startup, played_s=played, content_s=content,
            session_s=now - self._start_s, segments=self.segments, stalls=stalls, failovers=self.failovers,
            tracks=self.selection.describe() if self.selection else {}, bytes=dict(self.bytes),
            steering_reloads=self.steering_reloads, samples=self.samples)


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in parts.query.split("&") if q and q.split("=", 1)[0] not in params)
    extra = urlencode(params)
    return urlunsplit(parts._replace(query=f"{query}&{extra}" if query else extra))
