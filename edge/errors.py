"""Edge errors, one shallow tree; ``status_hint`` maps each to the HTTP status a client gets.

    EdgeError                   base (500)
     ├── UpstreamError          every upstream failed: refused, timed out, 5xx, broken body (502)
     │    ├── UpstreamTimeout   the failures included a timeout (504)
     │    ├── CircuitOpen       every upstream's circuit is open, none was asked (504 if a timeout
     │    │                     opened it, else 502; ``breaker.py``)
     │    └── ObjectChanged     the object changed under a slice fill or a resume (502; the caller
     │                          drops what it holds of the object)
     ├── UpstreamRefused        an authoritative upstream (a parent or the origin) answered 4xx: an
     │    │                     answer, not a failure; passed through with that status, negatively
     │    │                     cached for ``negative_ttl_s``, never counted against the upstream
     │    └── UpstreamNotFound  ... 404 (a peer's 404 only means "not here": the next upstream is asked)
     └── EdgeStartError         the edge cannot start: an unwritable cache dir (a busy port is
                                serverkit.listen.ListenError)

Only :class:`UpstreamError` (5xx, timeouts, connection errors) is an upstream *failure*: it may be
answered from a stale copy and is never negatively cached. ``aiohttp`` and ``OSError`` are
translated into these in ``fill.py`` and ``server.py``. ``EdgeError`` is an
``errorbase.VodstackError``: the CLI prints any of them as one line.
"""
from __future__ import annotations

from errorbase import VodstackError


class EdgeError(VodstackError):
    """Base of every edge error."""

    status_hint: int = 500


class UpstreamError(EdgeError):
    """No upstream could deliver the object (refused, 5xx, broken body)."""

    status_hint = 502


class UpstreamTimeout(UpstreamError):
    """No upstream could deliver the object in time."""

    status_hint = 504


class CircuitOpen(UpstreamError):
    """Every upstream that could be asked is behind an open circuit: nothing was asked."""

    def __init__(self, message: str, *, timeout: bool) -> None:
        super().__init__(message)
        self.status_hint = 504 if timeout else 502


class ObjectChanged(UpstreamError):
    """The object's ETag or size changed while it was being filled in parts."""


class UpstreamRefused(EdgeError):
    """An authoritative upstream answered with a 4xx status (``status_hint``), passed on to the client."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status_hint = status


class UpstreamNotFound(UpstreamRefused):
    """The object does not exist upstream."""

    def __init__(self, message: str, *, status: int = 404) -> None:
        super().__init__(message, status=status)


class EdgeStartError(EdgeError):
    """The edge cannot start; the message says why in one line."""
