"""A private CA and the server certificates it issues, with ``cryptography``: for a stack on your
own machines (``vodstack certs DIR``), the TLS tests and ``bench/edge_vs_nginx --tls``.

    ca = DevCA(folder)                                # folder/ca.pem: the certificate clients trust
    cert, key = ca.issue("edge", hosts=("127.0.0.1", "localhost"))
    cert, key = ca.issue("old", days=(-30, -1))       # expired yesterday

Keys are EC P-256 (fast to make); server certificates carry the subjectAltNames a client checks
(IP addresses as IP SANs), serverAuth, and the CA as issuer; the chain file is leaf then CA. The
CA's key lives only in memory: a new ``DevCA`` is a new CA. Not for a public service: use your
organisation's CA or ACME there.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class DevCA:
    """A self-signed CA in ``folder`` (``ca.pem``), issuing server certificates beside it."""

    def __init__(self, folder: Path, name: str = "vodstack development CA", days: int = 30) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.key = _key()
        now = dt.datetime.now(dt.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = folder / "ca.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
              days: tuple[int, int] = (-1, 30)) -> tuple[Path, Path]:
        """``(chain.pem, key.pem)`` of a server certificate for ``hosts``, valid ``days`` from today."""
        key = _key()
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now + dt.timedelta(days=days[0])).not_valid_after(now + dt.timedelta(days=days[1]))
                .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        chain = self.folder / f"{name}.pem"
        chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                          + self.cert.public_bytes(serialization.Encoding.PEM))
        key_path = self.folder / f"{name}.key"
        key_path.write_bytes(_pem_key(key))
        key_path.chmod(0o600)
        return chain, key_path
