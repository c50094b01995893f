"""The rendition ladder as data: which video rungs and audio renditions, for which devices.

``load_ladder("default")`` reads the built-in ``ladder_default.toml``; ``load_ladder(PATH)`` a file
of the same shape (see the comments in the built-in file). ``plan_video(ladder, width, height)``
applies the ladder to a source: rungs taller than the source are dropped (never upscale), except
``fit_to_source`` rungs, scaled down to the source; widths follow the source's aspect ratio.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from .errors import LadderError

BUILTIN = {"default": "ladder_default.toml"}
AUDIO_ENCODERS = {"aac": "aac", "eac3": "eac3", "ac3": "ac3"}
AUDIO_CODEC_STRINGS = {"aac": "mp4a.40.2", "eac3": "ec-3", "ac3": "ac-3"}


@dataclass(frozen=True, kw_only=True)
class CodecSettings:
    """How one codec family is encoded (the same for every rung of that family)."""

    family: str
    encoder: str
    preset: str = ""
    profile: str = ""
    tag: str = ""
    params: str = ""


@dataclass(frozen=True, kw_only=True)
class VideoRung:
    id: str
    codec: str  # codec family: h264 | hevc | av1
    width: int
    height: int
    bitrate_kbps: int
    maxrate_kbps: int
    bufsize_kbps: int
    devices: tuple[str, ...]
    vmaf_floor: float = 0.0
    fit_to_source: bool = False


@dataclass(frozen=True, kw_only=True)
class AudioRung:
    id: str
    codec: str  # aac | eac3 | ac3
    bitrate_kbps: int
    channels: int
    role: str  # low | high | surround
    requires_channels: int = 0

    @property
    def codec_string(self) -> str:
        return AUDIO_CODEC_STRINGS[self.codec]


@dataclass(frozen=True, kw_only=True)
class Ladder:
    name: str
    codecs: dict[str, CodecSettings]
    video: tuple[VideoRung, ...]
    audio: tuple[AudioRung, ...]
    low_audio_below_kbps: int = 1000
    surround_from_kbps: int = 2000
    source: str = field(default="", compare=False)

    def only(self, families: tuple[str, ...]) -> "Ladder":
        """The same ladder restricted to some codec families (``("h264",)``)."""
        return replace(self, video=tuple(r for r in self.video if r.codec in families))


def load_ladder(name_or_path: str = "default") -> Ladder:
    if name_or_path in BUILTIN:
        text = resources.files(__package__).joinpath(BUILTIN[name_or_path]).read_text("utf-8")
        where = f"built-in ladder {name_or_path!r}"
    else:
        if not os.path.exists(name_or_path):
            raise LadderError(f"unknown ladder {name_or_path!r}: not a built-in name ({', '.join(BUILTIN)}) "
                              "nor a file")
        try:
            with open(name_or_path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise LadderError(f"cannot read ladder {name_or_path}: {e.strerror}") from None
        where = name_or_path
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LadderError(f"ladder {where} is not valid TOML: {e}") from None
    return ladder_from_dict(data, where)


def _req(d: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in d:
        raise LadderError(f"{where}: missing {key!r}")
    value = d[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise LadderError(f"{where}: {key!r} must be {kind.__name__}, got {value!r}")
    return value


def ladder_from_dict(data: dict[str, Any], where: str = "ladder") -> Ladder:
    codecs = {}
    for fam, c in (data.get("codecs") or {}).items():
        codecs[fam] = CodecSettings(family=fam, encoder=_req(c, "encoder", str, f"{where} codecs.{fam}"),
                                    preset=str(c.get("preset", "")), profile=str(c.get("profile", "")),
                                    tag=str(c.get("tag", "")), params=str(c.get("params", "")))
    video = []
    seen: set[str] = set()
    for i, r in enumerate(data.get("video") or []):
        w = f"{where} video[{i}]"
        rid = _req(r, "id", str, w)
        fam = _req(r, "codec", str, w)
        if fam not in codecs:
            raise LadderError(f"{w}: codec {fam!r} has no [codecs.{fam}] table")
        if rid in seen or "/" in rid:
            raise LadderError(f"{w}: duplicate or bad id {rid!r}")
        seen.add(rid)
        rate = _req(r, "bitrate_kbps", int, w)
        maxrate = int(r.get("maxrate_kbps", round(rate * 1.5)))
        video.append(VideoRung(
            id=rid, codec=fam, width=_req(r, "width", int, w), height=_req(r, "height", int, w),
            bitrate_kbps=rate, maxrate_kbps=maxrate, bufsize_kbps=int(r.get("bufsize_kbps", maxrate * 2)),
            devices=tuple(r.get("devices", ())), vmaf_floor=float(r.get("vmaf_floor", 0.0)),
            fit_to_source=bool(r.get("fit_to_source", False))))
    if not video:
        raise LadderError(f"{where}: no [[video]] rungs")
    audio_table = data.get("audio") or {}
    audio = []
    for i, a in enumerate(audio_table.get("renditions") or []):
        w = f"{where} audio.renditions[{i}]"
        codec = _req(a, "codec", str, w)
        if codec not in AUDIO_ENCODERS:
            raise LadderError(f"{w}: audio codec {codec!r} not one of {', '.join(AUDIO_ENCODERS)}")
        audio.append(AudioRung(id=_req(a, "id", str, w), codec=codec, bitrate_kbps=_req(a, "bitrate_kbps", int, w),
                               channels=int(a.get("channels", 2)), role=str(a.get("role", "high")),
                               requires_channels=int(a.get("requires_channels", 0))))
    return Ladder(name=str(data.get("name", where)), codecs=codecs, video=tuple(video), audio=tuple(audio),
                  low_audio_below_kbps=int(audio_table.get("low_audio_below_kbps", 1000)),
                  surround_from_kbps=int(audio_table.get("surround_from_kbps", 2000)), source=where)


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def plan_video(ladder: Ladder, src_width: int, src_height: int) -> list[VideoRung]:
    """The rungs this source gets, sized to its aspect ratio, never taller than it."""
    aspect = src_width / src_height
    planned: list[VideoRung] = []
    for r in ladder.video:
        if r.height <= src_height:
            planned.append(replace(r, width=_even(r.height * aspect)))
        elif r.fit_to_source:
            ratio = (src_width * src_height) / (r.width * r.height)
            rate = max(50, int(round(r.bitrate_kbps * ratio ** 0.75)))
            scale = rate / r.bitrate_kbps
            height = _even(src_height)
            rid = re.sub(r"-\d+p$", f"-{height}p", r.id)
            planned.append(replace(r, id=rid, width=_even(src_height * aspect), height=height, bitrate_kbps=rate,
                                   maxrate_kbps=max(rate, int(r.maxrate_kbps * scale)),
                                   bufsize_kbps=max(rate, int(r.bufsize_kbps * scale))))
    # a fitted rung that lands on the size of a kept rung of the same codec is redundant
    out: list[VideoRung] = []
    for r in planned:
        if any(o.codec == r.codec and o.height == r.height for o in out):
            continue
        out.append(r)
    return out


def plan_audio(ladder: Ladder, channels: int) -> list[AudioRung]:
    """Audio renditions for a source track with ``channels`` channels (stereo renditions always;
    those with ``requires_channels`` only when the source has at least that many)."""
    return [a for a in ladder.audio if channels >= a.requires_channels]


def audio_roles_for(ladder: Ladder, rung: VideoRung, *, top: bool = False) -> tuple[str, ...]:
    """Which audio roles the multivariant pairs this video rung with: low rungs the low AAC, others
    the high AAC; the top H.264 rung and every HEVC/AV1 rung also the high AAC and the surround
    group (so every audio group is reachable, even for a small source)."""
    low = rung.bitrate_kbps < ladder.low_audio_below_kbps
    roles = ["low"] if low else []
    if not low or top or rung.codec != "h264":
        roles.append("high")
    if rung.bitrate_kbps >= ladder.surround_from_kbps or rung.codec != "h264" or top:
        roles.append("surround")
    return tuple(roles)
