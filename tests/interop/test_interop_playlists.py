"""Every playlist we write, read by parsers none of us wrote: the ``m3u8`` package in strict mode,
and hls.js's own ``M3U8Parser`` in node (hls.js exports it from its ESM build, ``dist/hls.mjs``).

Playlists are fetched as players get them: the steered multivariant from the steering service,
the stored multivariant and every media, I-frame and subtitle playlist through an edge with the
token ``/play`` handed out; for both layouts (segments, byte ranges).
"""
from __future__ import annotations

import json
from urllib.parse import urljoin

import m3u8
import pytest
from interop_helpers import TITLE, TITLE_BYTERANGE, http_get, need_node_package, play, playlists_of, run_node

LAYOUTS = [pytest.param(TITLE, "segments", id="segments"), pytest.param(TITLE_BYTERANGE, "byterange", id="byterange")]


def title_json(doc: dict) -> dict:
    status, body = http_get(urljoin(doc["edge_multivariant_url"], "title.json"))
    assert status == 200
    return json.loads(body)


@pytest.mark.parametrize(("title", "layout"), LAYOUTS)
def test_m3u8_strict_parse_accepts_every_playlist(stack, title, layout):
    doc = play(stack, title, session=f"m3u8-{layout}")
    catalog = title_json(doc)
    playlists = playlists_of(doc)
    assert {p.kind for p in playlists} == {"steered", "multivariant", "media", "iframe", "subtitle"}
    refused = []
    for p in playlists:
        try:
            m3u8.parse(p.text, strict=True)
        except Exception as e:  # noqa: BLE001 - any refusal is the finding
            refused.append(f"{p.kind} playlist {p.url}: {e!r}")
    by_kind = {k: [m3u8.loads(p.text, uri=p.url) for p in playlists if p.kind == k]
               for k in ("steered", "multivariant", "media", "iframe", "subtitle")}
    master = by_kind["multivariant"][0]
    assert master.is_variant and len(master.playlists) == 3 and len(master.iframe_playlists) == 2
    assert sorted({m.language for m in master.media if m.type == "AUDIO"}) == ["en", "fr"]
    assert sorted(m.language for m in master.media if m.type == "SUBTITLES") == ["en", "fr"]
    steered = by_kind["steered"][0]
    pathways = [p["id"] for p in doc["pathways"]]
    assert [p.stream_info.pathway_id for p in steered.playlists] == [pw for pw in pathways for _ in range(3)]
    assert steered.content_steering is not None and "/steer/" in steered.content_steering.absolute_uri
    segments = {v["id"]: len(v["segments"]) for v in catalog["video"]}
    for media in by_kind["media"] + by_kind["subtitle"]:
        assert media.is_endlist and media.playlist_type.upper() == "VOD" and media.segments
        assert abs(sum(s.duration for s in media.segments) - catalog["duration_s"]) < 0.2
    for media in by_kind["media"]:
        assert media.segment_map, "fMP4 media playlists carry EXT-X-MAP"
        if layout == "byterange":
            assert all(s.byterange for s in media.segments)
    for iframe in by_kind["iframe"]:
        assert iframe.is_i_frames_only and all(s.byterange for s in iframe.segments)
        rendition = iframe.segment_map[0].uri.split("/")[-2]
        assert len(iframe.segments) == segments[rendition]
    # (strict mode refuses every line it does not know, comments included, though RFC 8216 §4.1
    # allows "#" comment lines: a playlist meant for every client carries none)
    assert not refused, "m3u8's strict parse refused:\n" + "\n".join(refused)


@pytest.mark.parametrize(("title", "layout"), LAYOUTS)
def test_hlsjs_parser_accepts_every_playlist(stack, title, layout):
    need_node_package("hls.js")
    doc = play(stack, title, session=f"hlsjs-{layout}")
    playlists = playlists_of(doc)
    parsed = run_node("parse_playlists.mjs", [p.__dict__ for p in playlists])
    refused = [(r["kind"], r["url"], r["error"]) for r in parsed if not r["ok"]]
    assert not refused, f"hls.js refused: {refused}"
    ours = {p.url: p for p in playlists}
    pathways = [p["id"] for p in doc["pathways"]]
    for r in parsed:
        text = ours[r["url"]].text
        if r["kind"] in ("multivariant", "steered"):
            model = m3u8.loads(text, uri=r["url"])
            assert [lv["url"] for lv in r["levels"]] == [urljoin(r["url"], p.uri) for p in model.playlists]
            assert {lv["videoCodec"] for lv in r["levels"]} == {"avc1.64000d", "avc1.640015"}
            assert all(lv["audioCodec"] == "mp4a.40.2" for lv in r["levels"])
            assert len(r["iframeLevels"]) == len(model.iframe_playlists)
            assert sorted({t["lang"] for t in r["audio"]}) == ["en", "fr"]
            assert sorted({t["lang"] for t in r["subtitles"]}) == ["en", "fr"]
        if r["kind"] == "steered":
            # hls.js sees the pathways, their groups and the steering server, as content steering needs
            assert r["contentSteering"]["pathwayId"] == doc["pathways"][0]["id"]
            assert "/steer/" in r["contentSteering"]["uri"]
            assert sorted({lv["pathwayId"] for lv in r["levels"]}) == sorted(pathways)
            for lv in r["levels"]:
                assert all(g.endswith("@" + lv["pathwayId"]) for g in lv["audioGroups"] + lv["subtitleGroups"])
                assert lv["url"].startswith(next(p["base_url"] for p in doc["pathways"] if p["id"] == lv["pathwayId"]))
            assert len({lv["stableVariantId"] for lv in r["levels"]}) == 3
        if r["kind"] in ("media", "iframe", "subtitle"):
            model = m3u8.loads(text, uri=r["url"])
            assert r["live"] is False and r["type"] == "VOD"
            assert [f["url"] for f in r["fragments"]] == [s.absolute_uri for s in model.segments]
            assert abs(r["totalduration"] - sum(s.duration for s in model.segments)) < 0.01
            assert r["iframesOnly"] == (r["kind"] == "iframe")
            if r["kind"] != "subtitle":
                assert all(f["initUrl"] and f["initUrl"].endswith(".mp4") for f in r["fragments"])
            ranged = r["kind"] == "iframe" or (layout == "byterange" and r["kind"] == "media")
            assert all(bool(f["byteRange"]) == ranged for f in r["fragments"]), r["url"]
