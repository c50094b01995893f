"""Viewer behaviour profiles (`client.load.behaviour`): the TOML file, its errors, and the draws.

Pure and fast: the draws' frequencies are checked against bounds derived from their distributions
(binomial or Poisson, 5 sigma), never hand-tuned bands.
"""
from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from client.load.behaviour import (DEFAULT_FILE, MAX_EVENTS, PLAY_FROM_0_MIX, BehaviourError, BehaviourMix,
                                   BehaviourProfile, draw_script, load_behaviours, summarize_mix)
from client.load.plan import PlanInputs, plan_sessions
from client.load.specs import MixEntry
from client.script import ViewerScript


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "viewers.toml"
    p.write_text(text)
    return p


def within_binomial(k: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(k - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def test_the_shipped_profiles_load_state_their_assumptions_and_are_all_drawn():
    mix = load_behaviours("default")
    assert mix.source == str(DEFAULT_FILE)
    names = [p.name for p in mix.profiles]
    assert "play-from-0" in names and len(names) >= 3
    assert "ASSUMPTION" in DEFAULT_FILE.read_text()
    rng = random.Random(1)
    assert {draw_script(mix, rng).name for _ in range(500)} == set(names)
    assert [r["name"] for r in summarize_mix(mix)] == names
    assert sum(r["share"] for r in summarize_mix(mix)) == pytest.approx(1.0, abs=1e-3)


def test_play_from_0_is_always_available():
    for source in (None, "play-from-0"):
        mix = load_behaviours(source)
        assert mix is PLAY_FROM_0_MIX
        assert draw_script(mix, random.Random(3)).plays_from_0


def test_a_file_parses_into_profiles(tmp_path):
    mix = load_behaviours(write(tmp_path, """
[profile.play-from-0]
weight = 1
[profile.binge]
weight = 3
start = "resume"
resume_range = [0.2, 0.4]
watch = "uniform"
watch_range_s = [30, 60]
seeks_per_min = 2
seek_random = 0.5
seek_forward = 1
seek_jump_s = [5, 5]
pauses_per_min = 1.5
pause_s = [1, 2]
"""))
    base, binge = mix.profiles
    assert base == BehaviourProfile("play-from-0", weight=1.0)
    assert binge == BehaviourProfile("binge", weight=3.0, start="resume", resume_range=(0.2, 0.4), watch="uniform",
                                     watch_range_s=(30.0, 60.0), seeks_per_min=2.0, seek_random=0.5, seek_forward=1.0,
                                     seek_jump_s=(5.0, 5.0), pauses_per_min=1.5, pause_s=(1.0, 2.0))


@pytest.mark.parametrize("text, message", [
    ("", "viewers.toml: no profiles (write [profile.NAME] tables)"),
    ("[profile]\n", "viewers.toml: no profiles (write [profile.NAME] tables)"),
    ("x = 1\n[profile.a]\n", "viewers.toml: unknown table or key 'x' (profiles are [profile.NAME])"),
    ("[profile.a]\nwieght = 1\n", "viewers.toml: profile 'a': unknown key 'wieght' (known: pause_s, pauses_per_min, "
     "resume_range, seek_forward, seek_jump_s, seek_random, seeks_per_min, start, watch, watch_mean_s, watch_range_s, "
     "weight)"),
    ("[profile.a]\nweight = 0\n", "viewers.toml: profile 'a': weight must be > 0"),
    ("[profile.a]\nweight = true\n", "viewers.toml: profile 'a': weight must be a number"),
    ("[profile.a]\nstart = \"middle\"\n", "viewers.toml: profile 'a': start must be one of '0', 'resume'"),
    ("[profile.a]\nwatch = \"half\"\n", "viewers.toml: profile 'a': watch must be one of 'full', 'exponential', "
     "'uniform'"),
    ("[profile.a]\nseeks_per_min = -1\n", "viewers.toml: profile 'a': seeks_per_min must be >= 0"),
    ("[profile.a]\nseek_forward = 1.5\n", "viewers.toml: profile 'a': seek_forward is a share, within [0, 1]"),
    ("[profile.a]\nseek_jump_s = [60, 10]\n", "viewers.toml: profile 'a': seek_jump_s must be [low, high] with "
     "0 <= low <= high"),
    ("[profile.a]\nseek_jump_s = [1]\n", "viewers.toml: profile 'a': seek_jump_s must be [low, high], two numbers"),
    ("[profile.a]\nresume_range = [0.5, 2]\n", "viewers.toml: profile 'a': resume_range is a share of the title, "
     "within [0, 1]"),
    ("[profile.a]\npause_s = [0, 5]\n", "viewers.toml: profile 'a': pause_s must be > 0"),
    ("[profile.a]\nwatch_mean_s = 0\n", "viewers.toml: profile 'a': watch_mean_s must be > 0"),
    ("[profile]\na = 1\n", "viewers.toml: profile 'a': must be a table"),
])
def test_bad_files_are_one_line(tmp_path, text, message):
    with pytest.raises(BehaviourError) as e:
        load_behaviours(write(tmp_path, text))
    assert str(e.value) == message


def test_an_unreadable_or_broken_file_is_one_line(tmp_path):
    with pytest.raises(BehaviourError, match=r"^behaviour file .*nope.toml: No such file or directory$"):
        load_behaviours(tmp_path / "nope.toml")
    with pytest.raises(BehaviourError, match=r"^viewers.toml: not TOML: "):
        load_behaviours(write(tmp_path, "[profile.a\n"))


def test_draws_are_deterministic_for_a_seed_and_round_trip_through_their_words():
    mix = load_behaviours("default")
    a = [draw_script(mix, random.Random("s-1")) for _ in range(3)]
    b = [draw_script(mix, random.Random("s-1")) for _ in range(3)]
    assert a == b
    r1, r2 = random.Random("s-1"), random.Random("s-2")
    assert [draw_script(mix, r1) for _ in range(50)] != [draw_script(mix, r2) for _ in range(50)]
    rng = random.Random(9)
    for _ in range(1000):
        s = draw_script(mix, rng)
        assert ViewerScript.from_dict(s.as_dict()) == s


def test_profile_shares_follow_their_weights():
    mix = BehaviourMix((BehaviourProfile("a", weight=1.0), BehaviourProfile("b", weight=3.0)), "t")
    rng = random.Random(5)
    n = 4000
    k = sum(draw_script(mix, rng).name == "a" for _ in range(n))
    assert within_binomial(k, n, 0.25)


def test_seek_counts_follow_the_rate_and_the_watch_time():
    # seeks are a Poisson process of rate r over an exponential watch time W (mean m): the count per
    # session has mean r*m and variance r*m + (r*m)^2 (a geometric mixture)
    rate_s, mean_s = 2.0 / 60.0, 300.0
    p = BehaviourProfile("s", watch="exponential", watch_mean_s=mean_s, seeks_per_min=2.0, seek_forward=0.7)
    mix = BehaviourMix((p,), "t")
    rng = random.Random(11)
    n = 3000
    scripts = [draw_script(mix, rng) for _ in range(n)]
    counts = [len(s.seeks) for s in scripts]
    mu = rate_s * mean_s
    assert abs(sum(counts) / n - mu) <= 5 * math.sqrt((mu + mu * mu) / n)
    assert all(s.watch_s is not None and s.watch_s >= 1.0 for s in scripts)
    assert all(x.at_s < s.watch_s for s in scripts for x in s.seeks)  # no act after the quit
    jumps = [x.to.by_s for s in scripts for x in s.seeks]
    assert all(j is not None and 10.0 <= abs(j) <= 60.0 for j in jumps)
    assert within_binomial(sum(j > 0 for j in jumps), len(jumps), 0.7)


def test_random_seeks_resume_starts_full_watches_and_the_event_cap():
    p = BehaviourProfile("r", start="resume", resume_range=(0.3, 0.6), seeks_per_min=30.0, seek_random=0.25,
                         pauses_per_min=30.0, pause_s=(2.0, 3.0))
    mix = BehaviourMix((p,), "t")
    rng = random.Random(2)
    scripts = [draw_script(mix, rng, horizon_s=600.0) for _ in range(400)]
    assert all(s.watch_s is None for s in scripts)  # watch = "full"
    assert all(s.start.fraction is not None and 0.3 <= s.start.fraction <= 0.6 for s in scripts)
    assert all(len(s.seeks) == MAX_EVENTS and len(s.pauses) == MAX_EVENTS for s in scripts)  # 300 expected, capped
    seeks = [x for s in scripts for x in s.seeks]
    assert within_binomial(sum(x.to.fraction is not None for x in seeks), len(seeks), 0.25)
    assert all(2.0 <= x.duration_s <= 3.0 for s in scripts for x in s.pauses)


def test_the_plan_draws_behaviours_from_their_own_rng():
    base = dict(players=300, titles=("a", "b"), devices=(MixEntry("laptop-chrome", 1.0),),
                networks=(MixEntry("4g", 1.0), MixEntry("3g", 1.0)), regions=(MixEntry("r", 1.0),), workers=3)
    plain = plan_sessions(PlanInputs(**base), seed=4)
    mixed = plan_sessions(PlanInputs(**base, behaviours=load_behaviours("default")), seed=4)
    # the rest of a seed's plan is unchanged by drawing behaviours
    fields = ("session_id", "at_s", "device", "network", "region", "title", "worker", "format")
    assert [tuple(getattr(p, f) for f in fields) for p in plain] == [tuple(getattr(p, f) for f in fields) for p in mixed]
    assert {p.behaviour for p in plain} == {"play-from-0"} and all(p.script is None for p in plain)
    names = {p.behaviour for p in mixed}
    assert names == {x.name for x in load_behaviours("default").profiles}
    assert all((p.script is None) == (p.behaviour == "play-from-0") for p in mixed)
    again = plan_sessions(PlanInputs(**base, behaviours=load_behaviours("default")), seed=4)
    assert again == mixed
    # and through the worker's JSON job
    assert all(type(p).from_dict(p.as_dict()) == p for p in mixed)
