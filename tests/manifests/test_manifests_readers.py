"""One title model and one playlist byte range for every reader: the player's playlist parser and
``title.json`` readers (player sizes, edge prefill, steering status) read what the writer wrote."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from client.fetch import range_header
from client.playlists import parse_media, sizes_from_title_json
from edge.titlejson import TitleJsonError, prefill_items, read_title
from manifest_samples import titles
from manifests import ByteRange, dumps_title, loads_media_playlist, render_title_playlists


@settings(max_examples=40, deadline=None)
@given(titles())
def test_the_player_reads_the_writers_byte_ranges_as_the_one_byterange(title):
    for path, text in render_title_playlists(title).items():
        if path == "master.m3u8" or "#EXTINF" not in text:
            continue
        ours = loads_media_playlist(text)
        player = parse_media(text, f"http://e.example/t/TOK/{title.title}/{path}")
        assert [s.byterange for s in player.segments] == [s.byterange for s in ours.segments]
        for s in player.segments:
            assert s.byterange is None or type(s.byterange) is ByteRange
            if s.init is not None:
                assert s.init.byterange == ours.map_byterange
                assert s.init.byterange is None or type(s.init.byterange) is ByteRange


def test_range_header_asks_for_the_whole_range():
    assert range_header(ByteRange(length=800, offset=0)) == "bytes=0-799"
    assert range_header(ByteRange(length=1, offset=900)) == "bytes=900-900"


@settings(max_examples=30, deadline=None)
@given(titles())
def test_title_json_readers_see_every_track_of_the_title(title):
    body = dumps_title(title).encode()
    items = {i.path for i in prefill_items(read_title(body, "t1"), "t1")}
    assert items == {"master.m3u8", *title.all_paths()}
    n = min(len(v.segments) for v in title.video)
    base = "http://e.example/t/TOK/t1/"
    sizes = sizes_from_title_json(body, [base + v.playlist for v in title.video], [None] * len(title.video), n)
    assert sizes == tuple(tuple(v.segments[k].size_bytes for v in title.video) for k in range(n))


@pytest.mark.parametrize("body", [b"{not json", b"[]", json.dumps({"format": "other"}).encode(),
                                  json.dumps({"format": "vodstack-title/1", "video": [{"playlist": "x"}]}).encode()])
def test_a_bad_title_json_is_one_clear_error_for_every_reader(body):
    with pytest.raises(TitleJsonError, match="t1/title.json: not a vodstack-title document"):
        read_title(body, "t1")
    with pytest.raises(ValueError):
        sizes_from_title_json(body, ["http://e/t/x/t1/video/a/index.m3u8"], [None], 1)
