"""The origin with ``--workers 2`` over HTTPS: SIGHUP re-reads the config file and the certificate
while keep-alive clients download without one failed or truncated response; a reload with a broken
certificate keeps the running workers; a killed worker is replaced; SIGTERM leaves no worker behind."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp

from origin_helpers import title_files
from tests.procs import keepalive_gets
from serverkit.tls import client_context
from vodstack.devcerts import DevCA

REPO = Path(__file__).resolve().parents[2]
BIG = "t1/video/r1/big.m4s"


def write_config(path: Path, root: Path, cert: Path, key: Path, region: str) -> None:
    path.write_text(f'[origin]\nstorage_url = "{root}"\nport = 0\nregion = "{region}"\n'
                    f'tls_cert = "{cert}"\ntls_key = "{key}"\nworkers = 2\n')


async def wait_for(predicate, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def started_pids(log: Path) -> list[int]:
    return [int(line.split("pid=")[1].split()[0]) for line in log.read_text().splitlines() if "worker started" in line]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


async def test_reload_under_load_drops_nothing(title_root: Path, tmp_path: Path):
    ca = DevCA(tmp_path / "ca")
    cert, key = ca.issue("origin")
    config = tmp_path / "origin.toml"
    write_config(config, title_root, cert, key, "before")
    log = tmp_path / "origin.log"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vodstack", "origin", "--config", str(config), cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if k != "VODSTACK_ORIGIN_WORKERS"}, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE, stderr=open(log, "ab"))  # the file's workers = 2, not the tests' 1
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert "origin listening on https://127.0.0.1:" in line and "(2 workers)" in line, (line, log.read_text())
    url = line.split(" listening on ", 1)[1].split(" ", 1)[0]
    big = title_files()[BIG]
    failures: list[str] = []
    answers = [0]
    running = True
    context = client_context(ca.cert_path)

    def keepalive_client() -> asyncio.Future[None]:
        return asyncio.ensure_future(keepalive_gets(url, f"/{BIG}", big, lambda: running, failures, answers,
                                                    ssl_context=context))

    async def region() -> str:
        connector = aiohttp.TCPConnector(ssl=client_context(ca.cert_path), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as s:
            async with s.get(f"{url}/_/health") as r:
                return str((await r.json())["region"])

    try:
        clients = [keepalive_client() for _ in range(3)]
        await wait_for(lambda: answers[0] >= 6, "first downloads")
        assert await region() == "before"

        write_config(config, title_root, cert, key, "after")  # the settings change; SIGHUP applies them
        proc.send_signal(signal.SIGHUP)
        await wait_for(lambda: "reloaded" in log.read_text(), "the reload")
        assert await region() == "after"  # a new connection reaches a new worker
        mark = answers[0]
        await wait_for(lambda: answers[0] >= mark + 6, "downloads after the reload")
        await wait_for(lambda: log.read_text().count("worker retired") >= 2, "the old workers' exit")

        good = cert.read_bytes()
        cert.write_text("not a certificate\n")  # a broken certificate: the new generation cannot start
        proc.send_signal(signal.SIGHUP)
        await wait_for(lambda: "reload failed" in log.read_text(), "the refused reload")
        assert await region() == "after"  # the running workers stay and serve
        mark = answers[0]
        await wait_for(lambda: answers[0] >= mark + 6, "downloads after the refused reload")

        running = False
        await asyncio.gather(*clients)
        assert failures == [] and answers[0] >= 24

        # a crash (SIGKILL) loses what that worker had in flight, so nothing is in flight now: its
        # replacement (started from the files as they are now: the certificate is repaired first, see
        # docs/deploy.md) is logged and serves the connections its socket queued meanwhile
        cert.write_bytes(good)
        victim = next(pid for pid in reversed(started_pids(log)) if alive(pid))
        os.kill(victim, signal.SIGKILL)
        await wait_for(lambda: "worker exited; replacing it" in log.read_text(), "the replacement")
        connector = aiohttp.TCPConnector(ssl=client_context(ca.cert_path), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as s:
            for _ in range(10):  # new connections, spread over both sockets
                async with s.get(f"{url}/{BIG}") as r:
                    assert r.status == 200 and await r.read() == big
        assert len(started_pids(log)) == 2 + 2 + 2 + 1  # first, reload, refused reload, replacement
    finally:
        running = False
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert not [pid for pid in started_pids(log) if alive(pid)]
