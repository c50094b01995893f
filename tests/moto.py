"""A real ``moto_server`` process on 127.0.0.1: an S3-compatible endpoint for tests.

    server = MotoServer()          # picks a free port
    server.start()                 # waits until it answers HTTP
    server.endpoint                # "http://127.0.0.1:PORT"
    server.stop(); server.start()  # "S3 down, then back" on the same port (state is lost)

moto keeps everything in memory: a restarted server has no buckets.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port nothing listens on right now (bind port 0, read it, let it go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """One ``moto_server -H 127.0.0.1 -p PORT`` subprocess that can be stopped and started again."""

    def __init__(self, port: int | None = None, env: dict[str, str] | None = None) -> None:
        """``env``: extra environment for the process, e.g. ``INITIAL_NO_AUTH_ACTION_COUNT``."""
        self.port = port or free_port()
        self.env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file = Path(tempfile.mkstemp(prefix="moto_server-", suffix=".log")[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the process (same port as before) and wait until it answers HTTP."""
        if self.running:
            return
        exe = shutil.which("moto_server")
        cmd = ([exe] if exe else [sys.executable, "-m", "moto.server"]) + [
            "-H", "127.0.0.1", "-p", str(self.port)]
        with open(self._log_file, "ab") as log_out:
            self._proc = subprocess.Popen(cmd, stdout=log_out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL,
                                          env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._proc.returncode} on port "
                                   f"{self.port}: {self.log_tail()}")
            if self._answers():
                log.info("moto_server up endpoint=%s pid=%d", self.endpoint, self._proc.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.endpoint} within {timeout_s} s: "
                           f"{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the process (kill it if it lingers) and wait until it is gone."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
        log.info("moto_server stopped endpoint=%s", self.endpoint)

    def log_tail(self, n_bytes: int = 2000) -> str:
        try:
            return self._log_file.read_bytes()[-n_bytes:].decode("utf-8", "replace")
        except OSError:
            return ""

    def close(self) -> None:
        """Stop for good and remove the log file."""
        self.stop()
        self._log_file.unlink(missing_ok=True)

    def __enter__(self) -> "MotoServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _answers(self) -> bool:
        try:
            with _NO_PROXY_OPENER.open(f"{self.endpoint}/moto-api/", timeout=1.0):
                return True
        except urllib.error.HTTPError:
            return True  # an HTTP answer, even an error, means the server is up
        except OSError:
            return False
