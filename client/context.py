"""What the parts of one player session share: its configuration and its `SessionContext`.

`SessionConfig` is how a session plays (frozen). `SessionContext` is the state the parts of a
session (`resolve`, `pathways`, `video`, `sidetracks`, `session_report`) read and update: the
clock and fetcher, the chosen tracks and pathways, the buffer model (`playback.PlaybackState`),
the throughput samples, byte counters, and the media playlists and init sections already
fetched. It holds no task and does no I/O of its own except the small shared helpers below
(a media playlist fetched once per URL, an init section once per track).
"""
from __future__ import annotations

import asyncio
import builtins
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .abr.snapshot import ThroughputSample
from .cmcd import CmcdObject, SessionView
from .errors import FetchError
from .fetch import Fetcher, FetchTimeouts, PathwaySet, TransferGuard
from .giveup import GiveUpPolicy
from .network import Clock
from .playback import PlaybackState
from .playlists import MediaPlaylist, PlaylistCache, PlaylistLimits, fetch_media, resolve
from .script import PLAY_FROM_0, ViewerScript
from .tracks import RungCopy, TrackSelection
from .verify import MediaVerifier

__all__ = ["SessionConfig", "SessionContext"]


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
    format: str = "hls"
    """The manifest format asked of the steering service's ``/play``: ``hls``, ``dash``, or
    ``auto`` (the device's first). A manifest URL plays as whatever it is (an MPD is XML)."""
    cmcd: str = "query"
    """CMCD on every request to the media servers: ``query`` (the ``CMCD`` argument, as hls.js),
    ``header`` (``CMCD-*`` headers) or ``off`` (``client/cmcd.py``)."""
    cmsd_mb: bool = False
    """Honour the edge's CMSD max suggested bitrate (``mb``): no rung above it is chosen."""
    record_requests: bool = True
    """Keep every answered media request in the report (``SessionReport.requests``: what joins the
    session with the edges' access logs)."""
    script: ViewerScript = PLAY_FROM_0
    """What the viewer does: start position, seeks, pauses, quitting (`script.ViewerScript`)."""
    verify_every: int = 0
    """Decode what arrives (``client/verify.py``): every init section and the first frames of every
    Nth media segment, timestamps checked; 0: off (no body is kept)."""


_INIT = CmcdObject(ot="i")
_KEY = CmcdObject(ot="k")


