"""A real browser: Debian's chromium, driven by playwright-core (browser/bridge.mjs), plays the
watch page of the steering service and works its status page.

* the video really plays: currentTime advances, frames are decoded, no media error; H.264 rungs
  through hls.js (Chromium has no HEVC through MSE, and its native HLS player has neither track
  choice nor content steering, so the page picks hls.js);
* the audio and subtitle tracks asked for in the URL are the ones playing, and the page's menus
  switch them;
* the edge serving the session is killed (SIGKILL): playback goes on from another edge within a
  few seconds, through hls.js's content steering and the steering service's pathways;
* the status page shows the dead edge out of rotation, and its evacuate/restore buttons work
  with the admin key and refuse a wrong one.

Screenshots go to artifacts/interop/ (watch-*.png, status-*.png), with the bridge's log.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from interop_helpers import (ADMIN_KEY, SUBTITLE_TEXT, TITLE, TITLE_BYTERANGE, Browser, BrowserError, browser_session,
                             http_get, need_node_package, snapshot, wait_for)

#: How long playback may stand still around the death of its edge (hls.js retries, then moves).
MAX_STALL_S = 6.0
FAILOVER_WITHIN_S = 10.0


@pytest.fixture(scope="module")
def browser(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    need_node_package("hls.js")
    with browser_session(tmp_path_factory.mktemp("chromium-profile"), artifacts) as b:
        yield b


def brief(s: dict[str, Any]) -> str:
    keys = ("mode", "currentTime", "decodedFrames", "fragEdge", "fragHost", "mainHosts", "pathwayPriority",
            "audio", "fatal", "mediaError")
    return json.dumps({k: s.get(k) for k in keys} | {"errors": s.get("errors", [])[-5:]})[:3000]


def explain(browser: Browser, s: dict[str, Any]) -> str:
    """``brief(s)``, led by what the browser said about refused cross-origin reads, if anything."""
    try:
        cors = [ln for ln in browser.call("console") if "CORS policy" in ln][:1]
    except BrowserError:
        cors = []
    return (f"the browser refused cross-origin reads: {cors[0]}\n" if cors else "") + brief(s)


def test_chromium_plays_with_the_chosen_tracks_and_survives_its_edge_dying(browser, stack, artifacts):
    steering = stack.url_of("steering")
    browser.call("open", url=f"{steering}/watch/{TITLE}?region=lab-east&audio=fr&subs=fr&buffer_s=4"
                             "&session=chromium-watch")
    last: dict[str, Any] = {}

    def playing_for(seconds: float) -> dict[str, Any] | None:
        last.update(snapshot(browser))
        assert not last["fatal"] and last["mediaError"] is None, explain(browser, last)
        return dict(last) if last["currentTime"] > seconds and last["decodedFrames"] > 25 * seconds / 2 else None

    try:
        s = wait_for(lambda: playing_for(2.0), 40, "the video to play 2 s")
    except AssertionError as e:
        raise AssertionError(f"{e}: {explain(browser, last)}") from None
    assert s["mode"] == "hls.js" and s["level"]["videoCodec"].startswith("avc1"), brief(s)
    assert s["videoWidth"] in (416, 480)
    # the tracks asked for are the ones loaded and shown
    s = wait_for(lambda: (x := snapshot(browser))["subtitles"] and x["subtitles"]["cues"] > 0 and x,
                 10, "French cues to be loaded")
    assert s["audio"]["lang"] == "fr" and "-fr/" in s["audioFragUrl"], brief(s)
    assert (s["subtitles"]["lang"], s["subtitles"]["showing"], s["subtitles"]["showingLang"]) == ("fr", True, "fr")
    assert any(SUBTITLE_TEXT["fr"] in text for text in s["subtitles"]["cueTexts"]), s["subtitles"]
    browser.call("screenshot", path=str(artifacts / "watch-playing.png"))

    # the edge serving this session dies
    host = s["fragHost"]
    victim = stack.edge_of_host(host)
    assert victim == s["fragEdge"]
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
            assert not x["fatal"] and x["mediaError"] is None, explain(browser, x)
            now = time.monotonic()
            if x["currentTime"] > last_time:
                last_time, last_change = x["currentTime"], now
            worst_stall = max(worst_stall, now - last_change)
            return x["fragHost"] not in ("", host) and x["currentTime"] > killed_at_media_s + 4

        try:
            wait_for(moved_on, FAILOVER_WITHIN_S + 6, "video fragments from another edge and 4 s more playback")
        except AssertionError as e:
            raise AssertionError(f"{e}: {explain(browser, moved)}") from None
        first_other = moved["mainHosts"][moved["mainHosts"].index(host) + 1:]
        assert first_other and host not in first_other, moved["mainHosts"]
        assert time.monotonic() - killed_at < FAILOVER_WITHIN_S + 6
        assert worst_stall < MAX_STALL_S, f"playback stood still {worst_stall:.1f} s: {brief(moved)}"
        assert moved["fragEdge"] != victim and moved["fragEdge"] in {p["id"] for p in moved["edges"]}
        assert moved["audio"]["lang"] == "fr" and host not in moved["audioFragUrl"], brief(moved)
        assert moved["decodedFrames"] > s["decodedFrames"] + 50
        browser.call("screenshot", path=str(artifacts / "watch-after-failover.png"))

        # the page's menus switch the tracks
        browser.call("select", selector="#audio", value="en")
        browser.call("select", selector="#subs", value="en")
        s = wait_for(lambda: (x := snapshot(browser))["audio"]["lang"] == "en" and "-en/" in x["audioFragUrl"]
                     and x["subtitles"] and x["subtitles"]["showingLang"] == "en" and x["subtitles"]["cues"] > 0 and x,
                     15, "English audio fragments and English cues after choosing them in the menus")
        assert any(SUBTITLE_TEXT["en"] in text for text in s["subtitles"]["cueTexts"]), s["subtitles"]
        assert not s["fatal"] and s["mediaError"] is None

        # the status page, while the session lives, shows the dead edge out of rotation
        browser.call("open", url=f"{steering}/")
        browser.call("wait", selector="#edges tbody tr td.name")
        wait_for(lambda: browser.evaluate(
            f"document.querySelector('#edges').innerText.includes('missed heartbeats')"), 10,
            f"{victim} shown out of rotation on the status page")
        rows = browser.evaluate("Array.from(document.querySelectorAll('#edges tbody tr')).map(r => r.innerText)")
        assert any(victim in r and "out: missed heartbeats" in r for r in rows), rows
        sessions = browser.evaluate("document.querySelector('#sessions').innerText")
        assert "chromium-wat" in sessions and TITLE in sessions, sessions
        browser.call("screenshot", path=str(artifacts / "status-after-failover.png"))
    finally:
        stack.restart(victim)
    print(f"\nscreenshots: {artifacts}/watch-playing.png, watch-after-failover.png, status-after-failover.png")


def test_chromium_plays_the_byterange_layout(browser, stack):
    """One file per rendition, read by Range (a CORS-safelisted header when it is one range)."""
    browser.call("open", url=f"{stack.url_of('steering')}/watch/{TITLE_BYTERANGE}?region=lab-west&subs=off"
                             "&session=chromium-byterange")
    last: dict[str, Any] = {}

    def played() -> bool:
        last.update(snapshot(browser))
        assert not last["fatal"] and last["mediaError"] is None, explain(browser, last)
        return last["currentTime"] > 3 and last["decodedFrames"] > 50

    try:
        wait_for(played, 40, "the byte-range title to play 3 s")
    except AssertionError as e:
        raise AssertionError(f"{e}: {explain(browser, last)}") from None
    assert "/media.mp4" in last["fragUrl"] and last["audio"]["lang"] == "en" and last["subtitles"] is None


def test_status_page_evacuates_and_restores_a_region_with_the_admin_key(browser, stack, artifacts):
    steering = stack.url_of("steering")

    def evacuated() -> list[str]:
        status, body = http_get(f"{steering}/_/status")
        return json.loads(body)["evacuated"]

    browser.call("open", url=f"{steering}/")
    browser.call("wait", selector="button[data-region='lab-west'][data-action='evacuate']")
    # a wrong key is refused, and the page says so
    browser.call("fill", selector="#admin-key", value="not-the-key")
    browser.call("click", selector="button[data-region='lab-west'][data-action='evacuate']")
    wait_for(lambda: "refused" in browser.evaluate("document.querySelector('#admin-result').innerText"), 10,
             "the page to say the evacuation was refused")
    assert evacuated() == []
    try:
        browser.call("fill", selector="#admin-key", value=ADMIN_KEY)
        browser.call("click", selector="button[data-region='lab-west'][data-action='evacuate']")
        wait_for(lambda: evacuated() == ["lab-west"], 10, "lab-west evacuated")
        browser.call("wait", selector="button[data-region='lab-west'][data-action='restore']")
        text = browser.evaluate("document.querySelector('#regions').innerText")
        assert "evacuated" in text
        browser.call("screenshot", path=str(artifacts / "status-evacuated.png"))
        browser.call("click", selector="button[data-region='lab-west'][data-action='restore']")
        wait_for(lambda: evacuated() == [], 10, "lab-west restored")
        browser.call("wait", selector="button[data-region='lab-west'][data-action='evacuate']")
    finally:
        if evacuated():
            http_get(f"{steering}/regions/lab-west/restore", method="POST", headers={"X-Admin-Key": ADMIN_KEY})
    browser.call("screenshot", path=str(artifacts / "status.png"))
    print(f"\nscreenshots: {artifacts}/status-evacuated.png, status.png")
