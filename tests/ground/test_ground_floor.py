"""The ground floor (issue 14 items 1, 7, 8): ``httpsem``, ``serverkit`` and ``errorbase`` sit under
the servers, the edge loads nothing of the origin, the CLI's one-line rule is one error root."""
from __future__ import annotations

import ast
import errno
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from errorbase import VodstackError
from serverkit.listen import ListenError, bind, http_url, listen_error_message

REPO = Path(__file__).resolve().parents[2]


def _imports(folder: str) -> set[tuple[str, str]]:
    """(file, module) for every absolute import in the .py files under ``folder``."""
    found = set()
    paths = sorted((REPO / folder).rglob("*.py"))
    assert paths, f"no {folder}/ in {REPO}"
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add((str(path.relative_to(REPO)), node.module))
            elif isinstance(node, ast.Import):
                found.update((str(path.relative_to(REPO)), a.name) for a in node.names)
    return found


def test_edge_imports_nothing_of_the_origin():
    bad = sorted(f"{f}: {m}" for f, m in _imports("edge") if m == "origin" or m.startswith("origin."))
    assert bad == []


@pytest.mark.parametrize("package", ["httpsem", "serverkit", "errorbase"])
def test_ground_floor_imports_no_part_above_it(package):
    ours = ("origin", "edge", "client", "vodstack", "manifests")
    if package == "httpsem":
        ours = ("origin", "edge", "client", "vodstack", "aiohttp", "serverkit")  # manifests: versioned paths
    bad = sorted(f"{f}: {m}" for f, m in _imports(package) if m.split(".")[0] in ours)
    assert bad == []


def test_an_edge_process_loads_no_origin_module_and_origin_server_no_app():
    code = ("import sys, edge.server, edge.steering.app; print(sorted(m for m in sys.modules if m == 'origin' "
            "or m.startswith('origin.'))); import origin.server; print('origin.server.app' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                         check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "False", out


def test_every_error_the_cli_prints_as_one_line_is_a_vodstack_error():
    from client.errors import PlaybackError
    from client.load.errors import LoadError
    from client.load.specs import SpecError
    from edge.errors import EdgeError
    from httpsem.keys import InvalidKey
    from origin.storage.errors import StorageError, UnstorableKey
    from origin.transcode.errors import IngestError
    from vodstack.errors import ConfigError, UsageError
    from serverkit.tls import TlsError
    from vodstack.supervisor import StackError

    for cls in (PlaybackError, LoadError, SpecError, EdgeError, InvalidKey, StorageError, IngestError,
                ConfigError, UsageError, StackError, ListenError, TlsError):
        assert issubclass(cls, VodstackError), cls
        assert not hasattr(cls, "cli_message"), cls  # no duck typing left
    assert issubclass(UnstorableKey, StorageError) and issubclass(UnstorableKey, InvalidKey)
    assert UnstorableKey("x").status_hint == 400


def test_listen_error_wording_is_one_line():
    assert listen_error_message("127.0.0.1", 8080, errno.EADDRINUSE, "Address already in use") == \
        "cannot listen: port 8080 on 127.0.0.1 is in use"
    assert listen_error_message("10.9.9.9", 80, errno.EADDRNOTAVAIL, "Cannot assign requested address") == \
        "cannot listen on 10.9.9.9 port 80: Cannot assign requested address"
    assert http_url("::1", 80) == "http://[::1]:80" and http_url("127.0.0.1", 5) == "http://127.0.0.1:5"


def test_bind_a_busy_port_is_a_listen_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ListenError) as info:
            bind("127.0.0.1", port, backlog=16)
    assert str(info.value) == f"cannot listen: port {port} on 127.0.0.1 is in use"
    sock = bind("127.0.0.1", 0, backlog=16)
    try:
        assert sock.getsockname()[1] != 0
    finally:
        sock.close()


def test_fast_path_aiohttp_gate_is_a_pure_decision_on_version_strings():
    from edge.fastpath import TESTED_AIOHTTP, aiohttp_tested, tested_range_text, version_tuple

    tested = ((3, 14), (3, 15))
    assert version_tuple("3.14.5") == (3, 14, 5) and version_tuple("3.15.0a1") == (3, 15, 0)
    assert version_tuple("4.0.0.dev0") == (4, 0, 0) and version_tuple("x") == ()
    assert aiohttp_tested("3.14.0", tested) and aiohttp_tested("3.14.5", tested)
    assert aiohttp_tested("3.14.99rc1", tested)
    assert not aiohttp_tested("3.13.9", tested) and not aiohttp_tested("3.9.0", tested)
    assert not aiohttp_tested("3.15.0", tested) and not aiohttp_tested("3.15.0a1", tested)
    assert not aiohttp_tested("4.0.0", tested) and not aiohttp_tested("", tested)
    # one constant names the range, and pyproject.toml pins that very range
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"aiohttp{tested_range_text(TESTED_AIOHTTP)}" in deps
