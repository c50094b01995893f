"""Edge errors, one shallow tree; ``status_hint`` maps each to the HTTP status a client gets.

    EdgeError                 base (500)
     ├── UpstreamError        every upstream failed or answered nonsense (502)
     │    └── UpstreamTimeout the last failures were timeouts (504)
     ├── UpstreamNotFound     an authoritative upstream (parent or origin) said 404 (404)
     └── EdgeStartError       the edge cannot start: port in use, unwritable cache dir (CLI: one line)

``aiohttp`` and ``OSError`` are translated into these in ``fill.py`` and ``server.py``.
"""
from __future__ import annotations


class EdgeError(Exception):
    """Base of every edge error."""

    status_hint: int = 500
    cli_message = True


class UpstreamError(EdgeError):
    """No upstream could deliver the object (refused, 5xx, broken body)."""

    status_hint = 502


class UpstreamTimeout(UpstreamError):
    """No upstream could deliver the object in time."""

    status_hint = 504


class UpstreamNotFound(EdgeError):
    """The object does not exist upstream."""

    status_hint = 404


class EdgeStartError(EdgeError):
    """The edge cannot start; the message says why in one line."""
