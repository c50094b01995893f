"""Deadlines on what a client sends: a request head, a request body, and the idle wait between requests.

After nginx's ``client_header_timeout`` (60 s), ``client_body_timeout`` (60 s) and
``keepalive_timeout`` (75 s), for every server connection of the origin and the edge (with or
without its RAM-hit fast path):

* **idle**: no byte of a request since the connection opened or since the last answer was
  written. Closed silently ``keepalive_timeout_s`` later (aiohttp's own keep-alive timer, which
  this module only keeps from cutting a head or a body in progress).
* **head**: some bytes of a request head, not all. The whole head must arrive within
  ``header_timeout_s`` of its first byte, or of the end of the previous answer when it arrived
  while that answer was being written; past it the client gets ``408 Request Timeout`` and the
  connection is closed. (A head that starts in the very read that ends a request body, from a
  pipelining client, is bounded by the idle timer instead: closed, without a 408.)
* **body**: the head is in, its body is not, and no answer has started (a ``100 Continue`` is not
  an answer). The whole body must arrive within ``body_timeout_s`` of the end of the head (or of
  the end of the answer it waited behind); past it: 408, closed, and the handler waiting for the
  body is cancelled. Once an answer has started nothing here cuts it: a large
  response to a slow reader is not a slow request (and an unread body is aiohttp's to drain, for
  at most its ``lingering_time``).

The decision is pure (:func:`decide`: a :class:`ConnectionState` and a clock in, a
:class:`Verdict` out); :class:`DeadlineRequestHandler` is aiohttp's connection protocol with one
timer handle (``loop.call_at``, re-armed only when it fires or when a head or body starts that is
due earlier) and a few attribute writes per read: no task per connection, nothing per request when
a head arrives in one read.
"""
from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler

from httpsem.semantics import http_date

log = logging.getLogger(__name__)

#: How a read that ends exactly at the end of a head (of a request without a body) ends.
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n", b"\n\r\n")


@dataclass(frozen=True, kw_only=True)
class RequestDeadlines:
    """How long a client may take: to send a head, to send a body, to start its next request."""

    header_timeout_s: float = 60.0
    """From the first byte of a request head to its end (nginx ``client_header_timeout``)."""
    body_timeout_s: float = 60.0
    """From the end of a head to the end of its body, while no answer has started."""
    keepalive_timeout_s: float = 75.0
    """An idle connection (no byte of a next request) is closed after this (nginx ``keepalive_timeout``)."""

    def __post_init__(self) -> None:
        for key in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key}: expected a positive number of seconds, got {getattr(self, key)}")


class Phase(enum.Enum):
    """Where a connection is, as far as deadlines go."""

    IDLE = "idle"  # waiting for a request, no byte of one yet
    HEAD = "head"  # waiting for a request, part of its head received
    BODY = "body"  # a head is in, its body is not, no answer started
    BUSY = "busy"  # an answer is being made or written (or an unread body drained)


class Action(enum.Enum):
    """What the connection's timer does when it fires."""

    NONE = "none"  # no deadline of ours runs (idle: aiohttp's keep-alive timer; busy: nothing)
    WAIT = "wait"  # check again at ``Verdict.at_s``
    ANSWER_408 = "answer_408"  # send 408 Request Timeout, then close


@dataclass(frozen=True, kw_only=True)
class ConnectionState:
    """A connection's phase; ``since_s`` is when its head's clock (HEAD) or body's (BODY) started."""

    phase: Phase
    since_s: float = 0.0
    next_waiting: bool = False
    """BUSY only: part of a next request (head or body) arrived while this answer is made; its clock
    starts when the answer ends."""


@dataclass(frozen=True, kw_only=True)
class Verdict:
    action: Action
    at_s: float = 0.0
    """WAIT: when to check again."""
    timed_out: Phase | None = None
    """ANSWER_408: which deadline passed (HEAD or BODY)."""


def decide(state: ConnectionState, limits: RequestDeadlines, now_s: float) -> Verdict:
    """What to do when the timer fires at ``now_s`` (pure)."""
    if state.phase is Phase.HEAD or state.phase is Phase.BODY:
        limit_s = limits.header_timeout_s if state.phase is Phase.HEAD else limits.body_timeout_s
        due_s = state.since_s + limit_s
        if now_s >= due_s:
            return Verdict(action=Action.ANSWER_408, timed_out=state.phase)
        return Verdict(action=Action.WAIT, at_s=due_s)
    if state.phase is Phase.BUSY and state.next_waiting:
        return Verdict(action=Action.WAIT, at_s=now_s + min(limits.header_timeout_s, limits.body_timeout_s))
    return Verdict(action=Action.NONE)


def _answer_begun(writer: Any) -> bool:
    """Whether a response's head has been written or buffered (aiohttp's ``StreamWriter``; an interim
    ``100 Continue`` is not an answer)."""
    if hasattr(writer, "_headers_written"):
        return bool(writer._headers_written or writer._headers_buf is not None)  # noqa: SLF001
    return bool(writer.output_size)


def request_timeout_bytes(now_s: float) -> bytes:
    """The 408 answer, headers as aiohttp writes its own error answers (``Date``, ``Server``)."""
    body = b"request timeout\n"
    return (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + f"Content-Length: {len(body)}\r\nDate: {http_date(int(now_s))}\r\nServer: {SERVER_SOFTWARE}\r\n".encode()
            + b"Connection: close\r\n\r\n" + body)


