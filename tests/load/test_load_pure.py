"""The load tester's pure parts: the seeded plan, merged percentiles and SLOs, Prometheus parsing,
edge rates, the run state, chaos checks, and the report files from a synthetic result."""
from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from client.load.chaos import ChaosApplier, check_chaos, origin_delay_ms
from client.load.collect import RunState
from client.load.edges import EdgeRates, edge_totals, parse_prometheus
from client.load.errors import LoadError
from client.load.plan import PlanInputs, arrival_times, plan_sessions
from client.load.report import write_report
from client.load.specs import ChaosEvent, MixEntry, Popularity, Slo, parse_chaos, parse_mix
from client.load.summary import error_kind, evaluate_slos, format_slo_miss, percentile, summarize
from client.load.worker import redact


def inputs(**kw) -> PlanInputs:
    base = dict(players=2000, titles=("a", "b", "c", "d"),
                devices=parse_mix("iphone:0.5,tv-4k:0.2,laptop-chrome:0.3", what="devices"),
                networks=parse_mix("3g:0.3,4g:0.7", what="networks"),
                regions=(MixEntry("us-east-1", 0.5), MixEntry("eu-west-1", 0.5)),
                popularity=Popularity("zipf", 0.9), ramp_s=100.0, workers=3)
    base.update(kw)
    return PlanInputs(**base)


def test_plan_is_deterministic_and_seeded():
    assert plan_sessions(inputs(), seed=7) == plan_sessions(inputs(), seed=7)
    assert plan_sessions(inputs(), seed=7) != plan_sessions(inputs(), seed=8)


def test_plan_spreads_arrivals_over_the_ramp_and_workers_round_robin():
    plan = plan_sessions(inputs(players=10, ramp_s=50.0, workers=3))
    assert [p.at_s for p in plan] == [5.0 * i for i in range(10)]
    assert [p.worker for p in plan] == [i % 3 for i in range(10)]
    assert len({p.session_id for p in plan}) == 10


def test_plan_follows_the_mixes_and_popularity():
    plan = plan_sessions(inputs(), seed=1)
    devices = Counter(p.device for p in plan)
    assert abs(devices["iphone"] / 2000 - 0.5) < 0.05 and abs(devices["tv-4k"] / 2000 - 0.2) < 0.05
    titles = Counter(p.title for p in plan)
    assert titles["a"] > titles["b"] > titles["c"] > titles["d"]
    expected = Popularity("zipf", 0.9).weights(4)[0]
    assert abs(titles["a"] / 2000 - expected) < 0.05


def test_poisson_arrivals_have_the_asked_rate():
    times = arrival_times(5000, 0.0, 10.0, random.Random(3))
    assert times[0] == 0 and all(b >= a for a, b in zip(times, times[1:]))
    assert abs(len(times) / times[-1] - 10.0) < 0.6


def test_trace_networks_pick_files_and_offsets():
    plan = plan_sessions(inputs(networks=(MixEntry("trace:/tr", 1.0),), trace_files={"trace:/tr": ("/tr/x", "/tr/y")}))
    assert {p.network for p in plan} == {"trace:/tr/x", "trace:/tr/y"}
    assert all(p.network_mix == "trace:/tr" and 0 <= p.trace_offset_s < 600 for p in plan)


def test_the_format_mix_is_drawn_apart_and_respects_what_a_device_plays():
    plain = plan_sessions(inputs(), seed=4)
    assert {p.format for p in plain} == {"device"}
    plays = {"iphone": ("hls",), "tv-4k": ("dash", "hls"), "laptop-chrome": ("hls", "dash")}
    mixed = plan_sessions(inputs(formats=parse_mix("hls:0.5,dash:0.5", what="formats"), device_formats=plays),
                          seed=4)
    # the format has its own RNG: every other draw of the seed's plan is as it was
    assert [(p.at_s, p.device, p.network, p.region, p.title) for p in mixed] == \
        [(p.at_s, p.device, p.network, p.region, p.title) for p in plain]
    assert {p.format for p in mixed if p.device == "iphone"} == {"hls"}  # an iPhone plays no DASH
    both = [p.format for p in mixed if p.device != "iphone"]
    assert abs(both.count("dash") / len(both) - 0.5) < 0.05
    assert plan_sessions(inputs(formats=parse_mix("dash", what="formats"), device_formats=plays), seed=4) != mixed


