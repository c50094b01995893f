"""The RAM-hit fast path: plain ``GET``/``HEAD`` of a fresh object in RAM answered from the socket callback.

``bench/edge_vs_nginx`` showed where a 2 KB RAM hit's time went: aiohttp's request object, router,
middleware chain, response object and task cost 50-60 µs of CPU per request, while nginx spends
16 µs on the whole request. What the edge itself does for a hit (token check, RAM lookup, freshness,
a memoised plan, a log line, counters) is a few µs. So, like nginx serving from its open-file cache
before any module runs, the edge answers the commonest request before aiohttp sees it:

* :class:`FastRequestHandler` is aiohttp's own per-connection protocol with one more step in
  ``data_received``. It frames requests itself (a head ends at the first CRLF CRLF) and hands every
  request it does not answer to aiohttp whole, so aiohttp's parser always stops at a message
  boundary and the two never disagree about where a request starts.
* A request is answered here only when **all** of these hold; otherwise aiohttp gets it and the
  ordinary path (``serve.py``) answers, byte for byte as before:
  - aiohttp is idle on this connection (nothing queued or in progress, so answers keep their order)
    and the socket's write buffer is empty (a client that does not read gets aiohttp's back-pressure);
  - ``GET`` or ``HEAD`` ``/t/{token}/{title}/{path}`` in HTTP/1.1, with no query but one ``CMCD``
    argument (CTA-5004: read here as aiohttp's path reads it), no ``%``-escape in the path and only
    printable ASCII in the target;
  - header lines that are well formed, and none that can change the answer or the framing:
    ``Range``, ``If-*``, ``Content-Length``, ``Transfer-Encoding``, ``Expect``, ``Upgrade``,
    ``Connection`` other than keep-alive, the edge-to-edge headers, ``Sec-WebSocket-*``, no ``Host``,
    a repeated ``Host`` or other header aiohttp refuses to see twice, a head over 8190 bytes or with over 100 header lines;
  - the edge is not draining, the token grants the title, and the object is in RAM and fresh, with
    a body of at most 64 KiB (``MAX_FAST_BODY``; or ``HEAD``).
* The answer is the one ``serve.py`` gives: the same memoised plan (``part.plans``), the same
  headers in the same order (the CORS pair aiohttp adds on ``/t/`` paths, ``Date`` and ``Server``
  included, then the CMSD pair: ``edge/cmcd.py``), the same access-log line, request and byte
  counters and out-rate meter.
* Anything that carries a body (``Content-Length``, ``Transfer-Encoding``), ``Upgrade``, a head over
  16 KiB, a line not ending in CRLF or a byte outside printable ASCII and tab, or an incomplete head
  (split across reads) that cannot become one answered here (an admin path, a TLS hello) switches the
  connection to plain aiohttp for good, at once.

``EdgeConfig.fast_path`` (``--no-fast-path``) turns it off; ``tests/edge/test_edge_fast_path.py``
sends the same requests to an edge with and without it and compares the answers.

It rides on aiohttp's private ``RequestHandler`` attributes (``_waiter``, ``_messages``,
``_force_close``, ...), so it runs only on the aiohttp versions it is tested on
(:data:`TESTED_AIOHTTP`, the range ``pyproject.toml`` pins): on any other version the edge serves
every request through aiohttp and logs one warning line (:func:`fast_path_allowed`).
"""
from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import logging
import re
import time
from types import MappingProxyType
from typing import Any, Mapping

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.web_protocol import RequestHandler
from serverkit.deadlines import DeadlineAppRunner, DeadlineRequestHandler, DeadlineServer, RequestDeadlines, remake_server
from httpsem.semantics import CORS_HEADERS, ResponsePlan, http_date

from .fill import CACHE_ONLY_HEADER, EDGE_HEADER
from .node import Edge
from .objects import CachedPart
from .lookup import CacheResult, TierName
from .cmcd import NO_CMCD, Hint, RequestCmcd, dynamic_header, query_value, request_cmcd, static_header, tcp_estimate
from .serve import EDGE_KEY, Outcome, account, plain_plan
from httpsem.cmcd import HEADER_NAMES

