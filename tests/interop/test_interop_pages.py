"""The steering service's pages (edge/steering/pages.py) over HTTP: the status page and its JSON,
the watch page and what it loads, and the session book behind "live sessions".

The pages are checked in a real browser in test_interop_browser.py; here, what a script sees.
"""
from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import pytest
from aiohttp.test_utils import TestClient, TestServer
from interop_helpers import ADMIN_KEY, DEVICE, REPO, TITLE, http_get, play, title_doc

from edge.steering import EdgeEntry, RegionEntry, SigningKeys, SteeringConfig, SteeringInputs, build_app
from edge.steering.pages import SessionBook, SessionSeen, edge_rows, live_window_s, observe_request, region_rows
from edge.steering.registry import Registry

# -- the session book (pure) ------------------------------------------------------------------


def test_session_book_keeps_sessions_heard_within_the_window():
    book = SessionBook()
    book.record("a", title="t", region="r1", device="iphone", pathway="e1", now_s=0.0)
    book.record("b", title="t", region="r2", now_s=5.0)
    book.record("a", title="t", region="r1", pathway="e2", throughput_bps=3e6, now_s=8.0)
    live = book.live(now_s=12.0, window_s=5.0)
    assert [s.session for s in live] == ["a"]
    a = live[0]
    assert (a.pathway, a.device, a.throughput_bps, a.requests, a.first_seen_s, a.last_seen_s) == \
        ("e2", "iphone", 3e6, 2, 0.0, 8.0)
    assert [s.session for s in book.live(now_s=9.0, window_s=5.0)] == ["a", "b"]


def test_session_book_is_bounded_and_forgets_the_least_recently_heard():
    book = SessionBook(max_sessions=3, max_titles=2)
    for n, s in enumerate(["a", "b", "c", "a", "d"]):
        book.record(s, title=f"t{n}", region="r", now_s=float(n))
        book.note_title(f"t{n}", float(n))
    assert list(book.sessions) == ["c", "a", "d"]
    assert list(book.titles) == ["t3", "t4"]


@pytest.mark.parametrize(("route", "query", "status", "body", "expected"), [
    ("play", {"region": "r1", "device": "iphone"}, 200, b'{"session": "s1", "edge": "e1"}', ("s1", "e1", "iphone")),
    ("play", {"region": "r1", "session": "s2"}, 200, b'{"session": "s2", "edge": "e3"}', ("s2", "e3", "")),
    ("steer", {"region": "r1", "session": "s3", "_HLS_pathway": "e2", "_HLS_throughput": "5e6"}, 200, None,
     ("s3", "e2", "")),
    ("master", {"region": "r1", "session": "s4", "device": "tv-4k"}, 200, None, ("s4", "", "tv-4k")),
    ("steer", {"region": "r1", "session": "s5"}, 503, None, None),
    ("steer", {"region": "r1"}, 200, None, None),
])
def test_observe_request(route, query, status, body, expected):
    book = SessionBook()
    observe_request(book, route=route, match_info={"title": "t"}, query=query, status=status, body=body, now_s=1.0)
    got = [(s.session, s.pathway, s.device) for s in book.live(1.0, 10.0)]
    assert got == ([expected] if expected else [])
    assert list(book.titles) == (["t"] if route == "play" and status == 200 else [])


