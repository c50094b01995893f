"""Versioned titles: the path prefix, the content version, version names in paths, and the
``version`` / ``previous_versions`` fields of title.json (absent in titles published before them)."""
from __future__ import annotations

import json

from hypothesis import given, settings

from manifests import (ENTRY_POINTS, PreviousVersion, content_version, dumps_title, loads_title,
                       render_title_playlists, version_in_path, version_prefix, with_path_prefix)
from manifests.hls import loads_multivariant

from manifest_samples import sample_title, titles

V = "3f9a0c1d2e4b5a69"


@settings(max_examples=40, deadline=None)
@given(titles())
def test_every_path_gets_the_prefix_and_nothing_else_changes(title):
    versioned = with_path_prefix(title, version_prefix(V))
    assert versioned.all_paths() == [f"v/{V}/{p}" for p in title.all_paths()]
    assert [f"v/{V}/{s.path}" for i in title.iframes for s in i.segments] == \
        [s.path for i in versioned.iframes for s in i.segments]
    assert all(version_in_path(p) == V for p in versioned.all_paths())
    # media playlists are the same text either way: their URIs are relative
    plain, prefixed = render_title_playlists(title), render_title_playlists(versioned)
    assert {f"v/{V}/{k}": v for k, v in plain.items() if k != "master.m3u8"} == \
        {k: v for k, v in prefixed.items() if k != "master.m3u8"}
    master = loads_multivariant(prefixed["master.m3u8"])
    assert all(v.uri.startswith(f"v/{V}/") for v in master.variants)


def test_content_version_is_order_free_and_tells_any_change():
    objects = [("video/r/00001.m4s", "a" * 64), ("video/r/index.m3u8", "b" * 64)]
    v = content_version(objects)
    assert len(v) == 16 and int(v, 16) >= 0
    assert content_version(list(reversed(objects))) == v
    assert content_version([objects[0], ("video/r/index.m3u8", "c" * 64)]) != v  # other bytes
    assert content_version([objects[0], ("video/r/other.m3u8", "b" * 64)]) != v  # other name
    assert content_version(objects[:1]) != v


def test_version_in_path():
    assert version_in_path(f"v/{V}/video/r/00001.m4s") == V
    assert version_in_path(f"t1/v/{V}/video/r/index.m3u8") == V
    assert version_in_path(f"v/v/{V}/x") == V  # a title named "v"
    for path in ("master.m3u8", "t1/title.json", "v/master.m3u8", "video/r/index.m3u8", f"v/{V}", f"t1/v/{V}",
                 "v/3F9A0C1D2E4B5A69/x", "v/unversioned/x", f"a/b/v/{V}/x"):
        assert version_in_path(path) is None, path
    assert set(ENTRY_POINTS) == {"master.m3u8", "manifest.mpd", "title.json"}


def test_version_fields_round_trip_and_old_titles_have_none():
    title = with_path_prefix(sample_title(), version_prefix(V))
    from dataclasses import replace

    title = replace(title, version=V, previous_versions=(PreviousVersion(version="unversioned", superseded_at_s=1.5),))
    data = json.loads(dumps_title(title))
    assert data["version"] == V
    assert data["previous_versions"] == [{"version": "unversioned", "superseded_at_s": 1.5}]
    assert loads_title(dumps_title(title)) == title
    del data["version"], data["previous_versions"]  # a title published before versioning
    old = loads_title(json.dumps(data))
    assert (old.version, old.previous_versions) == (None, ())
