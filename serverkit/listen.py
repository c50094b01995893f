"""The listening socket of a server, bound before anything else is served from it.

:func:`bind` binds ``host``:``port`` (IPv6 when the host has a ``:``; ``SO_REUSEADDR`` as asyncio
and aiohttp set it), and turns the ``OSError`` into the one :class:`ListenError` whose message the
CLI prints as its line: ``cannot listen: port 8080 on 127.0.0.1 is in use`` or ``cannot listen on
HOST port PORT: REASON``. :func:`http_url` writes the URL a server announces.
"""
from __future__ import annotations

import errno
import socket

from errorbase import VodstackError

__all__ = ["ListenError", "bind", "http_url"]


class ListenError(VodstackError):
    """The server socket cannot be bound (port in use, address not available, no permission)."""


def bind(host: str, port: int, *, backlog: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: any free port), or :class:`ListenError`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as e:
        raise ListenError(listen_error_message(host, port, e.errno, e.strerror or str(e))) from None


def listen_error_message(host: str, port: int, error_number: int | None, reason: str) -> str:
    """The one line a failed bind prints (pure, so the wording is tested without a busy port)."""
    if error_number == errno.EADDRINUSE:
        return f"cannot listen: port {port} on {host} is in use"
    return f"cannot listen on {host} port {port}: {reason}"


def http_url(host: str, port: int) -> str:
    """``http://HOST:PORT``, an IPv6 host in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
