"""A whole stack over HTTPS (``[stack] tls_cert``/``tls_key``/``tls_ca``; a CA made in the test): origins,
steering and edges serve TLS, edges fill over HTTPS and heartbeat to an HTTPS steering service, ``/play``
hands out ``https://`` URLs, and ``vodstack play`` and ``vodstack load`` with ``--ca`` play through
it; without ``--ca`` the player says the handshake failed."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import aiohttp
import m3u8
import pytest

from serverkit.tls import client_context
from steering_procs import play_doc_with_pathways, run_vodstack as _vodstack, topology_text
from vodstack.devcerts import DevCA
from vodstack.supervisor import Stack
from vodstack.topology import parse_topology

pytestmark = pytest.mark.slow


async def test_a_stack_over_https_plays_and_loads_with_the_ca(tmp_path: Path, title_root: Path):
    ca = DevCA(tmp_path / "ca")
    cert, key = ca.issue("stack", hosts=("127.0.0.1", "localhost"))
    extra = f'tls_cert = "{cert}"\ntls_key = "{key}"\ntls_ca = "{ca.cert_path}"\n'
    topology = parse_topology(tomllib.loads(topology_text(tmp_path / "data", title_root, stack_extra=extra)), env={})
    lines: list[tuple[str, str]] = []
    async with Stack(topology, sink=lambda name, line: lines.append((name, line))) as stack:
        steering = stack.url_of("steering")
        assert steering.startswith("https://")
        assert ("origin-eu-west-1", f"origin listening on {stack.url_of('origin-eu-west-1')}") in lines
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(ca.cert_path))) as http:
            # every edge heartbeats to the HTTPS steering service and is in rotation
            doc = await play_doc_with_pathways(http, steering, 6, session="s1", timeout_s=20)
            assert doc["manifest_url"].startswith(f"{steering}/")
            assert all(p["url"].startswith("https://127.0.0.1:") for p in doc["pathways"]), doc["pathways"]
            async with http.get(doc["multivariant_url"]) as r:
                assert r.status == 200
                master = m3u8.loads(await r.text())
            assert master.playlists and all(p.uri.startswith("https://") for p in master.playlists)
            async with http.get(master.playlists[0].uri) as r:  # an edge fills it from its origin over HTTPS
                assert r.status == 200, await r.text()
            # DASH over the same HTTPS: the steered MPD names the edges by their https:// URLs
            async with http.get(f"{steering}/play/syn?device=tv-4k&region=eu-west-1&session=s2&format=dash") as r:
                dash = await r.json()
            assert dash["format"] == "dash" and dash["manifest_url"].startswith(f"{steering}/")
            async with http.get(dash["manifest_url"]) as r:
                assert r.status == 200
                mpd = await r.text()
            assert "<BaseURL" in mpd and "http://" not in mpd.split("<BaseURL", 1)[1], mpd[:2000]
            assert f'serviceLocation="{dash["pathways"][0]["id"]}">https://127.0.0.1:' in mpd

        ok, out, err = await _vodstack("play", "tiny", "--steering", steering, "--region", "eu-west-1",
                                       "--ca", str(ca.cert_path), "--json", "--quiet")
        assert ok == 0, err[-3000:]
        report = json.loads(out)
        assert report["ok"] and report["segments"], report["error"]
        assert report["source"] == f"tiny via {steering}"
        assert {s["pathway"] for s in report["segments"]} <= {p["id"] for p in doc["pathways"]}

        ok, out, err = await _vodstack("play", "syn", "--steering", steering, "--region", "eu-west-1",
                                       "--format", "dash", "--ca", str(ca.cert_path), "--json", "--quiet")
        assert ok == 0, err[-3000:]
        report = json.loads(out)  # the project's player, DASH over HTTPS end to end
        assert report["ok"] and report["segments"], report["error"]
        assert {s["pathway"] for s in report["segments"]} <= {p["id"] for p in dash["pathways"]}

        failed, _, err = await _vodstack("play", "tiny", "--steering", steering, "--region", "eu-west-1", "--quiet")
        assert failed == 1
        assert "TLS handshake failed (certificate verify failed: " in err, err[-2000:]

        loaded, out, err = await _vodstack("load", "--steering", steering, "--titles", "tiny", "--players", "3",
                                           "--workers", "1", "--speed", "10", "--no-live", "--ca", str(ca.cert_path),
                                           "--report", str(tmp_path / "report"), "--json")
        assert loaded == 0, err[-3000:]
        summary = json.loads(out)["summary"]
        assert (summary["sessions"], summary["finished"], summary["failed"]) == (3, 3, 0), summary
