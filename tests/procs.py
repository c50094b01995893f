"""Real `vodstack` server processes for tests: started in their own process group, ready when they
print ``listening on http(s)://HOST:PORT``, logs kept in files, stopped (or killed) with their group."""
from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"listening on (https?://[0-9.]+:\d+)")


class Server:
    """One ``python -m vodstack ...`` process; ``url`` once it listens, else RuntimeError with its stderr."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None,
                 timeout_s: float = 30.0) -> None:
        self.name = name
        self.out_path = log_dir / f"{name}.out"
        self.err_path = log_dir / f"{name}.err"
        env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "vodstack", *args], stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO, env=env)
        self.url = self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = LISTENING.search(self.out_path.read_text(errors="replace"))
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{self.err_path.read_text(errors='replace')[-3000:]}")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def free_port() -> int:
    """A port nothing listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def keepalive_gets(url: str, path: str, body: bytes, running: Callable[[], bool], failures: list[str],
                         answers: list[int], ssl_context: ssl.SSLContext | None = None) -> None:
    """GET ``path`` again and again on one keep-alive connection while ``running()``, reading each answer
    by its Content-Length and reconnecting only when an answer said ``Connection: close``; every other
    end of the connection (reset, EOF before a whole answer, a wrong body) is appended to ``failures``.
    A raw client on purpose: aiohttp's client retries a request a closing keep-alive connection lost,
    which would hide a server closing connections under its clients. ``answers[0]`` counts the answers."""
    import asyncio
    import re as _re
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    reader = writer = None
    while running():
        if writer is None:
            reader, writer = await asyncio.open_connection(host, port, ssl=ssl_context)
        assert reader is not None
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(_re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            got = await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200 ") or got != body:
                failures.append(f"{head.split(b' ', 2)[1].decode()} {len(got)} bytes")
            answers[0] += 1
            if _re.search(rb"(?i)\r\nconnection: *close", head):
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            failures.append(repr(e))
            writer.close()
            writer = None
    if writer is not None:
        writer.close()
