"""RFC 6381 ``CODECS`` strings from the encoded streams' own configuration records.

``avc1.PPCCLL`` from ``avcC``; ``hvc1.<space><profile>.<compat>.<tier><level>.<constraints>``
from ``hvcC`` (ISO/IEC 14496-15 annex E); ``av01.<profile>.<level><tier>.<bitdepth>`` from
``av1C`` (AV1 codec ISO media file format binding, "Codecs Parameter String"); AAC from the
profile (``mp4a.40.2`` LC, ``.5`` HE, ``.29`` HEv2); ``ec-3`` / ``ac-3``.
"""
from __future__ import annotations


def avc1(avcc: bytes, tag: str = "avc1") -> str:
    if len(avcc) < 4 or avcc[0] != 1:
        raise ValueError("not an avcC record")
    return f"{tag}.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"


def hvc1(hvcc: bytes, tag: str = "hvc1") -> str:
    if len(hvcc) < 13:
        raise ValueError("not an hvcC record")
    space = (hvcc[1] >> 6) & 0x3
    tier = (hvcc[1] >> 5) & 0x1
    profile = hvcc[1] & 0x1F
    compat = int.from_bytes(hvcc[2:6], "big")
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    level = hvcc[12]
    parts = [tag, f"{'' if space == 0 else 'ABC'[space - 1]}{profile}", f"{reversed_compat:x}",
             f"{'H' if tier else 'L'}{level}"]
    parts += [f"{c:02X}" for c in constraints]
    return ".".join(parts)


def av01(av1c: bytes) -> str:
    if len(av1c) < 3 or not av1c[0] & 0x80:
        raise ValueError("not an av1C record")
    profile = (av1c[1] >> 5) & 0x7
    level = av1c[1] & 0x1F
    tier = "H" if (av1c[2] >> 7) & 1 else "M"
    high = (av1c[2] >> 6) & 1
    twelve = (av1c[2] >> 5) & 1
    depth = 12 if (high and twelve) else 10 if high else 8
    return f"av01.{profile}.{level:02d}{tier}.{depth:02d}"


def video_codec_string(codec_name: str, extradata: bytes, tag: str = "") -> str:
    """``codec_name`` as PyAV names the decoder (h264, hevc, libdav1d/av1)."""
    if codec_name == "h264":
        return avc1(extradata, tag or "avc1")
    if codec_name == "hevc":
        return hvc1(extradata, tag if tag in ("hvc1", "hev1") else "hvc1")
    if codec_name in ("av1", "libdav1d", "libaom-av1"):
        return av01(extradata)
    raise ValueError(f"no RFC 6381 mapping for video codec {codec_name!r}")
