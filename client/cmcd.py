"""The player's CMCD (CTA-5004) and what it makes of the edge's CMSD (CTA-5006).

Every request a session sends to an edge carries CMCD, as hls.js, dash.js and Shaka send it
(``--cmcd query|header|off``, default ``query`` as hls.js): the session keys (``sid``, ``cid``,
``sf``, ``st``; ``v`` is 1 and left out), the request keys at the moment it is sent (``bl`` the
buffer, ``mtp`` the measured throughput, ``su`` start-up or recovering, ``bs`` the buffer ran dry
since the last request, ``tb`` the top bitrate this device may play) and what the caller knows of
the object (`CmcdObject`: ``ot``, ``br``, ``d``, ``nor``, ``nrr``). Steering requests carry none:
CMCD is for the servers of the media. The encoding is ``httpsem.cmcd``'s, the one the edge parses.

`CmcdReporter` is the session's: it reads the session's state through the callables it is given
(no import of the session), so the load tester and the live player share it. `object_type` guesses
``ot`` from a URL when the caller does not say (playlists, MPDs, init segments, subtitles).

`cap_to_max_bitrate` is pure: the ABR decision capped to the highest rung at or under CMSD's ``mb``
(the edge's max suggested bitrate), for sessions that honour it (``--cmsd-mb``; off by default).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence
from urllib.parse import quote, urlsplit

from httpsem.cmcd import CmcdData, encode, header_fields, object_type as layout_object_type

from .abr.snapshot import Decision

__all__ = ["MODES", "CmcdObject", "CmcdReporter", "object_type", "with_cmcd_query", "cap_to_max_bitrate"]

MODES = ("query", "header", "off")
_MEDIA = frozenset(("a", "v", "av"))
_VIDEO = frozenset(("v", "av"))


@dataclass(frozen=True, slots=True)
class CmcdObject:
    """What a caller knows of the object it asks for (None: not said)."""

    ot: str | None = None
    br_kbps: float | None = None
    d_ms: float | None = None
    nor: str | None = None
    nrr: str | None = None


def object_type(url: str) -> str | None:
    """``ot`` from a URL by the vodstack layout (``httpsem.cmcd.object_type`` of its path)."""
    return layout_object_type(urlsplit(url).path)


def with_cmcd_query(url: str, payload: str) -> str:
    """``url`` with the ``CMCD`` query argument added (URL-encoded as hls.js does: encodeURIComponent)."""
    if not payload:
        return url
    return f"{url}{'&' if '?' in url else '?'}CMCD={quote(payload, safe='')}"


@dataclass(frozen=True, slots=True)
class SessionView:
    """What the reporter reads of its session when a request goes out."""

    buffer_s: float
    urgent: bool  #: start-up, or recovering from a stall: the object is needed at once (``su``)
    stalls: int   #: stalls so far (``bs`` when it grew since the last request)
    throughput_kbps: float | None
    top_kbps: float | None


class CmcdReporter:
    """The CMCD of one session's requests (see the module docstring)."""

    def __init__(self, *, mode: str, sid: str, cid: str | None, view: Callable[[], SessionView]) -> None:
        if mode not in MODES:
            raise ValueError(f"CMCD mode: expected one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.sid = sid
        self.cid = cid
        self.sf: str | None = None  #: ``h`` or ``d`` once the manifest is known
        self.view = view
        self._stalls_told = 0

    def data(self, obj: CmcdObject | None, url: str) -> CmcdData:
        v = self.view()
        starved = v.stalls > self._stalls_told
        self._stalls_told = v.stalls
        obj = obj or CmcdObject()
        ot = obj.ot or object_type(url)
        media = ot in _MEDIA  # CTA-5004: bl only with a, v or av objects; tb is the video ladder's top
        return CmcdData(sid=self.sid, cid=self.cid, ot=ot, br_kbps=obj.br_kbps,
                        bl_ms=v.buffer_s * 1000 if media else None, mtp_kbps=v.throughput_kbps, d_ms=obj.d_ms,
                        tb_kbps=v.top_kbps if ot in _VIDEO else None, nor=obj.nor, nrr=obj.nrr, su=v.urgent,
                        bs=starved, sf=self.sf, st="v")

    def apply(self, url: str, headers: dict[str, str], obj: CmcdObject | None) -> str:
        """The URL to send (query mode) after adding this request's CMCD to it or to ``headers``."""
        if self.mode == "off":
            return url
        data = self.data(obj, url)
        if self.mode == "header":
            headers.update(header_fields(data))
            return url
        return with_cmcd_query(url, encode(data))


def cap_to_max_bitrate(decision: Decision, ladder_bps: Sequence[float], mb_bps: float | None) -> Decision:
    """``decision`` at the highest rung whose bitrate is at or under ``mb_bps`` (the lowest rung when
    none is); unchanged when there is no hint or the decision is under it already."""
    if mb_bps is None or not ladder_bps or ladder_bps[decision.index] <= mb_bps:
        return decision
    fits = [i for i, bps in enumerate(ladder_bps) if bps <= mb_bps]
    index = max(fits) if fits else 0
    if index == decision.index:  # the lowest rung already: nothing to cap
        return decision
    return Decision(index, f"{decision.reason}; CMSD mb {mb_bps / 1000:.0f} kbps caps rung {decision.index} to {index}")
