"""A small ISO-BMFF (MP4/CMAF) reader: the fragments of a packaged file, with byte offsets,
durations and the size of each fragment's first (key) sample.

Enough for packaging decisions and nothing more: segment sizes and durations for the playlists
and ``title.json`` come from the real bytes, and each I-frame playlist entry is the range from a
fragment's first box to the end of its first sample. Handles one track per file (as CMAF
requires), ``tfdt`` v0/v1, ``trun`` with or without per-sample fields, ``tfhd``/``trex`` defaults.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts", b"dinf"}


@dataclass(frozen=True, kw_only=True)
class Box:
    type: bytes
    offset: int
    size: int
    header: int

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def body(self) -> int:
        return self.offset + self.header


@dataclass(frozen=True, kw_only=True)
class Fragment:
    offset_bytes: int  # first byte of the fragment (its styp/sidx, else its moof)
    moof_offset_bytes: int  # its moof
    size_bytes: int  # through the end of its mdat
    decode_time: int  # tfdt, in timescale ticks
    duration_ticks: int
    sample_count: int
    first_sample_end_bytes: int  # absolute offset just past the first sample's data
    first_sample_is_sync: bool


@dataclass(frozen=True, kw_only=True)
class FragmentedFile:
    timescale: int
    init_size_bytes: int  # ftyp + moov (bytes before the first fragment)
    fragments: tuple[Fragment, ...]


def boxes(data: bytes | memoryview, start: int = 0, end: int | None = None) -> list[Box]:
    end = len(data) if end is None else end
    out = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"bad MP4 box {kind!r} at {pos}")
        out.append(Box(type=kind, offset=pos, size=size, header=header))
        pos += size
    return out


def find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> Box | None:
    for b in boxes(data, start, end):
        if b.type == path[0]:
            if len(path) == 1:
                return b
            return find(data, path[1:], b.body, b.end)
    return None


def _timescale(data: bytes, moov: Box) -> int:
    mdhd = find(data, [b"trak", b"mdia", b"mdhd"], moov.body, moov.end)
    if mdhd is None:
        raise ValueError("no mdhd box")
    version = data[mdhd.body]
    timescale: int = struct.unpack_from(">I", data, mdhd.body + (20 if version == 1 else 12))[0]
    return timescale


def _trex(data: bytes, moov: Box) -> tuple[int, int, int]:
    trex = find(data, [b"mvex", b"trex"], moov.body, moov.end)
    if trex is None:
        return 0, 0, 0
    _tid, _desc, dur, size, flags = struct.unpack_from(">IIIII", data, trex.body + 4)
    return dur, size, flags


def read_fragmented(data: bytes) -> FragmentedFile:
    """Parse a fragmented MP4 (init + fragments, or one ``.m4s`` with ``init`` given separately)."""
    top = boxes(data)
    moov = next((b for b in top if b.type == b"moov"), None)
    timescale = _timescale(data, moov) if moov else 0
    defaults = _trex(data, moov) if moov else (0, 0, 0)
    return FragmentedFile(timescale=timescale, init_size_bytes=_init_size(top),
                          fragments=tuple(_fragments(data, top, defaults)))


def _init_size(top: list[Box]) -> int:
    for b in top:
        if b.type in (b"moof", b"sidx", b"styp"):
            return b.offset
    return top[-1].end if top else 0


def _fragments(data: bytes, top: list[Box], defaults: tuple[int, int, int]) -> list[Fragment]:
    frags = []
    pending_start: int | None = None
    moof: Box | None = None
    for b in top:
        if b.type in (b"styp", b"sidx", b"prft", b"emsg") and moof is None:
            pending_start = b.offset if pending_start is None else pending_start
        elif b.type == b"moof":
            moof = b
            pending_start = b.offset if pending_start is None else pending_start
        elif b.type == b"mdat" and moof is not None:
            frags.append(_fragment(data, moof, b, pending_start if pending_start is not None else moof.offset, defaults))
            moof, pending_start = None, None
    return frags


def _fragment(data: bytes, moof: Box, mdat: Box, start: int, defaults: tuple[int, int, int]) -> Fragment:
    traf = find(data, [b"traf"], moof.body, moof.end)
    if traf is None:
        raise ValueError("moof without traf")
    def_dur, def_size, def_flags = defaults
    base_offset = moof.offset
    decode_time = 0
    durations: list[int] = []
    sizes: list[int] = []
    flags_list: list[int] = []
    data_offset = None
    for b in boxes(data, traf.body, traf.end):
        version = data[b.body]
        flags = int.from_bytes(data[b.body + 1:b.body + 4], "big")
        p = b.body + 4
        if b.type == b"tfhd":
            p += 4  # track id
            if flags & 0x1:
                base_offset = struct.unpack_from(">Q", data, p)[0]
                p += 8
            if flags & 0x2:
                p += 4
            if flags & 0x8:
                def_dur = struct.unpack_from(">I", data, p)[0]
                p += 4
            if flags & 0x10:
                def_size = struct.unpack_from(">I", data, p)[0]
                p += 4
            if flags & 0x20:
                def_flags = struct.unpack_from(">I", data, p)[0]
        elif b.type == b"tfdt":
            decode_time = struct.unpack_from(">Q" if version == 1 else ">I", data, p)[0]
        elif b.type == b"trun":
            count = struct.unpack_from(">I", data, p)[0]
            p += 4
            if flags & 0x1:
                off = struct.unpack_from(">i", data, p)[0]
                p += 4
                if data_offset is None:
                    data_offset = base_offset + off
            first_flags = None
            if flags & 0x4:
                first_flags = struct.unpack_from(">I", data, p)[0]
                p += 4
            for i in range(count):
                d, s, f = def_dur, def_size, def_flags
                if flags & 0x100:
                    d = struct.unpack_from(">I", data, p)[0]
                    p += 4
                if flags & 0x200:
                    s = struct.unpack_from(">I", data, p)[0]
                    p += 4
                if flags & 0x400:
                    f = struct.unpack_from(">I", data, p)[0]
                    p += 4
                if flags & 0x800:
                    p += 4
                if i == 0 and first_flags is not None:
                    f = first_flags
                durations.append(d)
                sizes.append(s)
                flags_list.append(f)
    if data_offset is None:
        data_offset = mdat.body
    return Fragment(offset_bytes=start, moof_offset_bytes=moof.offset, size_bytes=mdat.end - start, decode_time=decode_time,
                    duration_ticks=sum(durations), sample_count=len(sizes),
                    first_sample_end_bytes=data_offset + (sizes[0] if sizes else 0),
                    first_sample_is_sync=bool(flags_list) and not (flags_list[0] & 0x10000))
