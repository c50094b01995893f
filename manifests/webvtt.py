"""Subtitles as text: read SRT or WebVTT into cues, write WebVTT segments for HLS.

``parse_subtitles(text)`` accepts SRT (``1`` / ``00:00:01,000 --> 00:00:02,500`` / text) and
WebVTT (``WEBVTT`` header, optional cue ids and settings, NOTE/STYLE/REGION blocks skipped) and
raises ``SubtitleFormatError`` for anything else. ``segment_webvtt(cues, boundaries_s)`` cuts the
cues into one WebVTT document per media segment: a cue appears in every segment it overlaps (as
HLS requires), keeps its absolute times, and each document carries
``X-TIMESTAMP-MAP=MPEGTS:<90 kHz>,LOCAL:00:00:00.000`` mapping cue time 0 to the media's
presentation time 0 (plus ``mpegts_offset`` when the media does not start at 0).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
_CUE_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(.*)$")


class SubtitleFormatError(ValueError):
    """The text is neither SRT nor WebVTT, or a cue's timing cannot be read."""


@dataclass(frozen=True, kw_only=True)
class Cue:
    start_s: float
    end_s: float
    text: str
    settings: str = ""


def _seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")[:3]) / 1000


def _parse_timing(line: str) -> tuple[float, float, str] | None:
    m = _CUE_TIMING.match(line)
    if not m:
        return None
    g = m.groups()
    return _seconds(*g[0:4]), _seconds(*g[4:8]), g[8].strip()


def detect_format(text: str) -> str:
    """``"webvtt"``, ``"srt"``, or SubtitleFormatError."""
    body = text.lstrip("\ufeff")
    if re.match(r"WEBVTT(?:[ \t].*)?(?:\r?\n|$)", body):
        return "webvtt"
    blocks = [b for b in re.split(r"\r?\n\s*\r?\n", body.strip()) if b.strip()]
    if blocks:
        lines = blocks[0].splitlines()
        if len(lines) >= 2 and lines[0].strip().isdigit() and _parse_timing(lines[1]) and "," in lines[1]:
            return "srt"
        if lines and _parse_timing(lines[0]) and "," in lines[0]:
            return "srt"
    raise SubtitleFormatError("not SRT or WebVTT (no WEBVTT header and no SRT cue at the start)")


def parse_subtitles(text: str) -> list[Cue]:
    """Cues of an SRT or WebVTT document, sorted by start time."""
    kind = detect_format(text)
    body = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    blocks = [b for b in re.split(r"\n\s*\n", body.strip()) if b.strip()]
    if kind == "webvtt":
        blocks = blocks[1:] if blocks and blocks[0].startswith("WEBVTT") and not _has_timing(blocks[0]) else blocks
    cues = []
    for block in blocks:
        lines = block.split("\n")
        if kind == "webvtt":
            if lines[0].startswith("WEBVTT"):
                lines = lines[1:]
            if lines and lines[0].split(" ", 1)[0] in ("NOTE", "STYLE", "REGION"):
                continue
        idx = next((i for i, line in enumerate(lines[:2]) if "-->" in line), None)
        if idx is None:
            if kind == "srt":
                raise SubtitleFormatError(f"SRT block without a timing line: {lines[0][:60]!r}")
            continue
        timing = _parse_timing(lines[idx])
        if timing is None:
            raise SubtitleFormatError(f"bad cue timing: {lines[idx][:80]!r}")
        start, end, settings = timing
        if end < start:
            raise SubtitleFormatError(f"cue ends before it starts: {lines[idx][:80]!r}")
        cues.append(Cue(start_s=start, end_s=end, text="\n".join(lines[idx + 1:]).strip(),
                        settings=settings if kind == "webvtt" else ""))
    cues.sort(key=lambda c: (c.start_s, c.end_s))
    return cues


def _has_timing(block: str) -> bool:
    return any("-->" in line for line in block.split("\n"))


def format_time(t_s: float) -> str:
    ms = int(round(t_s * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def segment_webvtt(cues: list[Cue], boundaries_s: list[float], *, mpegts_offset: int = 0) -> list[str]:
    """One WebVTT document per segment ``[boundaries_s[i], boundaries_s[i+1])``."""
    docs = []
    header = f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts_offset},LOCAL:00:00:00.000\n"
    for start, end in zip(boundaries_s, boundaries_s[1:]):
        parts = [header]
        for c in cues:
            if c.start_s < end and c.end_s > start and c.end_s > c.start_s:
                timing = f"{format_time(c.start_s)} --> {format_time(c.end_s)}"
                if c.settings:
                    timing += " " + c.settings
                parts.append(f"\n{timing}\n{c.text}\n")
        docs.append("".join(parts))
    return docs
