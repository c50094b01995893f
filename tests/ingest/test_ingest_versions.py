"""Re-ingest versioning, for real: a title warmed through a real edge, re-ingested with another
segment duration into the same storage, is read back through that edge byte for byte as storage
holds it (no cache can mix versions: the new master names new paths); the old version stays served
until ``vodstack gc`` removes it; an identical re-run publishes nothing new."""
from __future__ import annotations

import json
import posixpath
import time
import urllib.error
import urllib.request
from pathlib import Path

import m3u8
import pytest

from conftest import run_vodstack
from edge.tokens import sign_token
from manifests import loads_title
from tests.procs import Server, free_port

KEY = ("k1", "test-secret-versions")
FLAGS = ("--codecs", "h264", "--chunk-duration", "2", "--nice", "10", "--jobs", "2", "--no-vmaf", "--json")


def _ingest(clip: Path, out: Path | str, segment_s: str) -> tuple[dict, str]:
    proc = run_vodstack("ingest", str(clip), "--title", "t1", "--out", str(out), "--segment-duration", segment_s,
                        *FLAGS)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _title_paths(root: Path) -> list[str]:
    """master.m3u8, title.json and every path the title names (relative to the title root)."""
    return ["master.m3u8", "title.json", *loads_title((root / "title.json").read_text()).all_paths()]


def _playlist_closure(base: str, root: Path) -> set[str]:
    """Every path master.m3u8 names, and every path its media playlists name, resolved against the
    title root; read from storage (the test then fetches them through the edge)."""
    found: set[str] = set()
    master = m3u8.loads((root / "master.m3u8").read_text())
    lists = [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri] + \
        [p.uri for p in master.iframe_playlists]
    for uri in lists:
        found.add(uri)
        media = m3u8.loads((root / uri).read_text())
        folder = posixpath.dirname(uri)
        for seg in media.segments:
            found.add(posixpath.normpath(posixpath.join(folder, seg.uri)))
            if seg.init_section is not None:
                found.add(posixpath.normpath(posixpath.join(folder, seg.init_section.uri)))
    assert found and not any(p.startswith("..") for p in found)
    return found


@pytest.fixture
def stack(tmp_path: Path):
    """A storage folder, an origin on a fixed port (restartable), an edge in front of it. Entry points
    are sent with max-age=0 by the origin and the edge's playlist TTL is 0: revalidated every time.
    The edge waits for each revalidation (no stale-while-revalidate, a long stale deadline): with the
    default 0.5 s deadline a restarted origin that is slow to answer its first requests on a busy
    machine gets the old (whole, consistent) master served stale, which is the edge's policy, not a
    mixed version; this test is about what a revalidation brings back."""
    out = tmp_path / "out"
    out.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    (tmp_path / "origin.toml").write_text("[origin]\nplaylist_max_age_s = 0\n")
    (tmp_path / "edge.toml").write_text("[edge]\nplaylist_ttl_s = 0.0\nstale_while_revalidate_s = 0.0\n"
                                       "stale_deadline_s = 60.0\n")
    port = free_port()
    procs: dict[str, Server] = {}

    def start_origin() -> None:
        procs["origin"] = Server("origin", ["origin", "--storage", str(out), "--port", str(port),
                                            "--config", str(tmp_path / "origin.toml")], logs)

    start_origin()
    procs["edge"] = Server("edge", ["edge", "--origin", procs["origin"].url, "--port", "0",
                                    "--cache-dir", str(tmp_path / "cache"), "--ram-mb", "32", "--disk-mb", "64",
                                    "--token-key", f"{KEY[0]}={KEY[1]}", "--config", str(tmp_path / "edge.toml"),
                                    "--name", "e1"], logs)
    token = sign_token(KEY[0], KEY[1], "t1", int(time.time()) + 3600)
    yield {"out": out, "root": out / "t1", "edge": f"{procs['edge'].url}/t/{token}/t1",
           "origin": lambda: f"{procs['origin'].url}/t1", "restart_origin": lambda: (procs["origin"].stop(),
                                                                                   start_origin())}
    for p in procs.values():
        p.stop()


