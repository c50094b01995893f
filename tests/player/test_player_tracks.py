"""Track selection tables: per device, per language preference, forced/SDH subtitle rules."""
from __future__ import annotations

import pytest

from client.devices import codec_matches, get_device, load_devices
from client.errors import NoPlayableTracks, ProfileError
from client.playlists import parse_multivariant
from client.tracks import TrackPreferences, language_matches, select_tracks

AUDIO = (
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/aac-en/index.m3u8"\n'
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="fr",NAME="Français",AUTOSELECT=YES,CHANNELS="2",URI="audio/aac-fr/index.m3u8"\n'
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="en",NAME="English AD",CHANNELS="2",CHARACTERISTICS="public.accessibility.describes-video",URI="audio/aac-en-ad/index.m3u8"\n'
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="ec3",LANGUAGE="en",NAME="English 5.1",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="6",URI="audio/ec3-en/index.m3u8"\n'
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="ec3",LANGUAGE="fr",NAME="Français 5.1",AUTOSELECT=YES,CHANNELS="6",URI="audio/ec3-fr/index.m3u8"\n'
)
SUBS = (
    '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English",AUTOSELECT=YES,URI="subs/en/index.m3u8"\n'
    '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English SDH",AUTOSELECT=YES,'
    'CHARACTERISTICS="public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound",URI="subs/en-sdh/index.m3u8"\n'
    '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English (forced)",FORCED=YES,AUTOSELECT=YES,URI="subs/en-forced/index.m3u8"\n'
    '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Français",AUTOSELECT=YES,URI="subs/fr/index.m3u8"\n'
    '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Français (forcés)",FORCED=YES,AUTOSELECT=YES,URI="subs/fr-forced/index.m3u8"\n'
)
# (name, bandwidth, avg, resolution, fps, video codec, range)
VIDEO = [
    ("234p", 300_000, 250_000, "416x234", 30, "avc1.42c01e", "SDR"),
    ("360p", 800_000, 700_000, "640x360", 30, "avc1.4d401e", "SDR"),
    ("480p", 1_400_000, 1_200_000, "854x480", 30, "avc1.4d401f", "SDR"),
    ("720p", 3_000_000, 2_500_000, "1280x720", 30, "avc1.640020", "SDR"),
    ("1080p", 6_000_000, 5_000_000, "1920x1080", 30, "avc1.640028", "SDR"),
    ("1080p60", 9_000_000, 7_500_000, "1920x1080", 60, "avc1.64002a", "SDR"),
    ("hevc-1080p", 4_500_000, 3_500_000, "1920x1080", 30, "hvc1.1.6.L120.90", "SDR"),
    ("hevc-2160p", 16_000_000, 12_000_000, "3840x2160", 30, "hvc1.1.6.L150.90", "SDR"),
    ("hevc-2160p-hdr", 18_000_000, 14_000_000, "3840x2160", 30, "hvc1.2.4.L150.90", "PQ"),
    ("av1-1080p-hdr", 4_000_000, 3_000_000, "1920x1080", 30, "av01.0.08M.10", "PQ"),
    ("av1-2160p-hdr", 12_000_000, 10_000_000, "3840x2160", 30, "av01.0.12M.10", "PQ"),
    ("av1-2160p", 11_000_000, 9_000_000, "3840x2160", 30, "av01.0.12M.08", "SDR"),
]


def master_text(audio_groups=(("aac", "mp4a.40.2"), ("ec3", "ec-3")), subs=True, video=VIDEO) -> str:
    lines = ["#EXTM3U", "#EXT-X-INDEPENDENT-SEGMENTS", AUDIO.rstrip("\n")]
    if subs:
        lines.append(SUBS.rstrip("\n"))
    for group, acodec in audio_groups:
        for name, bw, avg, res, fps, vcodec, rng in video:
            extra = ',SUBTITLES="subs"' if subs else ""
            lines.append(f'#EXT-X-STREAM-INF:BANDWIDTH={bw},AVERAGE-BANDWIDTH={avg},RESOLUTION={res},'
                         f'FRAME-RATE={fps},CODECS="{vcodec},{acodec}",VIDEO-RANGE={rng},AUDIO="{group}"{extra},'
                         f'STABLE-VARIANT-ID="{name}-{group}"')
            lines.append(f"video/{name}/index.m3u8")
    return "\n".join(lines) + "\n"


