"""The listening socket of a server, bound before anything else is served from it.

:func:`bind` binds ``host``:``port`` (IPv6 when the host has a ``:``; ``SO_REUSEADDR`` as asyncio
and aiohttp set it), and turns the ``OSError`` into the one :class:`ListenError` whose message the
CLI prints as its line: ``cannot listen: port 8080 on 127.0.0.1 is in use`` or ``cannot listen on
HOST port PORT: REASON``. :func:`http_url` writes the URL a server announces.

:func:`open_listeners` is what a server binds with: the TLS context first (a bad certificate is one
line before any port is taken), then the main socket (HTTPS when TLS is on) and, with TLS, an
optional plain HTTP socket beside it (``--http-port``); :meth:`Listeners.start` serves a runner on
both and :attr:`Listeners.announce` is the text after "listening on" (the main URL first, which is
what scripts and tests read).
"""
from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass

from aiohttp import web

from errorbase import VodstackError

from .tls import TlsError, TlsFiles, server_context

__all__ = ["ListenError", "Listeners", "bind", "check_plain_port", "http_url", "inherited_listeners",
           "open_listeners"]


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


def http_url(host: str, port: int, *, tls: bool = False) -> str:
    """``http://HOST:PORT`` (``https://`` with ``tls``), an IPv6 host in brackets."""
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


@dataclass
class Listeners:
    """A server's bound sockets: ``main`` (HTTPS when ``tls`` is set) and ``plain``, plain HTTP beside it."""

    host: str
    main: socket.socket
    tls: ssl.SSLContext | None = None
    plain: socket.socket | None = None

    @property
    def url(self) -> str:
        """The main URL: ``https://HOST:PORT`` with TLS, else ``http://HOST:PORT``."""
        return http_url(self.host, self.main.getsockname()[1], tls=self.tls is not None)

    @property
    def plain_url(self) -> str | None:
        return None if self.plain is None else http_url(self.host, self.plain.getsockname()[1])

    @property
    def announce(self) -> str:
        """``URL`` or ``URL and PLAIN_URL``: what follows "listening on" in a server's ready line."""
        return self.url if self.plain is None else f"{self.url} and {self.plain_url}"

    async def start(self, runner: web.BaseRunner, *, backlog: int) -> None:
        """Serve ``runner`` on every socket (the caller closes them on failure with :meth:`close`)."""
        await web.SockSite(runner, self.main, ssl_context=self.tls, backlog=backlog).start()
        if self.plain is not None:
            await web.SockSite(runner, self.plain, backlog=backlog).start()

    def close(self) -> None:
        for sock in (self.main, self.plain):
            if sock is not None:
                sock.close()


def inherited_listeners(host: str, sockets: list[socket.socket], *, tls: TlsFiles | None,
                        context: ssl.SSLContext | None = None) -> Listeners:
    """A worker's listeners: the sockets its master bound (the main one, then the plain one if any),
    served with ``context`` (built from ``tls`` when not given)."""
    if context is None and tls is not None:
        context = server_context(tls)
    return Listeners(host, sockets[0], context, sockets[1] if len(sockets) > 1 else None)


def check_plain_port(http_port: int | None, tls: TlsFiles | None) -> None:
    """TlsError for a plain HTTP port without TLS (there ``--port`` is the plain port)."""
    if http_port is not None and tls is None:
        raise TlsError("a plain HTTP port (--http-port) is for beside HTTPS: without --tls-cert and --tls-key, "
                       "--port is the plain HTTP port")


def open_listeners(host: str, port: int, *, backlog: int, tls: TlsFiles | None = None,
                   http_port: int | None = None, context: ssl.SSLContext | None = None) -> Listeners:
    """Build the TLS context of ``tls`` unless ``context`` is given (TlsError), then bind ``port`` and,
    with TLS, ``http_port`` (ListenError)."""
    check_plain_port(http_port, tls)
    if context is None and tls is not None:
        context = server_context(tls)
    main = bind(host, port, backlog=backlog)
    try:
        plain = bind(host, http_port, backlog=backlog) if http_port is not None else None
    except BaseException:
        main.close()
        raise
    return Listeners(host, main, context, plain)