def test_reingest_through_a_warm_edge_never_mixes_versions(clip, stack, tmp_path):
    root: Path = stack["root"]
    first, _ = _ingest(clip, stack["out"], "1")
    old_paths = _title_paths(root)
    old_bytes = {p: (root / p).read_bytes() for p in old_paths}
    for p in old_paths:  # warm every object through the edge
        assert _get(f"{stack['edge']}/{p}") == (200, old_bytes[p]), p

    second, stderr = _ingest(clip, stack["out"], "2")
    stack["restart_origin"]()

    # through the warm edge: the new master, every object it and the new title.json name, as stored
    new_paths = set(_title_paths(root)) | _playlist_closure(stack["edge"], root)
    differ = [p for p in sorted(new_paths) if _get(f"{stack['edge']}/{p}") != (200, (root / p).read_bytes())]
    assert differ == [], f"{len(differ)} of {len(new_paths)} objects differ from storage: {differ[:5]}"

    assert second["version"] != first["version"]
    assert all(p.startswith(f"v/{first['version']}/") for p in old_paths[2:])
    assert all(p in ("master.m3u8", "title.json") or p.startswith(f"v/{second['version']}/") for p in new_paths)
    assert second["replaced"]["version"] == first["version"]
    assert f"vodstack: t1: replacing version {first['version']} (published " in stderr
    assert "it stays until 'vodstack gc'" in stderr

    # the old version is still there for players that loaded the old master
    for p in old_paths[2:]:
        assert _get(f"{stack['origin']()}/{p}") == (200, old_bytes[p]), p
    title = loads_title((root / "title.json").read_text())
    assert [pv.version for pv in title.previous_versions] == [first["version"]]

    # gc with no grace removes it, and only it
    gc = run_vodstack("gc", "--storage", str(stack["out"]), "--grace", "0", "--work-dir", str(tmp_path), "--json")
    assert gc.returncode == 0, gc.stderr
    report = json.loads(gc.stdout)
    assert [(t["title"], t["removed_versions"], t["kept_versions"]) for t in report["titles"]] == [
        ("t1", [first["version"]], [second["version"]])]
    assert sorted(r["key"] for r in report["titles"][0]["removed"]) == sorted(f"t1/{p}" for p in old_paths[2:])
    assert sorted(p.name for p in (root / "v").iterdir()) == [second["version"]]
    for p in new_paths:
        assert _get(f"{stack['origin']()}/{p}") == (200, (root / p).read_bytes()), p


def test_an_identical_rerun_publishes_the_same_version_and_writes_nothing(clip, tmp_path):
    out = tmp_path / "out"
    first, _ = _ingest(clip, out, "2")
    root = out / "t1"
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    again, stderr = _ingest(clip, out, "2")
    assert again["version"] == first["version"]
    assert (again["written"], again["unchanged"], again["replaced"]) == (0, True, None)
    assert f"vodstack: t1: same bytes as the published version {first['version']}: nothing changes" in stderr
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before
    assert [p.name for p in (root / "v").iterdir()] == [first["version"]]
    assert loads_title((root / "title.json").read_text()).previous_versions == ()


def test_reingest_and_gc_on_s3(clip, s3_bucket_url, s3_client):
    bucket = s3_bucket_url.split("://", 1)[1].split("?", 1)[0]

    def keys() -> set[str]:
        pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    first, _ = _ingest(clip, s3_bucket_url, "1")
    old_keys = keys()
    second, stderr = _ingest(clip, s3_bucket_url, "2")
    assert second["replaced"]["version"] == first["version"] and "replacing version" in stderr
    both = keys()
    assert old_keys - {"t1/master.m3u8", "t1/title.json"} <= both  # nothing of the old version deleted
    dry = run_vodstack("gc", "--storage", s3_bucket_url, "--grace", "0", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["titles"][0]["removed_versions"] == [first["version"]] and keys() == both
    kept = run_vodstack("gc", "--storage", s3_bucket_url, "--json")  # default grace: too early for anything
    assert json.loads(kept.stdout)["titles"][0]["removed"] == [] and keys() == both
    gc = run_vodstack("gc", "--storage", s3_bucket_url, "--grace", "0", "--json")
    assert gc.returncode == 0, gc.stderr
    assert json.loads(gc.stdout)["titles"][0]["kept_versions"] == [second["version"]]
    left = keys()
    assert not any(k.startswith(f"t1/v/{first['version']}/") for k in left)
    assert {k.split("/")[2] for k in left if k.startswith("t1/v/")} == {second["version"]}
    assert {"t1/master.m3u8", "t1/title.json"} <= left