MASTER = parse_multivariant(master_text(), "http://example.test/t/tok/title/master.m3u8")


def pick(device: str, **prefs):
    return select_tracks(MASTER, get_device(device), TrackPreferences(**prefs))


# device -> (top rung, codecs of the ladder, audio name, audio group)
DEVICE_TABLE = {
    "iphone": ("1080p HEVC 3500kbps", {"avc1", "hvc1"}, "English", "aac"),
    "android-phone": ("1080p avc1 5000kbps", {"avc1"}, "English", "aac"),
    "tv-4k": ("2160p AV1", {"av01", "avc1", "hvc1"}, "English 5.1", "ec3"),
    "laptop-chrome": ("1080p avc1 5000kbps", {"avc1"}, "English", "aac"),
    "low-end": ("480p avc1", {"avc1"}, "English", "aac"),
}


@pytest.mark.parametrize("device", sorted(DEVICE_TABLE))
def test_device_table(device):
    top, codecs, audio_name, group = DEVICE_TABLE[device]
    sel = pick(device)
    profile = get_device(device)
    assert {r.video_codec.split(".")[0] for r in sel.ladder} == codecs
    assert sel.audio.name == audio_name and sel.audio.group_id == group
    assert (sel.audio.channels or 2) <= profile.max_audio_channels
    assert list(sel.ladder_bps) == sorted(sel.ladder_bps)
    for rung in sel.ladder:
        assert profile.fits_resolution(rung.width, rung.height)
        assert rung.frame_rate <= profile.max_fps
        assert rung.video_range in profile.video_ranges
    top_rung = sel.ladder[-1]
    if device == "tv-4k":
        assert top_rung.height == 2160 and top_rung.video_codec.startswith("av01")
    elif device == "low-end":
        assert top_rung.height == 480
    else:
        assert top_rung.height == 1080
    # the smallest rung is always small H.264 (what a phone on 3G starts with)
    assert sel.ladder[0].video_codec.startswith("avc1") or device == "tv-4k"


def test_iphone_gets_small_h264_and_stereo_aac_at_the_bottom():
    sel = pick("iphone")
    assert sel.ladder[0].height == 234 and sel.ladder[0].video_codec.startswith("avc1")
    assert sel.audio.channels == 2 and sel.audio.group_id == "aac"
    # 1080p H.264 is dominated by the cheaper 1080p HEVC; 60 fps kept (iPhone does 60)
    labels = [r.key for r in sel.ladder]
    assert "1080p-aac" not in labels and "hevc-1080p-aac" in labels and "1080p60-aac" in labels


def test_tv_keeps_sdr_when_the_hdr_ladder_starts_high():
    sel = pick("tv-4k")
    assert sel.audio.channels == 6
    assert {r.video_range for r in sel.ladder} == {"SDR"}
    assert any("PQ skipped" in r for r in sel.reasons)


def test_tv_gets_a_full_hdr_ladder_with_hevc_av1_at_the_top():
    hdr = [(f"hdr-{n}", bw, avg, res, fps, "hvc1.2.4.L150.90", "PQ") for n, bw, avg, res, fps, _, _ in VIDEO[:6]]
    hdr.append(("av1-2160p-hdr", 12_000_000, 10_000_000, "3840x2160", 30, "av01.0.12M.10", "PQ"))
    master = parse_multivariant(master_text(video=VIDEO + hdr), "http://x/m.m3u8")
    sel = select_tracks(master, get_device("tv-4k"))
    assert {r.video_range for r in sel.ladder} == {"PQ"}
    assert sel.ladder[-1].height == 2160 and sel.ladder[-1].video_codec.startswith("av01")
    assert sel.ladder[0].height == 234 and sel.audio.channels == 6
    # the iPhone shows PQ too, capped at 1080p
    phone = select_tracks(master, get_device("iphone"))
    assert {r.video_range for r in phone.ladder} == {"PQ"} and phone.ladder[-1].height == 1080
    # Chrome (SDR only) keeps the SDR ladder
    assert {r.video_range for r in select_tracks(master, get_device("laptop-chrome")).ladder} == {"SDR"}


