"""A whole stack whose origins and edges run two workers each (``[stack] workers = 2``): every edge is in
rotation once (its worker 0 heartbeats for it), a session plays through steering while its edge and
origin are reloaded (``vodstack up --reload NAME``, SIGHUP to the master) with no stall and no failed
request, and a server that has no master is refused a reload in one line."""
from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import aiohttp
import pytest

from steering_procs import play_doc_with_pathways, run_vodstack as _vodstack, topology_text
from vodstack.supervisor import Stack, StackError
from vodstack.topology import parse_topology

pytestmark = pytest.mark.slow


async def test_reloads_under_a_playing_session(tmp_path: Path, title_root: Path):
    text = topology_text(tmp_path / "data", title_root, stack_extra="workers = 2\n")
    topology_file = tmp_path / "topology.toml"
    topology_file.write_text(text)
    topology = parse_topology(tomllib.loads(text), env={})
    lines: list[tuple[str, str]] = []
    async with Stack(topology, control=True, sink=lambda name, line: lines.append((name, line))) as stack:
        steering = stack.url_of("steering")
        edge = "edge-eu-west-1a"
        assert any(name == edge and "listening on" in line and "(2 workers)" in line for name, line in lines)
        async with aiohttp.ClientSession() as http:
            # six edges, each once: worker 0 heartbeats for the whole edge
            await play_doc_with_pathways(http, steering, 6, session="s1")
            async with http.get(f"{stack.url_of(edge)}/_/health") as r:
                assert (await r.json())["workers"] == 2

        region_edges = (edge, f"{edge[:-1]}b")

        async def served() -> int:  # requests answered by the region's edges, every worker counted
            async with aiohttp.ClientSession() as http:
                total = 0
                for name in region_edges:
                    async with http.get(f"{stack.url_of(name)}/_/health") as r:
                        total += int((await r.json())["requests"])
                return total

        before = await served()
        session = asyncio.ensure_future(_vodstack("play", "syn", "--steering", steering, "--region", "eu-west-1",
                                                  "--json", "--quiet"))  # 12 s of media
        for _ in range(300):  # the session is under way: the region's edges answer it
            if await served() > before or session.done():
                break
            await asyncio.sleep(0.05)
        mid_session = []
        for name in (edge, "origin-eu-west-1", region_edges[1]):
            code, out, err = await _vodstack("up", str(topology_file), "--reload", name,
                                             "--control", stack.control_url)
            assert code == 0, err
            assert out.strip().startswith(f"{name}: "), out
            mid_session.append(not session.done())
        ok, out, err = await session
        assert ok == 0, err[-3000:]
        report = json.loads(out)
        assert report["ok"] and report["segments"], report["error"]
        assert report["stalls"]["count"] == 0 and report["failovers"] == [], (report["stalls"], report["failovers"])
        assert mid_session[0]  # the session was still playing when its region's first edge had reloaded

        with pytest.raises(StackError, match="runs as one process"):
            await stack.reload("steering")
        assert sum(1 for name, line in lines if name == edge and "reloaded: generation 2" in line) == 1
