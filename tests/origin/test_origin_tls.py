"""The origin over HTTPS on both event loops: a local file above the sendfile threshold (3 MB), whole
and in a range, and a plain HTTP listener beside it, byte for byte. Under TLS the origin must never
``sendfile`` into the socket beneath the TLS layer (clear text in the stream: the client's TLS layer
would fail or the bytes would differ), so this is the test that catches it."""
from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from origin.server.config import OriginConfig
from origin.server.serve import serve
from origin_helpers import title_files
from serverkit.tls import client_context
from vodstack.devcerts import DevCA

BIG = "t1/video/r1/big.m4s"


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_big_file_over_https_and_plain_beside_it(title_root: Path, tmp_path: Path, loop_name: str):
    ca = DevCA(tmp_path / "ca")
    cert, key = ca.issue("origin")
    cfg = OriginConfig(storage_url=str(title_root), port=0, loop=loop_name, tls_cert=str(cert), tls_key=str(key),
                       http_port=0)
    data = title_files()[BIG]
    assert len(data) > cfg.sendfile_min_bytes

    async def scenario() -> list[tuple[int, bytes]]:
        stop = asyncio.Event()
        listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(cfg, on_listening=listening.set_result, stop=stop))
        try:
            done, _ = await asyncio.wait({task, listening}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()
            https_url, _, plain_url = listening.result().partition(" and ")
            assert https_url.startswith("https://") and plain_url.startswith("http://")
            out = []
            connector = aiohttp.TCPConnector(ssl=client_context(ca.cert_path))
            async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as http:
                for url, headers in ((https_url, {}), (https_url, {"Range": "bytes=300000-"}),
                                     (https_url, {}), (plain_url, {})):  # the third on a kept connection
                    async with http.get(f"{url}/{BIG}", headers=headers) as r:
                        out.append((r.status, await r.read()))
            return out
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    factory = pytest.importorskip("uvloop").new_event_loop if loop_name == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        answers = runner.run(scenario())
    assert answers == [(200, data), (206, data[300000:]), (200, data), (200, data)]