log = logging.getLogger(__name__)

#: aiohttp versions the fast path is tested on, ``low <= version < high`` (``pyproject.toml``
#: pins the same range): outside it the fast path is off.
TESTED_AIOHTTP: tuple[tuple[int, ...], tuple[int, ...]] = ((3, 14), (3, 15))

MAX_HEAD_BYTES = 16 * 1024  # a longer head switches the connection to aiohttp
MAX_FAST_HEAD = 8190  # a longer head is left to aiohttp, whose parser limits lines to 8190 bytes
MAX_FAST_HEADERS = 100  # aiohttp's parser refuses more than 128
#: Bodies up to this size are answered here (playlists, init segments, small parts). Per-request
#: overhead matters little for a larger body, and bench/edge_vs_nginx measured 1 MB bodies written
#: this way slower under uvloop than by aiohttp's own writer (2385 vs 3306 req/s in one run, same
#: CPU; under asyncio's loop the fast path's 3238 req/s was not slower).
MAX_FAST_BODY = 64 * 1024
#: Headers aiohttp's parser refuses to see twice (``aiohttp.http_parser.SINGLETON_HEADERS``, less the
#: ones that never reach the fast path at all).
_SINGLETONS = tuple(b"\r\n" + n + b":" for n in (b"host", b"user-agent", b"content-type", b"content-location",
                                                    b"content-range", b"etag", b"max-forwards", b"server"))

#: ``METHOD /t/token/title/path[?query] HTTP/1.1``: printable ASCII, the path without ``%``, ``?`` or ``#``
#: (only a query of one ``CMCD`` argument is answered here: ``_answer``).
_REQUEST_LINE = re.compile(rb'(GET|HEAD) /t/([!"$&-.0->@-~]+)/([!"$&-.0->@-~]+)/([!"$&->@-~]+)(?:\?([!$-~]*))? HTTP/1\.1')
_CMCD_QUERY = b"CMCD="
#: The CMCD request headers, by their lower-case name (found in a head by ``\r\ncmcd-``).
_CMCD_HEADERS: Mapping[bytes, str] = MappingProxyType({n.lower().encode(): n for n in HEADER_NAMES})
#: Header lines as RFC 9110 allows them (token name, visible ASCII or tab in the value).
_HEADER_LINES = re.compile(rb"(?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t -~]*)*")
_UNSAFE = re.compile(rb"\r\n(?:range|if-[-a-z0-9]*|content-length|transfer-encoding|expect|upgrade|te|sec-websocket-[-a-z0-9]*|"
                     + re.escape(EDGE_HEADER.lower().encode()) + rb"|" + re.escape(CACHE_ONLY_HEADER.lower().encode())
                     + rb")[ \t]*:|\r\nconnection:(?![ \t]*keep-alive[ \t]*(?:\r|$))")
_PASS_THROUGH = re.compile(rb"\r\n(?:content-length|transfer-encoding|upgrade)[ \t]*:", re.IGNORECASE)
#: A head whose lines all end in CRLF and hold printable ASCII or tabs only: where it ends is not in doubt.
_CLEAN = re.compile(rb"[\t -~]*(?:\r\n[\t -~]*)*")
_STARTS = (b"GET /t/", b"HEAD /t/")


def _may_be_fast(partial: bytes) -> bool:
    """Whether an incomplete head may still become one the fast path answers (else aiohttp takes it now,
    so that bytes that never make a head, a TLS hello say, get aiohttp's 400 at once)."""
    if len(partial) > MAX_FAST_HEAD:
        return False
    if not (partial.startswith(_STARTS) or any(s.startswith(partial) for s in _STARTS)):
        return False
    clean = partial[:-1] if partial.endswith(b"\r") else partial
    return _CLEAN.fullmatch(clean) is not None


_TAIL = (b"Server: " + SERVER_SOFTWARE.encode() + b"\r\n"
         + b"".join(f"{k}: {v}\r\n".encode() for k, v in CORS_HEADERS.items()))
