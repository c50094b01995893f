"""The origin's open-file cache (``origin/server/local_files.py``): objects kept open between requests."""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp
import pytest

from origin.server.config import OriginConfig
from origin.server.local_files import OpenFiles, open_local_object
from origin.storage import NotFound
from origin.storage.local import LocalStorage

SMALL_A, SMALL_B = b"#EXTM3U\n# version A\n", b"#EXTM3U\n# version B, longer\n"
BIG_A, BIG_B = os.urandom(200_000), os.urandom(300_000)  # above sendfile_min_bytes: sent by sendfile


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers) as r:
            return r.status, r.headers.get("ETag", ""), await r.read()


def publish(path: Path, data: bytes) -> None:
    """As the ingest publishes: a temp file renamed over the key."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "t1").mkdir()
    publish(tmp_path / "t1" / "index.m3u8", SMALL_A)
    publish(tmp_path / "t1" / "big.m4s", BIG_A)
    return tmp_path


@pytest.mark.parametrize("key, old, new", [("t1/index.m3u8", SMALL_A, SMALL_B), ("t1/big.m4s", BIG_A, BIG_B)])
async def test_a_republished_object_is_served_once_valid_s_has_passed(root: Path, start_origin, key: str,
                                                                     old: bytes, new: bytes):
    valid_s = 1.0
    origin = await start_origin(OriginConfig(storage_url=str(root), port=0, open_file_cache_valid_s=valid_s,
                                             open_file_cache_media_valid_s=valid_s))
    status, etag_old, body = await get(f"{origin}/{key}")
    assert status == 200 and body == old
    opened_s = time.monotonic()
    publish(root / key, new)
    status, etag, body = await get(f"{origin}/{key}")
    if time.monotonic() - opened_s < valid_s / 2:  # surely still within valid_s: the kept version
        assert (status, etag, body) == (200, etag_old, old)
    # a range of the kept version is a range of that version, never of the new file
    status, etag, part = await get(f"{origin}/{key}", {"Range": "bytes=3-12"})
    assert status == 206 and part == (old if etag == etag_old else new)[3:13]
    await asyncio.sleep(valid_s + 0.1)
    status, etag_new, body = await get(f"{origin}/{key}")
    assert (status, body) == (200, new) and etag_new != etag_old


async def test_without_the_cache_a_republished_object_is_seen_at_once(root: Path, start_origin):
    origin = await start_origin(OriginConfig(storage_url=str(root), port=0, open_file_cache_files=0))
    assert (await get(f"{origin}/t1/big.m4s"))[2] == BIG_A
    publish(root / "t1" / "big.m4s", BIG_B)
    assert (await get(f"{origin}/t1/big.m4s"))[2] == BIG_B


async def test_a_deleted_object_is_404_once_valid_s_has_passed(root: Path, start_origin):
    origin = await start_origin(OriginConfig(storage_url=str(root), port=0, open_file_cache_media_valid_s=0.3))
    assert (await get(f"{origin}/t1/big.m4s"))[0] == 200
    (root / "t1" / "big.m4s").unlink()
    await asyncio.sleep(0.4)
    assert (await get(f"{origin}/t1/big.m4s"))[0] == 404


def test_the_cache_is_bounded_and_closes_what_it_drops(tmp_path: Path):
    storage = LocalStorage(tmp_path)
    for i in range(5):
        (tmp_path / f"o{i}.m4s").write_bytes(bytes(100))
    files = OpenFiles(max_files=3, valid_s=60)
    objects = [open_local_object(storage, f"o{i}.m4s", read_below_bytes=10) for i in range(5)]
    fds = [obj.fd for obj in objects]
    for obj in objects:
        assert files.put(obj)
    assert len(files) == 3
    assert files.get("o0.m4s") is None and files.get("o1.m4s") is None
    for fd in fds[:2]:  # the two dropped descriptors are closed
        with pytest.raises(OSError):
            os.fstat(fd)
    kept = files.get("o4.m4s")
    assert kept is not None
    with kept.file() as f:  # a file of its own: its position is not the cache's
        assert f.read() == bytes(100) and f.fileno() != kept.fd
    files.clear()
    assert len(files) == 0
    for fd in fds[2:]:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_objects_expire_after_valid_s(tmp_path: Path):
    storage = LocalStorage(tmp_path)
    (tmp_path / "a.m3u8").write_bytes(b"#EXTM3U\n")
    files = OpenFiles(max_files=10, valid_s=0.05)
    obj = open_local_object(storage, "a.m3u8", read_below_bytes=1024)
    assert obj.data == b"#EXTM3U\n" and obj.fd is None
    files.put(obj)
    assert files.get("a.m3u8") is obj
    time.sleep(0.06)
    assert files.get("a.m3u8") is None and len(files) == 0


def test_media_are_trusted_longer_than_playlists(tmp_path: Path):
    storage = LocalStorage(tmp_path)
    (tmp_path / "a.m3u8").write_bytes(b"#EXTM3U\n")
    (tmp_path / "a.m4s").write_bytes(b"media")
    files = OpenFiles(max_files=10, valid_s=0.05, media_valid_s=60)
    for key in ("a.m3u8", "a.m4s"):
        files.put(open_local_object(storage, key, read_below_bytes=1024))
    time.sleep(0.06)
    assert files.get("a.m3u8") is None
    assert files.get("a.m4s") is not None
    with pytest.raises(NotFound):
        open_local_object(storage, "missing.m3u8", read_below_bytes=1024)


def test_a_descriptor_in_use_outlives_its_eviction(tmp_path: Path):
    storage = LocalStorage(tmp_path)
    for name in ("a.m4s", "b.m4s"):
        (tmp_path / name).write_bytes(name.encode() * 100)
    files = OpenFiles(max_files=1, valid_s=60)
    a = open_local_object(storage, "a.m4s", read_below_bytes=10)
    files.put(a)
    with a.in_use() as fd:
        files.put(open_local_object(storage, "b.m4s", read_below_bytes=10))  # evicts a while it is sent
        assert files.get("a.m4s") is None
        assert os.pread(fd, 5, 0) == b"a.m4s"  # still the same open file: no other file can take its number
    with pytest.raises(OSError):
        os.fstat(fd)


def test_cork_is_set_and_cleared_on_tcp_and_skipped_elsewhere():
    import socket

    from origin.server.sending import _cork
    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.create_connection(server.getsockname()) as client:
        assert _cork(client, True) and client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 1
        assert _cork(client, False) and client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0
    left, right = socket.socketpair()  # a Unix socket has no cork: nothing to do, no error
    with left, right:
        assert _cork(left, True) is False
    assert _cork(None, True) is False


def test_the_cache_keeps_within_a_quarter_of_the_descriptor_limit(monkeypatch):
    import resource
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 4096))
    assert OpenFiles(max_files=1000, valid_s=1).max_files == 256
    assert OpenFiles(max_files=100, valid_s=1).max_files == 100
