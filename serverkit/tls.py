"""TLS for the servers and for their clients: one context built at start-up, every bad input one line.

* :func:`server_context` is what the origin, the edge and the steering service serve HTTPS with
  (``--tls-cert FILE --tls-key FILE``): the standard library's secure server defaults
  (``ssl.create_default_context(Purpose.CLIENT_AUTH)``), TLS 1.2 at least, ALPN ``http/1.1``, the
  certificate file's whole chain (leaf first, then intermediates, PEM). Before the context is built
  the leaf is read with ``cryptography``: a file that is not PEM, a certificate that has expired or
  is not valid yet, a key that does not match, an encrypted key (a server cannot type a password)
  each raise :class:`TlsError` with the line the CLI prints.
* :func:`client_context` is what fills, heartbeats, the player and the load tester verify HTTPS
  servers with: the system's trust store, or only the CA certificates of ``--upstream-ca`` /
  ``--ca FILE``; hostname checked; TLS 1.2 at least.
* :func:`tls_files` turns the two settings into :class:`TlsFiles` (or None: plain HTTP), refusing one
  without the other.

Reloading the certificates (SIGHUP) builds a new context with the same function: the old one keeps
serving the connections it has.
"""
from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

from errorbase import VodstackError

__all__ = ["ALPN", "TlsError", "TlsFiles", "TlsSettings", "check_validity", "client_context", "read_ca",
           "server_context", "tls_failure", "tls_files"]

#: The one application protocol the servers speak (aiohttp serves HTTP/1.1 only).
ALPN = ("http/1.1",)


class TlsError(VodstackError):
    """A certificate, key or CA file that cannot serve (missing, not PEM, expired, mismatched)."""


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    """The TLS settings every server's config has (``OriginConfig``, ``EdgeConfig``, ``SteeringConfig``)."""

    tls_cert: str = ""
    """PEM certificate chain (leaf first): serve HTTPS on ``port``. Empty: plain HTTP."""
    tls_key: str = ""
    """The unencrypted PEM private key of ``tls_cert``."""
    http_port: int | None = None
    """With TLS: plain HTTP on this port too (0: any free one). None: HTTPS only."""
    upstream_ca: str = ""
    """PEM CA certificates that this server's HTTPS upstreams (an edge's origin, parents, peers and
    steering service; the steering service's origins) are verified with. Empty: the system's store."""

    @property
    def tls(self) -> TlsFiles | None:
        return tls_files(self.tls_cert, self.tls_key)


@dataclass(frozen=True)
class TlsFiles:
    """A server's certificate chain and private key, PEM files."""

    cert: Path
    key: Path


def tls_files(cert: str | Path | None, key: str | Path | None) -> TlsFiles | None:
    """``TlsFiles`` from the two settings (empty or None: not set), None for neither, TlsError for one."""
    if not cert and not key:
        return None
    if not cert:
        raise TlsError("a TLS key (--tls-key) without its certificate (--tls-cert)")
    if not key:
        raise TlsError("a TLS certificate (--tls-cert) without its key (--tls-key)")
    return TlsFiles(Path(cert), Path(key))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise TlsError(f"cannot read the {what} {path}: {e.strerror or e}") from None


def check_validity(not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime, *, path: Path) -> None:
    """TlsError unless ``not_before <= now <= not_after`` (pure: tests pass their own ``now``)."""
    if now > not_after:
        raise TlsError(f"TLS certificate {path} expired on {not_after:%Y-%m-%d %H:%M} UTC")
    if now < not_before:
        raise TlsError(f"TLS certificate {path} is not valid before {not_before:%Y-%m-%d %H:%M} UTC")


def server_context(files: TlsFiles, *, now: dt.datetime | None = None) -> ssl.SSLContext:
    """The server-side context for ``files``, or TlsError naming the file and what is wrong with it."""
    from cryptography import x509

    pem = _read(files.cert, "TLS certificate")
    _read(files.key, "TLS key")
    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise TlsError(f"TLS certificate {files.cert} holds no PEM certificate") from None
    leaf = chain[0]
    check_validity(leaf.not_valid_before_utc, leaf.not_valid_after_utc,
                   now or dt.datetime.now(dt.timezone.utc), path=files.cert)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(list(ALPN))
    try:
        ctx.load_cert_chain(files.cert, files.key, password=_no_password)
    except ssl.SSLError as e:
        if "KEY_VALUES_MISMATCH" in str(e):
            raise TlsError(f"TLS key {files.key} does not match the certificate {files.cert}") from None
        raise TlsError(f"TLS key {files.key} is not an unencrypted PEM private key") from None
    return ctx


def tls_failure(e: BaseException) -> str:
    """The one-line reason of a failed handshake (aiohttp's ``ClientSSLError`` or an ``ssl.SSLError``):
    e.g. ``certificate verify failed: unable to get local issuer certificate``."""
    cause = getattr(e, "certificate_error", None) or getattr(e, "os_error", None) or e
    verify = getattr(cause, "verify_message", None)
    reason = getattr(cause, "reason", None)
    if verify:
        return f"certificate verify failed: {verify}"
    return str(reason or cause).strip() or type(e).__name__


def _no_password() -> bytes:
    """The password callback: none (an encrypted key is refused instead of prompting on a terminal)."""
    return b""


def read_ca(ca: str | Path) -> str:
    """The PEM text of a CA file (what a load worker on another host is sent), or TlsError."""
    pem = _read(Path(ca), "CA file")
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise TlsError(f"CA file {ca} holds no PEM certificate")
    return pem.decode("ascii", errors="replace")


def client_context(ca: str | Path | None = None, *, cadata: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system's trust store, or only the CA certificates in the file
    ``ca`` (or the PEM text ``cadata``)."""
    if ca:
        cadata = read_ca(ca)
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=cadata or None)
    except ssl.SSLError as e:
        raise TlsError(f"CA file {ca or '(given as text)'} cannot be loaded: {e.reason or e}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(list(ALPN))
    return ctx
