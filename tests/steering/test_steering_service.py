"""The steering service as a real process on 127.0.0.1, with real origins; the test plays the edges
by posting their heartbeats (no edge process is needed to be steered to)."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import m3u8
import pytest
from steering_procs import REGIONS, Server, steering_topology

from edge.steering.content_steering import validate_manifest
from edge.tokens import verify_token

DEVICES = ("iphone", "android-phone", "tv-4k", "laptop-chrome", "low-end")
ADMIN = {"X-Admin-Key": "adm"}
ALL_EDGES = [f"edge-{r}{c}" for r in REGIONS for c in "ab"]


class Edges:
    """Heartbeats for the edges named in ``alive``, every 0.2 s, as edges would send them."""

    def __init__(self, http: aiohttp.ClientSession, steering: str) -> None:
        self.http, self.steering = http, steering
        self.alive = set(ALL_EDGES)
        self.status: dict[str, str] = {}
        self.task: asyncio.Task[None] | None = None

    async def beat_once(self) -> None:
        for name in sorted(self.alive):
            body = {"name": name, "status": self.status.get(name, "ok"), "region": name[5:-1]}
            async with self.http.post(f"{self.steering}/edges/heartbeat", json=body) as r:
                assert r.status == 200, await r.text()

    async def run(self) -> None:
        while True:
            await self.beat_once()
            await asyncio.sleep(0.2)

    async def __aenter__(self) -> "Edges":
        await self.beat_once()
        self.task = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()


@pytest.fixture
def steering(origin_urls: dict[str, str], tmp_path: Path):
    topo = tmp_path / "topology.toml"
    topo.write_text(steering_topology(origin_urls))
    server = Server("steering", ["steering", "--topology", str(topo)], tmp_path)
    yield server.url
    server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def get_json(http: aiohttp.ClientSession, url: str, **kw) -> tuple[int, dict]:
    async with http.get(url, **kw) as r:
        return r.status, await r.json(content_type=None)


async def test_play_answers_every_device_in_every_region(steering, http):
    async with Edges(http, steering):
        for region in REGIONS:
            for device in DEVICES:
                status, doc = await get_json(http, f"{steering}/play/tiny?device={device}&region={region}"
                                                   f"&session=s-{device}")
                assert status == 200, doc
                assert doc["device"] == device and doc["region"] == region and doc["session"] == f"s-{device}"
                pathways = doc["pathways"]
                assert [p["region"] for p in pathways[:2]] == [region, region]
                assert [p["region"] for p in pathways[2:4]] == [REGIONS[region][0]] * 2
                assert doc["edge"] == pathways[0]["id"]
                assert doc["edge_multivariant_url"].startswith(pathways[0]["url"] + "/t/")
                verdict = verify_token(doc["token"], {"k1": "s1"}, "tiny", time.time())
                assert verdict.ok and verdict.expires_at_s == doc["token_expires_at_s"]
                assert doc["content_steering_uri"].startswith(f"{steering}/steer/tiny?")
                assert doc["steering_ttl_s"] == 2
        # the steered playlist the answer points at parses, and carries content steering
        async with http.get(doc["multivariant_url"]) as r:
            assert r.status == 200 and r.content_type == "application/vnd.apple.mpegurl"
            pl = m3u8.loads(await r.text())
        assert pl.content_steering.uri.startswith(f"{steering}/steer/tiny?")
        assert {p.stream_info.pathway_id for p in pl.playlists} == set(ALL_EDGES)
        assert pl.content_steering.pathway_id == doc["edge"]
        async with http.get(f"{steering}/_/metrics") as r:
            text = await r.text()
        assert 'steering_sessions_started_total{device="low-end",region="eu-west-1"} 1.0' in text


async def test_signing_keys_rotate_by_key_id(steering, http):
    async with Edges(http, steering):
        status, doc = await get_json(http, f"{steering}/play/tiny?device=iphone&region=us-east-1")
        assert doc["key_id"] == "k1"
        async with http.post(f"{steering}/keys/k0/activate", headers=ADMIN) as r:
            assert r.status == 200
        async with http.post(f"{steering}/keys/k7/activate", headers=ADMIN) as r:
            assert r.status == 404
        status, rotated = await get_json(http, f"{steering}/play/tiny?device=iphone&region=us-east-1")
        assert rotated["key_id"] == "k0"
        assert verify_token(rotated["token"], {"k0": "s0"}, "tiny", time.time()).ok
        # tokens signed before the rotation still open the playlist (every key stays known)
        async with http.get(doc["multivariant_url"]) as r:
            assert r.status == 200


async def test_sessions_spread_over_the_region_edges(steering, http):
    async with Edges(http, steering):
        firsts = []
        for i in range(40):
            status, doc = await get_json(http, f"{steering}/play/tiny?device=iphone&region=eu-west-1&session=u{i}")
            firsts.append(doc["edge"])
        assert set(firsts) == {"edge-eu-west-1a", "edge-eu-west-1b"}
        assert min(firsts.count(e) for e in set(firsts)) >= 8


async def test_bad_requests_name_what_is_valid(steering, http):
    async with Edges(http, steering):
        status, doc = await get_json(http, f"{steering}/play/no-such-title?device=iphone&region=us-east-1")
        assert status == 404 and "unknown title" in doc["error"]
        status, doc = await get_json(http, f"{steering}/play/tiny?device=toaster&region=us-east-1")
        assert status == 400 and "toaster" in doc["error"] and set(DEVICES) <= set(doc["valid_devices"])
        status, doc = await get_json(http, f"{steering}/play/tiny?device=iphone&region=mars-1")
        assert status == 400 and doc["valid_regions"] == sorted(REGIONS)
        status, doc = await get_json(http, f"{steering}/play/tiny?device=iphone")
        assert status == 400 and doc["error"] == "missing region"
        status, doc = await get_json(http, f"{steering}/play/tiny?device=iphone&region=us-east-1")
        token = doc["token"]
        status, doc = await get_json(http, f"{steering}/m/{token[:-2]}xx/tiny/master.m3u8?region=us-east-1")
        assert status == 403
        async with http.post(f"{steering}/regions/us-east-1/evacuate") as r:
            assert r.status == 403
        async with http.post(f"{steering}/regions/us-east-1/evacuate", headers={"X-Admin-Key": "nope"}) as r:
            assert r.status == 403
        async with http.post(f"{steering}/regions/mars-1/evacuate", headers=ADMIN) as r:
            assert r.status == 404


async def test_no_heartbeats_no_edges(steering, http):
    status, doc = await get_json(http, f"{steering}/play/tiny?device=iphone&region=us-east-1")
    assert status == 503 and doc["error"] == "no edge in rotation"


async def steer(http, uri: str, **params: str) -> dict:
    status, doc = await get_json(http, uri, params=params or None)
    assert status == 200, doc
    validate_manifest(doc)
    return doc


async def test_edges_missing_heartbeats_leave_rotation_and_return(steering, http):
    async with Edges(http, steering) as edges:
        status, doc = await get_json(http, f"{steering}/play/tiny?device=tv-4k&region=us-west-2&session=z")
        victim = doc["edge"]
        uri = doc["content_steering_uri"]
        assert (await steer(http, uri))["PATHWAY-PRIORITY"][0] == victim
        edges.alive.discard(victim)
        died = time.monotonic()
        while victim in (await steer(http, uri))["PATHWAY-PRIORITY"]:
            assert time.monotonic() - died < 2.0 + 1.0, "still steered to after timeout + 1 s"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a few sweeps (0.1 s): the metrics see it out
        status, doc = await get_json(http, f"{steering}/play/tiny?device=tv-4k&region=us-west-2&session=z")
        assert victim not in [p["id"] for p in doc["pathways"]] and doc["pathways"][0]["region"] == "us-west-2"
        status, listing = await get_json(http, f"{steering}/edges")
        assert {e["name"]: e["reason"] for e in listing["edges"]}[victim] == "missed heartbeats"
        # a draining edge leaves too
        edges.status["edge-us-west-2a" if victim != "edge-us-west-2a" else "edge-us-west-2b"] = "draining"
        await edges.beat_once()
        assert [p for p in (await steer(http, uri))["PATHWAY-PRIORITY"] if "us-west-2" in p] == []
        edges.status.clear()
        edges.alive.add(victim)
        await edges.beat_once()
        assert (await steer(http, uri))["PATHWAY-PRIORITY"][0] == victim
        # the metrics saw it go and come back
        async with http.get(f"{steering}/_/metrics") as r:
            text = await r.text()
        assert f'steering_rotation_changes_total{{edge="{victim}",to="out"}} 1.0' in text
        assert 'steering_edges_in_rotation{region="us-west-2"} 2.0' in text


async def test_evacuation_takes_effect_within_one_ttl(steering, http):
    async with Edges(http, steering):
        status, doc = await get_json(http, f"{steering}/play/tiny?device=iphone&region=us-east-1&session=p1")
        ttl_s = doc["steering_ttl_s"]
        manifest = await steer(http, doc["content_steering_uri"], _HLS_pathway=doc["edge"])
        assert manifest["PATHWAY-PRIORITY"][0] == doc["edge"]
        async with http.post(f"{steering}/regions/us-east-1/evacuate", headers=ADMIN) as r:
            assert r.status == 200 and (await r.json())["evacuated_regions"] == ["us-east-1"]
        # a player following the manifest: waits TTL, reloads RELOAD-URI; that first reload is steered away
        assert manifest["TTL"] == ttl_s
        await asyncio.sleep(manifest["TTL"])
        manifest = await steer(http, manifest["RELOAD-URI"], _HLS_pathway=doc["edge"])
        assert all("us-east-1" not in p for p in manifest["PATHWAY-PRIORITY"])
        assert manifest["PATHWAY-PRIORITY"][0].startswith("edge-us-west-2")
        # new sessions are not sent there either
        status, doc = await get_json(http, f"{steering}/play/tiny?device=iphone&region=us-east-1&session=p2")
        assert status == 200 and all(p["region"] != "us-east-1" for p in doc["pathways"])
        async with http.get(f"{steering}/_/metrics") as r:
            text = await r.text()
        assert 'steering_evacuations_total{region="us-east-1"} 1.0' in text
        assert 'steering_region_evacuated{region="us-east-1"} 1.0' in text
        async with http.post(f"{steering}/regions/us-east-1/restore", headers=ADMIN) as r:
            assert r.status == 200
        manifest = await steer(http, manifest["RELOAD-URI"])
        assert manifest["PATHWAY-PRIORITY"][0].startswith("edge-us-east-1")


async def test_content_steering_manifest_follows_the_spec_and_clones_new_edges(steering, http):
    async with Edges(http, steering) as edges:
        status, doc = await get_json(http, f"{steering}/play/tiny?device=laptop-chrome&region=eu-west-1&session=c")
        base = await steer(http, doc["content_steering_uri"], _HLS_pathway=doc["edge"], _HLS_throughput="5000000")
        async with http.get(doc["content_steering_uri"]) as r:
            assert r.content_type == "application/json" and r.headers["Cache-Control"] == "no-store"
        assert base["VERSION"] == 1 and base["TTL"] == 2 and "PATHWAY-CLONES" not in base
        assert base["RELOAD-URI"].startswith(f"{steering}/steer/tiny?")
        assert sorted(base["PATHWAY-PRIORITY"]) == sorted(ALL_EDGES)
        # an edge that joins later (not in the topology) is reached through a clone
        async with http.post(f"{steering}/edges/heartbeat", json={
                "name": "edge-eu-west-1c", "status": "ok", "region": "eu-west-1",
                "url": "http://127.0.0.1:41999", "capacity_mbps": 100000}) as r:
            assert r.status == 200
        edges.alive.add("edge-eu-west-1c")
        later = await steer(http, base["RELOAD-URI"])
        assert "edge-eu-west-1c" in later["PATHWAY-PRIORITY"]
        assert later["PATHWAY-CLONES"] == [{"BASE-ID": later["RELOAD-URI"].split("have=")[1].split(",")[0],
                                            "ID": "edge-eu-west-1c",
                                            "URI-REPLACEMENT": {"HOST": "127.0.0.1:41999"}}]
        # the current pathway sticks even though the big new edge would win the hash
        sticky = await steer(http, base["RELOAD-URI"], _HLS_pathway=doc["edge"])
        assert sticky["PATHWAY-PRIORITY"][0] == doc["edge"]


async def test_dash_play_steered_mpd_and_content_steering(steering, http):
    """/play hands each device its format; the steered MPD names every ranked edge as a service
    location under the token; /steer answers the DASH form and follows rotation as for HLS."""
    from manifests import loads_steered_mpd

    async with Edges(http, steering) as edges:
        formats = {}
        for device in DEVICES:
            status, doc = await get_json(http, f"{steering}/play/syn?device={device}&region=us-west-2&session=d")
            assert status == 200, doc
            formats[device] = doc["format"]
        assert formats == {"iphone": "hls", "android-phone": "dash", "tv-4k": "dash", "laptop-chrome": "hls",
                           "low-end": "hls"}
        status, doc = await get_json(http, f"{steering}/play/syn?device=iphone&region=us-west-2&format=dash")
        assert status == 400 and doc["error"] == "device iphone does not play dash (it plays hls)"
        status, doc = await get_json(http, f"{steering}/play/syn?device=tv-4k&region=us-west-2&format=smooth")
        assert status == 400 and doc["valid_formats"] == ["hls", "dash"]
        # a title published before DASH: the TV falls back to HLS, an explicit DASH request is a 404
        status, doc = await get_json(http, f"{steering}/play/tiny?device=tv-4k&region=us-west-2")
        assert status == 200 and doc["format"] == "hls" and doc["manifest_url"] == doc["multivariant_url"]
        status, doc = await get_json(http, f"{steering}/play/tiny?device=tv-4k&region=us-west-2&format=dash")
        assert status == 404 and "no DASH manifest" in doc["error"]

        status, doc = await get_json(http, f"{steering}/play/syn?device=tv-4k&region=us-west-2&session=z")
        assert doc["format"] == "dash" and doc["manifest_url"].split("?")[0].endswith(f"/syn/manifest.mpd")
        assert doc["edge_manifest_url"] == f"{doc['pathways'][0]['url']}/t/{doc['token']}/syn/manifest.mpd"
        assert "format=dash" in doc["content_steering_uri"]
        async with http.get(doc["manifest_url"]) as r:
            assert r.status == 200 and r.content_type == "application/dash+xml", await r.text()
            steered = loads_steered_mpd(await r.read())
        assert [loc.id for loc in steered.locations] == [p["id"] for p in doc["pathways"]]
        assert [loc.url for loc in steered.locations] == [p["base_url"] for p in doc["pathways"]]
        assert steered.steering.default_location == doc["edge"] and steered.steering.query_before_start
        assert steered.steering.server_uri == doc["content_steering_uri"]
        assert all(s.path.startswith("video/") for v in steered.title.video for s in v.segments)

        # the DASH steering form: dash.js's quoted list; the location measured last is taken as the current one
        other = doc["pathways"][1]["id"]
        first = await steer(http, doc["content_steering_uri"], _DASH_pathway=f'"{doc["edge"]},{other}"',
                            _DASH_throughput="5000000,6000000")
        assert first["PATHWAY-PRIORITY"] == first["SERVICE-LOCATION-PRIORITY"]
        assert first["PATHWAY-PRIORITY"][0] == other  # sticky to the one in use
        assert "format=dash" in first["RELOAD-URI"]
        # the serving edge leaves rotation: the next answer does not name it
        edges.alive.discard(doc["edge"])
        for _ in range(200):  # heartbeat timeout 2 s; polled every 0.1 s, at most 20 s
            if doc["edge"] not in (await steer(http, first["RELOAD-URI"]))["PATHWAY-PRIORITY"]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{doc['edge']} still steered to after its heartbeats stopped")
        async with http.get(doc["manifest_url"]) as r:
            again = loads_steered_mpd(await r.read())
        assert doc["edge"] not in [loc.id for loc in again.locations]
