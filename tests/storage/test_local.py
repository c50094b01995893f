"""LocalStorage beyond the contract: atomic writes, the root folder, staying inside the root."""
from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from origin.storage import (
    InvalidKey,
    NotFound,
    StorageConfigError,
    StorageUnavailable,
    open_storage,
    read_all,
)
from origin.storage.local import TEMP_FOLDER, LocalStorage
from origin.storage.memory import MemoryStorage


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def storage(root: Path) -> LocalStorage:
    return LocalStorage(root)


async def _slow_stream(n_chunks: int, chunk: bytes, delay_s: float,
                       fail_after: int | None = None) -> AsyncIterator[bytes]:
    for i in range(n_chunks):
        if fail_after is not None and i == fail_after:
            raise RuntimeError("source broke")
        await asyncio.sleep(delay_s)
        yield chunk


def _temp_files(root: Path) -> list[str]:
    folder = root / TEMP_FOLDER
    return os.listdir(folder) if folder.exists() else []


def _dot_files(root: Path) -> list[str]:
    """Names starting with '.' anywhere under the root except the temp folder itself."""
    return [os.path.join(d, n) for d, dirs, names in os.walk(root) for n in (*dirs, *names)
            if n.startswith(".") and n != TEMP_FOLDER]


async def test_readers_never_see_a_partial_write(storage: LocalStorage, root: Path) -> None:
    old = b"a" * 3_000_000
    new_chunk = b"b" * 1_500_000  # > the write buffer, so data reaches the temp file early
    await storage.write("t/video/r1/00001.m4s", old)
    writer = asyncio.create_task(
        storage.write("t/video/r1/00001.m4s", _slow_stream(6, new_chunk, 0.03)))
    seen_temp = False
    while not writer.done():
        data = await read_all(storage, "t/video/r1/00001.m4s")
        assert data in (old, new_chunk * 6)
        assert [i.key async for i in storage.list("t/")] == ["t/video/r1/00001.m4s"]
        seen_temp = seen_temp or bool(_temp_files(root))
        assert _dot_files(root) == [], "a temp file where the origin serves objects"
        await asyncio.sleep(0.005)
    await writer
    assert seen_temp, "the write never went through a temp file"
    assert await read_all(storage, "t/video/r1/00001.m4s") == new_chunk * 6
    assert _temp_files(root) == []


async def test_a_failed_write_keeps_the_old_object_and_no_temp_file(
        storage: LocalStorage, root: Path) -> None:
    await storage.write("t/title.json", b"old")
    with pytest.raises(RuntimeError, match="source broke"):
        await storage.write("t/title.json", _slow_stream(5, b"x" * 2_000_000, 0, fail_after=3))
    assert await read_all(storage, "t/title.json") == b"old"
    assert os.listdir(root / "t") == ["title.json"]
    assert _temp_files(root) == []


async def test_stale_temp_files_are_not_listed(storage: LocalStorage, root: Path) -> None:
    await storage.write("t/a.m4s", b"1")
    (root / "t" / ".b.m4s.tmp-0123456789ab").write_bytes(b"partial")
    assert [i.key async for i in storage.list()] == ["t/a.m4s"]


def test_a_root_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(StorageConfigError, match="not a folder"):
        LocalStorage(not_a_folder)
    with pytest.raises(StorageConfigError):
        open_storage(f"file://{not_a_folder / 'below'}")


def test_a_read_only_root_is_a_config_error(tmp_path: Path) -> None:
    """A root the server cannot write to: mode 0555, and for root (as in CI) an immutable folder."""
    import subprocess

    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    immutable = os.geteuid() == 0
    if immutable:  # root ignores modes, not the immutable attribute
        subprocess.run(["chattr", "+i", str(ro)], check=True, capture_output=True)
    try:
        with pytest.raises(StorageConfigError, match="not writable"):
            LocalStorage(ro)
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(ro)], check=True, capture_output=True)


def test_urls_and_a_missing_root(tmp_path: Path) -> None:
    created = LocalStorage.from_url(f"file://{tmp_path}/new/root")
    assert created.root == (tmp_path / "new/root").resolve() and created.root.is_dir()
    assert open_storage(str(tmp_path)).root == tmp_path.resolve()  # type: ignore[attr-defined]
    with pytest.raises(StorageConfigError):
        LocalStorage.from_url("file://somehost/srv/titles")


async def test_check_notices_a_vanished_root(storage: LocalStorage, root: Path) -> None:
    await storage.check()
    root.rmdir()
    with pytest.raises(StorageUnavailable):
        await storage.check()