def test_edge_and_region_rows_say_draining_silent_and_evacuated():
    inputs = SteeringInputs(
        regions=(RegionEntry(name="r1", origin_urls=("http://o1",), preference=("r2",)),
                 RegionEntry(name="r2", origin_urls=("http://o2",))),
        edges=tuple(EdgeEntry(name=n, region=r, url=f"http://{n}") for n, r in
                    [("ok", "r1"), ("drain", "r1"), ("gone", "r1"), ("never", "r1"), ("west", "r2")]),
        keys=SigningKeys(active="k", secrets={"k": "s"}))
    registry = Registry(inputs, heartbeat_timeout_s=3.0)
    registry.record_heartbeat({"name": "gone", "status": "ok", "bytes_out_per_s": 5}, 0.0)
    for name, status in (("ok", "ok"), ("drain", "draining"), ("west", "ok")):
        registry.record_heartbeat({"name": name, "status": status, "hit_ratio": 0.75, "bytes_out_per_s": 1000,
                                   "active_connections": 4}, 9.0)
    registry.evacuate("r2")
    snapshot = registry.snapshot(10.0)
    live = [SessionSeen(session="s", title="t", region="r1", pathway="ok", first_seen_s=1.0, last_seen_s=9.0)]
    rows = {r["name"]: r for r in edge_rows(snapshot, registry.heartbeats, live)}
    got = {n: (r["in_rotation"], r["reason"], r["status"], r["draining"], r["sessions"]) for n, r in rows.items()}
    assert got == {"ok": (True, "in rotation", "ok", False, 1),
                   "drain": (False, "draining", "draining", True, 0),
                   "gone": (False, "missed heartbeats", "silent", False, 0),
                   "never": (False, "no heartbeat yet", "silent", False, 0),
                   "west": (False, "region evacuated", "ok", False, 0)}
    assert (rows["ok"]["hit_ratio"], rows["ok"]["bytes_out_per_s"], rows["ok"]["active_connections"]) == (0.75, 1000, 4)
    assert rows["never"]["hit_ratio"] is None and rows["never"]["last_heartbeat_age_s"] is None
    regions = region_rows([("r1", ("http://o1",), ("r2",)), ("r2", ("http://o2",), ())], snapshot, live)
    assert [(r["name"], r["evacuated"], r["edges"], r["edges_in_rotation"], r["sessions"]) for r in regions] == [
        ("r1", False, 4, 1, 1), ("r2", True, 1, 0, 0)]


def test_live_window_follows_the_steering_ttl():
    assert live_window_s(2) == 10.0 and live_window_s(5) == 15.0


# -- over HTTP, on the interop stack -------------------------------------------------------------


def status_doc(stack) -> dict:
    status, body = http_get(f"{stack.url_of('steering')}/_/status")
    assert status == 200
    return json.loads(body)


def test_status_json_shows_regions_edges_titles_and_live_sessions(stack):
    doc = play(stack, TITLE, session="status-json-session")
    # a content-steering request, as hls.js makes every TTL, names the pathway in use
    status, _ = http_get(doc["content_steering_uri"] + f"&_HLS_pathway={doc['edge']}&_HLS_throughput=2500000")
    assert status == 200
    st = status_doc(stack)
    assert [(r["name"], r["edges"], r["evacuated"]) for r in st["regions"]] == [("lab-east", 2, False),
                                                                                 ("lab-west", 1, False)]
    edges = {e["name"]: e for e in st["edges"]}
    assert sorted(edges) == ["edge-east-a", "edge-east-b", "edge-west-a"]
    for e in edges.values():
        assert e["in_rotation"] and e["status"] == "ok" and not e["draining"]
        assert e["last_heartbeat_age_s"] is not None and e["last_heartbeat_age_s"] < 3
        for key in ("hit_ratio", "bytes_out_per_s", "load_fraction"):
            assert isinstance(e[key], (int, float)), (key, e)
    title = next(t for t in st["titles"] if t["title"] == TITLE)
    assert (title["audio"], title["subtitles"], title["codecs"], title["duration_s"]) == (["en", "fr"], ["en", "fr"],
                                                                                          ["h264"], 30.0)
    session = next(s for s in st["sessions"] if s["session"] == "status-json-session")
    assert (session["title"], session["region"], session["device"], session["edge"], session["throughput_bps"]) == \
        (TITLE, "lab-east", DEVICE, doc["edge"], 2500000.0)
    assert edges[doc["edge"]]["sessions"] >= 1 and st["sessions_live"] >= 1


def test_status_page_is_plain_html_that_refreshes_itself(stack):
    status, body = http_get(f"{stack.url_of('steering')}/")
    html = body.decode()
    assert status == 200 and "<table id=\"edges\">" in html and "/static/status.js" in html
    status, body = http_get(f"{stack.url_of('steering')}/static/status.js")
    script = body.decode()
    assert status == 200 and "/_/status" in script and "X-Admin-Key" in script and "setInterval" in script