class DeadlineRequestHandler(RequestHandler):
    """aiohttp's connection protocol with the head, body and idle deadlines of :class:`RequestDeadlines`."""

    # RequestHandler has __slots__; these are this class's own
    __slots__ = ("_dl_limits", "_dl_handle", "_dl_head_at", "_dl_body", "_dl_body_at")

    def __init__(self, manager: web.Server, *, deadlines: RequestDeadlines, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._dl_limits = deadlines
        self._dl_handle: Any = None
        self._dl_head_at = 0.0  # loop time of the first byte of the head in progress; 0: none
        self._dl_body: StreamReader | None = None  # the body of the last head, while it may be arriving
        self._dl_body_at = 0.0

    def data_received(self, data: bytes) -> None:
        if self._force_close or self._close or self._upgraded or self._payload_parser is not None:
            super().data_received(data)
            return
        count = self._request_count
        body = self._dl_body
        body_before = body is not None and not body.is_eof()
        super().data_received(data)
        if self._request_count != count:  # aiohttp framed one head or more from these bytes
            self._dl_head_at = 0.0
            payload = self._messages[-1][1] if self._messages else EMPTY_PAYLOAD
            if payload is EMPTY_PAYLOAD:  # no body: bytes after the last head are the start of the next one
                self._dl_body = None
                if data and not data.endswith(_HEAD_ENDS):
                    self._dl_head_started()
            elif not payload.is_eof():
                self._dl_body = payload
                self._dl_body_at = now = self._loop.time()
                self._dl_arm(now + self._dl_limits.body_timeout_s)
            else:
                self._dl_body = None  # a whole body: what follows it in this read is left to the idle timer
        elif data and not self._dl_head_at and not body_before:
            self._dl_head_started()

    def _dl_head_started(self) -> None:
        """The first bytes of a head arrived (and not all of it): its deadline starts now."""
        self._dl_head_at = now = self._loop.time()
        self._dl_arm(now + self._dl_limits.header_timeout_s)

    def _dl_arm(self, at_s: float) -> None:
        handle = self._dl_handle
        if handle is not None:
            if handle.when() <= at_s:
                return  # it fires first and re-arms for what is due then
            handle.cancel()
        self._dl_handle = self._loop.call_at(at_s, self._dl_fire)

    def _dl_awaiting_request(self) -> bool:
        waiter = self._waiter
        return (waiter is not None and not waiter.done() and not self._messages
                and not self._request_in_progress)

    def _dl_state(self) -> ConnectionState:
        # a clock runs from the first byte of its head or body, or from the end of the answer it waited behind
        answered_at = self._next_keepalive_close_time - self._keepalive_timeout
        body = self._dl_body
        if body is not None and not body.is_eof():
            if any(payload is body for _, payload in self._messages):
                return ConnectionState(phase=Phase.BUSY, next_waiting=True)  # queued behind another answer
            request = self._current_request
            if request is not None and request.content is body and not _answer_begun(request.writer):
                return ConnectionState(phase=Phase.BODY, since_s=max(self._dl_body_at, answered_at))
            # else its answer has begun (or ended: aiohttp drains what is left, for lingering_time at most)
        if self._dl_awaiting_request():
            if self._dl_head_at:
                return ConnectionState(phase=Phase.HEAD, since_s=max(self._dl_head_at, answered_at))
            return ConnectionState(phase=Phase.IDLE)
        return ConnectionState(phase=Phase.BUSY, next_waiting=bool(self._dl_head_at))

    def _dl_fire(self) -> None:
        self._dl_handle = None
        if self._force_close or self.transport is None:
            return
        now = self._loop.time()
        verdict = decide(self._dl_state(), self._dl_limits, now)
        if verdict.action is Action.WAIT:
            self._dl_arm(verdict.at_s)
        elif verdict.action is Action.ANSWER_408:
            self._dl_time_out(verdict.timed_out)

    def _dl_time_out(self, phase: Phase | None) -> None:
        transport = self.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        log.debug("request timed out", extra={"kv": {"phase": phase.value if phase else "-", "peer": peer}})
        if transport is not None and not transport.is_closing():
            transport.write(request_timeout_bytes(time.time()))
        task = self._task_handler if phase is Phase.BODY else None
        self.force_close()  # the transport flushes the 408 before it closes
        if task is not None:
            task.cancel()  # the handler waiting for the body stops (as aiohttp's handler_cancellation would)

    def _process_keepalive(self) -> None:
        """aiohttp's idle timer: while a head is arriving, its own deadline decides (408), not this one."""
        if self._dl_head_at and not self._force_close:
            self._keepalive_handle = self._loop.call_later(self._keepalive_timeout, self._process_keepalive)
            return
        super()._process_keepalive()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._dl_handle is not None:
            self._dl_handle.cancel()
            self._dl_handle = None
        self._dl_body = None
        super().connection_lost(exc)


class DeadlineServer(web.Server):
    """aiohttp's connection factory, making :class:`DeadlineRequestHandler` connections."""

    def __init__(self, *args: Any, deadlines: RequestDeadlines, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadlines = deadlines

    def __call__(self) -> RequestHandler:
        return DeadlineRequestHandler(self, loop=self._loop, deadlines=self.deadlines, **self._kwargs)


def remake_server(server: web.Server, cls: type[web.Server], **extra: Any) -> web.Server:
    """``server`` (as ``web.AppRunner`` made it) remade as ``cls``, with the same handler and settings."""
    return cls(server.request_handler, request_factory=server.request_factory,
               handler_cancellation=server.handler_cancellation, loop=server._loop,  # noqa: SLF001
               **extra, **server._kwargs)  # noqa: SLF001


class DeadlineAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections keep ``deadlines`` (the idle one is aiohttp's ``keepalive_timeout``)."""

    def __init__(self, app: web.Application, *, deadlines: RequestDeadlines, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=deadlines.keepalive_timeout_s, **kwargs)
        self.deadlines = deadlines

    async def _make_server(self) -> web.Server:
        return remake_server(await super()._make_server(), DeadlineServer, deadlines=self.deadlines)
