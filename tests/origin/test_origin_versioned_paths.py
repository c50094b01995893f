"""What the origin (and the edge, through the same functions) makes of versioned paths and dot-files:
Cache-Control by path, and request paths with a part starting with '.' (never an object: 404)."""
from __future__ import annotations

import pytest

from origin.server.request_paths import key_for_request_path
from httpsem.semantics import cache_control_for, is_playlist
from origin.storage import HiddenKey, InvalidKey

V = "3f9a0c1d2e4b5a69"
SHORT, LONG = "public, max-age=2", "public, max-age=31536000, immutable"

CACHE_CONTROL = [
    ("t1/master.m3u8", SHORT), ("t1/title.json", SHORT), ("t1/manifest.mpd", SHORT),
    ("master.m3u8", SHORT),  # relative to the title, as the edge asks
    (f"t1/v/{V}/video/r/index.m3u8", LONG), (f"v/{V}/video/r/index.m3u8", LONG), (f"t1/v/{V}/iframes/r.m3u8", LONG),
    (f"t1/v/{V}/subs/en/index.m3u8", LONG), (f"t1/v/{V}/video/r/00001.m4s", LONG), (f"t1/v/{V}/subs/en/00001.vtt", LONG),
    ("t1/video/r/index.m3u8", SHORT),  # a title published before versioning: its playlists change in place
    ("t1/video/r/00001.m4s", LONG),
    ("v/master.m3u8", SHORT),  # a title named "v"
    ("t1/v/notaversion/index.m3u8", SHORT),
]


@pytest.mark.parametrize("path,expected", CACHE_CONTROL)
def test_cache_control_by_path(path, expected):
    assert cache_control_for(path) == expected
    assert is_playlist(path) is (expected == SHORT)


@pytest.mark.parametrize("target", ["/t1/.00001.m4s.tmp-0123456789ab", "/.vodstack-tmp/abc.12.host.tmp",
                                    "/t1/video/.hidden/x.m4s", "/t1/%2Ehidden", "/t1/.well-known"])
def test_a_part_starting_with_a_dot_is_hidden(target):
    with pytest.raises(HiddenKey) as info:
        key_for_request_path(target)
    assert info.value.status_hint == 404


@pytest.mark.parametrize("target", ["/t1/../x", "/t1/./x", "/t1/%2e%2e/x"])
def test_dot_and_dot_dot_stay_bad_requests(target):
    with pytest.raises(InvalidKey) as info:
        key_for_request_path(target)
    assert not isinstance(info.value, HiddenKey) and info.value.status_hint == 400


def test_dots_inside_a_name_are_fine():
    assert key_for_request_path("/t1.v2/a.b/c..d.m4s") == "t1.v2/a.b/c..d.m4s"
