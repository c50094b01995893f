"""Sample titles for the manifests tests: a hypothesis strategy and one fixed title."""
from __future__ import annotations

from hypothesis import strategies as st

from manifests import AudioTrack, IFrameTrack, InitSegment, Segment, SubtitleTrack, Title, VideoRendition

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
durations = st.floats(min_value=0.05, max_value=10.0, allow_nan=False).map(lambda x: round(x, 6))


@st.composite
def segment_lists(draw, folder: str, byterange: bool, ext: str = "m4s"):
    n = draw(st.integers(min_value=1, max_value=8))
    sizes = draw(st.lists(st.integers(min_value=1, max_value=5_000_000), min_size=n, max_size=n))
    durs = draw(st.lists(durations, min_size=n, max_size=n))
    segs, offset = [], 900
    for i, (size, dur) in enumerate(zip(sizes, durs), 1):
        if byterange:
            segs.append(Segment(path=f"{folder}/media.mp4", duration_s=dur, size_bytes=size, offset_bytes=offset))
            offset += size
        else:
            segs.append(Segment(path=f"{folder}/{i:05d}.{ext}", duration_s=dur, size_bytes=size))
    return tuple(segs)


@st.composite
def titles(draw):
    byterange = draw(st.booleans())
    layout = "byterange" if byterange else "segments"
    n_audio_groups = draw(st.integers(min_value=0, max_value=2))
    langs = draw(st.lists(st.sampled_from(["en", "fr", "de", "ja"]), min_size=1, max_size=2, unique=True))
    audio = []
    for g in range(n_audio_groups):
        for j, lang in enumerate(langs):
            folder = f"audio/aac-{g}-{lang}"
            segs = draw(segment_lists(folder, byterange))
            audio.append(AudioTrack(
                id=f"aac-{g}-{lang}", codec="mp4a.40.2", language=lang, name=lang.upper(), channels=2 + 4 * g,
                bitrate_kbps=64 * (g + 1), group=f"aud-{g}", default=j == 0,
                bandwidth_bps=draw(st.integers(1000, 10**6)), average_bandwidth_bps=draw(st.integers(1000, 10**6)),
                playlist=f"{folder}/index.m3u8",
                init=InitSegment(path=f"{folder}/{'media.mp4' if byterange else 'init.mp4'}", size_bytes=800,
                                 offset_bytes=0 if byterange else None),
                segments=segs))
    groups = tuple(sorted({a.group for a in audio}))
    video = []
    for k in range(draw(st.integers(min_value=1, max_value=4))):
        rid = f"{draw(st.sampled_from(['h264', 'hevc', 'av1']))}-{k}"
        folder = f"video/{rid}"
        video.append(VideoRendition(
            id=rid, codec=draw(st.sampled_from(["avc1.64001f", "hvc1.1.6.L93.B0", "av01.0.08M.08"])),
            codec_family=rid.split("-")[0], width=draw(st.integers(16, 3840)) // 2 * 2,
            height=draw(st.integers(16, 2160)) // 2 * 2,
            frame_rate=draw(st.sampled_from([23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0])),
            hdr=draw(st.booleans()), bandwidth_bps=draw(st.integers(10_000, 50_000_000)),
            average_bandwidth_bps=draw(st.integers(10_000, 50_000_000)), nominal_bitrate_kbps=1000,
            playlist=f"{folder}/index.m3u8",
            init=InitSegment(path=f"{folder}/{'media.mp4' if byterange else 'init.mp4'}", size_bytes=900,
                             offset_bytes=0 if byterange else None),
            segments=draw(segment_lists(folder, byterange)),
            audio_groups=tuple(draw(st.lists(st.sampled_from(groups), unique=True))) if groups else ()))
    subs = []
    for lang in draw(st.lists(st.sampled_from(["en", "fr", "es"]), max_size=2, unique=True)):
        subs.append(SubtitleTrack(id=lang, language=lang, name=lang, forced=draw(st.booleans()),
                                  sdh=draw(st.booleans()), playlist=f"subs/{lang}/index.m3u8",
                                  segments=draw(segment_lists(f"subs/{lang}", False, "vtt"))))
    iframes = tuple(IFrameTrack(rendition=v.id, playlist=f"iframes/{v.id}.m3u8", bandwidth_bps=1234,
                                average_bandwidth_bps=999, segments=v.segments[:1]) for v in video
                    if draw(st.booleans()))
    return Title(title="t1", duration_s=10.0, segment_duration_s=2.0, layout=layout, video=tuple(video),
                 audio=tuple(audio), subtitles=tuple(subs), iframes=iframes)


def sample_title():
    v = VideoRendition(
        id="h264-360p", codec="avc1.64001e", codec_family="h264", width=640, height=360, frame_rate=25.0,
        bandwidth_bps=900_000, average_bandwidth_bps=700_000, nominal_bitrate_kbps=730, vmaf=90.0,
        devices=("phone",), playlist="video/h264-360p/index.m3u8",
        init=InitSegment(path="video/h264-360p/init.mp4", size_bytes=800),
        segments=(Segment(path="video/h264-360p/00001.m4s", duration_s=2.0, size_bytes=150_000),
                  Segment(path="video/h264-360p/00002.m4s", duration_s=1.0, size_bytes=80_000)),
        audio_groups=("aud-aac-128k",))
    a = AudioTrack(id="aac-128k-en", codec="mp4a.40.2", language="en", name="English", channels=2,
                   bitrate_kbps=128, group="aud-aac-128k", default=True, bandwidth_bps=130_000,
                   average_bandwidth_bps=128_000, playlist="audio/aac-128k-en/index.m3u8",
                   init=InitSegment(path="audio/aac-128k-en/init.mp4", size_bytes=700),
                   segments=(Segment(path="audio/aac-128k-en/00001.m4s", duration_s=2.0, size_bytes=32_000),))
    s = SubtitleTrack(id="fr-sdh", language="fr", name="Français (SDH)", sdh=True, playlist="subs/fr-sdh/index.m3u8",
                      segments=(Segment(path="subs/fr-sdh/00001.vtt", duration_s=2.0, size_bytes=100),))
    return Title(title="demo", duration_s=3.0, segment_duration_s=2.0, video=(v,), audio=(a,), subtitles=(s,),
                 iframes=(IFrameTrack(rendition=v.id, playlist="iframes/h264-360p.m3u8", bandwidth_bps=50_000),))