def test_the_summary_counts_sessions_by_the_format_they_played():
    def session(fmt, startup):
        return {"state": "ok" if fmt else "failed", "format": fmt, "startup_s": startup, "device": "tv-4k",
                "network": "4g", "avg_bitrate_bps": 1e6 if fmt else 0, "stall_s": 0.0, "played_s": 10.0,
                "stalls": 0, "error": None if fmt else "steering refused"}
    s = summarize([session("dash", 1.0), session("dash", 3.0), session("hls", 2.0), session(None, None)])
    assert s["sessions_by_format"] == {"dash": 2, "hls": 1, "none": 1}
    assert s["startup_by_format"]["dash"]["p50"] == 2.0 and s["startup_by_format"]["hls"]["n"] == 1
    assert "none" not in s["startup_by_format"]


@pytest.mark.parametrize("values, q, expected", [
    ([], 50, None), ([3.0], 95, 3.0), ([1, 2, 3, 4], 50, 2.5), ([1, 2, 3, 4, 5], 95, 4.8),
    ([5, 1, 4, 2, 3], 0, 1.0), ([5, 1, 4, 2, 3], 100, 5.0),
])
def test_percentile_interpolates_linearly(values, q, expected):
    assert percentile(values, q) == expected


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_stays_within_the_values(values, q):
    p = percentile(values, q)
    assert min(values) <= p <= max(values) or math.isclose(p, min(values)) or math.isclose(p, max(values))


def session(i: int, state: str = "ok", **kw) -> dict:
    base = {"index": i, "state": state, "device": "iphone", "network": "4g", "network_mix": "4g",
            "startup_s": 1.0 + i, "stall_s": 0.0, "played_s": 10.0, "stalls": 0, "avg_bitrate_bps": 1000 * (i + 1),
            "failovers": [], "bytes": 100, "error": None, "error_kind": ""}
    base.update(kw)
    return base


def test_summary_merges_per_session_values():
    sessions = [session(0), session(1, stall_s=2.0, stalls=2), session(2, "failed", startup_s=None, played_s=0.0,
                                                                      error="every pathway failed (x)"),
                session(3, "cut", failovers=[{"at_s": 1}])]
    s = summarize(sessions)
    assert (s["sessions"], s["finished"], s["failed"], s["cut"], s["started"]) == (4, 2, 1, 1, 3)
    assert s["startup_p50_s"] == 2.0 and s["startup_p95_s"] == percentile([1.0, 2.0, 4.0], 95)
    assert s["rebuffer_ratio"] == round(2.0 / 32.0, 6) and s["stalls_per_session"] == 0.5
    assert s["errors_by_kind"] == {"all-pathways-failed": 1} and s["failovers"] == 1


def test_slo_verdicts_name_what_was_missed():
    summary = summarize([session(0, startup_s=2.7), session(1, startup_s=2.7)])
    verdicts = evaluate_slos((Slo("startup_p95", 2.0), Slo("failed", 0.0)), summary)
    assert [v["missed"] for v in verdicts] == [True, False]
    assert verdicts[0]["message"] == "SLO missed: startup_p95 = 2.7 s > 2 s"
    assert format_slo_miss(Slo("failed", 0), 3) == "SLO missed: failed = 3 > 0"
    assert format_slo_miss(Slo("rebuffer_ratio", 0.01), 0.025) == "SLO missed: rebuffer_ratio = 0.025 > 0.01"


@pytest.mark.parametrize("error, kind", [
    (None, ""), ("steering service unreachable: x", "steering-unreachable"),
    ("steering refused 'x': HTTP 404", "steering-refused"), ("every pathway failed (a: b)", "all-pathways-failed"),
    ("all pathways too slow: a: http://x/v/index.m3u8/00001.m4s: too slow: 5 of 9 bytes", "all-pathways-too-slow"),
    ("something odd", "other"),
])
def test_error_kinds(error, kind):
    assert error_kind(error) == kind


def test_tokens_are_redacted_from_error_texts():
    assert redact("http://h:1/t/abc.def/title/v/1.m4s: refused") == "http://h:1/t/<token>/title/v/1.m4s: refused"


