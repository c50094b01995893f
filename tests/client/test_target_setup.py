"""The ``target`` setup: issue 6's target conventions as Sabre's simulator runs them."""
from __future__ import annotations

from pathlib import Path

import pytest

from client.abr import create
from client.sim.manifests import Video
from client.sim.session import simulate
from client.sim.setup_target import load_target_trace, load_target_traces
from client.sim.setups import SETUPS, TARGET
from client.traces import Trace, TraceError, load_pensieve_trace

LADDER = (300_000, 750_000, 1_200_000, 1_850_000, 2_850_000, 4_300_000)


def flat_video(segments: int = 48, seg_s: float = 4.0) -> Video:
    return Video("flat", LADDER, seg_s, tuple(tuple(int(r * seg_s / 8) for r in LADDER) for _ in range(segments)))


def test_registered_by_name() -> None:
    assert SETUPS["target"] is TARGET
    assert TARGET.max_buffer_s == 60.0 and TARGET.latency_s == 0.08 and TARGET.payload_factor == 1.0


def test_pensieve_sample_holds_until_the_next_timestamp(tmp_path: Path) -> None:
    f = tmp_path / "trace"
    f.write_text("0.0\t1.0\n2.0\t3.0\n5.0\t0.5\n")
    t = load_target_trace(f)
    assert t.durations_s == (2.0, 3.0)
    assert t.bandwidths_bps == (1e6, 3e6)
    # Pensieve's own alignment gives the interval before a timestamp that line's bandwidth
    assert load_pensieve_trace(f).bandwidths_bps == (3e6, 0.5e6)


def test_folder_loading_skips_readme_and_rejects_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("0 1\n1 2\n")
    (tmp_path / "README.md").write_text("not a trace")
    assert [t.name for t in load_target_traces(tmp_path)] == ["a"]
    (tmp_path / "b").write_text("0 1\n0 2\n")
    with pytest.raises(TraceError, match="does not increase"):
        load_target_traces(tmp_path)


def test_first_segment_lowest_rung_start_up_and_latency_on_the_trace_clock() -> None:
    video = flat_video()
    result = simulate(video, Trace.constant(2e6), create("dynamic"), TARGET)
    assert result.chunks[0].rung == 0
    expected = 0.08 + video.sizes_bytes[0][0] * 8 / 2e6  # full payload, 80 ms before the first byte
    assert result.startup_s == pytest.approx(expected)
    assert result.chunks[0].rebuffer_s == 0


def test_latency_idles_the_link() -> None:
    """1 s at 8 Mbps, then nothing for long: a 1 MB segment only gets the 0.92 s left after 80 ms."""
    video = Video("one", (8_000_000,), 4.0, ((1_000_000,), (1_000_000,)))
    trace = Trace(name="step", durations_s=(1.0, 100.0), bandwidths_bps=(8e6, 0.0))
    result = simulate(video, trace, create("throughput"), TARGET.with_(abandonment=False))
    # 0.92 MB arrive in the first second; the rest waits for the loop (t = 101 s) and takes 0.08 s
    assert result.startup_s == pytest.approx(101.08)


@pytest.mark.parametrize("name", ["dynamic", "throughput", "bola", "bola_basic", "default"])
def test_fast_constant_link_reaches_the_top_without_rebuffering(name: str) -> None:
    result = simulate(flat_video(), Trace.constant(20e6), create(name), TARGET)
    assert result.qoe.rebuffer_s == 0
    assert [c.rung for c in result.chunks[-10:]] == [5] * 10
    assert max(c.buffer_s for c in result.chunks) <= 60.0 + 1e-9


#: Sabre (09b03bb) with ``-b 60 -noa`` on the 68 hsdpa dev traces (see bench/abr/CONVENTIONS.md):
#: mean QoE_lin per chunk of its dynamic / throughput / bola (basic), by our names.
SABRE_NO_ABANDON_HSDPA = {"dynamic": 0.687, "throughput": 0.591, "bola_basic": 0.566}


@pytest.mark.parametrize("name", sorted(SABRE_NO_ABANDON_HSDPA))
def test_ports_match_sabre_without_abandonment(name: str, dev_traces_dir: Path, pensieve_video: Video) -> None:
    traces = load_target_traces(dev_traces_dir / "pensieve_hsdpa")
    setup = TARGET.with_(abandonment=False)
    qoe = [simulate(pensieve_video, t, create(name), setup).qoe.qoe_lin for t in traces]
    assert sum(qoe) / len(qoe) == pytest.approx(SABRE_NO_ABANDON_HSDPA[name], abs=0.0015)


def test_target_reasks_the_abr_after_an_abandoned_download() -> None:
    """A link that collapses mid-download: the abandoned segment is refetched at a fresh decision."""
    video = flat_video(segments=12)
    # 8 Mbps for 12 s (the ABR climbs to the top rung), then 0.5 Mbps for long
    trace = Trace(name="collapse", durations_s=(12.0, 300.0), bandwidths_bps=(8e6, 0.5e6))
    reasked = simulate(video, trace, create("dynamic"), TARGET)
    named = simulate(video, trace, create("dynamic"), TARGET.with_(reask_after_abandon=False))
    assert any(c.abandoned for c in reasked.chunks) and any(c.abandoned for c in named.chunks)
    assert all("re-asked" in c.reason for c in reasked.chunks if c.abandoned)
    assert not any("re-asked" in c.reason for c in named.chunks)


#: Sabre (09b03bb) with default flags and ``-b 60`` on the 68 hsdpa dev traces (bench/abr/CONVENTIONS.md).
SABRE_HSDPA = {"dynamic": 0.732, "throughput": 0.609}


@pytest.mark.parametrize("name", sorted(SABRE_HSDPA))
def test_ports_match_sabre_with_abandonment(name: str, dev_traces_dir: Path, pensieve_video: Video) -> None:
    """With abandonment on, Sabre's loop re-asks the ABR after an abandonment; so does ``target``."""
    traces = load_target_traces(dev_traces_dir / "pensieve_hsdpa")
    qoe = [simulate(pensieve_video, t, create(name), TARGET).qoe.qoe_lin for t in traces]
    assert sum(qoe) / len(qoe) == pytest.approx(SABRE_HSDPA[name], rel=0.01)


def test_default_re_asked_after_an_abandonment_goes_down() -> None:
    """The abandoned download counts as a throughput sample, so the fresh decision is lower."""
    video = flat_video(segments=12)
    trace = Trace(name="collapse", durations_s=(12.0, 300.0), bandwidths_bps=(8e6, 0.5e6))
    result = simulate(video, trace, create("default"), TARGET)
    hit = [c for c in result.chunks if c.abandoned]
    assert hit and all(c.abandoned <= 2 for c in hit)
    assert all(c.rung < 5 for c in hit)
