"""DASH in a real browser: Debian's chromium (playwright-core, browser/bridge.mjs) plays the watch
page with ``format=dash`` through dash.js and through Shaka Player (both from npm), in both layouts:

* the steered MPD plays: currentTime advances, frames are decoded, no fatal or media error;
* the audio and subtitle languages asked for in the URL are the ones playing (fragments of that
  audio track, cues of that language showing);
* the edge serving the session is killed (SIGKILL): playback goes on from another edge (another
  service location of the MPD: DASH content steering and the players' own failover) without
  standing still longer than ``MAX_STALL_S``.

Screenshots go to artifacts/interop/ (dash-*.png).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from interop_helpers import (SUBTITLE_TEXT, TITLE, TITLE_BYTERANGE, Browser, browser_session, need_node_package,
                             snapshot, wait_for)

MAX_STALL_S = 6.0
FAILOVER_WITHIN_S = 16.0


class NoFailover(AssertionError):
    """Playback did not go on from another edge after its edge died (only the failover step raises it)."""


#: dash.js 5.2.1 does not move a SegmentList (byte-range) presentation to the next service location:
#: it retries the dead edge, drops the segment ("No audio bytes to push") and stands still, while
#: the same MPD's SegmentTemplate twin moves. Strict: the day dash.js fixes it, this test says so.
DASHJS_BYTERANGE = pytest.mark.xfail(raises=NoFailover, strict=True, reason=(
    "dash.js 5.2.1 does not fail a SegmentList (mediaRange) presentation over to another service location"))
CASES = [
    pytest.param("dash.js", "dashjs", TITLE, id="dashjs-segments"),
    pytest.param("dash.js", "dashjs", TITLE_BYTERANGE, id="dashjs-byterange", marks=DASHJS_BYTERANGE),
    pytest.param("shaka", "shaka-player", TITLE, id="shaka-segments"),
    pytest.param("shaka", "shaka-player", TITLE_BYTERANGE, id="shaka-byterange"),
]


@pytest.fixture(scope="module")
def browser(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with browser_session(tmp_path_factory.mktemp("chromium-dash-profile"), artifacts, "-dash") as b:
        yield b


def brief(s: dict[str, Any]) -> str:
    keys = ("mode", "format", "playerVersion", "currentTime", "decodedFrames", "fragEdge", "fragHost", "mainHosts",
            "pathwayPriority", "audio", "subtitles", "level", "fatal", "mediaError")
    return json.dumps({k: s.get(k) for k in keys} | {"errors": s.get("errors", [])[-5:]})[:3000]


@pytest.mark.parametrize(("player", "package", "title"), CASES)
def test_chromium_plays_dash_with_the_chosen_tracks_and_survives_its_edge_dying(browser, stack, artifacts, player,
                                                                                package, title):
    need_node_package(package)
    region = "lab-east"
    session = f"dash-{player}-{title}"
    browser.call("open", url=f"{stack.url_of('steering')}/watch/{title}?format=dash&player={player}&region={region}"
                             f"&audio=fr&subs=fr&buffer_s=6&session={session}")
    last: dict[str, Any] = {}

    def playing_for(seconds: float) -> dict[str, Any] | None:
        last.update(snapshot(browser))
        assert not last["fatal"] and last["mediaError"] is None, brief(last)
        return dict(last) if last["currentTime"] > seconds and (last["decodedFrames"] or 0) > 25 * seconds / 2 else None

    try:
        s = wait_for(lambda: playing_for(2.0), 40, f"{player} to play 2 s of the MPD")
    except AssertionError as e:
        raise AssertionError(f"{e}: {brief(last)}") from None
    assert (s["mode"], s["format"]) == (player, "dash") and s["level"]["videoCodec"].startswith("avc1"), brief(s)
    # the tracks asked for are the ones loaded and shown
    try:
        s = wait_for(lambda: (x := snapshot(browser))["subtitles"] and x["subtitles"]["cues"] > 0
                     and "-fr/" in x["audioFragUrl"] and x, 15, "French audio fragments and French cues")
    except AssertionError as e:
        raise AssertionError(f"{e}: {brief(snapshot(browser))}") from None
    assert s["audio"]["lang"] == "fr", brief(s)
    assert (s["subtitles"]["lang"], s["subtitles"]["showingLang"]) == ("fr", "fr"), brief(s)
    assert any(SUBTITLE_TEXT["fr"] in text for text in s["subtitles"]["cueTexts"]), s["subtitles"]
    shot = f"dash-{player}-{title}"
    browser.call("screenshot", path=str(artifacts / f"{shot}-playing.png"))

    # the edge serving this session dies
    host = s["fragHost"]
    victim = stack.edge_of_host(host)
    killed_at_media_s = s["currentTime"]
    stack.kill(victim)
    killed_at = time.monotonic()
    try:
        moved: dict[str, Any] = {}
        last_time, last_change, worst_stall = s["currentTime"], time.monotonic(), 0.0

        def moved_on() -> bool:
            nonlocal last_time, last_change, worst_stall
            x = snapshot(browser)
            moved.update(x)
            assert not x["fatal"] and x["mediaError"] is None, brief(x)
            now = time.monotonic()
            if x["currentTime"] > last_time:
                last_time, last_change = x["currentTime"], now
            worst_stall = max(worst_stall, now - last_change)
            return x["fragHost"] not in ("", host) and x["currentTime"] > killed_at_media_s + 4

        try:
            wait_for(moved_on, FAILOVER_WITHIN_S + 6, "video fragments from another edge and 4 s more playback")
        except AssertionError as e:
            raise NoFailover(f"{e}: {brief(moved)}") from None
        assert time.monotonic() - killed_at < FAILOVER_WITHIN_S + 6
        assert worst_stall < MAX_STALL_S, f"playback stood still {worst_stall:.1f} s: {brief(moved)}"
        assert moved["fragEdge"] != victim and moved["fragEdge"] in {p["id"] for p in moved["edges"]}
        assert moved["audio"]["lang"] == "fr" and host not in moved["audioFragUrl"], brief(moved)
        browser.call("screenshot", path=str(artifacts / f"{shot}-after-failover.png"))
        print(f"\n{player} {title}: {moved['playerVersion']}, moved {host} -> {moved['fragHost']} "
              f"(stood still at most {worst_stall:.1f} s)")
    finally:
        stack.restart(victim)
