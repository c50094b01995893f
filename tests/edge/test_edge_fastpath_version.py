"""The fast path runs only on the aiohttp versions it is tested on (``edge.fastpath.TESTED_AIOHTTP``):
an edge on any other version serves through aiohttp alone, with one warning line."""
from __future__ import annotations

import importlib.metadata
import logging

import aiohttp
from aiohttp import web

from edge.app import build_app
from edge.config import EdgeConfig
from edge.fastpath import EdgeRunner, FastServer, aiohttp_tested

KEYS = {"k1": "secret-one"}


async def _server_of(tmp_path, name: str, **runner_kwargs) -> tuple[type, int]:
    cfg = EdgeConfig(name=name, origin="http://127.0.0.1:9", cache_dir=tmp_path / name, ram_mb=4, disk_mb=8,
                     token_keys=dict(KEYS), admin_key="admin", access_log=False)
    runner = EdgeRunner(build_app(cfg), access_log=None, shutdown_timeout=0.2, **runner_kwargs)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/_/health") as r:
                status = r.status
        return type(runner.server), status
    finally:
        await runner.cleanup()


async def test_an_untested_aiohttp_turns_the_fast_path_off_with_one_warning(tmp_path, caplog):
    running = importlib.metadata.version("aiohttp")
    assert aiohttp_tested(running), f"the installed aiohttp {running} is outside TESTED_AIOHTTP"
    caplog.set_level(logging.WARNING, logger="edge.fastpath")
    kind, status = await _server_of(tmp_path, "now")
    assert issubclass(kind, FastServer) and status == 200
    assert not [r for r in caplog.records if r.name == "edge.fastpath"]

    for n in range(2):  # two edges in one process on an untested aiohttp: off both times, one warning
        kind, status = await _server_of(tmp_path, f"old{n}", aiohttp_version="3.9.5")
        assert not issubclass(kind, FastServer) and status == 200
    warnings = [r for r in caplog.records if r.name == "edge.fastpath"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert warnings[0].kv == {"aiohttp": "3.9.5", "tested": ">=3.14,<3.15"}
