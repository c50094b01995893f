"""The player's view of an MPD (client/dash.py): service locations as pathways, Representations as
variants and renditions with their playlists already parsed, hostile MPDs as one PlaylistError line."""
from __future__ import annotations

import pytest

from client.dash import looks_like_mpd, presentation_from_mpd
from client.errors import PlaylistError
from manifests import DashSteering, ServiceLocation, dumps_mpd
from vodstack.sample import build_synthetic_title


@pytest.fixture(scope="module")
def title(tmp_path_factory):
    return build_synthetic_title(tmp_path_factory.mktemp("t"), "syn", duration_s=12.0, segment_s=4.0)


def test_service_locations_are_pathways_and_the_playlists_are_ready(title):
    steering = DashSteering(locations=(ServiceLocation(id="edge-a", url="http://127.0.0.1:1/t/x/syn/"),
                                       ServiceLocation(id="edge-b", url="http://127.0.0.1:2/t/x/syn/")),
                            server_uri="/steer/syn?format=dash", default_location="edge-b")
    p = presentation_from_mpd(dumps_mpd(title, steering=steering), "http://127.0.0.1:3/m/x/syn/manifest.mpd")
    mv = p.multivariant
    assert mv.pathways == ("edge-a", "edge-b") and mv.steering_pathway == "edge-b"
    assert mv.steering_uri == "http://127.0.0.1:3/steer/syn?format=dash"
    per_pathway = [v for v in mv.variants if v.pathway_id == "edge-a"]
    assert len(per_pathway) == len(title.video) * len({a.codec for a in title.audio})
    for v in mv.variants:
        playlist, base = p.playlists[v.uri]
        assert base.startswith("http://127.0.0.1:1/" if v.pathway_id == "edge-a" else "http://127.0.0.1:2/")
        assert [s.uri for s in playlist.segments] == [s.path for s in next(
            r for r in title.video if r.id == v.stable_id.split("+")[0]).segments]
    langs = {(r.type, r.language) for r in mv.renditions}
    assert {("AUDIO", "en"), ("AUDIO", "fr"), ("SUBTITLES", "en")} <= langs
    assert all(r.group_id.endswith(("@edge-a", "@edge-b")) for r in mv.renditions)


def test_an_mpd_without_locations_plays_from_where_it_was_read(title):
    p = presentation_from_mpd(dumps_mpd(title), "http://h/syn/manifest.mpd")
    assert p.multivariant.pathways == (".",) and p.steering_uri is None
    assert {base for _, base in p.playlists.values()} == {"http://h/syn/"}


@pytest.mark.parametrize("text, message", [
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><MPD>&a;</MPD>',
     "http://h/m.mpd: MPD: refused: DTDForbidden (a DTD or entity)"),
    ('<MPD type="dynamic"/>', "http://h/m.mpd: MPD: type 'dynamic': only static (VOD) presentations are played"),
])
def test_hostile_mpds_are_one_playlist_error(text, message):
    assert looks_like_mpd(text) and not looks_like_mpd("#EXTM3U\n")
    with pytest.raises(PlaylistError) as e:
        presentation_from_mpd(text, "http://h/m.mpd")
    assert str(e.value) == message
