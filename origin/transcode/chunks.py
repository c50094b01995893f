"""Each video fragment's key frame in a CMAF chunk of its own: one ``moof``+``mdat`` holding only
the segment's first (sync) sample, then one holding the rest, in the same segment.

Why: trick play wants the key frames alone. HLS I-frame playlists may name a byte range that ends
inside an ``mdat`` (a fragment's ``moof`` and its first sample), but a DASH trick-mode
Representation's segments must be whole fragments, and a DASH client reads such a range as a
truncated segment. With the key frame in a chunk of its own, the range of that chunk is a complete,
self-contained fragment, so the HLS I-frame playlists and the DASH trick-mode sets name the same
bytes of the very segments the normal playlists name: no second copy of anything. (A CMAF segment
made of several chunks is what low-latency packagers write; every player reads it.)

The rewrite keeps every sample's bytes and table entries as ffmpeg wrote them: the chunk's
``tfhd`` is the original one (``default-base-is-moof``, its defaults), its ``trun`` has the
original flags and per-sample records (the second chunk drops ``first-sample-flags``, whose sample
is in the first), its ``tfdt`` is version 1, ``mfhd`` numbers run 2k-1, 2k. A ``sidx`` that
references the fragment is given the new size. Anything this module does not understand (several
tracks or ``trun`` boxes, a ``traf`` with encryption or sample-group boxes, data outside the
``mdat`` it follows) is a ValueError rather than a guess.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from .mp4 import Box, boxes

__all__ = ["SplitFragment", "split_key_samples", "trex_defaults"]

#: Boxes that may sit between fragments and belong to the fragment that follows them.
PREFIX_BOXES = (b"styp", b"sidx", b"prft", b"emsg")


@dataclass(frozen=True, kw_only=True)
class SplitFragment:
    """Where one original fragment went in the rewritten bytes."""

    offset_bytes: int  # its first box (styp/sidx if any, else the key chunk's moof)
    size_bytes: int  # through the end of its last chunk
    key_offset_bytes: int  # the key chunk's moof
    key_size_bytes: int  # the key chunk's moof + mdat: a whole fragment holding one sync sample


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big") + payload)


def trex_defaults(init: bytes) -> int:
    """The ``trex`` default sample duration of an init segment (0 when it has none)."""
    from .mp4 import find

    trex = find(init, [b"moov", b"mvex", b"trex"])
    if trex is None:
        return 0
    duration: int = struct.unpack_from(">I", init, trex.body + 12)[0]
    return duration


def _fields(flags: int) -> int:
    return sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)


def _split(data: bytes, moof: Box, mdat: Box, sequence: int, trex_duration: int) -> list[bytes]:
    """The fragment ``moof``+``mdat`` as one or two chunks (bytes of each)."""
    trafs = [b for b in boxes(data, moof.body, moof.end) if b.type == b"traf"]
    if len(trafs) != 1:
        raise ValueError(f"moof at {moof.offset}: {len(trafs)} traf boxes (one track per file)")
    kids = boxes(data, trafs[0].body, trafs[0].end)
    unknown = sorted({b.type.decode("latin-1") for b in kids} - {"tfhd", "tfdt", "trun"})
    if unknown or [b.type for b in kids].count(b"trun") != 1:
        raise ValueError(f"moof at {moof.offset}: cannot split a traf with {unknown or 'several trun boxes'}")
    tfhd = next(b for b in kids if b.type == b"tfhd")
    trun = next(b for b in kids if b.type == b"trun")
    tfdt = next((b for b in kids if b.type == b"tfdt"), None)
    hflags = int.from_bytes(data[tfhd.body + 1:tfhd.body + 4], "big")
    if hflags & 0x1 or not hflags & 0x020000:
        raise ValueError(f"moof at {moof.offset}: tfhd is not default-base-is-moof")
    default_duration = trex_duration
    p = tfhd.body + 8 + (4 if hflags & 0x2 else 0)
    if hflags & 0x8:
        default_duration = struct.unpack_from(">I", data, p)[0]
    decode_time = 0
    if tfdt is not None:
        decode_time = struct.unpack_from(">Q" if data[tfdt.body] == 1 else ">I", data, tfdt.body + 4)[0]

    version, rflags = data[trun.body], int.from_bytes(data[trun.body + 1:trun.body + 4], "big")
    count = struct.unpack_from(">I", data, trun.body + 4)[0]
    p = trun.body + 8
    if not rflags & 0x1:
        raise ValueError(f"moof at {moof.offset}: trun without data_offset")
    data_offset = struct.unpack_from(">i", data, p)[0]
    p += 4
    first_flags = b""
    if rflags & 0x4:
        first_flags = data[p:p + 4]
        p += 4
    width = _fields(rflags)
    records = [data[p + i * width:p + (i + 1) * width] for i in range(count)]
    if p + count * width > trun.end:
        raise ValueError(f"moof at {moof.offset}: trun shorter than its sample count")
    sizes = []
    for r in records:
        at = 4 if rflags & 0x100 else 0
        sizes.append(struct.unpack_from(">I", r, at)[0] if rflags & 0x200 else -1)
    if not rflags & 0x200 or moof.offset + data_offset != mdat.body or sum(sizes) != mdat.end - mdat.body:
        raise ValueError(f"moof at {moof.offset}: the samples are not exactly the mdat that follows")
    if count < 2:
        return [data[moof.offset:mdat.end]]
    first_duration = struct.unpack_from(">I", records[0], 0)[0] if rflags & 0x100 else default_duration
    if first_duration <= 0:
        raise ValueError(f"moof at {moof.offset}: no duration for the first sample")
    tfhd_bytes = data[tfhd.offset:tfhd.end]
    payload = data[mdat.body:mdat.end]

    def chunk(seq: int, decode: int, flags: int, extra: bytes, recs: list[bytes], media: bytes) -> bytes:
        def moof_with(offset: int) -> bytes:
            run = _full(b"trun", version, flags, struct.pack(">Ii", len(recs), offset) + extra + b"".join(recs))
            traf = _box(b"traf", tfhd_bytes + _full(b"tfdt", 1, 0, struct.pack(">Q", decode)) + run)
            return _box(b"moof", _full(b"mfhd", 0, 0, struct.pack(">I", seq)) + traf)
        head = moof_with(0)
        return moof_with(len(head) + 8) + _box(b"mdat", media)

    key = chunk(2 * sequence - 1, decode_time, rflags, first_flags, records[:1], payload[:sizes[0]])
    rest = chunk(2 * sequence, decode_time + first_duration, rflags & ~0x4, b"", records[1:], payload[sizes[0]:])
    return [key, rest]


def _resized_sidx(data: bytes, sidx: Box, size: int) -> bytes:
    """``sidx`` with its one reference's size set to ``size``."""
    out = bytearray(data[sidx.offset:sidx.end])
    body = sidx.body - sidx.offset
    version = out[body]
    at = body + 4 + 8 + (16 if version == 1 else 8) + 2
    (refs,) = struct.unpack_from(">H", out, at)
    if refs != 1:
        raise ValueError(f"sidx at {sidx.offset}: {refs} references (one per fragment expected)")
    (word,) = struct.unpack_from(">I", out, at + 2)
    if word >> 31:
        raise ValueError(f"sidx at {sidx.offset}: references another sidx")
    struct.pack_into(">I", out, at + 2, size)
    return bytes(out)


