"""#EXT-X-KEY in media playlists: what the player fetches and decrypts with (RFC 8216 4.3.2.4, 5.2)."""
from __future__ import annotations

import pytest

from client.errors import PlaylistError
from client.playlists import SegmentKey, parse_media

HEAD = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n"


def test_keys_apply_to_the_segments_after_them_with_their_iv_or_the_sequence_number():
    text = (HEAD + '#EXTINF:2,\na.ts\n#EXT-X-KEY:METHOD=AES-128,URI="k1"\n#EXTINF:2,\nb.ts\n#EXTINF:2,\nc.ts\n'
            '#EXT-X-KEY:METHOD=AES-128,URI="k2",IV=0x0102\n#EXTINF:2,\nd.ts\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:2,\n'
            'e.ts\n#EXT-X-ENDLIST\n')
    segs = parse_media(text, "http://h/v.m3u8").segments
    assert [s.sequence for s in segs] == [7, 8, 9, 10, 11]
    assert segs[0].key is None and segs[4].key is None
    assert segs[1].key == segs[2].key == SegmentKey("AES-128", "k1")
    assert segs[1].key.iv_for(segs[1].sequence) == (8).to_bytes(16, "big")
    assert segs[3].key.iv_for(segs[3].sequence) == bytes(14) + b"\x01\x02"


@pytest.mark.parametrize("tag, why", [
    ('METHOD=AES-256,URI="k"', "METHOD=AES-256"),
    ('METHOD=SAMPLE-AES,URI="skd://x",KEYFORMAT="com.apple.streamingkeydelivery"', "names a DRM"),
    ('METHOD=AES-128,URI="k",IV=0xZZ', "hexadecimal"),
    ('METHOD=AES-128', "has no URI"),
])
def test_keys_the_player_cannot_use_are_a_clear_playlist_error(tag, why):
    text = HEAD + f"#EXT-X-KEY:{tag}\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n"
    with pytest.raises(PlaylistError, match=why):
        parse_media(text, "http://h/v.m3u8")
