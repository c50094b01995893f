"""HLS writing and reading: hypothesis round trips through the m3u8 package, and the tags players need."""
from __future__ import annotations

import posixpath

import m3u8
from hypothesis import given, settings
from hypothesis import strategies as st

from manifest_samples import ids, sample_title as _sample_title, titles
from manifests import (ContentSteering, Pathway, dumps_media_playlist, dumps_multivariant, loads_media_playlist,
                       loads_multivariant, media_playlist_for, multivariant_from_title, render_title_playlists,
                       target_duration)


@settings(max_examples=60, deadline=None)
@given(titles())
def test_multivariant_round_trip(title):
    mv = multivariant_from_title(title)
    assert loads_multivariant(dumps_multivariant(mv)) == mv


@settings(max_examples=40, deadline=None)
@given(titles(), st.lists(ids, min_size=1, max_size=3, unique=True), st.booleans())
def test_multivariant_with_pathways_round_trip(title, pathway_ids, with_steering):
    pathways = [Pathway(id=p, uri_prefix=f"https://{p}.example/t/TOKEN/t1/") for p in pathway_ids]
    steering = ContentSteering(server_uri="https://steer.example/steer/t1", pathway_id=pathway_ids[0]) \
        if with_steering else None
    mv = multivariant_from_title(title, pathways=pathways, steering=steering)
    text = dumps_multivariant(mv)
    assert loads_multivariant(text) == mv
    doc = m3u8.loads(text)
    # every pathway carries a full copy, with the same stable ids
    per_pathway = {}
    for p in doc.playlists:
        per_pathway.setdefault(p.stream_info.pathway_id, []).append(p.stream_info.stable_variant_id)
    assert set(per_pathway) == set(pathway_ids)
    assert len({tuple(v) for v in per_pathway.values()}) == 1
    for p in doc.playlists:
        assert p.uri.startswith(f"https://{p.stream_info.pathway_id}.example/")
    if with_steering:
        assert "#EXT-X-CONTENT-STEERING:SERVER-URI=" in text


@settings(max_examples=60, deadline=None)
@given(titles())
def test_media_playlists_round_trip(title):
    for track in (*title.video, *title.audio):
        mp = media_playlist_for(track)
        text = dumps_media_playlist(mp)
        assert loads_media_playlist(text) == mp
        for seg in track.segments:
            assert round(seg.duration_s) <= mp.target_duration_s


@settings(max_examples=30, deadline=None)
@given(titles())
def test_playlists_name_existing_objects_and_right_version(title):
    playlists = render_title_playlists(title)
    paths = set(title.all_paths())
    for path, text in playlists.items():
        if path == "master.m3u8":
            continue
        doc = m3u8.loads(text)
        assert doc.playlist_type == "vod" and doc.is_endlist
        base = posixpath.dirname(path)
        for seg in doc.segments:
            assert posixpath.normpath(posixpath.join(base, seg.uri)) in paths
        if doc.segments and doc.segments[0].init_section is not None:
            assert doc.version >= 6
            if title.layout == "byterange":
                assert "#EXT-X-BYTERANGE:" in text


def test_multivariant_text_carries_what_players_need():
    text = render_title_playlists(_sample_title())["master.m3u8"]
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in text
    assert ('#EXT-X-STREAM-INF:BANDWIDTH=1030000,AVERAGE-BANDWIDTH=828000,RESOLUTION=640x360,FRAME-RATE=25,'
            'CODECS="avc1.64001e,mp4a.40.2",VIDEO-RANGE=SDR') in text
    assert 'AUDIO="aud-aac-128k"' in text and 'SUBTITLES="subs"' in text
    assert 'TYPE=AUDIO,GROUP-ID="aud-aac-128k",LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES' in text
    assert 'CHANNELS="2"' in text
    assert 'TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Français (SDH)",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO' in text
    assert 'CHARACTERISTICS="public.accessibility.transcribes-spoken-dialog' in text
    assert '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=50000,RESOLUTION=640x360,CODECS="avc1.64001e"' in text


def test_media_playlist_text():
    title = _sample_title()
    text = render_title_playlists(title)["video/h264-360p/index.m3u8"]
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    for tag in ("#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:VOD",
                "#EXT-X-INDEPENDENT-SEGMENTS", '#EXT-X-MAP:URI="init.mp4"', "#EXTINF:2.000000,", "00001.m4s",
                "#EXT-X-ENDLIST"):
        assert tag in lines
    subs = render_title_playlists(title)["subs/fr-sdh/index.m3u8"]
    assert "#EXT-X-VERSION:3" in subs and "00001.vtt" in subs


def test_target_duration_rounds_to_nearest():
    assert target_duration([2.0, 2.4]) == 2
    assert target_duration([2.5]) == 3
    assert target_duration([0.2]) == 1