ESTIMATE_EVERY_S = 1.0  #: a connection's TCP_INFO estimate (CMSD etp, rtt) is read at most this often


@functools.lru_cache(maxsize=2)
def _date_line(second: int) -> bytes:
    """The ``Date`` header line for a second (the one now, and the one before while it turns)."""
    return b"Date: " + http_date(second).encode() + b"\r\n"


class FastRequestHandler(DeadlineRequestHandler):
    """aiohttp's connection protocol (with the edge's request deadlines), answering plain fresh RAM hits
    itself (see the module docstring). An incomplete head held here keeps the header deadline as one
    held by aiohttp's parser does: the same 408 at the same time."""

    # RequestHandler has __slots__; these are this class's own
    __slots__ = ("_fp_app", "_fp_buf", "_fp_through", "_fp_peer", "_fp_estimate", "_fp_estimate_at", "_fp_hint",
                 "_fp_dynamic")

    def __init__(self, manager: web.Server, *, fp_app: web.Application, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._fp_app = fp_app
        self._fp_buf = b""
        self._fp_through = False
        self._fp_peer = ""
        self._fp_estimate: tuple[float, float] | None = None
        self._fp_estimate_at = float("-inf")
        self._fp_hint: Hint | None = None
        self._fp_dynamic = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._fp_peer = str(peer[0]) if isinstance(peer, (tuple, list)) and peer else "-"

    def data_received(self, data: bytes) -> None:
        if self._fp_through or self._force_close or self._close:
            super().data_received(data)
            return
        buf = self._fp_buf + data if self._fp_buf else data
        self._fp_buf = b""
        pos = 0
        while True:
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0 or end - pos > MAX_HEAD_BYTES or not _CLEAN.fullmatch(buf, pos, end):
                break  # incomplete, or lines aiohttp's parser might end elsewhere (bare CR or LF, other bytes)
            head_end = end + 4
            if self._idle() and self._answer(buf, pos, end):
                pos = head_end
                continue
            if _PASS_THROUGH.search(buf, pos, end + 2):
                break  # a body (or a protocol switch) follows: aiohttp frames the rest of this connection
            super().data_received(buf[pos:head_end])
            pos = head_end
            if self._fp_through or self._force_close or self._close:
                return
        rest = buf[pos:] if pos else buf
        if not rest:
            self._dl_head_at = 0.0  # every head in these bytes is answered or with aiohttp, whole
            return
        if buf.find(b"\r\n\r\n", pos) < 0 and _may_be_fast(rest):
            self._fp_buf = rest  # the start of a head the fast path may answer: wait for the rest of it
            if pos or not self._dl_head_at:
                self._dl_head_started()  # its first bytes came in this read
            return
        self._fp_through = True
        super().data_received(rest)

    def _idle(self) -> bool:
        """True when aiohttp waits for a request on this connection and every answer has been written."""
        waiter = self._waiter
        return (waiter is not None and not waiter.done() and not self._messages
                and not self._request_in_progress and self.transport is not None
                and not self.transport.get_write_buffer_size())

    def _answer(self, buf: bytes, pos: int, end: int) -> bool:
        """Answer the request whose head is ``buf[pos:end]`` if it is a plain fresh RAM hit; else False."""
        started = time.perf_counter()
        line_end = buf.find(b"\r\n", pos, end + 2)
        m = _REQUEST_LINE.fullmatch(buf, pos, line_end)
        if m is None:
            return False
        headers = buf[line_end:end]
        if end - pos > MAX_FAST_HEAD or not _HEADER_LINES.fullmatch(headers):
            return False
        lowered = headers.lower()
        if (_UNSAFE.search(lowered) or lowered.count(b"\r\n") > MAX_FAST_HEADERS
                or lowered.count(b"\r\nhost:") != 1):  # HTTP/1.1 needs one Host (aiohttp answers 400 otherwise)
            return False
        for name in _SINGLETONS:
            if lowered.count(name) > 1:
                return False
        app = self._fp_app
        edge = app[EDGE_KEY]
        if edge.draining or edge.retiring:  # aiohttp answers (503; Connection: close)
            return False
        method = m.group(1).decode()
        query = m.group(5)
        if query is not None and (not query.startswith(_CMCD_QUERY) or b"&" in query):
            return False  # any other query: aiohttp's path reads it
        try:
            token, title, path = m.group(2).decode(), m.group(3).decode(), m.group(4).decode()
            if edge.token_ok(token, title):  # first, as serve.py: a refused request never touches the RAM order
                return False
            part = edge.fresh_in_ram(f"{title}/{path}")
            if part is None:
                return False
            head, plan = _head(part, method, path)
        except Exception:  # noqa: BLE001 - whatever it is, aiohttp's path answers it (and logs it there)
            log.exception("fast path failed; left to aiohttp", extra={"kv": {"target": m.group(0)[:200]}})
            return False
        if plan.status != 200 or (plan.send_body and plan.length > MAX_FAST_BODY):
            return False  # only the plain 200 of a small body is answered here
        # CMCD is read only for an answer given here (aiohttp's path reads it for the others)
        cmcd = _head_cmcd(query, headers, lowered) if query is not None or b"\r\ncmcd-" in lowered else NO_CMCD
        transport = self.transport
        assert transport is not None
        date = _date_line(int(time.time()))
        out = Outcome(status=200, cache=CacheResult.RAM_HIT, tier=TierName.RAM, cmcd=cmcd)
        edge.cmsd.note_viewer(cmcd.keys, edge.clock())  # before the hint, as app._cors does
        cmsd = self._cmsd(edge, part, path) if edge.cfg.cmsd else b"\r\n"
        if not plan.send_body:
            transport.write(b"".join((head, date, _TAIL, cmsd)))
        else:
            body = part.body if plan.length == len(part.body) else memoryview(part.body)[plan.start:plan.end]
            out.sent_bytes = plan.length
            transport.write(b"".join((head, date, _TAIL, cmsd, body)))  # one write, one segment train
        self._next_keepalive_close_time = self._loop.time() + self._keepalive_timeout
        account(app, method, buf[m.start(2) - 3:m.end(4)].decode(), out, started, range_header="-",
                peer=self._fp_peer, via="-")
        return True

    def _cmsd(self, edge: Edge, part: CachedPart, path: str) -> bytes:
        """The CMSD header lines and the blank line ending the head (as ``app._cors`` sends them)."""
        memo = part.cmsd_static
        if not memo:
            memo.append(f"CMSD-Static: {static_header(path, edge.cfg.name)}\r\n".encode())
        # CMSD-Dynamic, kept per connection for a second: a RAM hit's response delay is under a
        # millisecond (rd=0), the TCP estimate is read once a second, the hint changes at most as often
        hint = edge.cmsd.hint(edge.clock(), edge.out_meter.rate, edge.draining)
        now = self._loop.time()
        if now - self._fp_estimate_at >= ESTIMATE_EVERY_S or hint is not self._fp_hint:
            transport = self.transport
            self._fp_estimate = tcp_estimate(transport.get_extra_info("socket") if transport is not None else None)
            self._fp_estimate_at, self._fp_hint = now, hint
            self._fp_dynamic = (b"CMSD-Dynamic: " + dynamic_header(edge.cfg.name, hint=hint, estimate=self._fp_estimate,
                                                                   rd_ms=0.0).encode() + b"\r\n\r\n")
        return memo[0] + self._fp_dynamic


def _head_cmcd(query: bytes | None, headers: bytes, lowered: bytes) -> RequestCmcd:
    """The CMCD of a head answered here: its ``CMCD=`` query argument and ``CMCD-*`` header lines."""
    found: dict[str, str] = {}
    if b"\r\ncmcd-" in lowered:
        for line in headers.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            canonical = _CMCD_HEADERS.get(name.lower())
            if canonical is not None:  # repeated lines joined, as aiohttp's path joins them (edge/cmcd.py)
                line_value = value.strip(b" \t").decode("latin-1")
                found[canonical] = f"{found[canonical]}, {line_value}" if canonical in found else line_value
    arg = query_value(query[len(_CMCD_QUERY):].decode("latin-1")) if query is not None else None
    return request_cmcd(arg, found)


def _head(part: CachedPart, method: str, path: str) -> tuple[bytes, ResponsePlan]:
    """The status line and headers (up to ``Content-Length``) of a plain request's answer, and its plan;
    memoised on the part beside ``serve.py``'s plans, so both die with the part."""
    memo = part.fast_heads.get(method)
    if memo is None:
        plan = plain_plan(part, method, path)
        # only a 200 is ever sent from here (_answer checks), and plan_response always sets Content-Length
        lines = [b"HTTP/1.1 200 OK\r\n"] + [f"{k}: {v}\r\n".encode("latin-1") for k, v in plan.headers.items()]
        memo = part.fast_heads[method] = (b"".join(lines), plan)
    return memo


class FastServer(DeadlineServer):
    """aiohttp's connection factory, making :class:`FastRequestHandler` connections for ``app``."""

    def __init__(self, *args: Any, fp_app: web.Application, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fp_app = fp_app

    def __call__(self) -> RequestHandler:
        return FastRequestHandler(self, loop=self._loop, fp_app=self._fp_app, deadlines=self.deadlines, **self._kwargs)


def edge_deadlines(app: web.Application) -> RequestDeadlines:
    """The request deadlines of the edge ``app`` serves (``EdgeConfig.header_timeout_s``...), else the defaults."""
    edge = app.get(EDGE_KEY)
    if edge is None:
        return RequestDeadlines()
    cfg = edge.cfg
    return RequestDeadlines(header_timeout_s=cfg.header_timeout_s, body_timeout_s=cfg.body_timeout_s,
                            keepalive_timeout_s=cfg.keepalive_timeout_s)


class EdgeRunner(DeadlineAppRunner):
    """``web.AppRunner`` for an edge app: its connections keep the edge's request deadlines (head, body,
    idle: ``serverkit.deadlines``), and get the fast path when ``cfg.fast_path`` is on."""

    def __init__(self, app: web.Application, *, aiohttp_version: str | None = None, **kwargs: Any) -> None:
        super().__init__(app, deadlines=edge_deadlines(app), **kwargs)
        #: The aiohttp version the fast path is gated on (default: the one this process runs).
        self.aiohttp_version = aiohttp_version or importlib.metadata.version("aiohttp")

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        edge = self.app.get(EDGE_KEY)
        if edge is None or not edge.cfg.fast_path or not fast_path_allowed(self.aiohttp_version):
            return server
        return remake_server(server, FastServer, fp_app=self.app, deadlines=self.deadlines)


def version_tuple(version: str) -> tuple[int, ...]:
    """The leading release numbers of a version string: ``"3.14.5"`` -> (3, 14, 5),
    ``"3.15.0a1"`` -> (3, 15, 0), ``"4.0.0.dev0"`` -> (4, 0, 0)."""
    numbers = []
    for part in version.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        numbers.append(int(digits.group()))
        if digits.end() != len(part):
            break
    return tuple(numbers)


def aiohttp_tested(version: str, tested: tuple[tuple[int, ...], tuple[int, ...]] = TESTED_AIOHTTP) -> bool:
    """Whether the fast path may run on aiohttp ``version`` (pure: ``low <= version < high``)."""
    low, high = tested
    numbers = version_tuple(version)
    return bool(numbers) and low <= numbers < high


def tested_range_text(tested: tuple[tuple[int, ...], tuple[int, ...]] = TESTED_AIOHTTP) -> str:
    """``>=3.14,<3.15``: the range as ``pyproject.toml`` writes it."""
    low, high = tested
    return f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"


@functools.cache
def fast_path_allowed(aiohttp_version: str) -> bool:
    """:func:`aiohttp_tested`, with one warning line per process and version when it is not."""
    if aiohttp_tested(aiohttp_version):
        return True
    log.warning("fast path off: aiohttp is outside the range it is tested on",
                extra={"kv": {"aiohttp": aiohttp_version, "tested": tested_range_text()}})
    return False
