"""The storage contract, run against every backend: memory, a local folder, S3 (moto over HTTP)."""
from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest

from origin.storage import (
    DEFAULT_CHUNK_BYTES,
    HiddenKey,
    InvalidKey,
    NotFound,
    ObjectInfo,
    Storage,
    open_storage,
    read_all,
)

MIB = 1024 * 1024


@pytest.fixture(params=["memory", "local", "s3"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "local":
        return str(tmp_path / "root")
    return str(request.getfixturevalue("s3_bucket_url"))


@pytest.fixture
async def storage(storage_url: str) -> AsyncIterator[Storage]:
    backend = open_storage(storage_url)
    assert isinstance(backend, Storage)
    await backend.check()
    yield backend
    await backend.close()


def same_object(a: ObjectInfo, b: ObjectInfo) -> bool:
    return (a.key, a.size_bytes, a.etag) == (b.key, b.size_bytes, b.etag)


async def test_write_stat_read_round_trip(storage: Storage) -> None:
    data = b"#EXTM3U\n#EXT-X-VERSION:7\n" * 10
    written = await storage.write("t1/video/r1/index.m3u8", data)
    info = await storage.stat("t1/video/r1/index.m3u8")
    assert same_object(written, info)
    assert info.size_bytes == len(data)
    assert info.etag and '"' not in info.etag
    assert abs(info.last_modified_s - time.time()) < 120
    assert await read_all(storage, "t1/video/r1/index.m3u8") == data
    assert same_object(await storage.stat("t1/video/r1/index.m3u8"), info)  # stable


async def test_empty_object(storage: Storage) -> None:
    info = await storage.write("t/subs/en/empty.vtt", b"")
    assert info.size_bytes == 0 == (await storage.stat("t/subs/en/empty.vtt")).size_bytes
    assert [c async for c in storage.read("t/subs/en/empty.vtt")] == []
    assert [c async for c in storage.read("t/subs/en/empty.vtt", 0, 10)] == []
    assert [i.key async for i in storage.list("t/")] == ["t/subs/en/empty.vtt"]


SIZE = 10_000
RANGES = [
    (0, None), (0, SIZE), (0, SIZE - 1), (1, SIZE), (SIZE - 1, None), (SIZE - 1, SIZE),
    (0, 1), (5, 5), (0, 0), (SIZE, SIZE), (4_000, SIZE + 500), (SIZE, None), (SIZE + 10, None),
    (123, 4567),
]


@pytest.mark.parametrize(("start", "end"), RANGES)
async def test_ranges_at_the_edges(storage: Storage, start: int, end: int | None) -> None:
    data = bytes(random.Random(7).randbytes(SIZE))
    await storage.write("t/seg.m4s", data)
    chunks = [c async for c in storage.read("t/seg.m4s", start, end, chunk_bytes=1000)]
    assert b"".join(chunks) == data[start:end]
    assert all(0 < len(c) <= 1000 for c in chunks)


async def _odd_sized_chunks(total_bytes: int, digest: "hashlib._Hash") -> AsyncIterator[bytes]:
    rng = random.Random(42)
    block = rng.randbytes(MIB + 17)
    sent = 0
    while sent < total_bytes:
        n = min(rng.randrange(1, 300_000), total_bytes - sent)
        offset = sent % len(block)
        piece = (block[offset:] + block)[:n]
        piece = bytes([sent & 0xFF]) + piece[1:]  # no two MiB of the object are alike
        digest.update(piece)
        sent += n
        yield piece


async def test_large_object_streams_in_and_out(storage: Storage) -> None:
    size = 20 * MIB + 12345
    sent = hashlib.sha256()
    info = await storage.write("t/video/r9/big.mp4", _odd_sized_chunks(size, sent))
    assert info.size_bytes == size
    got = hashlib.sha256()
    n_chunks = biggest = 0
    async for chunk in storage.read("t/video/r9/big.mp4"):
        got.update(chunk)
        n_chunks += 1
        biggest = max(biggest, len(chunk))
    assert got.hexdigest() == sent.hexdigest()
    assert biggest <= DEFAULT_CHUNK_BYTES
    assert n_chunks >= size // DEFAULT_CHUNK_BYTES


async def test_write_from_a_path(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "local-segment.m4s"
    data = os.urandom(300_001)
    source.write_bytes(data)
    info = await storage.write("t/video/r1/00001.m4s", source)
    assert info.size_bytes == len(data)
    assert await read_all(storage, "t/video/r1/00001.m4s") == data


async def test_overwrite_replaces_the_object(storage: Storage) -> None:
    first = await storage.write("t/title.json", b'{"v": 1}')
    second = await storage.write("t/title.json", b'{"v": 2, "renditions": []}')
    assert (first.etag, first.size_bytes) != (second.etag, second.size_bytes)
    assert same_object(await storage.stat("t/title.json"), second)
    assert await read_all(storage, "t/title.json") == b'{"v": 2, "renditions": []}'
    assert [i.key async for i in storage.list("t/")] == ["t/title.json"]


async def test_list_by_prefix_in_key_order(storage: Storage) -> None:
    keys = ["a/b/2", "a/b/1", "a/bc/1", "a/b.txt", "a/b-x", "a/c", "b", "a/b/sub/3", "ab"]
    for i, key in enumerate(random.Random(3).sample(keys, len(keys))):
        await storage.write(key, b"x" * (i + 1))

    async def listed(prefix: str) -> list[str]:
        return [info.key async for info in storage.list(prefix)]

    assert await listed("") == sorted(keys)
    assert await listed("a/b/") == ["a/b/1", "a/b/2", "a/b/sub/3"]
    assert await listed("a/b") == ["a/b-x", "a/b.txt", "a/b/1", "a/b/2", "a/b/sub/3", "a/bc/1"]
    assert await listed("a/bc/") == ["a/bc/1"]
    assert await listed("a") == sorted(k for k in keys if k.startswith("a"))
    assert await listed("zzz/") == []
    async for info in storage.list("a/"):
        assert same_object(info, await storage.stat(info.key))


async def test_delete_is_idempotent(storage: Storage) -> None:
    await storage.write("t/video/r1/00001.m4s", b"segment")
    await storage.write("t/video/r1/00002.m4s", b"segment 2")
    await storage.delete("t/video/r1/00001.m4s")
    with pytest.raises(NotFound):
        await storage.stat("t/video/r1/00001.m4s")
    await storage.delete("t/video/r1/00001.m4s")
    await storage.delete("never/there")
    assert [i.key async for i in storage.list()] == ["t/video/r1/00002.m4s"]
    assert await read_all(storage, "t/video/r1/00002.m4s") == b"segment 2"


@pytest.mark.parametrize(("start", "end"), [(0, None), (3, 10), (4, 4)])
async def test_missing_object_is_not_found(storage: Storage, start: int, end: int | None) -> None:
    await storage.write("t/other", b"x")
    with pytest.raises(NotFound):
        await storage.stat("t/missing")
    with pytest.raises(NotFound):
        async for _ in storage.read("t/missing", start, end):
            pass


BAD_KEYS = ["../x", "/abs", "a/../b", "a//b", "a\0b", "a\\b", "", "a/./b", "a/", ".."]


async def _stat(s: Storage, key: str) -> object:
    return await s.stat(key)


async def _read(s: Storage, key: str) -> object:
    return [c async for c in s.read(key)]


async def _write(s: Storage, key: str) -> object:
    return await s.write(key, b"evil")


async def _delete(s: Storage, key: str) -> object:
    return await s.delete(key)


async def _list(s: Storage, key: str) -> object:
    return [i async for i in s.list(key)]


OPS: dict[str, Callable[[Storage, str], Awaitable[object]]] = {
    "stat": _stat, "read": _read, "write": _write, "delete": _delete, "list": _list}


VALID_PREFIXES = {"", "a/"}  # bad keys, but fine listing prefixes


async def test_bad_keys_are_refused_by_every_operation(storage: Storage) -> None:
    await storage.write("x", b"inside")
    for op, run in OPS.items():
        for key in BAD_KEYS:
            if op == "list" and key in VALID_PREFIXES:
                continue
            with pytest.raises(InvalidKey):
                await run(storage, key)
                pytest.fail(f"{op}({key!r}) was accepted")
    assert [i.key async for i in storage.list()] == ["x"]


HIDDEN_KEYS = [".x", "t1/.00001.m4s.tmp-0123456789ab", ".vodstack-tmp/abc.1.host.tmp", "t1/.v/x", "a/.b/c"]


async def test_keys_with_a_part_starting_with_a_dot_are_hidden_for_every_operation(storage: Storage) -> None:
    """Temporary files live under such names: no backend stores, serves or lists an object there
    (HiddenKey: an InvalidKey that servers answer 404)."""
    for op, run in OPS.items():
        for key in HIDDEN_KEYS:
            with pytest.raises(HiddenKey) as info:
                await run(storage, key)
                pytest.fail(f"{op}({key!r}) was accepted")
            assert isinstance(info.value, InvalidKey) and info.value.status_hint == 404
    await storage.write("t1/a.b/c.", b"ok")  # a dot inside or at the end of a part is fine
    assert [i.key async for i in storage.list()] == ["t1/a.b/c."]
