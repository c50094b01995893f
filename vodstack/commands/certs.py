"""``vodstack certs DIR``: a private CA and one server certificate, for HTTPS on your own machines.

    vodstack certs ./vodstack-data/tls                          # 127.0.0.1 and localhost
    vodstack certs ./tls --hosts 10.0.0.5,10.0.0.6,edge.lan --days 90

Writes ``DIR/ca.pem`` (what clients trust: ``--ca``, ``--upstream-ca``, ``[stack] tls_ca``),
``DIR/server.pem`` (the chain: leaf then CA) and ``DIR/server.key`` (0600), and prints the
``[stack]`` lines that run a topology over HTTPS. Refuses to overwrite an existing ``ca.pem``
(servers and clients already trusting it would stop agreeing) unless ``--force``. For a public
service use your organisation's CA or ACME instead (``docs/deploy.md``).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UsageError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "certs", help="make a private CA and a server certificate for HTTPS (tests, labs, your own hosts)",
        description="Make DIR/ca.pem, DIR/server.pem (chain) and DIR/server.key for the given hosts, "
                    "and print the topology lines that use them.")
    p.add_argument("dir", metavar="DIR", help="folder to write the files into (created if needed)")
    p.add_argument("--hosts", default="127.0.0.1,localhost",
                   help="comma-separated IP addresses and DNS names the certificate names "
                        "(default: 127.0.0.1,localhost)")
    p.add_argument("--days", type=int, default=365, help="validity of the CA and the certificate (default 365)")
    p.add_argument("--force", action="store_true", help="replace an existing CA in DIR")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vodstack.devcerts import DevCA

    hosts = tuple(h.strip() for h in args.hosts.split(",") if h.strip())
    if not hosts:
        raise UsageError("--hosts: name at least one address or DNS name")
    if args.days <= 0:
        raise UsageError(f"--days must be positive, got {args.days}")
    folder = Path(args.dir)
    if (folder / "ca.pem").exists() and not args.force:
        raise UsageError(f"{folder / 'ca.pem'} exists: every server and client trusting it would need the new one "
                         "(--force to replace it)")
    try:
        ca = DevCA(folder, days=args.days)
        cert, key = ca.issue("server", hosts=hosts, days=(-1, args.days))
    except OSError as e:
        raise UsageError(f"cannot write into {folder}: {e.strerror or e}") from None
    print(f"wrote {ca.cert_path} (CA), {cert} (chain) and {key} (key) for {', '.join(hosts)}, valid {args.days} days")
    print("run a topology over HTTPS with, in its [stack] table:")
    print(f'tls_cert = "{cert.absolute()}"\ntls_key = "{key.absolute()}"\ntls_ca = "{ca.cert_path.absolute()}"')
    return 0
