"""ITU-T P.1203 mode 0 input of a played session: what the reference implementation reads.

    p1203_input(report, device=profile, stream_id=session_id) -> {"I11": ..., "I13": ..., "I23": ..., "IGen": ...}

The shape is the one of the reference implementation (github.com/itu-p1203/itu-p1203, README "JSON
Input Format" and ``examples/mode0.json``)::

    I11   {"streamId", "segments": [{"bitrate" kbps, "codec" (aaclc|heaac|ac3|mp2), "duration" s, "start" s}]}
    I13   {"streamId", "segments": [{"bitrate" kbps, "codec" h264, "duration" s, "fps", "resolution" "WxH",
                                     "start" s}]}
    I23   {"streamId", "stalling": [[start media s, duration s], ...]}   initial loading first, at 0
    IGen  {"device" pc|mobile, "displaySize" "WxH", "viewingDistance" "150cm"}

Mode 0 needs no frames: only each segment's bitrate, codec, duration, frame rate and resolution. Built
from a `client.report.SessionReport` (pure):

* video: one segment per `SegmentRecord`, the rung's nominal bitrate; codec and resolution from the
  selection's ladder (``tracks["ladder"][rung]``: avc1/avc3 -> ``h264``, hvc1/hev1 -> ``h265``, av01
  -> ``av1``, vp09 -> ``vp9``; the reference scores ``h264`` only and refuses the others).
* a video segment's start and duration are its record's (``start_s``, ``media_s``; in reports written
  before they were kept: the content's length over the segments played, every segment alike);
* approximated: an audio segment's duration (that even split, and so its start); the frame
  rate (the ladder does not carry it: ``frame_rate`` when a ladder entry has one, else `DEFAULT_FPS`);
  audio bitrate (measured: bytes of each audio request over the segment duration) and codec (from the
  audio group's name: ``ec3``/``ac3`` -> ``ac3``, ``he`` -> ``heaac``, else ``aaclc``).
* stalling: the start-up delay as a stall at media time 0 (the reference's convention), then each stall
  at the media position where playback stopped (its session time less start-up and earlier stalls).
* IGen: ``mobile`` for phones (a device named ``*phone*``), else ``pc``; the display size is the device
  profile's screen.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

__all__ = ["p1203_input", "p1203_codec", "DEFAULT_FPS", "VIEWING_DISTANCE"]

DEFAULT_FPS = 30.0
VIEWING_DISTANCE = "150cm"  #: the reference's examples' value (the model does not use it)


def p1203_codec(codec: str | None) -> str:
    """RFC 6381 video codec -> the reference's name (``h264`` for an unknown one: mode 0 scores only it)."""
    c = (codec or "").lower()
    for prefixes, name in ((("hvc1", "hev1"), "h265"), (("av01",), "av1"), (("vp09", "vp9"), "vp9")):
        if c.startswith(prefixes):
            return name
    return "h264"


def _audio_codec(rendition: dict[str, Any] | None) -> str:
    text = " ".join(str((rendition or {}).get(k) or "") for k in ("group", "name")).lower()
    if "ec3" in text or "ac3" in text or "ec-3" in text or "ac-3" in text:
        return "ac3"
    if "he" in text.split("-") or "heaac" in text:
        return "heaac"
    return "aaclc"


def _segment_number(url: str) -> int | None:
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    stem = name.split(".", 1)[0]
    return int(stem) if stem.isdigit() else None


def p1203_input(report: Any, *, device: Any = None, stream_id: str | None = None) -> dict[str, Any]:
    """The mode 0 input of one session (module docstring); ``device``: its `client.devices.DeviceProfile`."""
    sid = stream_id or report.session_id
    ladder = list((report.tracks or {}).get("ladder") or [])
    segs = sorted(report.segments, key=lambda s: s.index)
    seg_s = (report.content_s / len(segs)) if segs and report.content_s > 0 else \
        (report.played_s / len(segs) if segs and report.played_s > 0 else 0.0)
    first = segs[0].index if segs else 0
    video = []
    for s in segs:
        rung = ladder[s.rung] if 0 <= s.rung < len(ladder) and isinstance(ladder[s.rung], dict) else {}
        # each segment's own place and length where the report has them, else the even split
        duration = s.media_s if getattr(s, "media_s", None) else seg_s
        start = s.start_s - (segs[0].start_s or 0.0) if getattr(s, "start_s", None) is not None else (s.index - first) * seg_s
        video.append({"bitrate": round(s.bitrate_bps / 1000, 3), "codec": p1203_codec(rung.get("codec")),
                      "duration": round(duration, 4), "fps": float(rung.get("frame_rate") or DEFAULT_FPS),
                      "resolution": rung.get("resolution") or "0x0", "start": round(start, 4)})
    audio_rendition = (report.tracks or {}).get("audio")
    audio = []
    by_number = {n: r for r in report.requests if r.ot == "a" and r.complete  # the last copy of each
                 and (n := _segment_number(r.url)) is not None}
    a_first = min(by_number, default=0)
    for n, r in sorted(by_number.items()):
        if seg_s > 0:
            audio.append({"bitrate": round(8 * r.size_bytes / seg_s / 1000, 3), "codec": _audio_codec(audio_rendition),
                          "duration": round(seg_s, 4), "start": round((n - a_first) * seg_s, 4)})
    stalling = [[0, round(report.startup_s or 0.0, 4)]]
    before = 0.0
    for st in sorted(report.stalls, key=lambda x: x.at_s):
        position = max(st.at_s - (report.startup_s or 0.0) - before, 0.0)
        stalling.append([round(position, 4), round(st.duration_s, 4)])
        before += st.duration_s
    doc: dict[str, Any] = {"I11": {"segments": audio, "streamId": sid},
                           "I13": {"segments": video, "streamId": sid},
                           "I23": {"stalling": stalling, "streamId": sid}}
    if device is not None:
        doc["IGen"] = {"device": "mobile" if "phone" in device.name else "pc",
                       "displaySize": f"{device.screen_width}x{device.screen_height}",
                       "viewingDistance": VIEWING_DISTANCE}
    return doc