def test_chrome_skips_hevc_and_low_end_skips_60fps_and_high_bitrates():
    chrome = pick("laptop-chrome")
    assert not any(r.video_codec.startswith("hvc1") for r in chrome.ladder)
    low = pick("low-end")
    assert all(r.frame_rate <= 30 and r.bandwidth_bps <= 2_500_000 for r in low.ladder)


@pytest.mark.parametrize("langs, expected_lang, expected_name", [
    (("fr",), "fr", "Français"),
    (("de", "fr"), "fr", "Français"),
    (("de",), "en", "English"),  # none offered: DEFAULT=YES
    ((), "en", "English"),
    (("fr-CA",), "fr", "Français"),  # primary subtag match
])
def test_audio_language_preference(langs, expected_lang, expected_name):
    sel = pick("iphone", audio_languages=langs)
    assert sel.audio.language == expected_lang and sel.audio.name == expected_name


def test_audio_description_only_when_asked():
    assert pick("iphone").audio.name == "English"
    assert pick("iphone", audio_description=True).audio.name == "English AD"


@pytest.mark.parametrize("audio, subs, sdh, expected", [
    (("en",), None, False, "English (forced)"),        # not asked: forced in the audio language
    (("en",), "off", False, "English (forced)"),       # off still shows forced
    (("fr",), "off", False, "Français (forcés)"),
    (("fr",), None, False, "Français (forcés)"),
    (("en",), "fr", False, "Français"),                # full French subtitles under English audio
    (("fr",), "fr", False, "Français"),                # full subs in the audio language win over forced
    (("en",), "en", False, "English"),                 # non-SDH first
    (("en",), "en", True, "English SDH"),
    (("en",), "de", False, "English (forced)"),        # no German: back to forced
])
def test_subtitle_rules(audio, subs, sdh, expected):
    sel = pick("laptop-chrome", audio_languages=audio, subtitle_language=subs, prefer_sdh=sdh)
    assert sel.subtitles is not None and sel.subtitles.name == expected
    assert sel.subtitles_forced == ("forc" in expected)


def test_no_forced_track_for_the_audio_language_means_no_subtitles():
    text = master_text().replace('#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English (forced)"',
                                 '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="de",NAME="Deutsch (forced)"')
    master = parse_multivariant(text, "http://x/master.m3u8")
    sel = select_tracks(master, get_device("iphone"), TrackPreferences(subtitle_language="off"))
    assert sel.subtitles is None


def test_muxed_audio_without_renditions():
    text = "#EXTM3U\n" + "\n".join(
        f'#EXT-X-STREAM-INF:BANDWIDTH={bw},RESOLUTION={res},CODECS="{vc},mp4a.40.2"\nv{i}.m3u8'
        for i, (bw, res, vc) in enumerate([(500_000, "640x360", "avc1.4d401e"),
                                           (2_000_000, "1280x720", "avc1.640020")])) + "\n"
    sel = select_tracks(parse_multivariant(text, "http://x/m.m3u8"), get_device("low-end"))
    assert sel.audio is None and sel.subtitles is None
    assert [r.height for r in sel.ladder] == [360]  # 720p is over the 480p decoder limit


def test_nothing_playable_names_the_filter():
    text = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=9000000,RESOLUTION=3840x2160,CODECS="hvc1.2.4.L150.90,ec-3"\nv.m3u8\n'
    with pytest.raises(NoPlayableTracks, match="video codec hvc1"):
        select_tracks(parse_multivariant(text, "http://x/m.m3u8"), get_device("low-end"))


def test_only_surround_audio_on_a_stereo_device_is_an_error():
    text = master_text(audio_groups=(("ec3", "ec-3"),), subs=False)
    with pytest.raises(NoPlayableTracks, match="at most 2 channels"):
        select_tracks(parse_multivariant(text, "http://x/m.m3u8"), get_device("iphone"))


def test_pathway_copies_group_into_one_rung():
    lines = ["#EXTM3U"]
    for pathway in ("edge-a", "edge-b"):
        for name, bw, res in (("lo", 400_000, "640x360"), ("hi", 2_000_000, "1280x720")):
            lines += [f'#EXT-X-STREAM-INF:BANDWIDTH={bw},RESOLUTION={res},CODECS="avc1.640020,mp4a.40.2",'
                      f'PATHWAY-ID="{pathway}",STABLE-VARIANT-ID="{name}"',
                      f"http://{pathway}.test/t/x/title/video/{name}/index.m3u8"]
    sel = select_tracks(parse_multivariant("\n".join(lines) + "\n", "http://s/m.m3u8"), get_device("laptop-chrome"))
    assert len(sel.ladder) == 2
    assert [v.pathway_id for v in sel.ladder[0].variants] == ["edge-a", "edge-b"]
    assert sel.ladder[1].variant_for("edge-b").uri.startswith("http://edge-b.test/")


