"""The edge's side of CMCD and CMSD: what a request says about its viewer, what the answer says back.

Pure cores (table-tested) and one small socket read:

* `request_cmcd(query, headers)` -> `RequestCmcd`: the CMCD of a request, from its ``CMCD`` query
  argument and ``CMCD-*`` headers (``httpsem.cmcd``). Malformed CMCD is ``malformed=True`` and no
  keys: it is counted and ignored, never an error. CMCD is never part of the cache key (the key is
  ``{title}/{path}``: a query never reaches it), so it never splits the cache.
* `log_fields(cmcd)`: the keys the access log keeps (``sid ot bl br mtp su bs``), ``-`` when absent.
* `object_type(path)`: CMSD's ``ot`` for an object path of the vodstack layout (``httpsem.cmcd``'s, the player's too).
* `suggest(...)` -> `Hint`: the ``mb`` (max suggested bitrate) and ``du`` (duress) of
  ``CMSD-Dynamic``: an operator's cap (``cmsd_max_bitrate_kbps``), and when the edge sends more than
  90 % of its ``capacity_mbps``, duress and 90 % of the capacity shared among the viewers (CMCD
  ``sid``) it served in the last `VIEWER_WINDOW_S`; a draining edge is under duress.
* `tcp_estimate(sock)`: ``etp`` and ``rtt`` from the kernel's ``TCP_INFO`` for the client's
  connection, as CTA-5006 suggests (``etp = 8 * cwnd * mss / rtt``). The player's shaped link lives
  inside the player, so on loopback this estimate is the loopback's, not the shaped one.
"""
from __future__ import annotations

import socket
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping
from urllib.parse import unquote_plus

from httpsem.cmcd import CmcdError, CmcdValue, from_request, object_type, parse
from httpsem.cmsd import dynamic_field, static_field

__all__ = ["RequestCmcd", "request_cmcd", "query_value", "cmcd_argument", "log_fields", "NO_CMCD_FIELDS", "object_type", "Hint", "suggest",
           "tcp_estimate", "static_header", "dynamic_header", "VIEWER_WINDOW_S", "DURESS_SHARE"]

#: An access-log line's CMCD fields when the request said nothing (`log_fields`).
NO_CMCD_FIELDS = "sid=- ot=- bl=- br=- mtp=- su=- bs=-"
VIEWER_WINDOW_S = 10.0
MAX_SID = 64  #: CTA-5004: a session id is at most 64 characters
DURESS_SHARE = 0.9


@dataclass(frozen=True, slots=True)
class RequestCmcd:
    keys: Mapping[str, CmcdValue] | None  #: None: the request carried no CMCD (or it was malformed)
    malformed: bool = False


NO_CMCD = RequestCmcd(None)
_HEADER_NAMES = ("CMCD-Object", "CMCD-Request", "CMCD-Session", "CMCD-Status")


def request_cmcd(query_arg: str | None, headers: Mapping[str, str]) -> RequestCmcd:
    """The CMCD of a request: ``query_arg`` is its decoded ``CMCD`` query argument (or None)."""
    header_values: Iterable[str] = [_joined(headers, h) for h in _HEADER_NAMES if h in headers] if headers else ()
    if not header_values:
        if query_arg is None:
            return NO_CMCD
        try:  # the commonest: the query argument alone
            return RequestCmcd(parse(query_arg))
        except CmcdError:
            return RequestCmcd(None, malformed=True)
    try:
        keys = from_request(query_arg, header_values)
    except CmcdError:
        return RequestCmcd(None, malformed=True)
    return RequestCmcd(keys)


def _joined(headers: Mapping[str, str], name: str) -> str:
    """A header's value; repeated lines joined with ``, `` (RFC 9110 5.3, RFC 8941 4.2)."""
    getall = getattr(headers, "getall", None)
    return ", ".join(getall(name)) if getall is not None else headers[name]


def query_value(raw: str) -> str:
    """A query argument's value decoded as aiohttp's path decodes it (``unquote_plus``), fast for what
    players send: ``encodeURIComponent`` of a CMCD payload escapes only ``=``, ``,``, ``"`` (and ``%``)."""
    if "%" not in raw and "+" not in raw:
        return raw
    text = raw.replace("%3D", "=").replace("%2C", ",").replace("%22", '"')
    if "+" in text or text.count("%") != text.count("%25"):
        return unquote_plus(raw)
    return text.replace("%25", "%")


def cmcd_argument(raw_query: str) -> str | None:
    """The decoded value of the ``CMCD`` argument of a raw (still escaped) query string, or None."""
    if "CMCD=" not in raw_query:
        return None
    for arg in raw_query.split("&"):
        if arg.startswith("CMCD="):
            return query_value(arg[5:])
    return None


def log_fields(keys: Mapping[str, CmcdValue] | None) -> str:
    """``sid=... ot=... bl=... br=... mtp=... su=... bs=...``: booleans as 1, absent as ``-``."""
    if not keys:
        return NO_CMCD_FIELDS
    get = keys.get
    return (f"sid={_logged(get('sid'))} ot={_logged(get('ot'))} bl={_logged(get('bl'))} br={_logged(get('br'))} "
            f"mtp={_logged(get('mtp'))} su={_logged(get('su'))} bs={_logged(get('bs'))}")


