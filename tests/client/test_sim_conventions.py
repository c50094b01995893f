"""The simulator's conventions (Pensieve's fixed_env, Sabre's waits), and the offline optimum."""
from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from client.abr import ALGORITHMS, create
from client.sim.manifests import Video
from client.sim.optimal import FixedSequence, optimal
from client.sim.session import simulate
from client.sim.setups import PENSIEVE, SABRE
from client.traces import Trace, load_pensieve_trace

LADDER = (300_000, 750_000, 1_200_000, 1_850_000, 2_850_000, 4_300_000)


def flat_video(segments: int = 48, seg_s: float = 4.0) -> Video:
    return Video("flat", LADDER, seg_s, tuple(tuple(int(r * seg_s / 8) for r in LADDER) for _ in range(segments)))


@pytest.mark.parametrize("name", ["default", "mpc", "throughput", "bola", "dynamic"])
def test_constant_10_mbps_no_rebuffer_and_top_rung_after_start_up(name: str, pensieve_video: Video) -> None:
    result = simulate(pensieve_video, Trace.constant(10e6), create(name), PENSIEVE)
    assert result.qoe.rebuffer_s == 0
    assert result.chunks[0].rung == 1  # Pensieve: the first chunk at rung 1, without the ABR
    top = [c.rung for c in result.chunks[5:]]
    assert top.count(5) >= len(top) - 1, top
    assert max(c.buffer_s for c in result.chunks) <= 60.0


def test_startup_is_the_first_download_plus_80_ms() -> None:
    video = flat_video()
    result = simulate(video, Trace.constant(2e6), create("default"), PENSIEVE)
    first = video.sizes_bytes[0][1]
    expected = first / (2e6 / 8 * 0.95) + 0.08
    assert result.startup_s == pytest.approx(expected)
    assert result.qoe.startup_s == pytest.approx(expected)
    assert result.chunks[0].rebuffer_s == 0  # start-up is not rebuffering


def _walk(periods: list[tuple[float, float]], start_s: float, size_bytes: float, payload: float = 0.95) -> float:
    """End time of a transfer over piecewise-constant periods (no looping needed here)."""
    t, left, edge = start_s, size_bytes, 0.0
    for duration, bps in periods:
        edge += duration
        if t >= edge:
            continue
        rate = bps / 8 * payload
        if rate > 0 and (edge - t) * rate >= left:
            return t + left / rate
        left -= (edge - t) * rate
        t = edge
    raise AssertionError("trace too short")


def test_an_outage_rebuffers_the_expected_seconds() -> None:
    """4 Mbps for 2 s, nothing for 30 s, then 4 Mbps; lowest rung after the first (rung 1)."""
    video = flat_video(segments=12)
    periods = [(2.0, 4e6), (30.0, 0.0), (1000.0, 4e6)]
    trace = Trace("outage", tuple(d for d, _ in periods), tuple(b for _, b in periods))
    rungs = (1,) + (0,) * 11
    result = simulate(video, trace, FixedSequence(rungs), PENSIEVE.with_(abandonment=False))
    t, buffer_s, stalls = 0.0, 0.0, []
    for k, r in enumerate(rungs):  # replay by hand: back to back, +80 ms each
        end = _walk(periods, t, video.sizes_bytes[k][r])
        delay = end - t + 0.08
        t = end
        stalls.append(max(delay - buffer_s, 0.0) if k else 0.0)
        buffer_s = max(buffer_s - delay, 0.0) + 4.0
    assert [c.rebuffer_s for c in result.chunks] == pytest.approx(stalls)
    assert result.qoe.rebuffer_s == pytest.approx(sum(stalls))
    # the outage begins with under 2 s of downloads buffered (at most 5 chunks = 20 s): 30 s of
    # nothing must stall for at least 10 s, all of it on the one chunk caught in the outage
    assert result.qoe.rebuffer_s >= 10.0
    assert result.qoe.rebuffer_events == 1


def _fixed_env_port(times: list[float], bws: list[float], video: Video, rungs: tuple[int, ...]):
    """Pensieve's test/fixed_env.py get_video_chunk, transcribed (delay ms -> s)."""
    ptr, last_t, buf = 1, times[0], 0.0
    out = []
    for k, q in enumerate(rungs):
        size, delay, sent = video.sizes_bytes[k][q], 0.0, 0.0
        while True:
            tp = bws[ptr] * 1e6 / 8
            dur = times[ptr] - last_t
            payload = tp * dur * 0.95
            if sent + payload > size:
                frac = (size - sent) / tp / 0.95
                delay += frac
                last_t += frac
                break
            sent += payload
            delay += dur
            last_t = times[ptr]
            ptr += 1
            if ptr >= len(bws):
                ptr, last_t = 1, 0.0
        delay = delay * 1000 + 80
        rebuf = max(delay - buf, 0.0)
        buf = max(buf - delay, 0.0) + 4000
        if buf > 60000:
            sleep = math.ceil((buf - 60000) / 500) * 500
            buf -= sleep
            while True:
                dur = times[ptr] - last_t
                if dur > sleep / 1000:
                    last_t += sleep / 1000
                    break
                sleep -= dur * 1000
                last_t = times[ptr]
                ptr += 1
                if ptr >= len(bws):
                    ptr, last_t = 1, 0.0
        out.append((delay / 1000, rebuf / 1000, buf / 1000))
    return out


