"""``serverkit/tls.py``: the contexts the servers serve HTTPS with and their clients verify with,
and the one line each bad certificate, key or CA file gets (a CA made in the test)."""
from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from serverkit.listen import open_listeners
from serverkit.tls import (TlsError, TlsFiles, check_validity, client_context, read_ca, server_context, tls_failure,
                           tls_files)
from vodstack.devcerts import DevCA

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> DevCA:
    return DevCA(tmp_path_factory.mktemp("ca"))


def test_tls_files_needs_both_or_neither():
    assert tls_files("", "") is None and tls_files(None, None) is None
    assert tls_files("c.pem", "k.pem") == TlsFiles(Path("c.pem"), Path("k.pem"))
    with pytest.raises(TlsError, match=r"^a TLS certificate \(--tls-cert\) without its key \(--tls-key\)$"):
        tls_files("c.pem", "")
    with pytest.raises(TlsError, match=r"^a TLS key \(--tls-key\) without its certificate"):
        tls_files(None, "k.pem")


def test_validity_window_is_checked_against_the_given_now():
    start, end = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    check_validity(start, end, dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc), path=Path("c.pem"))
    with pytest.raises(TlsError, match=r"^TLS certificate c.pem expired on 2026-06-01 00:00 UTC$"):
        check_validity(start, end, dt.datetime(2026, 6, 2, tzinfo=dt.timezone.utc), path=Path("c.pem"))
    with pytest.raises(TlsError, match=r"^TLS certificate c.pem is not valid before 2026-01-01 00:00 UTC$"):
        check_validity(start, end, dt.datetime(2025, 12, 31, tzinfo=dt.timezone.utc), path=Path("c.pem"))


def test_every_bad_file_is_one_line_naming_it(ca: DevCA, tmp_path: Path):
    cert, key = ca.issue("good")
    _, other_key = ca.issue("other")
    old_cert, old_key = ca.issue("old", days=(-30, -1))
    encrypted = tmp_path / "enc.key"
    encrypted.write_bytes(serialization.load_pem_private_key(key.read_bytes(), None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    cases = {
        (tmp_path / "missing.pem", key): rf"^cannot read the TLS certificate {tmp_path}/missing.pem: No such file",
        (key, key): rf"^TLS certificate {key} holds no PEM certificate$",
        (cert, other_key): rf"^TLS key {other_key} does not match the certificate {cert}$",
        (old_cert, old_key): rf"^TLS certificate {old_cert} expired on \d{{4}}-\d\d-\d\d \d\d:\d\d UTC$",
        (cert, encrypted): rf"^TLS key {encrypted} is not an unencrypted PEM private key$",
        (cert, cert): rf"^TLS key {cert} is not an unencrypted PEM private key$",
    }
    for (c, k), message in cases.items():
        with pytest.raises(TlsError, match=message):
            server_context(TlsFiles(c, k))
    ctx = server_context(TlsFiles(cert, key))
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_NONE  # a server does not ask for client certificates


def test_bad_ca_files_are_one_line(ca: DevCA, tmp_path: Path):
    with pytest.raises(TlsError, match=r"^cannot read the CA file .*nope.pem: No such file"):
        client_context(tmp_path / "nope.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(TlsError, match=rf"^CA file {junk} holds no PEM certificate$"):
        client_context(junk)
    assert "BEGIN CERTIFICATE" in read_ca(ca.cert_path)
    ctx = client_context(ca.cert_path)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


async def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> tuple[str | None, str | None]:
    """(negotiated ALPN protocol, TLS version) of one handshake over 127.0.0.1 through real listeners."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
        obj = writer.get_extra_info("ssl_object")
        result = (obj.selected_alpn_protocol(), obj.version())
        writer.close()
        return result
    finally:
        server.close()
        await server.wait_closed()


async def test_handshake_speaks_http11_over_tls12_or_later_and_refuses_older(ca: DevCA):
    cert, key = ca.issue("hs")
    server_ctx = server_context(TlsFiles(cert, key))
    alpn, version = await _handshake(server_ctx, client_context(ca.cert_path))
    assert alpn == "http/1.1" and version in ("TLSv1.2", "TLSv1.3")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(ca.cert_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: that is the point
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await _handshake(server_ctx, old)


async def test_a_client_trusting_another_ca_fails_with_a_readable_reason(ca: DevCA, tmp_path: Path):
    cert, key = ca.issue("srv")
    other = DevCA(tmp_path / "other", name="another CA")
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        await _handshake(server_context(TlsFiles(cert, key)), client_context(other.cert_path))
    # the chain the server sends ends in its own CA, which this client does not trust
    assert tls_failure(info.value) == "certificate verify failed: self-signed certificate in certificate chain"


def test_open_listeners_refuses_a_plain_port_without_tls_and_serves_both_with_it(ca: DevCA):
    with pytest.raises(TlsError, match=r"^a plain HTTP port \(--http-port\) is for beside HTTPS"):
        open_listeners("127.0.0.1", 0, backlog=8, http_port=0)
    cert, key = ca.issue("both")
    listeners = open_listeners("127.0.0.1", 0, backlog=8, tls=TlsFiles(cert, key), http_port=0)
    try:
        assert listeners.url.startswith("https://127.0.0.1:") and listeners.plain_url is not None
        assert listeners.plain_url.startswith("http://127.0.0.1:") and listeners.plain_url != listeners.url
        assert listeners.announce == f"{listeners.url} and {listeners.plain_url}"
    finally:
        listeners.close()


@pytest.mark.parametrize("server", ["origin", "edge", "steering"])
def test_each_server_refuses_an_expired_certificate_at_start_up_in_one_line(server: str, ca: DevCA, tmp_path: Path):
    cert, key = ca.issue(f"expired-{server}", days=(-30, -1))
    args = {"origin": ["--storage", str(tmp_path)],
            "edge": ["--origin", "http://127.0.0.1:9", "--cache-dir", str(tmp_path / "cache")],
            "steering": []}[server]
    proc = subprocess.run([sys.executable, "-m", "vodstack", server, *args, "--port", "0", "--tls-cert", str(cert),
                           "--tls-key", str(key)], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"vodstack: error: TLS certificate {cert} expired on "
                                        f"{proc.stderr.split(' expired on ')[1].strip()}"]
    assert "listening" not in proc.stdout


def test_vodstack_certs_writes_a_ca_and_a_chain_servers_accept_and_refuses_to_replace_it(tmp_path: Path):
    def certs(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vodstack", "certs", str(tmp_path / "tls"), *extra],
                              capture_output=True, text=True, timeout=60, cwd=REPO)

    made = certs("--hosts", "127.0.0.1,edge.lan", "--days", "10")
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "tls"
    assert f'tls_ca = "{folder / "ca.pem"}"' in made.stdout
    assert (folder / "server.key").stat().st_mode & 0o077 == 0
    ctx = server_context(TlsFiles(folder / "server.pem", folder / "server.key"))
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    from cryptography import x509

    leaf = x509.load_pem_x509_certificates((folder / "server.pem").read_bytes())[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["edge.lan"]
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days == 11
    again = certs()
    assert again.returncode == 2 and again.stderr.splitlines() == [
        f"vodstack: error: {folder / 'ca.pem'} exists: every server and client trusting it would need the new one "
        "(--force to replace it)"]
    assert certs("--force").returncode == 0
    assert certs("--force", "--hosts", " , ").returncode == 2