def _retrieved(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _byte_counters() -> dict[str, int]:
    return {"video": 0, "audio": 0, "subtitles": 0, "init": 0, "playlists": 0, "keys": 0, "abandoned": 0}


@dataclass(eq=False)
class SessionContext:
    """The shared state of one session (see the module docstring); times are media-clock seconds."""

    session_id: str
    config: SessionConfig
    clock: Clock
    fetcher: Fetcher
    give_up: GiveUpPolicy
    cache: PlaylistCache | None
    start_s: float
    selection: TrackSelection | None = None
    pathways: PathwaySet | None = None
    state: PlaybackState | None = None
    master_base: str = ""
    bytes: dict[str, int] = field(default_factory=_byte_counters)
    samples: list[ThroughputSample] = field(default_factory=list)
    recent: deque[ThroughputSample] = field(default_factory=deque)
    seq: int = 0
    playlists: dict[str, tuple[MediaPlaylist, str]] = field(default_factory=dict)
    manifest_format: str = "hls"  #: what was loaded: ``hls`` or ``dash`` (steering reload parameters)
    inits: set[tuple[str, str]] = field(default_factory=set)
    keys: dict[str, builtins.bytes] = field(default_factory=dict)  # (the field `bytes` shadows the type)
    """The AES-128 / SAMPLE-AES keys fetched so far, by resolved key URL (16 bytes each)."""
    cmsd_mb_bps: float | None = None  #: the max suggested bitrate of the edge's last video answer (CMSD ``mb``)
    verifier: MediaVerifier | None = None
    """Decodes what the session downloads (``verify_every`` > 0; ``client/verify.py``)."""

    def __post_init__(self) -> None:
        self.recent = deque(self.recent, maxlen=self.config.sample_window)

    def level(self, now_s: float) -> float:
        """Buffer ahead of the playhead (0 before there is a buffer model)."""
        return self.state.level(now_s) if self.state else 0.0

    def cmcd_view(self) -> SessionView:
        """What a request's CMCD says of the session now (`client.cmcd.CmcdReporter` reads it)."""
        st = self.state
        now = self.clock.now_s()
        level = st.level(now) if st is not None else 0.0
        urgent = st is None or (st.ended_at is None and not st.playing)
        stalls = len(st.stalls) + (st.stall_at is not None) if st is not None else 0
        done = [s for s in list(self.recent)[-4:] if s.complete and s.duration_s > 0]
        mtp = 8 * sum(s.size_bytes for s in done) / sum(s.duration_s for s in done) / 1000 if done else None
        top = max(self.selection.ladder_bps) / 1000 if self.selection is not None and self.selection.ladder_bps else None
        return SessionView(buffer_s=level, urgent=urgent, stalls=stalls, throughput_kbps=mtp, top_kbps=top)

    def add_sample(self, sample: ThroughputSample) -> None:
        self.seq += 1
        self.recent.append(sample)
        self.samples.append(sample)

    def copy(self, rung: int, pathway: str) -> RungCopy:
        """Rung ``rung`` as ``pathway`` carries it; `FetchError` when it does not."""
        assert self.selection is not None
        copy = self.selection.ladder[rung].copy_for(pathway)
        if copy is None:
            raise FetchError(f"pathway {pathway} does not carry {self.selection.ladder[rung].label}", pathway=pathway)
        return copy

    async def playlist(self, uri: str, pathway: str) -> tuple[MediaPlaylist, str]:
        """The media playlist at ``uri`` (relative to the multivariant), fetched once per URL."""
        url = resolve(self.master_base, uri)
        hit = self.playlists.get(url)
        if hit is None:
            hit = await fetch_media(self.fetcher, url, self.config.limits, self.cache, pathway)
            self.playlists[url] = hit
        return hit

    def guard(self, expected_bytes: int | None) -> TransferGuard:
        """Give-up rule of a media request sent now: the buffer the viewer has (0 before playback
        starts and in a stall), the policy, the size expected when the response may not say it."""
        st = self.state
        buffer_s = st.level(self.clock.now_s()) if st is not None and st.playing else 0.0
        return TransferGuard(buffer_s=buffer_s, policy=self.give_up, expected_bytes=expected_bytes)

    def init_task(self, key: str, seg: Any, base: str, pathway: str) -> asyncio.Task[None] | None:
        """A task fetching what ``seg`` needs before it can be played: its init section for track
        ``key`` (once per track and section) and its ``#EXT-X-KEY`` key (once per key URL, as
        hls.js: `fetch_key`); None when it needs neither or they were fetched already."""
        init = None
        if seg.init is not None:
            init_key = (key, f"{seg.init.uri}#{seg.init.byterange}")
            if init_key not in self.inits:
                init = (init_key, seg.init)
        key_url = resolve(base, seg.key.uri) if getattr(seg, "key", None) is not None else None
        if key_url is not None and key_url in self.keys:
            key_url = None
        if init is None and key_url is None:
            return None

        async def fetch_init() -> None:
            assert init is not None
            section = init[1]
            res = await self.fetcher.get(resolve(base, section.uri), byterange=section.byterange,
                                         max_bytes=self.config.max_segment_bytes, pathway=pathway, cmcd=_INIT,
                                         guard=self.guard(section.byterange.length if section.byterange else None),
                                         keep_body=self.verifier is not None,
                                         deadline_s=self.config.timeouts.segment_deadline_s)
            self.bytes["init"] += res.size_bytes
            self.inits.add(init[0])
            if self.verifier is not None and res.body is not None:
                self.verifier.add_init(init[0], res.url, res.body)

        async def fetch() -> None:
            await asyncio.gather(*([fetch_init()] if init is not None else []),
                                 *([self.fetch_key(key_url, pathway)] if key_url is not None else []))

        task = asyncio.create_task(fetch())
        task.add_done_callback(_retrieved)  # its error is the awaiting segment's; unawaited when that failed first
        return task

    async def fetch_key(self, url: str, pathway: str) -> None:
        """GET the 16-byte key at ``url`` into ``keys`` (CMCD ``ot=k``); `FetchError` for anything else
        (a key service's 403 fails over like any media request)."""
        if url in self.keys:
            return
        res = await self.fetcher.get(url, max_bytes=1024, keep_body=True, pathway=pathway, cmcd=_KEY)
        body = res.body or b""
        if len(body) != 16:
            raise FetchError(f"{url}: a key is 16 bytes, got {len(body)}", pathway=pathway)
        self.bytes["keys"] += len(body)
        self.keys[url] = body
