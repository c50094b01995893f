"""Videos for simulation: the `Video` value (ladder and per-segment sizes) and its three loaders.

* Pensieve's chunk table ``video_chunk_sizes.csv``: header
  ``chunk_index,bytes_300kbps,...,bytes_4300kbps`` then one row per chunk with sizes in BYTES;
  nominal bitrates come from the header; chunks last 4 s. Pensieve's simulator plays only the
  first 48 of the 49 chunks, so ``segments=48`` by default.
* Sabre's manifest JSON: ``segment_duration_ms``, ``bitrates_kbps``, ``segment_sizes_bits``
  (``[segment][rung]``, in BITS).
* vodstack's ``title.json`` (``"format": "vodstack-title/1"``): the video renditions whose codec
  starts with the requested family (default ``avc1``, H.264), sorted by bandwidth; the nominal
  bitrate of a rung is its ``average_bandwidth_bps`` (``bandwidth_bps``, the peak, when absent),
  segment sizes and durations come from each rendition's ``segments``.
* A vodstack DASH MPD (``manifest.mpd``, read by ``manifests.loads_mpd``: bounded, no DTDs): the
  video Representations of the family, their segment timeline from the MPD; sizes from the MPD's
  byte ranges (byte-range layout) or, where a ``SegmentTemplate`` names files without sizes, from
  the ``title.json`` published beside it, which must describe the very Representations and
  segment files the MPD names. A rung's bitrate is its measured average (as in ``title.json``).

`load_video` picks the loader from the content. Malformed input raises `ManifestError`, a
ValueError whose one-line message names the file.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from dataclasses import replace
from typing import Any

from manifests import MpdError, TitleFormatError, VideoRendition, loads_mpd, loads_title, measured_bandwidth


class ManifestError(ValueError):
    """A manifest or chunk table is missing, unreadable or malformed; the message names the file."""


@dataclass(frozen=True)
class Video:
    """What the simulator needs of a title: rungs ascending, sizes ``[segment][rung]`` in bytes."""

    name: str
    ladder_bps: tuple[int, ...]
    segment_duration_s: float
    sizes_bytes: tuple[tuple[int, ...], ...]
    durations_s: tuple[float, ...] | None = None  # per segment when they differ, else None
    rung_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.ladder_bps or not self.sizes_bytes:
            raise ManifestError(f"{self.name}: a video needs at least one rung and one segment")
        if any(len(row) != len(self.ladder_bps) for row in self.sizes_bytes):
            raise ManifestError(f"{self.name}: every segment needs one size per rung")
        if list(self.ladder_bps) != sorted(self.ladder_bps):
            raise ManifestError(f"{self.name}: rungs must be sorted by bitrate")

    @property
    def segments(self) -> int:
        return len(self.sizes_bytes)

    def segment_duration(self, k: int) -> float:
        return self.durations_s[k] if self.durations_s is not None else self.segment_duration_s

    @property
    def content_s(self) -> float:
        return sum(self.durations_s) if self.durations_s is not None else self.segments * self.segment_duration_s

    def truncated(self, segments: int) -> Video:
        durations = None if self.durations_s is None else self.durations_s[:segments]
        return Video(self.name, self.ladder_bps, self.segment_duration_s, self.sizes_bytes[:segments],
                     durations, self.rung_ids)


def _bad(path: Path, why: str) -> ManifestError:
    return ManifestError(f"{path}: {why}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _bad(path, "no such manifest file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _bad(path, f"cannot read manifest ({type(e).__name__})") from None


def load_pensieve_csv(path: str | Path, segments: int | None = 48) -> Video:
    path = Path(path)
    rows = list(csv.reader(io.StringIO(_read(path))))
    if len(rows) < 2:
        raise _bad(path, "chunk table needs a header and at least one row")
    header = rows[0]
    ladder: list[int] = []
    for col in header[1:]:
        m = re.fullmatch(r"\s*bytes_(\d+)kbps\s*", col)
        if not m:
            raise _bad(path, f"header column {col!r} is not bytes_<N>kbps")
        ladder.append(int(m.group(1)) * 1000)
    sizes: list[tuple[int, ...]] = []
    for lineno, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != len(header):
            raise _bad(path, f"line {lineno}: expected {len(header)} columns, got {len(row)}")
        try:
            sizes.append(tuple(int(x) for x in row[1:]))
        except ValueError:
            raise _bad(path, f"line {lineno}: sizes must be integers") from None
    if segments is not None:
        sizes = sizes[:segments]
    order = sorted(range(len(ladder)), key=lambda i: ladder[i])
    try:
        return Video(path.stem, tuple(ladder[i] for i in order), 4.0,
                     tuple(tuple(row[i] for i in order) for row in sizes))
    except ManifestError as e:
        raise _bad(path, str(e).split(": ", 1)[-1]) from None


def _sabre(path: Path, obj: dict[str, Any]) -> Video:
    try:
        seg_s = float(obj["segment_duration_ms"]) / 1000.0
        ladder = [int(round(float(b) * 1000)) for b in obj["bitrates_kbps"]]
        sizes = [tuple(int(round(float(bits) / 8.0)) for bits in row) for row in obj["segment_sizes_bits"]]
    except (KeyError, TypeError, ValueError):
        raise _bad(path, "Sabre manifest needs segment_duration_ms, bitrates_kbps, segment_sizes_bits") from None
    if seg_s <= 0:
        raise _bad(path, "segment_duration_ms must be > 0")
    order = sorted(range(len(ladder)), key=lambda i: ladder[i])
    try:
        return Video(path.stem, tuple(ladder[i] for i in order), seg_s,
                     tuple(tuple(row[i] for i in order) for row in sizes))
    except (ManifestError, IndexError) as e:
        raise _bad(path, str(e).split(": ", 1)[-1] if isinstance(e, ManifestError) else "ragged size table") from None


def _title(path: Path, obj: dict[str, Any], codec: str) -> Video:
    try:
        seg_s = float(obj["segment_duration_s"])
        renditions = [v for v in obj["video"] if str(v["codec"]).startswith(codec)]
        renditions.sort(key=lambda v: (int(v.get("average_bandwidth_bps") or v["bandwidth_bps"]), int(v["bandwidth_bps"])))
        ladder = [int(v.get("average_bandwidth_bps") or v["bandwidth_bps"]) for v in renditions]
        per_rung = [[(float(s["duration_s"]), int(s["size_bytes"])) for s in v["segments"]] for v in renditions]
        ids = tuple(str(v["id"]) for v in renditions)
    except (KeyError, TypeError, ValueError):
        raise _bad(path, "title.json video renditions need codec, bandwidth_bps, segments[duration_s, size_bytes]") from None
    if not renditions:
        raise _bad(path, f"no video rendition with codec {codec}*")
    counts = {len(r) for r in per_rung}
    if len(counts) != 1 or 0 in counts:
        raise _bad(path, "renditions must have the same, non-zero number of segments")
    n = counts.pop()
    sizes = tuple(tuple(per_rung[r][k][1] for r in range(len(renditions))) for k in range(n))
    durations = tuple(per_rung[0][k][0] for k in range(n))
    uniform = all(abs(d - seg_s) < 1e-6 for d in durations)
    try:
        return Video(str(obj.get("title", path.parent.name)), tuple(ladder), seg_s, sizes,
                     None if uniform else durations, ids)
    except ManifestError as e:
        raise _bad(path, str(e).split(": ", 1)[-1]) from None


def _mpd(path: Path, text: str, codec: str) -> Video:
    try:
        title = loads_mpd(text)
    except MpdError as e:
        raise _bad(path, str(e)) from None
    renditions = [v for v in title.video if v.codec.startswith(codec)]
    if not renditions:
        raise _bad(path, f"no video Representation with codec {codec}*")
    if any(s.size_bytes <= 0 for v in renditions for s in v.segments):
        renditions = _sizes_beside(path, renditions)
    ladder = [measured_bandwidth(v.segments)[1] for v in renditions]
    order = sorted(range(len(renditions)), key=lambda i: (ladder[i], renditions[i].bandwidth_bps))
    renditions, ladder = [renditions[i] for i in order], [ladder[i] for i in order]
    counts = {len(v.segments) for v in renditions}
    if len(counts) != 1 or 0 in counts:
        raise _bad(path, "Representations must have the same, non-zero number of segments")
    n = counts.pop()
    sizes = tuple(tuple(v.segments[k].size_bytes for v in renditions) for k in range(n))
    durations = tuple(s.duration_s for s in renditions[0].segments)
    seg_s = title.segment_duration_s
    uniform = all(abs(d - seg_s) < 1e-6 for d in durations)
    try:
        return Video(title.title, tuple(ladder), seg_s, sizes, None if uniform else durations,
                     tuple(v.id for v in renditions))
    except ManifestError as e:
        raise _bad(path, str(e).split(": ", 1)[-1]) from None


def _sizes_beside(path: Path, renditions: list[VideoRendition]) -> list[VideoRendition]:
    """The renditions with their segment sizes from the ``title.json`` beside the MPD, which must
    name the same segment files (not an older or newer version of the title)."""
    beside = path.parent / "title.json"
    if not beside.is_file():
        raise _bad(path, "its SegmentTemplate gives no segment sizes and there is no title.json beside it")
    try:
        stored = {v.id: v for v in loads_title(_read(beside)).video}
    except TitleFormatError as e:
        raise _bad(beside, str(e)) from None
    out = []
    for v in renditions:
        known = stored.get(v.id)
        if known is None or [s.path for s in known.segments] != [s.path for s in v.segments]:
            raise _bad(path, f"{beside.name} beside it does not describe the segments of Representation {v.id}")
        out.append(replace(v, segments=tuple(replace(s, size_bytes=k.size_bytes)
                                             for s, k in zip(v.segments, known.segments))))
    return out


def load_video(path: str | Path, codec: str = "avc1", segments: int | None = None) -> Video:
    """Load a chunk table, Sabre manifest, title.json or MPD (see the module docstring).

    ``segments`` keeps only the first N segments (the Pensieve table defaults to 48).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "title.json"
    text = _read(path)
    if path.suffix.lower() == ".csv" or text.lstrip().startswith("chunk_index"):
        return load_pensieve_csv(path, 48 if segments is None else segments)
    if path.suffix.lower() == ".mpd" or text.lstrip("\ufeff \t\r\n").startswith("<"):
        video = _mpd(path, text, codec)
        return video.truncated(segments) if segments is not None else video
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise _bad(path, f"invalid JSON at line {e.lineno}") from None
    if not isinstance(obj, dict):
        raise _bad(path, "manifest must be a JSON object")
    if str(obj.get("format", "")).startswith("vodstack-title/"):
        video = _title(path, obj, codec)
    elif "segment_sizes_bits" in obj:
        video = _sabre(path, obj)
    else:
        raise _bad(path, "not a Sabre manifest, vodstack title.json or Pensieve chunk table")
    return video.truncated(segments) if segments is not None else video
