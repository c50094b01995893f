"""S3Storage when things go wrong (and multipart uploads), against real moto_server processes."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import pytest

from origin.storage import (
    NotFound,
    StorageConfigError,
    StorageUnavailable,
    open_storage,
    read_all,
)
from origin.storage.s3 import S3Settings, S3Storage
from tests.moto import MotoServer, free_port

MIB = 1024 * 1024


def _bucket(url: str) -> str:
    return urlsplit(url).netloc


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[S3Storage]:
    """An S3Storage that is closed afterwards, even when the test fails."""
    storage = S3Storage.from_url(url)
    try:
        yield storage
    finally:
        await storage.close()


async def test_missing_bucket_is_a_config_error(moto_server: MotoServer) -> None:
    async with opened(f"s3://no-such-bucket?endpoint={moto_server.endpoint}") as storage:
        with pytest.raises(StorageConfigError,
                           match=f"bucket 'no-such-bucket' does not exist at {moto_server.endpoint}"):
            await storage.check()
        with pytest.raises(StorageConfigError, match="does not exist"):
            await storage.write("t/a", b"x")


async def test_refused_credentials_are_a_config_error(aws_env: None) -> None:
    with MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as strict:
        async with opened(f"s3://some-bucket?endpoint={strict.endpoint}") as storage:
            with pytest.raises(StorageConfigError, match="denied"):
                await storage.check()
            with pytest.raises(StorageConfigError, match="credentials"):
                await storage.write("t/a", b"x")


async def test_no_credentials_at_all_is_a_config_error(
        s3_bucket_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    async with opened(s3_bucket_url) as storage:
        with pytest.raises(StorageConfigError, match="AWS_ACCESS_KEY_ID"):
            await storage.check()


async def _stat(s: S3Storage) -> object:
    return await s.stat("t/a")


async def _read(s: S3Storage) -> object:
    return await read_all(s, "t/a")


async def _write(s: S3Storage) -> object:
    return await s.write("t/a", b"x")


async def _list(s: S3Storage) -> object:
    return [i async for i in s.list("t/")]


async def _check(s: S3Storage) -> object:
    return await s.check()


OPS: list[Callable[[S3Storage], Awaitable[object]]] = [_check, _stat, _read, _write, _list]


async def test_nothing_listening_is_unavailable_quickly(aws_env: None) -> None:
    async with opened(f"s3://some-bucket?endpoint=http://127.0.0.1:{free_port()}") as storage:
        for op in OPS:
            began_s = time.monotonic()
            with pytest.raises(StorageUnavailable, match="unreachable"):
                await op(storage)
            assert time.monotonic() - began_s < 10, op.__name__


async def test_a_hung_endpoint_times_out_as_unavailable(aws_env: None) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        url = f"s3://some-bucket?endpoint=http://127.0.0.1:{port}&read_timeout=0.3"
        async with opened(url) as storage:
            began_s = time.monotonic()
            with pytest.raises(StorageUnavailable):
                await storage.stat("t/a")
            assert time.monotonic() - began_s < 8


async def test_s3_down_then_back_with_the_same_storage_object(aws_env: None) -> None:
    import boto3

    with MotoServer() as server:
        def create_bucket() -> None:
            boto3.client("s3", endpoint_url=server.endpoint,
                         region_name="us-east-1").create_bucket(Bucket="vod")

        create_bucket()
        async with opened(f"s3://vod?endpoint={server.endpoint}") as storage:
            await storage.write("t/a", b"before")
            assert await read_all(storage, "t/a") == b"before"
            port = server.port

            server.stop()
            for op in OPS:
                with pytest.raises(StorageUnavailable):
                    await op(storage)

            server.start()
            assert server.port == port
            create_bucket()  # moto forgets everything when it stops
            with pytest.raises(NotFound):
                await storage.stat("t/a")
            await storage.check()
            await storage.write("t/a", b"after")
            assert await read_all(storage, "t/a") == b"after"
            assert [i.key async for i in storage.list()] == ["t/a"]


async def test_abandoned_reads_give_their_connection_back(s3_bucket_url: str) -> None:
    async with opened(f"{s3_bucket_url}&max_connections=2") as storage:
        await storage.write("t/big.mp4", os.urandom(4 * MIB))
        async with asyncio.timeout(10):  # a leaked connection would make the 3rd read wait forever
            for _ in range(5):  # a player that goes away after the first bytes
                reader = storage.read("t/big.mp4", chunk_bytes=64 * 1024)
                assert 0 < len(await anext(reader)) <= 64 * 1024  # the network decides how much came
                await reader.aclose()
            assert (await storage.stat("t/big.mp4")).size_bytes == 4 * MIB


async def _stream(total_bytes: int, digest: Any, fail_at_bytes: int | None = None,
                  on_fail: Callable[[], None] | None = None) -> AsyncIterator[bytes]:
    block = os.urandom(MIB)
    sent = 0
    while sent < total_bytes:
        if fail_at_bytes is not None and sent >= fail_at_bytes:
            if on_fail:
                on_fail()
            raise RuntimeError("source broke")
        piece = block[:min(len(block) - 1, total_bytes - sent)]  # odd-sized on purpose
        digest.update(piece)
        sent += len(piece)
        yield piece


@pytest.mark.parametrize(("size_bytes", "parts"), [
    (8 * MIB, 0), (8 * MIB + 1, 2), (16 * MIB, 2), (20 * MIB, 3)])
async def test_multipart_upload_above_8_mib(s3_bucket_url: str, size_bytes: int,
                                            parts: int) -> None:
    async with opened(s3_bucket_url) as storage:
        sent = hashlib.md5()
        info = await storage.write("t/video/r1/big.mp4", _stream(size_bytes, sent))
        if parts:
            assert info.etag.endswith(f"-{parts}")
        else:
            assert info.etag == sent.hexdigest()  # a single PutObject: the ETag is the MD5
        got = hashlib.md5()
        async for chunk in storage.read("t/video/r1/big.mp4"):
            got.update(chunk)
        assert got.hexdigest() == sent.hexdigest() and info.size_bytes == size_bytes


async def test_multipart_from_bytes_and_from_a_path(s3_bucket_url: str, tmp_path: Path) -> None:
    async with opened(s3_bucket_url) as storage:
        data = os.urandom(9 * MIB)
        assert (await storage.write("t/from-bytes", data)).etag.endswith("-2")
        (tmp_path / "big.mp4").write_bytes(data)
        assert (await storage.write("t/from-path", tmp_path / "big.mp4")).etag.endswith("-2")
        assert await read_all(storage, "t/from-path") == data


async def test_a_failed_multipart_upload_is_aborted(s3_bucket_url: str, s3_client: Any) -> None:
    bucket = _bucket(s3_bucket_url)
    async with opened(s3_bucket_url) as storage:
        in_progress: list[int] = []

        def count_uploads() -> None:
            in_progress.append(len(s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])))

        with pytest.raises(RuntimeError, match="source broke"):
            await storage.write("t/big.mp4", _stream(30 * MIB, hashlib.md5(), 10 * MIB, count_uploads))
        assert in_progress == [1]  # the upload had really started when the source broke
        assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        with pytest.raises(NotFound):
            await storage.stat("t/big.mp4")


async def test_url_prefix_keeps_objects_apart(s3_bucket_url: str, s3_client: Any) -> None:
    bucket = _bucket(s3_bucket_url)
    url = s3_bucket_url.replace(f"s3://{bucket}?", f"s3://{bucket}/lib/v1?")
    async with opened(url) as storage:
        await storage.write("t/a.m4s", b"mine")
        s3_client.put_object(Bucket=bucket, Key="lib/v10/t/b.m4s", Body=b"sibling")
        s3_client.put_object(Bucket=bucket, Key="other/t/c.m4s", Body=b"other")
        s3_client.put_object(Bucket=bucket, Key="lib/v1/", Body=b"")  # a folder marker
        s3_client.put_object(Bucket=bucket, Key="lib/v1/t//odd", Body=b"unsafe key")
        assert s3_client.get_object(Bucket=bucket, Key="lib/v1/t/a.m4s")["Body"].read() == b"mine"
        assert [i.key async for i in storage.list()] == ["t/a.m4s"]


@pytest.mark.parametrize("url", [
    "s3://", "s3:///prefix", "s3://bucket?endpoint=ftp://x", "s3://bucket?timeout=3",
    "s3://bucket?read_timeout=0", "s3://bucket?connect_timeout=soon", "s3://bucket/a/../b",
    "s3://bucket?max_connections=-1", "s3://bucket?max_attempts=0",
])
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(StorageConfigError):
        open_storage(url)


def test_url_settings() -> None:
    s = S3Settings.from_url("s3://vod/lib/v1/?endpoint=http://127.0.0.1:9000&region=eu-west-1"
                            "&connect_timeout=1.5&read_timeout=20&max_attempts=4&max_connections=8")
    assert s == S3Settings(bucket="vod", prefix="lib/v1/", endpoint_url="http://127.0.0.1:9000",
                           region="eu-west-1", connect_timeout_s=1.5, read_timeout_s=20.0,
                           max_attempts=4, max_connections=8)
    assert S3Settings.from_url("s3://vod") == S3Settings(bucket="vod")


async def test_a_bucket_gone_at_runtime_is_unavailable_never_not_found(s3_bucket_url: str, s3_client: Any) -> None:
    """S3 answers a HEAD of any key in a missing bucket with a bare 404: stat must not take that for a
    missing object (a 404 the edges would believe), but for storage that cannot serve (503)."""
    async with opened(s3_bucket_url) as storage:
        await storage.write("t/a", b"x")
        with pytest.raises(NotFound):
            await storage.stat("t/missing")
        s3_client.delete_object(Bucket=_bucket(s3_bucket_url), Key="t/a")
        s3_client.delete_bucket(Bucket=_bucket(s3_bucket_url))
        for key in ("t/a", "t/missing"):
            with pytest.raises(StorageUnavailable) as caught:
                await storage.stat(key)
            assert caught.value.status_hint == 503
        with pytest.raises(StorageUnavailable):
            await read_all(storage, "t/a")
        s3_client.create_bucket(Bucket=_bucket(s3_bucket_url))
        with pytest.raises(NotFound):
            await storage.stat("t/a")
