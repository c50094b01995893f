"""The session plot (`client.report.SessionReport.figure` / `plot`) and the segment record's CMSD hint.

Built from records as the player writes them: a fibre session (100 Mbps measured) over a
200 kbps .. 8 Mbps ladder, with two stalls, a failover and the edge's CMSD ``mb`` on some segments.
"""
from __future__ import annotations

import json
import math

import pytest

from client.report import FailoverRecord, SegmentRecord, SessionReport, StallRecord

LADDER_BPS = [200_000, 400_000, 800_000, 1_500_000, 3_000_000, 5_000_000, 8_000_000]
PLAYED_RUNGS = [0, 1, 3, 4, 6, 6, 5, 6, 6, 6]
MB_BPS: list[int | None] = [None, None, None, 3_000_000, 3_000_000, 5_000_000, None, 8_000_000, None, None]


def segment(i: int, rung: int, *, mb_bps: int | None = None, ladder: list[int] = LADDER_BPS) -> SegmentRecord:
    bitrate = ladder[rung]
    size = bitrate * 4 // 8
    return SegmentRecord(
        index=i, rung=rung, bitrate_bps=bitrate, label=f"v{rung}", size_bytes=size, requested_s=3.0 * i,
        done_s=3.0 * i + 8 * size / 100e6, ttfb_s=0.01, throughput_bps=100e6, buffer_before_s=4.0 * i - 3.0 * i,
        buffer_after_s=4.0 * (i + 1) - 3.0 * i, rebuffer_s=0.0, pathway="a" if i < 5 else "b", abandoned=0,
        reason="test", mb_bps=mb_bps)


def session(segments: list[SegmentRecord], *, ladder: list[int] = LADDER_BPS, stalls: int = 2) -> SessionReport:
    return SessionReport(
        ok=True, error=None, source="test", device="tv-4k", network="fiber", abr="throughput", speed=1.0,
        startup_s=0.2, played_s=36.0, content_s=40.0, session_s=40.0, segments=segments,
        stalls=[StallRecord(at_s=7.0, duration_s=1.5), StallRecord(at_s=20.0, duration_s=0.8)][:stalls],
        failovers=[FailoverRecord(at_s=14.5, from_pathway="a", to_pathway="b", error="refused", buffer_s=2.0,
                                  gap_s=0.4, cause="ConnectError")],
        tracks={"ladder": [{"label": f"v{k}", "nominal_bps": b} for k, b in enumerate(ladder)]})


def fibre_session(*, with_mb: bool = True) -> SessionReport:
    return session([segment(i, r, mb_bps=MB_BPS[i] if with_mb else None) for i, r in enumerate(PLAYED_RUNGS)])


def panels(report: SessionReport) -> dict[str, object]:
    fig = report.figure()
    fig.canvas.draw()  # tick labels are made at draw time
    return {ax.get_ylabel(): ax for ax in fig.axes}


def line(ax: object, gid: str) -> object | None:
    found = [ln for ln in ax.lines if ln.get_gid() == gid]  # type: ignore[attr-defined]
    assert len(found) <= 1
    return found[0] if found else None


def test_bitrate_has_its_own_log_axis_with_the_ladder_as_ticks():
    axes = panels(fibre_session())
    rate, thr, buf = axes["bitrate"], axes["throughput"], axes["buffer (s)"]
    assert rate is not thr and rate is not buf and len({id(rate), id(thr), id(buf)}) == 3
    assert rate.get_yscale() == "log"  # 200 kbps .. 8 Mbps is 40x
    assert list(rate.get_yticks()) == pytest.approx([b / 1e6 for b in LADDER_BPS])
    labels = [t.get_text() for t in rate.get_yticklabels()]
    assert labels[0] == "200 kbps" and labels[3] == "1.5 Mbps" and labels[-1] == "8 Mbps"
    steps = line(rate, "bitrate")
    assert steps is not None and steps.get_drawstyle() == "steps-post"
    y = list(steps.get_ydata())
    assert y[:-1] == pytest.approx([LADDER_BPS[r] / 1e6 for r in PLAYED_RUNGS]) and y[-1] == y[-2]
    assert list(steps.get_xdata())[:-1] == pytest.approx([3.0 * i for i in range(len(PLAYED_RUNGS))])
    # the 8 Mbps top rung sits near the top of its panel, not squashed under a 100 Mbps throughput
    lo, hi = rate.get_ylim()
    assert lo < 0.2 < 8 < hi < 16


def test_throughput_has_a_log_axis_of_its_own():
    axes = panels(fibre_session())
    thr = axes["throughput"]
    assert thr.get_yscale() == "log"
    points = line(thr, "throughput")
    assert points is not None and list(points.get_ydata()) == pytest.approx([100.0] * len(PLAYED_RUNGS))
    lo, hi = thr.get_ylim()
    assert lo < 8 and hi > 100  # the top rung (dotted) and the link both in view
    assert "100 Mbps" in [t.get_text() for t in thr.get_yticklabels()]