def _logged(value: CmcdValue | None) -> str:
    if value is None or value is False:
        return "-"
    if value is True:
        return "1"
    if type(value) is int:
        return str(value)
    text = str(value)
    if not text or " " in text or '"' in text or "=" in text or "\\" in text or not text.isprintable():
        if not text.isprintable():  # never a raw newline (a forged log line) or other control character
            text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def static_header(path: str, edge_name: str) -> str:
    """``CMSD-Static`` for an object: its type, VOD, and this edge as the intermediary ``n``."""
    return static_field({"n": edge_name, "ot": object_type(path), "st": "v"})


@dataclass(frozen=True, slots=True)
class Hint:
    mb_kbps: int | None = None
    duress: bool = False


def suggest(*, cap_kbps: int, capacity_mbps: float, out_bps: float, viewers: int, draining: bool) -> Hint:
    """``mb`` and ``du`` of CMSD-Dynamic (see the module docstring); ``out_bps`` in bits per second."""
    mb: int | None = cap_kbps if cap_kbps > 0 else None
    duress = draining
    if capacity_mbps > 0 and out_bps >= DURESS_SHARE * capacity_mbps * 1e6:
        duress = True
        share = int(DURESS_SHARE * capacity_mbps * 1000 / max(1, viewers))
        mb = max(1, share if mb is None else min(mb, share))
    return Hint(mb, duress)


def dynamic_header(edge_name: str, *, hint: Hint, estimate: tuple[float, float] | None, rd_ms: float | None) -> str:
    etp, rtt = estimate if estimate is not None else (None, None)
    return dynamic_field(edge_name, etp_kbps=etp, rtt_ms=rtt, rd_ms=rd_ms, mb_kbps=hint.mb_kbps, duress=hint.duress)


_TCP_INFO = getattr(socket, "TCP_INFO", None)
_INFO = struct.Struct("=16xI48xI8xI")  # tcpi_snd_mss (@16), tcpi_rtt µs (@68), tcpi_snd_cwnd (@80)


def tcp_estimate(sock: socket.socket | None) -> tuple[float, float] | None:
    """(etp kbps, rtt ms) of a TCP connection from ``TCP_INFO``; None off Linux, on a Unix socket or
    before the kernel has a round-trip sample."""
    if sock is None or _TCP_INFO is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _INFO.size)
    except OSError:
        return None
    if len(raw) < _INFO.size:
        return None
    mss, rtt_us, cwnd = _INFO.unpack_from(raw)
    if rtt_us <= 0:
        return None
    return 8.0 * cwnd * mss * 1000.0 / rtt_us, rtt_us / 1000.0


class Viewers:
    """The CMCD session ids an edge (worker) served in the last ``window_s``, at most ``max_ids`` (the
    least recently seen go first, in O(1)); ids over `MAX_SID` characters are not kept."""

    def __init__(self, window_s: float = VIEWER_WINDOW_S, max_ids: int = 100_000) -> None:
        self.window_s = window_s
        self.max_ids = max_ids
        self._seen: OrderedDict[str, float] = OrderedDict()  # least recently seen first

    def seen(self, sid: str, now_s: float) -> None:
        if len(sid) > MAX_SID:
            return
        seen = self._seen
        seen[sid] = now_s
        seen.move_to_end(sid)
        if len(seen) > self.max_ids:
            seen.popitem(last=False)

    def count(self, now_s: float) -> int:
        cutoff = now_s - self.window_s
        seen = self._seen
        while seen:
            sid, t = next(iter(seen.items()))
            if t > cutoff:
                break
            del seen[sid]
        return len(seen)


class CmsdState:
    """One edge worker's CMSD: the viewers it serves and its `Hint`, worked out at most once a second
    (at once when draining starts). ``share`` is this worker's share of the edge (1 / workers)."""

    def __init__(self, *, cap_kbps: int, capacity_mbps: float, share: float = 1.0) -> None:
        self.cap_kbps = cap_kbps
        self.capacity_mbps = capacity_mbps * share
        self.viewers = Viewers()
        self._hint = Hint(cap_kbps or None)
        self._at_s = float("-inf")
        self._draining = False

    def note_viewer(self, keys: Mapping[str, CmcdValue] | None, now_s: float) -> None:
        """A request being answered (not refused) for the session its CMCD names, if it names one."""
        sid = keys.get("sid") if keys else None
        if isinstance(sid, str):
            self.viewers.seen(sid, now_s)

    def hint(self, now_s: float, out_bytes_per_s: Callable[[float], float], draining: bool) -> Hint:
        """The hint now; ``out_bytes_per_s(now_s)`` (the out-rate meter, bytes per second) is read only when
        it is worked out again. The same object comes back while the hint holds (the fast path keeps its
        header bytes by it)."""
        if now_s - self._at_s >= 1.0 or draining != self._draining:
            hint = suggest(cap_kbps=self.cap_kbps, capacity_mbps=self.capacity_mbps,
                           out_bps=8 * out_bytes_per_s(now_s),
                           viewers=self.viewers.count(now_s), draining=draining)
            if hint != self._hint:
                self._hint = hint
            self._at_s, self._draining = now_s, draining
        return self._hint
