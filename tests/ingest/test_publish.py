"""publish_title on real local storage with a small synthetic title (no encode): versions, history,
an interrupted publish, going back to an earlier version. The clock is injected."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from manifests import (InitSegment, PreviousVersion, Segment, Title, VideoRendition, dumps_title, loads_title,
                       render_title_playlists, version_prefix, with_path_prefix)
from origin.storage import StorageError, read_all
from origin.storage.local import LocalStorage
from origin.transcode.gc import collect_garbage
from origin.transcode.publish import publish_title


def _title() -> Title:
    v = VideoRendition(id="r", codec="avc1.64000d", codec_family="h264", width=416, height=234, frame_rate=25.0,
                       bandwidth_bps=1000, average_bandwidth_bps=900, nominal_bitrate_kbps=145,
                       playlist="video/r/index.m3u8", init=InitSegment(path="video/r/init.mp4", size_bytes=4),
                       segments=(Segment(path="video/r/00001.m4s", duration_s=2.0, size_bytes=6),
                                 Segment(path="video/r/00002.m4s", duration_s=2.0, size_bytes=6)))
    return Title(title="t1", duration_s=4.0, segment_duration_s=2.0, video=(v,))


def _files(folder: Path, tag: bytes) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for rel, data in (("video/r/init.mp4", b"init"), ("video/r/00001.m4s", b"seg1" + tag), ("video/r/00002.m4s",
                                                                                          b"seg2" + tag)):
        path = folder / rel.replace("/", "_")
        path.write_bytes(data)
        out[rel] = str(path)
    return out


async def _publish(storage, files, now_s: float):
    title = _title()
    return await publish_title(storage, "t1", title=title, files=files, playlists=render_title_playlists(title),
                               clock=lambda: now_s)


def _run(coro):
    return asyncio.run(coro)


def test_versions_history_and_going_back(tmp_path):
    storage = LocalStorage(tmp_path / "out")
    a = _run(_publish(storage, _files(tmp_path / "a", b"A"), 100.0))
    assert (a.replaced, a.unchanged, a.written) == (None, False, 7)
    b = _run(_publish(storage, _files(tmp_path / "b", b"B"), 200.0))
    assert b.version != a.version and b.replaced.version == a.version and b.written == 7  # a new name for all
    title = loads_title((tmp_path / "out/t1/title.json").read_text())
    assert title.version == b.version
    assert title.previous_versions == (PreviousVersion(version=a.version, superseded_at_s=200.0),)
    assert title.all_paths()[0].startswith(version_prefix(b.version))
    # both versions are complete in storage
    for version in (a.version, b.version):
        assert sorted(p.name for p in (tmp_path / f"out/t1/v/{version}/video/r").iterdir()) == [
            "00001.m4s", "00002.m4s", "index.m3u8", "init.mp4"]
    # going back to A: A current again, B in the history, A's objects written afresh
    back = _run(_publish(storage, _files(tmp_path / "a2", b"A"), 300.0))
    assert back.version == a.version and back.replaced.version == b.version and back.written == 7
    title = loads_title((tmp_path / "out/t1/title.json").read_text())
    assert title.previous_versions == (PreviousVersion(version=b.version, superseded_at_s=300.0),)


def test_an_interrupted_publish_leaves_the_title_as_it_was_and_gc_removes_the_folder(tmp_path):
    storage = LocalStorage(tmp_path / "out")
    a = _run(_publish(storage, _files(tmp_path / "a", b"A"), 100.0))
    before = {n: (tmp_path / "out/t1" / n).read_bytes() for n in ("title.json", "manifest.mpd", "master.m3u8")}
    files_b = _files(tmp_path / "b", b"B")
    b_version = _run(_publish(LocalStorage(tmp_path / "elsewhere"), files_b, 0.0)).version
    # a folder where one of B's objects must go: that upload fails, after others went up
    (tmp_path / f"out/t1/v/{b_version}/video/r/00002.m4s").mkdir(parents=True)
    with pytest.raises(StorageError, match="collides"):
        _run(_publish(storage, files_b, 200.0))
    (tmp_path / f"out/t1/v/{b_version}/video/r/00002.m4s").rmdir()
    assert (tmp_path / f"out/t1/v/{b_version}/video/r/init.mp4").exists()
    assert {n: (tmp_path / "out/t1" / n).read_bytes() for n in before} == before  # nothing half-published
    versions = sorted(p.name for p in (tmp_path / "out/t1/v").iterdir())
    assert len(versions) == 2 and a.version in versions
    unnamed = next(v for v in versions if v != a.version)

    # gc: the unnamed folder only once it is older than the grace, never the current version
    report = _run(collect_garbage(storage, titles=None, now_s=1e12, grace_s=1e13, sweep_work=False))
    assert report.plans[0].removals == ()
    report = _run(collect_garbage(storage, titles=None, now_s=1e12, grace_s=0, sweep_work=False))
    assert report.plans[0].removed_versions == (unnamed,)
    assert [p.name for p in (tmp_path / "out/t1/v").iterdir()] == [a.version]
    assert _run(read_all(storage, "t1/master.m3u8")) == before["master.m3u8"]


def test_a_pre_versioning_title_is_recorded_as_unversioned_and_collected(tmp_path):
    storage = LocalStorage(tmp_path / "out")
    old = _title()  # as an older vodstack published it: unversioned paths, no version fields
    for rel, path in _files(tmp_path / "old", b"O").items():
        _run(storage.write(f"t1/{rel}", Path(path)))
    _run(storage.write("t1/title.json", dumps_title(old).encode()))
    _run(storage.write("t1/master.m3u8", render_title_playlists(old)["master.m3u8"].encode()))
    new = _run(_publish(storage, _files(tmp_path / "n", b"N"), 500.0))
    assert new.replaced.version == "unversioned"
    assert (tmp_path / "out/t1/manifest.mpd").exists()  # a title published before DASH gains its MPD
    assert (tmp_path / "out/t1/video/r/00001.m4s").exists()  # still served to players of the old master
    report = _run(collect_garbage(storage, titles=["t1"], now_s=500.0 + 10, grace_s=5, sweep_work=False))
    assert report.plans[0].removed_versions == ("unversioned",)
    assert sorted(str(p.relative_to(tmp_path / "out/t1")) for p in (tmp_path / "out/t1").rglob("*") if p.is_file()) \
        == sorted(["manifest.mpd", "master.m3u8", "title.json", *(p for p in with_path_prefix(_title(), version_prefix(new.version))
                                                  .all_paths())])
    # the next publish forgets a collected version
    again = _run(_publish(storage, _files(tmp_path / "m", b"M"), 600.0))
    assert [p.version for p in loads_title((tmp_path / "out/t1/title.json").read_text()).previous_versions] == [
        new.version]
    assert again.version != new.version