def test_stalls_are_shaded_on_every_panel_and_counted():
    report = fibre_session()
    fig = report.figure()
    for ax in fig.axes:
        spans = [p for p in ax.patches if p.get_gid() == "stall"]
        assert len(spans) == 2, ax.get_ylabel()
        assert spans[0].get_x() == pytest.approx(7.0) and spans[0].get_width() == pytest.approx(1.5)
        assert len([ln for ln in ax.lines if ln.get_gid() == "failover"]) == 1
        legend = ax.get_legend()
        assert legend is not None and "2 stalls (2.3 s)" in [t.get_text() for t in legend.get_texts()]
    assert "2 stalls (2.3 s), 1 failover" in fig.get_suptitle()


def test_cmsd_mb_is_a_dashed_step_on_the_bitrate_panel_where_the_edge_sent_it():
    rate = panels(fibre_session())["bitrate"]
    mb = line(rate, "cmsd-mb")
    assert mb is not None and mb.get_linestyle() == "--" and mb.get_drawstyle() == "steps-post"
    assert mb.get_label() == "CMSD mb (edge's max suggested bitrate)"
    y = list(mb.get_ydata())[:-1]
    assert [None if math.isnan(v) else v for v in y] == [None if h is None else h / 1e6 for h in MB_BPS]
    assert line(panels(fibre_session(with_mb=False))["bitrate"], "cmsd-mb") is None


def test_a_narrow_ladder_keeps_a_linear_bitrate_axis():
    ladder = [1_000_000, 2_000_000, 4_000_000]
    report = session([segment(i, r, ladder=ladder) for i, r in enumerate([0, 1, 2, 2])], ladder=ladder, stalls=0)
    axes = panels(report)
    assert axes["bitrate"].get_yscale() == "linear" and axes["throughput"].get_yscale() == "log"
    assert list(axes["bitrate"].get_yticks()) == pytest.approx([1.0, 2.0, 4.0])
    assert not [p for ax in axes.values() for p in ax.patches if p.get_gid() == "stall"]
    assert "0 stalls (0.0 s)" in report.figure().get_suptitle()


def test_plot_writes_a_png_for_a_full_session_and_for_one_that_never_fetched(tmp_path):
    fibre_session().plot(tmp_path / "fibre.png")
    assert (tmp_path / "fibre.png").read_bytes()[:4] == b"\x89PNG"
    failed = SessionReport(ok=False, error="resolve failed", source="test", device="tv-4k", network="fiber",
                           abr="throughput", speed=1.0, startup_s=None, played_s=0.0, content_s=0.0, session_s=1.0)
    failed.plot(tmp_path / "failed.png")
    assert (tmp_path / "failed.png").read_bytes()[:4] == b"\x89PNG"


def test_the_cmsd_hint_is_in_the_json_report(tmp_path):
    report = fibre_session()
    report.write_json(tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [s["mb_bps"] for s in doc["segments"]] == MB_BPS
    assert SegmentRecord(**doc["segments"][3]) == report.segments[3]  # a segment dict reads back whole
    legacy = {k: v for k, v in doc["segments"][0].items() if k != "mb_bps"}
    assert SegmentRecord(**legacy).mb_bps is None  # reports written before the field still read


def test_rungs_a_few_percent_apart_keep_their_gridlines_but_one_label():
    ladder = [207_000, 420_000, 778_000, 1_270_000, 2_120_000, 3_200_000, 3_430_000]  # two codecs at 1080p
    report = session([segment(i, r, ladder=ladder) for i, r in enumerate([0, 2, 4, 6, 6])], ladder=ladder)
    rate = panels(report)["bitrate"]
    assert list(rate.get_yticks()) == pytest.approx([b / 1e6 for b in ladder])
    labels = [t.get_text() for t in rate.get_yticklabels()]
    assert labels[-1] == "3.43 Mbps" and labels[-2] == ""  # the played one is named
    assert labels[:-2] == ["207 kbps", "420 kbps", "778 kbps", "1.27 Mbps", "2.12 Mbps"]


def test_throughput_from_100_kbps_to_1_gbps_is_labelled_by_decade():
    segs = [segment(i, r) for i, r in enumerate(PLAYED_RUNGS[:5])]
    for s, bps in zip(segs, [100e3, 1e6, 10e6, 100e6, 1e9]):
        s.throughput_bps = bps
    thr = panels(session(segs))["throughput"]
    lo, hi = thr.get_ylim()
    assert lo <= 0.1 and hi >= 1000
    labels = {t.get_text() for t in thr.get_yticklabels()}
    assert {"100 kbps", "1 Mbps", "10 Mbps", "100 Mbps", "1 Gbps"} <= labels