def test_matches_a_transcription_of_pensieves_fixed_env(traces_dir: Path, pensieve_video: Video) -> None:
    rng = random.Random(7)
    files = sorted((traces_dir / "pensieve_hsdpa").iterdir())[:4] + sorted((traces_dir / "pensieve_fcc").iterdir())[:4]
    for f in files:
        rows = [line.split() for line in f.read_text().splitlines() if line.strip()]
        times, bws = [float(a) for a, _ in rows], [float(b) for _, b in rows]
        trace = load_pensieve_trace(f)
        for _ in range(2):
            rungs = (1,) + tuple(rng.randrange(6) for _ in range(47))
            want = _fixed_env_port(times, bws, pensieve_video, rungs)
            got = simulate(pensieve_video, trace, FixedSequence(rungs), PENSIEVE).chunks
            for (delay, rebuf, buf), c in zip(want, got):
                assert c.download_s == pytest.approx(delay, abs=1e-9)
                assert c.buffer_s == pytest.approx(buf, abs=1e-9)
                if c.index:
                    assert c.rebuffer_s == pytest.approx(rebuf, abs=1e-9)


def test_sabre_setup_waits_for_room_and_lets_the_abr_choose_the_first_rung() -> None:
    video = flat_video(segments=30, seg_s=3.0)
    trace = Trace("fast", (100.0,), (50e6,), latencies_s=(0.02,))
    result = simulate(video, trace, create("default"), SABRE)
    assert max(c.buffer_s for c in result.chunks) <= SABRE.max_buffer_s + 1e-9
    assert sum(c.wait_s for c in result.chunks) > 0
    assert result.qoe.rebuffer_s == 0


def test_abandonment_cuts_the_rebuffering_of_a_sudden_drop() -> None:
    video = flat_video(segments=20)
    trace = Trace("drop", (30.0, 2000.0), (8e6, 0.4e6))
    rungs = (1,) + (5,) * 19
    keep = simulate(video, trace, FixedSequence(rungs), PENSIEVE)  # FixedSequence never abandons

    class FixedButAbandons(FixedSequence):
        def abandon(self, progress):
            from client.abr import should_abandon
            return should_abandon(progress)

    cut = simulate(video, trace, FixedButAbandons(rungs), PENSIEVE)
    assert any(c.abandoned for c in cut.chunks)
    assert cut.qoe.rebuffer_s < keep.qoe.rebuffer_s


# --- the offline optimum ------------------------------------------------------------------------

def test_optimum_replays_to_its_own_value_and_beats_every_algorithm(traces_dir: Path, pensieve_video: Video) -> None:
    picks = [traces_dir / "pensieve_hsdpa" / "bus.ljansbakken-oslo-report.2010-09-28_1407CEST.log",
             traces_dir / "pensieve_fcc" / "trace_866_http---www.amazon.com",
             traces_dir / "pensieve_fcc" / "trace_797466_http---www.amazon.com"]
    for path in picks:
        trace = load_pensieve_trace(path)
        best = optimal(pensieve_video, trace, PENSIEVE, buffer_step_s=0.05)
        assert best.summary is not None
        assert best.summary.qoe_lin == pytest.approx(best.qoe_lin, abs=1e-9)
        for name in ALGORITHMS:
            got = simulate(pensieve_video, trace, create(name), PENSIEVE).qoe.qoe_lin
            assert got <= best.qoe_lin + 1e-9, (path.name, name, got, best.qoe_lin)


def test_optimum_on_a_constant_trace_is_the_best_steady_rung() -> None:
    video = flat_video(segments=12)
    best = optimal(video, Trace.constant(10e6), PENSIEVE)
    assert best.rungs[0] == 1 and set(best.rungs[1:]) == {5}


def test_a_modelled_cmsd_hint_caps_the_rungs_while_the_edge_sends_it() -> None:
    """SimSetup.cmsd_mb_bps: decisions during the window stay at or under the hint, outside it they do not."""
    video = flat_video()
    trace = Trace.constant(20e6)
    free = simulate(video, trace, create("throughput"), SABRE)
    hint = video.ladder_bps[1]
    capped = simulate(video, trace, create("throughput"), SABRE.with_(cmsd_mb_bps=hint, cmsd_window_s=(40.0, 120.0)))
    assert max(c.bitrate_bps for c in free.chunks) > hint
    t, inside, outside = 0.0, [], []
    answered = None  # a decision follows the hint of the previous answer, as the live player's does
    for c in capped.chunks:  # Sabre's setup: the answer lands, the player waits for room, decides, downloads
        (inside if answered is not None and 40.0 <= answered < 120.0 else outside).append(c)
        t += c.wait_s + c.download_s
        answered = t
    assert inside and all(c.bitrate_bps <= hint for c in inside)
    assert any("CMSD mb" in c.reason for c in inside)
    assert max(c.bitrate_bps for c in outside) > hint