async def test_dot_dot_never_reaches_a_file_outside(storage: LocalStorage, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_bytes(b"secret")
    with pytest.raises(InvalidKey):
        await read_all(storage, "../secret.txt")
    with pytest.raises(InvalidKey):
        await storage.write("../secret.txt", b"overwritten")
    with pytest.raises(InvalidKey):
        await storage.delete("../secret.txt")
    with pytest.raises(InvalidKey):
        storage.path_for("../secret.txt")
    assert (tmp_path / "secret.txt").read_bytes() == b"secret"
    assert sorted(os.listdir(tmp_path)) == ["root", "secret.txt"]


async def test_symlinks_that_escape_the_root_are_invalid_keys(
        storage: LocalStorage, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.m4s").write_bytes(b"secret")
    (root / "t").mkdir()
    (root / "t" / "dirlink").symlink_to(outside)
    (root / "t" / "filelink.m4s").symlink_to(outside / "secret.m4s")
    for key in ("t/dirlink/secret.m4s", "t/filelink.m4s"):
        with pytest.raises(InvalidKey):
            storage.path_for(key)
        with pytest.raises(InvalidKey):
            await storage.stat(key)
        with pytest.raises(InvalidKey):
            await read_all(storage, key)
        with pytest.raises(InvalidKey):
            await storage.delete(key)
    with pytest.raises(InvalidKey):
        await storage.write("t/dirlink/new.m4s", b"evil")
    assert sorted(os.listdir(outside)) == ["secret.m4s"]
    assert [i.key async for i in storage.list()] == []


async def test_symlinks_inside_the_root_are_followed(storage: LocalStorage, root: Path) -> None:
    await storage.write("t/video/r1/00001.m4s", b"seg")
    (root / "t" / "alias.m4s").symlink_to(root / "t/video/r1/00001.m4s")
    path = storage.path_for("t/alias.m4s")
    assert path == root.resolve() / "t/video/r1/00001.m4s"
    assert await read_all(storage, "t/alias.m4s") == b"seg"
    assert [i.key async for i in storage.list("t/")] == ["t/alias.m4s", "t/video/r1/00001.m4s"]


async def test_path_for_gives_the_file_to_sendfile(storage: LocalStorage, root: Path) -> None:
    await storage.write("t/video/r1/init.mp4", b"init")
    path = storage.path_for("t/video/r1/init.mp4")
    assert path.is_absolute() and path.read_bytes() == b"init"
    assert storage.path_for("t/not/yet.m4s") == root.resolve() / "t/not/yet.m4s"


async def test_delete_removes_emptied_folders_but_never_the_root(
        storage: LocalStorage, root: Path) -> None:
    await storage.write("t/video/r1/00001.m4s", b"1")
    await storage.write("t/audio/en/00001.m4s", b"2")
    await storage.delete("t/video/r1/00001.m4s")
    assert os.listdir(root / "t") == ["audio"]
    await storage.delete("t/audio/en/00001.m4s")
    assert root.is_dir() and os.listdir(root) == [TEMP_FOLDER]  # the temp folder (empty) stays
    assert _temp_files(root) == []
    await storage.write("t/again.m4s", b"3")  # the emptied path can be written again
    assert await read_all(storage, "t/again.m4s") == b"3"


async def test_keys_that_collide_with_folders(storage: LocalStorage, root: Path) -> None:
    await storage.write("t/video/r1/00001.m4s", b"1")
    with pytest.raises(InvalidKey):
        await storage.write("t/video", b"a file where a folder is")
    with pytest.raises(InvalidKey):
        await storage.write("t/video/r1/00001.m4s/x", b"a folder where a file is")
    with pytest.raises(NotFound):
        await storage.stat("t/video")
    with pytest.raises(NotFound):
        await read_all(storage, "t/video")
    await storage.delete("t/video")  # a folder is no object: nothing happens
    assert await read_all(storage, "t/video/r1/00001.m4s") == b"1"


async def test_etag_follows_the_file(storage: LocalStorage, root: Path) -> None:
    info = await storage.write("t/seg.m4s", b"12345")
    st = (root / "t/seg.m4s").stat()
    assert info.etag == f"{st.st_mtime_ns:x}-{st.st_size:x}"
    os.utime(root / "t/seg.m4s", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert (await storage.stat("t/seg.m4s")).etag != info.etag


_part = st.text(alphabet="a.-", min_size=1, max_size=2).filter(
    lambda p: not p.startswith("."))
_keys = st.lists(st.lists(_part, min_size=1, max_size=3).map("/".join),
                 min_size=1, max_size=8, unique=True).filter(
    lambda keys: not any(b.startswith(a + "/") for a in keys for b in keys))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=_keys, prefix=st.sampled_from(["", "a", "a/", "a.", "a-", "-"]))
def test_list_matches_sorted_keys_like_memory(keys: list[str], prefix: str) -> None:
    """Folder walks come out in plain key order, exactly as the in-memory backend lists."""
    async def both() -> tuple[list[str], list[str]]:
        with tempfile.TemporaryDirectory() as tmp:
            local, memory = LocalStorage(tmp), MemoryStorage()
            for key in keys:
                await local.write(key, key.encode())
                await memory.write(key, key.encode())
            return ([i.key async for i in local.list(prefix)],
                    [i.key async for i in memory.list(prefix)])

    local_keys, memory_keys = asyncio.run(both())
    assert local_keys == memory_keys == sorted(k for k in keys if k.startswith(prefix))


# ---------------------------------------------------------------- open_fd (the origin's sendfile)
def _read_fd(fd: int) -> bytes:
    try:
        return os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)


async def test_open_fd_opens_files_inside_the_root(storage: LocalStorage, root: Path) -> None:
    await storage.write("t/video/r1/00001.m4s", b"seg")
    (root / "t" / "alias.m4s").symlink_to(root / "t/video/r1/00001.m4s")
    assert _read_fd(storage.open_fd("t/video/r1/00001.m4s")) == b"seg"
    assert _read_fd(storage.open_fd("t/alias.m4s")) == b"seg"


async def test_open_fd_refuses_what_path_for_refuses(storage: LocalStorage, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.m4s").write_bytes(b"secret")
    (tmp_path / "rootsecret.m4s").write_bytes(b"secret")  # shares the root's name as a prefix
    (root / "t").mkdir()
    (root / "t" / "dirlink").symlink_to(outside)
    (root / "t" / "filelink.m4s").symlink_to(outside / "secret.m4s")
    (root / "t" / "prefixlink.m4s").symlink_to(tmp_path / "rootsecret.m4s")
    (root / "t" / "loop.m4s").symlink_to(root / "t" / "loop.m4s")
    (root / "t" / "folder").mkdir()
    for key in ("t/dirlink/secret.m4s", "t/filelink.m4s", "t/prefixlink.m4s", "../secret.m4s", "/etc/passwd"):
        with pytest.raises(InvalidKey):
            storage.open_fd(key)
    for key in ("t/missing.m4s", "t/folder", "t/loop.m4s"):
        with pytest.raises(NotFound):
            storage.open_fd(key)


async def test_open_fd_does_not_hang_on_a_fifo(storage: LocalStorage, root: Path) -> None:
    (root / "t").mkdir()
    os.mkfifo(root / "t" / "pipe.m4s")  # nobody writes: a blocking open would never return
    with pytest.raises(NotFound):
        await asyncio.wait_for(asyncio.to_thread(storage.open_fd, "t/pipe.m4s"), 5)


async def test_a_vanished_root_is_unavailable_never_not_found(storage: LocalStorage, root: Path,
                                                               tmp_path: Path) -> None:
    """A root moved away (an outage) makes every read path StorageUnavailable (503 at the origin),
    so that no cache takes it for a deletion (404); a missing key under a present root stays NotFound."""
    await storage.write("t/index.m3u8", b"#EXTM3U\n")
    with pytest.raises(NotFound):
        await storage.stat("t/missing.m3u8")
    root.rename(tmp_path / "moved")
    for call in (lambda: storage.stat("t/index.m3u8"), lambda: read_all(storage, "t/index.m3u8"),
                 lambda: asyncio.to_thread(storage.open_fd, "t/index.m3u8"),
                 lambda: storage.stat("t/missing.m3u8")):
        with pytest.raises(StorageUnavailable) as caught:
            await call()
        assert caught.value.status_hint == 503
    with pytest.raises(StorageUnavailable):
        [i async for i in storage.list("t/")]
    (tmp_path / "moved").rename(root)
    assert await read_all(storage, "t/index.m3u8") == b"#EXTM3U\n"
    with pytest.raises(NotFound):
        await storage.stat("t/missing.m3u8")


async def test_temp_leftovers_in_the_temp_folder_and_beside_keys(storage: LocalStorage, root: Path) -> None:
    await storage.write("t1/a.m4s", b"1")
    await storage.write("t2/b.m4s", b"2")
    (root / TEMP_FOLDER / f"0123456789ab.{os.getpid()}.somehost.tmp").write_bytes(b"part")
    (root / TEMP_FOLDER / "not-a-temp-name").write_bytes(b"?")  # never touched
    (root / "t1" / ".a.m4s.tmp-0123456789ab").write_bytes(b"old style")
    (root / "t2" / ".b.m4s.tmp-0123456789ab").write_bytes(b"old style")
    every = await storage.temp_leftovers()
    assert [(t.path, t.writer_pid, t.writer_host) for t in every] == [
        (f"{TEMP_FOLDER}/0123456789ab.{os.getpid()}.somehost.tmp", os.getpid(), "somehost"),
        ("t1/.a.m4s.tmp-0123456789ab", None, None), ("t2/.b.m4s.tmp-0123456789ab", None, None)]
    assert [t.path for t in await storage.temp_leftovers(["t1/"])] == [every[0].path, every[1].path]
    for t in every:
        await storage.remove_temp(t)
    assert await storage.temp_leftovers() == []
    assert sorted(os.listdir(root / TEMP_FOLDER)) == ["not-a-temp-name"]
    assert [i.key async for i in storage.list()] == ["t1/a.m4s", "t2/b.m4s"]