def test_codec_prefix_matching():
    assert codec_matches("avc1.64001f", "avc1")
    assert codec_matches("MP4A.40.2", "mp4a.40.2")
    assert not codec_matches("mp4a.40.29", "mp4a.40.2")
    assert not codec_matches("avc3.64001f", "avc1")
    assert language_matches("en", "en-US") and not language_matches("en", "fr")


def test_user_file_overrides_and_adds_devices(tmp_path):
    user = tmp_path / "devices.toml"
    user.write_text('[iphone]\nmax_audio_channels = 6\n\n[car]\ndescription = "car screen"\n'
                    'video_codecs = ["avc1"]\nmax_width = 1280\nmax_height = 720\nmax_fps = 30\n'
                    'video_ranges = ["SDR"]\naudio_codecs = ["mp4a.40.2"]\nmax_audio_channels = 2\n'
                    'screen_width = 1280\nscreen_height = 720\n')
    devices = load_devices(user)
    assert devices["iphone"].max_audio_channels == 6 and devices["iphone"].video_codecs[0] == "hvc1"
    assert devices["car"].max_height == 720
    sel = select_tracks(MASTER, devices["iphone"])
    assert sel.audio.channels == 6


@pytest.mark.parametrize("text, match", [
    ("[iphone]\nmax_fps = 'fast'\n", "iphone.max_fps: expected a number"),
    ("[iphone]\ncolour = 1\n", "unknown key"),
    ("[new]\nmax_fps = 30\n", "device new lacks"),
    ("[iphone\n", "not valid TOML"),
])
def test_bad_user_file(tmp_path, text, match):
    user = tmp_path / "d.toml"
    user.write_text(text)
    with pytest.raises(ProfileError, match=match):
        load_devices(user)


def test_unknown_device():
    with pytest.raises(ProfileError, match="unknown device 'fridge'.*iphone"):
        get_device("fridge")


def test_steered_playlist_carries_the_choice_to_every_pathway():
    from manifests import EdgePathway, steer_multivariant_text

    steered = steer_multivariant_text(master_text(), [EdgePathway(id="edge-a", url="http://127.0.0.1:1"),
                                                      EdgePathway(id="edge-b", url="http://127.0.0.1:2")],
                                      token="TOK", title="bbb", server_uri="http://s/steer/bbb?session=x")
    master = parse_multivariant(steered, "http://s/play/bbb/master.m3u8")
    assert master.steering_pathway == "edge-a"
    sel = select_tracks(master, get_device("tv-4k"), TrackPreferences(audio_languages=("fr",)))
    assert sel.pathways == ("edge-a", "edge-b")
    top_b = sel.ladder[-1].copy_for("edge-b")
    assert top_b.audio.group_id == "ec3@edge-b" and top_b.audio.language == "fr"
    assert top_b.audio.uri == "http://127.0.0.1:2/t/TOK/bbb/audio/ec3-fr/index.m3u8"
    assert top_b.subtitles.forced and top_b.subtitles.language == "fr" and top_b.subtitles.group_id == "subs@edge-b"
    for rung in sel.ladder:
        assert rung.variant_for("edge-b").uri.startswith("http://127.0.0.1:2/t/TOK/bbb/video/")
        assert rung.variant_for("edge-b").stable_id == rung.variant_for("edge-a").stable_id
    # a steering manifest may add a clone of a known pathway on another host
    from client.tracks import PathwayClone, add_clones
    cloned = add_clones(sel, [PathwayClone(base_id="edge-a", id="edge-c", host="127.0.0.1:3")], "http://s/")
    assert cloned.pathways[-1] == "edge-c"
    assert cloned.ladder[0].variant_for("edge-c").uri.startswith("http://127.0.0.1:3/t/TOK/bbb/video/")
    assert cloned.ladder[-1].copy_for("edge-c").audio.uri == "http://127.0.0.1:3/t/TOK/bbb/audio/ec3-fr/index.m3u8"
