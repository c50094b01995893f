"""Pure: the content-steering manifest (rfc8216bis §7) and the steered multivariant playlist."""
from __future__ import annotations

import m3u8
import pytest

from edge.steering.content_steering import (ManifestError, parse_steer_query, steer_uri,
                                            steering_manifest, validate_manifest)
from edge.steering.ranking import Pathway
from manifests import EdgePathway, PlaylistError
from manifests import steer_multivariant_text as steer_multivariant

TOKEN = "eyJlIjoxfQ.c2ln"
PATHWAYS = [EdgePathway(id="edge-a", url="http://127.0.0.1:9001"),
            EdgePathway(id="edge-b", url="http://127.0.0.1:9002/")]


def test_attribute_lists_keep_quoted_commas(stored_master):
    pl = m3u8.loads(steer_multivariant(stored_master, PATHWAYS, token=TOKEN, title="tiny", server_uri="http://s"))
    assert {p.stream_info.codecs for p in pl.playlists} == {"avc1.64000c,mp4a.40.2", "avc1.64000d,mp4a.40.2"}
    with pytest.raises(PlaylistError):
        steer_multivariant("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,,junk\n", PATHWAYS, token=TOKEN, title="t",
                           server_uri="http://s")


def test_steered_playlist_parses_with_m3u8(stored_master):
    text = steer_multivariant(stored_master, PATHWAYS, token=TOKEN, title="tiny",
                              server_uri="http://127.0.0.1:8400/steer/tiny?session=s&region=r&have=edge-a,edge-b")
    pl = m3u8.loads(text)
    assert pl.is_variant
    assert pl.content_steering.uri.startswith("http://127.0.0.1:8400/steer/tiny?")
    assert pl.content_steering.pathway_id == "edge-a"
    assert len(pl.playlists) == 4 and len(pl.iframe_playlists) == 2 and len(pl.media) == 8
    by_pathway: dict[str, list] = {}
    for p in pl.playlists:
        by_pathway.setdefault(p.stream_info.pathway_id, []).append(p)
    assert set(by_pathway) == {"edge-a", "edge-b"}
    # the same STABLE-VARIANT-IDs on every pathway, distinct inside one
    ids = {k: [p.stream_info.stable_variant_id for p in v] for k, v in by_pathway.items()}
    assert ids["edge-a"] == ids["edge-b"] and len(set(ids["edge-a"])) == 2
    for p in by_pathway["edge-b"]:
        assert p.uri.startswith(f"http://127.0.0.1:9002/t/{TOKEN}/tiny/video/")
        assert p.stream_info.audio == "aac@edge-b" and p.stream_info.subtitles == "subs@edge-b"
        assert p.stream_info.bandwidth in (300000, 600000)
    groups = {(m.group_id, m.language): m for m in pl.media}
    fr = groups[("aac@edge-a", "fr")]
    assert fr.uri == f"http://127.0.0.1:9001/t/{TOKEN}/tiny/audio/fr/index.m3u8"
    assert fr.stable_rendition_id == groups[("aac@edge-b", "fr")].stable_rendition_id
    iframe = [p for p in pl.iframe_playlists if p.iframe_stream_info.pathway_id == "edge-b"][0]
    assert iframe.uri == f"http://127.0.0.1:9002/t/{TOKEN}/tiny/iframes/v90.m3u8"


def test_steering_rejects_media_playlists_and_junk(stored_master):
    with pytest.raises(PlaylistError):
        steer_multivariant("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.m4s\n", PATHWAYS,
                           token=TOKEN, title="t", server_uri="http://s")
    with pytest.raises(PlaylistError):
        steer_multivariant("hello", PATHWAYS, token=TOKEN, title="t", server_uri="http://s")
    with pytest.raises(PlaylistError):
        steer_multivariant(stored_master, [], token=TOKEN, title="t", server_uri="http://s")


def ranked(*specs: tuple[str, str]) -> list[Pathway]:
    return [Pathway(id=i, region="r", url=u) for i, u in specs]


def test_manifest_shape_and_clones():
    reload_uri = steer_uri("http://127.0.0.1:8400", "tiny", session="s1", region="us-east-1",
                           have=["edge-a", "edge-b"])
    assert reload_uri == "http://127.0.0.1:8400/steer/tiny?session=s1&region=us-east-1&have=edge-a,edge-b"
    doc, degraded = steering_manifest(ranked(("edge-b", "http://127.0.0.1:9002"),
                                             ("edge-c", "http://127.0.0.1:9003")),
                                      ttl_s=5, reload_uri=reload_uri, have=["edge-a", "edge-b"])
    validate_manifest(doc)
    assert not degraded
    assert doc["VERSION"] == 1 and doc["TTL"] == 5 and doc["RELOAD-URI"] == reload_uri
    assert doc["PATHWAY-PRIORITY"] == ["edge-b", "edge-c"]
    assert doc["PATHWAY-CLONES"] == [{"BASE-ID": "edge-a", "ID": "edge-c",
                                      "URI-REPLACEMENT": {"HOST": "127.0.0.1:9003"}}]


def test_manifest_when_nothing_is_in_rotation_keeps_the_playlist_order():
    doc, degraded = steering_manifest([], ttl_s=5, reload_uri="http://s", have=["edge-a", "edge-b"])
    validate_manifest(doc)
    assert degraded and doc["PATHWAY-PRIORITY"] == ["edge-a", "edge-b"] and "PATHWAY-CLONES" not in doc