def test_watch_page_carries_the_choices_of_its_url(stack):
    status, body = http_get(f"{stack.url_of('steering')}/watch/{TITLE}?region=lab-west&audio=fr&subs=en&buffer_s=6")
    assert status == 200
    html = body.decode()
    blob = re.search(r'<script id="vodstack-config" type="application/json">(.*?)</script>', html, re.S)
    config = json.loads(blob.group(1))
    assert {k: config[k] for k in ("title", "device", "region", "audio", "subs", "buffer_s", "player")} == {
        "title": TITLE, "device": DEVICE, "region": "lab-west", "audio": "fr", "subs": "en", "buffer_s": 6.0,
        "player": "auto"}
    assert config["regions"] == ["lab-east", "lab-west"]
    has_hlsjs = (REPO / "node_modules/hls.js/dist/hls.min.js").is_file()
    assert config["hlsjs_url"] == ("/static/vendor/hls.min.js" if has_hlsjs else None)
    # the title cannot close the script element or inject markup
    status, body = http_get(f"{stack.url_of('steering')}/watch/a%3C%2Fscript%3E")
    assert status == 404
    status, body = http_get(f"{stack.url_of('steering')}/watch/x?device=%3C/script%3E%3Cb%3E")
    assert status == 200 and "</script><b>" not in body.decode()


def test_static_files_and_hlsjs_are_served(stack):
    base = stack.url_of("steering")
    for name in ("watch.js", "status.js", "pages.css"):
        status, body = http_get(f"{base}/static/{name}")
        assert status == 200 and body
    for bad in ("..%2Fpages.py", ".hidden.js", "pages.py", "nope.js"):
        assert http_get(f"{base}/static/{bad}")[0] == 404
    hls_min = REPO / "node_modules/hls.js/dist/hls.min.js"
    status, body = http_get(f"{base}/static/vendor/hls.min.js")
    if hls_min.is_file():
        assert status == 200 and body == hls_min.read_bytes()
    else:
        assert status == 404 and b"npm ci" in body


async def test_hlsjs_absent_answers_404_saying_how_to_install_it(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VODSTACK_NODE_MODULES", str(tmp_path / "node_modules"))
    inputs = SteeringInputs(regions=(RegionEntry(name="r1", origin_urls=("http://127.0.0.1:9",)),),
                            edges=(EdgeEntry(name="e1", region="r1", url="http://127.0.0.1:9"),),
                            keys=SigningKeys(active="k1", secrets={"k1": "s"}))
    app = build_app(SteeringConfig(port=0, admin_key=ADMIN_KEY, loop="asyncio"), inputs)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/static/vendor/hls.min.js")
        text = await resp.text()
        assert resp.status == 404 and "hls.js is not installed" in text and "npm ci" in text
        assert str(tmp_path / "node_modules") in text
        resp = await client.get(f"/watch/{TITLE}")
        assert resp.status == 200 and '"hlsjs_url": null' in await resp.text()
        resp = await client.get("/_/status")
        doc = await resp.json()
        assert doc["hlsjs"] is False and doc["edges"][0]["status"] == "silent"
        assert doc["titles"] == [] and doc["sessions"] == []


def test_edges_let_pages_of_the_steering_service_read_their_bytes(stack):
    """A browser on the watch page (the steering service's origin) reads playlists and segments
    from the edges (other origins): their answers must carry CORS headers, or no browser plays."""
    doc = play(stack, TITLE, session="cors")
    origin = stack.url_of("steering")
    low = next(v for v in title_doc(doc)["video"] if v["id"] == "h264-234p")
    for path in ("master.m3u8", low["playlist"], low["init"]["path"], low["segments"][0]["path"]):
        url = urljoin(doc["edge_multivariant_url"], path)
        req_headers = {"Origin": origin}
        if path.endswith(".m4s"):
            req_headers["Range"] = "bytes=0-99"
        with urllib.request.urlopen(urllib.request.Request(url, headers=req_headers), timeout=10) as resp:
            allowed = resp.headers.get("Access-Control-Allow-Origin")
        assert allowed in ("*", origin), (
            f"the edge answers {path} without Access-Control-Allow-Origin (got {allowed!r}): "
            "browsers refuse to play from it (edge/ must send CORS headers on /t/ answers)")