METRICS = """# HELP vodstack_edge_served_bytes_total Body bytes
# TYPE vodstack_edge_served_bytes_total counter
vodstack_edge_served_bytes_total{tier="ram"} 700.0
vodstack_edge_served_bytes_total{tier="disk"} 100.0
vodstack_edge_served_bytes_total{tier="fill"} 200.0
vodstack_edge_fill_bytes_total{upstream="origin \\"main\\""} 250.0
vodstack_edge_requests_total{cache="miss",status="200"} 4.0
vodstack_edge_requests_total{cache="ram_hit",status="200"} 10.0
vodstack_edge_byte_hit_ratio 0.8
garbage line
"""


def test_prometheus_text_and_edge_totals():
    samples = parse_prometheus(METRICS)
    assert samples[("vodstack_edge_fill_bytes_total", (("upstream", 'origin "main"'),))] == 250.0
    tot = edge_totals(samples)
    assert tot["served"] == {"ram": 700.0, "disk": 100.0, "fill": 200.0}
    assert tot["requests"] == {"miss": 4.0, "ram_hit": 10.0} and tot["byte_hit_ratio"] == 0.8


def test_edge_rates_over_an_interval_and_after_a_restart():
    rates = EdgeRates()
    t1 = {"served": {"ram": 100.0, "fill": 100.0}, "fill_bytes": 100.0, "requests": {"miss": 1.0}}
    t2 = {"served": {"ram": 400.0, "fill": 200.0}, "fill_bytes": 200.0, "requests": {"miss": 3.0, "ram_hit": 5.0}}
    assert rates.update(t1, 1.0) is None
    r = rates.update(t2, 2.0)
    assert r["served_bps"] == 8 * 400 and r["hit_ratio"] == 0.75 and r["fills_per_s"] == 2.0
    restarted = {"served": {"fill": 50.0}, "fill_bytes": 50.0, "requests": {"miss": 1.0}}
    r = rates.update(restarted, 3.0)
    assert r["served_bps"] == 8 * 50 and r["hit_ratio"] == 0.0 and r["fill_bps"] == 8 * 50


def test_run_state_sums_workers_and_measures_the_generator():
    rs = RunState(speed=10.0, workers=2, planned=4)
    for w in (0, 1):
        rs.on_message({"type": "ready", "worker": w})
        rs.on_message({"type": "stats", "worker": w, "t_real": 1.0, "active": 2, "launched": 2, "playing": 1,
                       "stalled": 1, "starting": 0, "bytes": 1000, "failovers": 0, "cpu_s": 0.5, "startups": [1.0],
                       "rungs": {"iphone": {"730000": 1}}, "lag_ms": {"p99": 3.0, "max": 4.0}, "rss_bytes": 10})
        rs.on_message({"type": "stats", "worker": w, "t_real": 3.0, "active": 2, "launched": 2, "playing": 2,
                       "stalled": 0, "starting": 0, "bytes": 3000, "failovers": 1, "cpu_s": 1.5, "startups": [],
                       "rungs": {"iphone": {"730000": 1}}, "lag_ms": {"p99": 5.0, "max": 9.0}, "rss_bytes": 10})
        rs.on_message({"type": "session", "worker": w,
                       **session(w, "failed" if w else "ok", error="x steering refused")})
        rs.on_message({"type": "done", "worker": w, "cpu_s": 1.5, "peak_active": 2, "rss_base_bytes": 1000,
                       "rss_at_peak_active_bytes": 3000})
    point = rs.sample(1.0)
    assert point["active"] == 4 and point["t_s"] == 10.0 and point["throughput_bps"] == 8 * 6000
    assert rs.totals()["finished"] == 1 and rs.totals()["failed"] == 1
    assert rs.rungs_by_device() == {"iphone": {730000: 2}} and rs.errors == {"steering-refused": 1}
    res = rs.resources()
    assert res["cpu_per_session"] == round(3.0 / 8.0, 6) and res["rss_per_session_bytes"] == 1000
    assert res["loop_lag_max_ms"] == 9.0


