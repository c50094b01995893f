"""One simulated playback session: an ABR object driven over a trace, segment by segment.

The loop is the live player's, minus the network: before each segment it builds an
`AbrSnapshot` (buffer, last rung, the last `SAMPLE_WINDOW` throughput samples, the sizes of
the next `SIZES_AHEAD` segments, idle time since the previous decision) and calls
``abr.decide``; it downloads over the `SimLink` (abandonment: every ``abandon_check_s`` it offers
a `DownloadProgress` to ``abr.abandon``); then it reports the download as a `ThroughputSample`
(``seq`` counts downloads, abandoned ones included) in the next snapshot. After an abandoned
download the same segment is refetched at the rung the abandonment named, or, under
``SimSetup.reask_after_abandon`` (Sabre's loop), at the rung a fresh ``decide`` picks. Buffer, rebuffering,
start-up and waits follow the `SimSetup` (see ``setups.py``), and so does a modelled edge's CMSD
max suggested bitrate (``SimSetup.cmsd_mb_bps``: each decision capped at it, as ``--cmsd-mb``
caps the live player's). No clock, no sleeping.

The buffer is the live player's model, `client.playback.PlaybackState`, driven with the
session's simulated clock: playback starts when the first segment lands, the playhead moves
with the clock (waits and downloads drain the buffer), a stall starts when it reaches the
buffered end and ends when the next segment lands; a segment's rebuffering is the part of that
stall that fell in its download.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from ..abr.base import Abr
from ..abr.snapshot import AbrSnapshot, Decision, DownloadProgress, ThroughputSample
from ..cmcd import cap_to_max_bitrate
from ..playback import PlaybackState
from ..qoe import QoeSummary, summarize
from ..traces import Trace
from .manifests import Video
from .network import SimLink
from .setups import SimSetup

SAMPLE_WINDOW = 16
SIZES_AHEAD = 16
#: Abandonments allowed per segment; the attempt after the last one runs to the end. Only an ABR
#: that, re-asked after an abandonment (``SimSetup.reask_after_abandon``), keeps choosing a rung
#: it then abandons gets near it; without the bound such a pair would never finish the segment.
MAX_ABANDONS_PER_SEGMENT = 64


@dataclass(frozen=True)
class ChunkRecord:
    index: int
    rung: int
    bitrate_bps: int
    size_bytes: int
    download_s: float  # all attempts, latency included
    rebuffer_s: float
    buffer_s: float  # after the chunk landed (and any sleep)
    wait_s: float  # idle before the request (full buffer)
    abandoned: int  # attempts abandoned for this chunk
    reason: str


@dataclass(frozen=True)
class SessionResult:
    trace: str
    abr: str
    chunks: tuple[ChunkRecord, ...]
    startup_s: float
    qoe: QoeSummary
    samples: tuple[ThroughputSample, ...]


def simulate(video: Video, trace: Trace | SimLink, abr: Abr, setup: SimSetup,
             keep_samples: bool = False) -> SessionResult:
    """Play ``video`` over ``trace`` with ``abr`` under ``setup``."""
    link = trace if isinstance(trace, SimLink) else SimLink(trace, setup.payload_factor)
    n_rungs = len(video.ladder_bps)
    ladder = video.ladder_bps
    seg_s = video.segment_duration_s
    sizes = video.sizes_bytes
    total = video.segments
    st = PlaybackState(video.content_s)  # driven with clock_s
    trace_t = 0.0
    clock_s = 0.0  # session wall clock (differs from the trace clock under Pensieve's RTT)
    startup_s = 0.0
    last: int | None = None
    idle_s = 0.0
    recent: deque[ThroughputSample] = deque(maxlen=SAMPLE_WINDOW)
    all_samples: list[ThroughputSample] = []
    seq = 0
    records: list[ChunkRecord] = []
    can_abandon = setup.abandonment and hasattr(abr, "abandon")
    hinted_bps: float | None = None  # CMSD mb of the last answer: none before the first one

    def snapshot(k: int, buffer_s: float, idle_s: float) -> AbrSnapshot:
        return AbrSnapshot(
            buffer_s=buffer_s, ladder_bps=ladder, segment_duration_s=seg_s, segment_index=k,
            segments_total=total, samples=tuple(recent), sizes_ahead_bytes=sizes[k:k + SIZES_AHEAD],
            last_index=last, max_buffer_s=setup.max_buffer_s, startup=st.started_at is None,
            rebuffering=st.started_at is not None and not st.playing, idle_s=idle_s)

    for k in range(total):
        dur_k = video.segment_duration(k)
        wait_s = 0.0
        if setup.wait == "before_request" and st.started_at is not None:
            excess = st.level(clock_s) + dur_k - setup.max_buffer_s
            if excess > 0:
                wait_s = excess
                trace_t += excess
                clock_s += excess
                idle_s += excess
        if k == 0 and setup.first_rung is not None:
            decision = Decision(min(setup.first_rung, n_rungs - 1), "setup: first rung")
        else:
            decision = abr.decide(snapshot(k, st.level(clock_s), idle_s))
        idle_s = 0.0
        if setup.cmsd_mb_bps is not None:  # the hint of the last video answer, honoured as the live player does
            decision = cap_to_max_bitrate(decision, ladder, hinted_bps)
        rung = min(max(int(decision.index), 0), n_rungs - 1)
        reason = decision.reason

        started = st.started_at is not None
        spent_s = 0.0  # wall time on this chunk's downloads
        abandoned = 0
        while True:
            size = sizes[k][rung]
            latency = setup.latency_s if setup.latency_s is not None else link.latency_at(trace_t, setup.default_latency_s)
            start = trace_t + latency if setup.latency_idles_link else trace_t
            end = link.transfer_end(start, size)
            duration = latency + (end - start)
            cut = None
            if can_abandon and started and rung > 0 and abandoned < MAX_ABANDONS_PER_SEGMENT:
                cut = _check_abandon(abr, link, start, latency, duration, size, rung, k,
                                     st, clock_s + spent_s, video, setup)
            if cut is None:
                trace_t = end
                spent_s += duration
                sample = ThroughputSample(seq=seq, size_bytes=size, duration_s=duration, ttfb_s=latency,
                                          end_s=clock_s + spent_s, rung=rung, complete=True)
                break
            elapsed, got, new_rung = cut
            trace_t = start + (elapsed - latency)
            spent_s += elapsed
            partial = ThroughputSample(seq=seq, size_bytes=got, duration_s=elapsed, ttfb_s=latency,
                                       end_s=clock_s + spent_s, rung=rung, complete=False)
            recent.append(partial)
            if keep_samples:
                all_samples.append(partial)
            seq += 1
            abandoned += 1
            reason = f"{reason}; {new_rung.reason}"
            if setup.reask_after_abandon:
                # Sabre: a fresh decision over the drained buffer, the partial download now a sample
                again = abr.decide(snapshot(k, st.level(clock_s + spent_s), 0.0))
                reason = f"{reason}; re-asked: {again.reason}"
                rung = min(max(int(again.index), 0), n_rungs - 1)
            else:
                rung = new_rung.index

        clock_s += spent_s
        answered_s = clock_s  # when this chunk's answer (and the edge's CMSD with it) came in
        st.advance(clock_s)
        rebuffer = clock_s - st.stall_at if st.stall_at is not None else 0.0
        if not started:
            startup_s = spent_s
        st.add(st.buffered_s + dur_k, clock_s)
        level = st.level(clock_s)
        if setup.wait == "after_chunk" and level > setup.max_buffer_s:
            sleep = math.ceil((level - setup.max_buffer_s) / setup.wait_step_s) * setup.wait_step_s
            trace_t += sleep
            clock_s += sleep
            idle_s += sleep
            wait_s += sleep
        recent.append(sample)
        if keep_samples:
            all_samples.append(sample)
        seq += 1
        records.append(ChunkRecord(k, rung, ladder[rung], sizes[k][rung], spent_s, rebuffer, st.level(clock_s),
                                   wait_s, abandoned, reason))
        hinted_bps = setup.mb_at(answered_s)
        last = rung

    qoe = summarize([r.bitrate_bps for r in records], [r.rebuffer_s for r in records], startup_s, video.content_s)
    return SessionResult(trace=link.trace.name, abr=getattr(abr, "name", type(abr).__name__),
                         chunks=tuple(records), startup_s=startup_s, qoe=qoe, samples=tuple(all_samples))


def _check_abandon(abr: Abr, link: SimLink, start: float, latency: float, duration: float, size: int,
                   rung: int, k: int, st: PlaybackState, clock_s: float, video: Video, setup: SimSetup
                   ) -> tuple[float, int, Decision] | None:
    """First check time at which ``abr.abandon`` says to drop the download, if any (the attempt
    was requested at session time ``clock_s``; ``st`` is read, and so advanced, at each check)."""
    step = setup.abandon_check_s
    elapsed = step
    base = link.bytes_at(start)
    while elapsed < duration:
        if elapsed > latency:
            got = int(link.bytes_at(start + elapsed - latency) - base)
            progress = DownloadProgress(rung=rung, size_bytes=size, downloaded_bytes=min(got, size),
                                        elapsed_s=elapsed, ttfb_s=latency,
                                        buffer_s=st.level(clock_s + elapsed), ladder_bps=video.ladder_bps,
                                        segment_duration_s=video.segment_duration_s,
                                        sizes_bytes=video.sizes_bytes[k])
            d = abr.abandon(progress)
            if d is not None and 0 <= d.index < rung:
                return elapsed, min(got, size), d
        elapsed += step
    return None