@pytest.mark.parametrize("doc", [
    [], {"VERSION": 2, "TTL": 1, "PATHWAY-PRIORITY": ["a"]}, {"VERSION": 1, "TTL": 1.5, "PATHWAY-PRIORITY": ["a"]},
    {"VERSION": 1, "TTL": 1, "PATHWAY-PRIORITY": []}, {"VERSION": 1, "TTL": 1, "PATHWAY-PRIORITY": ["a", "a"]},
    {"VERSION": 1, "TTL": 1, "PATHWAY-PRIORITY": ["a b"]},
    {"VERSION": 1, "TTL": 1, "PATHWAY-PRIORITY": ["a"], "PATHWAY-CLONES": [{"ID": "b"}]},
])
def test_validate_manifest_refuses(doc):
    with pytest.raises(ManifestError):
        validate_manifest(doc)


def test_steer_query_reads_client_parameters_and_ignores_junk():
    q = parse_steer_query({"session": "s", "region": "r", "have": "a,b,bad id",
                           "_HLS_pathway": "b", "_HLS_throughput": "2500000"})
    assert q.have == ("a", "b") and q.current == "b" and q.throughput_bps == 2.5e6
    q = parse_steer_query({"_HLS_pathway": "no way", "_HLS_throughput": "fast"})
    assert q.current is None and q.throughput_bps is None and q.have == () and q.format == "hls"
    # HLS names are not read on a DASH request, nor DASH ones on an HLS request
    q = parse_steer_query({"format": "dash", "_HLS_pathway": "b", "_HLS_throughput": "1"})
    assert q.format == "dash" and q.current is None and q.throughput_bps is None
    assert parse_steer_query({"_DASH_pathway": "b", "_DASH_throughput": "1"}).current is None


@pytest.mark.parametrize("pathway, throughput, current, bps", [
    ("b", "2500000", "b", 2.5e6),  # Shaka Player: the location in use and its estimate
    ('"a,b"', "4000000,2500000", "b", 2.5e6),  # dash.js: every location used, in order of first use
    ('"a,b"', "4000000,", "a", 4e6),  # dash.js, nothing measured on b yet
    ('"a"', "", "a", None),  # dash.js before any segment
    ('"a,b"', ",", None, None),
    ('"a,no way"', "1,2", "a", 1.0),
    ("", "", None, None),
])
def test_steer_query_reads_the_dash_client_parameters(pathway, throughput, current, bps):
    q = parse_steer_query({"format": "dash", "session": "s", "_DASH_pathway": pathway, "_DASH_throughput": throughput})
    assert (q.format, q.current, q.throughput_bps) == ("dash", current, bps)


def test_the_dash_manifest_names_service_locations_under_both_keys():
    ranked = [Pathway(id="edge-b", region="r", url="http://b"), Pathway(id="edge-a", region="r", url="http://a")]
    doc, degraded = steering_manifest(ranked, ttl_s=5, reload_uri="http://s/steer/t?format=dash", have=["edge-a"],
                                      format="dash")
    assert not degraded and doc["PATHWAY-PRIORITY"] == doc["SERVICE-LOCATION-PRIORITY"] == ["edge-b", "edge-a"]
    validate_manifest(doc)
    hls, _ = steering_manifest(ranked, ttl_s=5, reload_uri="http://s", have=["edge-a"])
    assert "SERVICE-LOCATION-PRIORITY" not in hls
    with pytest.raises(ManifestError, match="SERVICE-LOCATION-PRIORITY"):
        validate_manifest({**doc, "SERVICE-LOCATION-PRIORITY": ["edge-a"]})
    assert steer_uri("http://s", "t", session="x", region="r", have=["a", "b"], format="dash") == (
        "http://s/steer/t?session=x&region=r&have=a,b&format=dash")


def _manifest_samples():
    """The manifests tests' title strategy (so steering is checked against the real playlist writer)."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "manifests" / "manifest_samples.py"
    spec = importlib.util.spec_from_file_location("steering_uses_manifest_samples", path)
    assert spec is not None and spec.loader is not None and path.exists(), f"{path} is missing"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_title_the_manifests_writer_makes_can_be_steered():
    from hypothesis import HealthCheck, given, settings

    from manifests.hls import dumps_multivariant, multivariant_from_title

    samples = _manifest_samples()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(samples.titles())
    def check(title):
        stored = dumps_multivariant(multivariant_from_title(title))
        original = m3u8.loads(stored)
        pl = m3u8.loads(steer_multivariant(stored, PATHWAYS, token=TOKEN, title="x", server_uri="http://s/steer/x"))
        assert len(pl.playlists) == 2 * len(original.playlists)
        assert len(pl.iframe_playlists) == 2 * len(original.iframe_playlists)
        assert len(pl.media) == 2 * len(original.media)
        for pathway in ("edge-a", "edge-b"):
            mine = [p for p in pl.playlists if p.stream_info.pathway_id == pathway]
            ids = [p.stream_info.stable_variant_id for p in mine]
            assert len(set(ids)) == len(ids)
            groups = {m.group_id for m in pl.media}
            assert all(p.stream_info.audio in groups for p in mine if p.stream_info.audio)
            assert all(p.uri.startswith(f"http://127.0.0.1:900{pathway[-1] == 'b' and 2 or 1}/t/{TOKEN}/x/")
                       for p in mine)

    check()