def split_key_samples(data: bytes, *, first_sequence: int = 1, trex_duration: int = 0
                      ) -> tuple[bytes, list[SplitFragment]]:
    """``data`` (an init + fragments, or one segment's fragments) with every fragment's first
    sample in a chunk of its own, and where each original fragment went. ``first_sequence``: the
    original sequence number of the first fragment here (a segment file's number); ``trex_duration``:
    the init's default sample duration, for a ``tfhd`` without one."""
    out = bytearray()
    placed: list[SplitFragment] = []
    prefix: list[Box] = []
    moof: Box | None = None
    sequence = first_sequence
    for b in boxes(data):
        if b.type in PREFIX_BOXES and moof is None:
            prefix.append(b)
        elif b.type == b"moof" and moof is None:
            moof = b
        elif b.type == b"mdat" and moof is not None:
            chunks = _split(data, moof, b, sequence, trex_duration)
            total = sum(len(c) for c in chunks)
            start = len(out)
            for p in prefix:
                out += _resized_sidx(data, p, total) if p.type == b"sidx" else data[p.offset:p.end]
            key_at = len(out)
            out += b"".join(chunks)
            placed.append(SplitFragment(offset_bytes=start, size_bytes=len(out) - start, key_offset_bytes=key_at,
                                        key_size_bytes=len(chunks[0])))
            prefix, moof, sequence = [], None, sequence + 1
        elif moof is None and not prefix:
            out += data[b.offset:b.end]  # ftyp, moov, free...
        else:
            raise ValueError(f"unexpected {b.type!r} box at {b.offset} inside a fragment")
    if moof is not None or prefix:
        raise ValueError("the data ends inside a fragment")
    return bytes(out), placed
