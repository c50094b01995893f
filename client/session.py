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

`PlayerSession` is the orchestrator; the parts are: `context` (`SessionConfig`, the shared
`SessionContext`), `resolve` (1), `pathways` (failover, 5, and the steering loop of 2),
`video` (3: snapshot, decision, download, abandonment), `sidetracks` (audio and subtitles),
`playback` (4: the pure buffer model), `session_report` (the `SessionReport`) and, with
``verify_every``, `verify` (decodes what arrives: ``report.media_errors``, ``report.verification``).
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import aiohttp

from . import abr as abr_registry
from .abr.config import AbrConfig
from .abr.snapshot import Decision, ThroughputSample
from .cmcd import CmcdReporter
from .context import SessionConfig, SessionContext
from .devices import DeviceProfile
from .errors import PlaybackError, ProfileError
from .fetch import Fetcher, PathwaySet
from .giveup import GiveUpPolicy
from .network import BandwidthSchedule, Clock, make_link
from .pathways import Failover, SteeringLoop
from .playback import PlaybackState
from .playlists import PlaylistCache
from .report import FailoverRecord, SegmentRecord, SessionReport
from .resolve import resolve_master
from .session_report import build_report
from .sidetracks import SideTracks
from .tracks import TrackPreferences, TrackSelection, select_tracks
from .verify import MediaVerifier
from .video import VideoLoop

__all__ = ["PlayerSession"]

log = logging.getLogger(__name__)


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
        self.device = device
        self.master_url = master_url
        self.steering_url = steering_url.rstrip("/") if steering_url else None
        self.title = title
        self.region = region
        self.network_name = network_name or ("none" if network is None else network.name)
        self.prefs = prefs
        self.config = config
        self.clock = clock or Clock(speed)
        try:
            abr = abr_registry.create(config.abr, abr_config)
        except KeyError:
            known = ", ".join(sorted(abr_registry.ALGORITHMS))
            raise ProfileError(f"unknown ABR algorithm {config.abr!r} (known: {known})") from None
        self.abr_name = config.abr
        # trace time = media time since this session started + trace_offset_s
        link = make_link(network, self.clock, offset_s=self.clock.now_s() - trace_offset_s)
        self.ctx = ctx = SessionContext(
            session_id=session_id or uuid.uuid4().hex[:12], config=config, clock=self.clock,
            fetcher=Fetcher(http, link, config.timeouts), cache=playlist_cache, start_s=self.clock.now_s(),
            give_up=GiveUpPolicy(stall_budget_s=config.stall_budget_s, grace_s=config.give_up_grace_s))
        if config.record_requests:
            ctx.fetcher.records = []
        if config.cmcd != "off":
            ctx.fetcher.cmcd = CmcdReporter(mode=config.cmcd, sid=ctx.session_id, cid=title, view=ctx.cmcd_view)
        if config.verify_every > 0:
            ctx.verifier = MediaVerifier(every=config.verify_every)
        self.failover = Failover(ctx)
        self.steering = SteeringLoop(ctx)
        self.video = VideoLoop(ctx, abr, self.failover, SideTracks(ctx, self.failover))

    # --- public -------------------------------------------------------------------------------

    async def run(self) -> SessionReport:
        """Play the session to its end; the report says whether it worked."""
        ctx = self.ctx
        error = None
        steering_task = None
        try:
            master, ctx.master_base, steering_uri = await resolve_master(
                ctx, master_url=self.master_url, steering_url=self.steering_url, title=self.title,
                device=self.device.name, region=self.region)
            if ctx.fetcher.cmcd is not None:
                ctx.fetcher.cmcd.sf = "d" if ctx.manifest_format == "dash" else "h"
            ctx.selection = select_tracks(master, self.device, self.prefs)
            ctx.pathways = PathwaySet(ctx.selection.pathways, self.config.pathway_penalty_s,
                                      current=ctx.selection.pathways[0])
            if steering_uri and len(ctx.selection.pathways) > 0:
                steering_task = asyncio.create_task(self.steering.run(steering_uri))
            log.info("session start", extra={"kv": {"session": ctx.session_id, "device": self.device.name,
                                                     "network": self.network_name, "abr": self.abr_name,
                                                     "rungs": len(ctx.selection.ladder),
                                                     "pathways": ",".join(ctx.selection.pathways)}})
            await self.video.play()
        except PlaybackError as e:
            error = str(e)
            log.warning("session failed", extra={"kv": {"session": ctx.session_id, "error": error}})
        except asyncio.CancelledError:
            if ctx.verifier is not None:
                ctx.verifier.close()
            raise
        finally:
            if steering_task is not None:
                steering_task.cancel()
                try:
                    await steering_task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the loop logs its own errors
                    pass
        report = build_report(ctx, error=error, source=self.master_url or f"{self.title} via {self.steering_url}",
                              device=self.device.name, network=self.network_name, abr=self.abr_name,
                              segments=self.segments, failovers=self.failovers,
                              steering_reloads=self.steering_reloads)
        if ctx.verifier is not None:  # the checks still waiting take their CPU time after the session's clock stopped
            await ctx.verifier.drain()
            report.media_errors, report.verification = list(ctx.verifier.errors), ctx.verifier.summary
        return report

    # --- what the parts know, for status lines, load workers and tests ---------------------------

    @property
    def session_id(self) -> str:
        return self.ctx.session_id

    @property
    def fetcher(self) -> Fetcher:
        return self.ctx.fetcher

    @property
    def state(self) -> PlaybackState | None:
        return self.ctx.state

    @property
    def selection(self) -> TrackSelection | None:
        return self.ctx.selection

    @property
    def pathways(self) -> PathwaySet | None:
        return self.ctx.pathways

    @property
    def samples(self) -> list[ThroughputSample]:
        return self.ctx.samples

    @property
    def segments(self) -> list[SegmentRecord]:
        return self.video.segments

    @property
    def failovers(self) -> list[FailoverRecord]:
        return self.failover.records

    @property
    def abr_log(self) -> list[tuple[Any, Decision | None]]:
        return self.video.abr_log

    @property
    def steering_reloads(self) -> int:
        return self.steering.reloads

    @property
    def segment_sizes(self) -> tuple[tuple[int, ...], ...] | None:
        """``sizes[segment][rung]`` (video + audio bytes) when ``segment_sizes`` found them."""
        return self.video.sizes

    def status(self) -> dict[str, Any]:
        """A live view for status lines: state, position, buffer, rung, throughput, stalls, pathway."""
        now = self.clock.now_s()
        st = self.state
        last = self.segments[-1] if self.segments else None
        return {
            "t_s": now - self.ctx.start_s,
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
