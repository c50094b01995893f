"""``vodstack origin`` as a real process: it serves, logs, drains on SIGTERM, and fails in one line."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
SLOW_BYTES = 24 * 1024 * 1024  # more than loopback socket buffers hold: the download is in flight


def origin_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vodstack", "origin", *args]


def run_origin(*args: str, env: dict[str, str] | None = None, timeout_s: float = 40) -> subprocess.CompletedProcess[str]:
    return subprocess.run(origin_cmd(*args), capture_output=True, text=True, timeout=timeout_s, cwd=REPO,
                          env=env or os.environ.copy(), stdin=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("vodstack: error: ")
    for word in words:
        assert word in lines[0]
    assert done.stdout == ""


@pytest.fixture
def served_folder(tmp_path: Path) -> Path:
    root = tmp_path / "titles"
    (root / "t1" / "video" / "r1").mkdir(parents=True)
    (root / "t1" / "master.m3u8").write_bytes(b"#EXTM3U\n")
    with open(root / "t1" / "video" / "r1" / "big.m4s", "wb") as f:
        f.write(os.urandom(1024 * 1024) * (SLOW_BYTES // (1024 * 1024)))
    return root


@pytest.fixture
def origin_process(served_folder: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    log_path = tmp_path / "origin.log"
    config = tmp_path / "origin.toml"
    config.write_text('[origin]\nregion = "from-file"\nport = 1\nretry_after_s = 2\n')
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(origin_cmd("--config", str(config), "--storage", str(served_folder), "--port", "0"),
                                stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"origin listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, (line, log_path.read_text())
        yield proc, match.group(1), log_path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_serves_logs_and_drains_a_slow_download_on_sigterm(origin_process: Any):
    proc, url, log_path = origin_process
    with urllib.request.urlopen(f"{url}/t1/master.m3u8", timeout=5) as r:
        assert (r.status, r.read()) == (200, b"#EXTM3U\n")
    with urllib.request.urlopen(f"{url}/_/health", timeout=5) as r:
        assert json.load(r)["region"] == "from-file"  # the file's value; --port 0 beat its port

    host, port = url.removeprefix("http://").rsplit(":", 1)
    slow = socket.create_connection((host, int(port)), timeout=10)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    slow.sendall(b"GET /t1/video/r1/big.m4s HTTP/1.1\r\nHost: x\r\n\r\n")
    received = slow.recv(64 * 1024)
    assert received.startswith(b"HTTP/1.1 200")
    time.sleep(0.3)  # the origin is now blocked on a full socket: the response is in flight

    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(OSError):  # no new connections once the signal is in
        socket.create_connection((host, int(port)), timeout=2).close()
    while True:  # read the rest slowly
        chunk = slow.recv(256 * 1024)
        if not chunk:
            break
        received += chunk
        time.sleep(0.002)
    slow.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert f"Content-Length: {SLOW_BYTES}".encode() in head
    assert len(body) == SLOW_BYTES

    assert proc.wait(20) == 0
    log = log_path.read_text()
    assert "Traceback" not in log
    access = [line for line in log.splitlines() if " origin.access " in line]
    assert any("method=GET path=/t1/master.m3u8 status=200 bytes=8 " in line for line in access), log
    assert any(f"path=/t1/video/r1/big.m4s status=200 bytes={SLOW_BYTES} " in line for line in access), log
    assert "signal=SIGTERM" in log and "origin stopped" in log


def test_port_in_use(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_origin("--storage", str(tmp_path), "--port", str(port))
    assert_one_line_error(done, f"port {port} on 127.0.0.1 is in use")


def test_unknown_storage_scheme(tmp_path: Path):
    assert_one_line_error(run_origin("--storage", "ftp://example.org/titles", "--port", "0"),
                          "unknown storage scheme", "ftp")


def test_missing_storage_flag():
    assert_one_line_error(run_origin("--port", "0"), "storage_url")


def test_unknown_key_in_config_file(tmp_path: Path):
    config = tmp_path / "origin.toml"
    config.write_text('[origin]\nstorage_timeout = 3\n')
    assert_one_line_error(run_origin("--config", str(config), "--storage", str(tmp_path)), "origin.storage_timeout")


def test_bad_setting_in_environment(tmp_path: Path):
    env = dict(os.environ, VODSTACK_ORIGIN_STORAGE_TIMEOUT_S="soon")
    assert_one_line_error(run_origin("--storage", str(tmp_path), "--port", "0", env=env),
                          "VODSTACK_ORIGIN_STORAGE_TIMEOUT_S")


def test_unreachable_s3_endpoint(aws_env: None):
    url = f"s3://titles?endpoint=http://127.0.0.1:{free_port()}&region=us-east-1"
    done = run_origin("--storage", url, "--port", "0")
    assert_one_line_error(done, "127.0.0.1")


def test_missing_bucket(moto_server: Any):
    if not moto_server.running:
        moto_server.start()
    url = f"s3://no-such-bucket-here?endpoint={moto_server.endpoint}&region=us-east-1"
    assert_one_line_error(run_origin("--storage", url, "--port", "0"), "no-such-bucket-here", "does not exist")


def test_no_credentials(moto_server: Any, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    url = f"s3://titles?endpoint={moto_server.endpoint}&region=us-east-1"
    assert_one_line_error(run_origin("--storage", url, "--port", "0", env=env), "credentials")


def test_sigint_right_after_start_is_a_clean_exit(tmp_path: Path):
    proc = subprocess.Popen(origin_cmd("--storage", str(tmp_path), "--port", "0"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("origin listening on ")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