@pytest.mark.parametrize("schedule, kw, needle", [
    ("origin-slow:500ms@4s", {"control_url": None}, "origin-slow:500ms@4s needs the supervisor's control"),
    ("origin-fast:0@4s", {"control_url": None}, "needs the supervisor's control endpoint"),
    ("origin-slow:2m@4s", {}, "the origin delay must be at most 60 s"),
    ("kill:edge-a@1s", {"control_url": None}, "needs the supervisor's control endpoint"),
    ("kill:edge-z@1s", {}, "no server named 'edge-z'"),
    ("evacuate:us-east-1@1s", {"admin_key": None}, "needs the steering admin key"),
    ("restore:mars@1s", {}, "unknown region 'mars'"),
])
def test_chaos_checks_refuse_what_cannot_be_applied(schedule, kw, needle):
    args = dict(control_url="http://127.0.0.1:9", servers={"edge-a"}, regions={"us-east-1"}, admin_key="k")
    args.update(kw)
    with pytest.raises(LoadError, match=needle):
        check_chaos(parse_chaos(schedule), **args)
    check_chaos(parse_chaos("kill:edge-a@1s,evacuate:us-east-1@2s,origin-slow:500ms@3s,origin-fast:0@4s"),
                control_url="http://x", servers={"edge-a"}, regions={"us-east-1"}, admin_key="k")


def test_origin_delay_events_go_to_the_control_endpoint():
    applier = ChaosApplier(None, steering_url="http://s", control_url="http://c/",  # type: ignore[arg-type]
                           admin_key="k")
    slow, fast = parse_chaos("origin-slow:0.25s@3s,origin-fast:9s@4s")
    assert (origin_delay_ms(slow), origin_delay_ms(fast)) == (250, 0)
    assert applier.url_for(slow) == "http://c/_/control/origin-delay?ms=250"
    assert applier.url_for(fast) == "http://c/_/control/origin-delay?ms=0"


def test_report_files_from_a_synthetic_result(tmp_path: Path):
    sessions = [dict(session(i), session_id=f"s{i}", title="t", failovers=[{"at_s": 5.0}] if i == 1 else [])
                for i in range(3)]
    result = {"started_at": "now", "stopped_by": "end", "interrupted": False, "duration_real_s": 1.0,
              "duration_s": 10.0, "config": {"players": 3, "steering_url": "http://x", "speed": 10.0, "workers": 1},
              "summary": {**summarize(sessions), "planned": 3, "not_started": 0},
              "slos": evaluate_slos((Slo("failed", 0),), summarize(sessions)), "resources": {}, "worker_problems": [],
              "chaos": [{"at_s": 4.0, "applied_at_s": 4.1, "action": "kill", "target": "edge-a", "ok": True,
                         "detail": "killed"}],
              "timeline": [{"t_s": float(t), "active": 3, "stalled": 0, "stall_ratio": 0.0, "throughput_bps": 1e6}
                           for t in range(10)],
              "edges": {"series": [{"t_s": float(t), "edge": "edge-a", "hit_ratio": 0.5, "served_bps": 1e6, "up": True}
                                   for t in range(10)]},
              "sessions": sessions, "ChaosEvent": repr(ChaosEvent(1, "kill", "x"))}
    files = write_report(tmp_path, result)
    names = sorted(p.name for p in files)
    assert names == ["bitrate.png", "edges.png", "index.html", "report.json", "startup_cdf.png", "timeline.png"]
    assert json.loads((tmp_path / "report.json").read_text())["sessions"] == sessions
    html = (tmp_path / "index.html").read_text()
    assert "kill:edge-a" in html and "timeline.png" in html


def test_report_without_edge_logs_says_so(tmp_path: Path):
    from client.load.report import _joined_html

    assert "no edge logs joined (give --edge-logs)" in _joined_html(None, False)
    joined = {"files": [{"edge": "edge-a", "lines": 3}], "note": None, "rules": {"fill": "a fill"},
              "requests": {"client": 3, "matched": 3, "unmatched": 0, "edge_lines_unmatched": 0},
              "stalls": {"count": 1, "seconds": 2.0, "sessions": 1,
                         "by_cause": {"fill": {"count": 1, "seconds": 2.0, "share": 1.0}}},
              "sessions": [], "hit_ratio": {"by_device": {}, "by_network": {"4g": {
                  "requests": 3, "hit_requests": 1, "fill_requests": 2, "request_hit_ratio": 1 / 3,
                  "byte_hit_ratio": 0.25}}}}
    page = _joined_html(joined, True)
    assert "Where the stalls came from" in page and "stall_causes.png" in page and "33.3%" in page
