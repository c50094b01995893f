"""S3-compatible storage (AWS S3, MinIO, Ceph, moto) through one long-lived aiobotocore client.

    s3://bucket/optional/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1
        &connect_timeout=3&read_timeout=15&max_attempts=2&max_connections=50

Decisions written down here:

* Credentials come from botocore's usual chain (``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY`` first). None at all is a StorageConfigError at the first call.
* Path-style addressing, SigV4, short timeouts, 2 attempts in all (botocore's ``standard``
  retry mode, so one retry after a jittered pause of up to ~1 s: a dead endpoint fails in
  about a second, not ten), and checksums only "when required" -- the widest
  compatibility with S3 clones.
* The client is created lazily on the first call and lives until ``close()``; it belongs
  to the event loop that created it. When S3 goes away calls raise StorageUnavailable;
  when it comes back the same object works again (aiohttp opens fresh connections).
* ``read`` asks for ``Range: bytes=start-(end-1)`` and streams the body in chunks of at
  most ``chunk_bytes``; a start at or past the end (S3's 416) yields nothing.
* ``write`` buffers at most one part: up to 8 MiB it is one PutObject, above that a
  multipart upload of 8 MiB parts, aborted if anything fails.
* Every botocore/aiohttp exception is translated in ``_map_errors``; nothing else leaks.
* A missing object is told from a missing bucket: S3 answers a HEAD of any key in a missing
  bucket with a bare 404, so a stat's 404 is checked with one HEAD of the bucket, and a bucket
  gone while serving (stat, read) is StorageUnavailable (the origin's 503 + ``Retry-After``),
  never NotFound (a 404 that caches would believe).
* The ETag is S3's without quotes (``"{md5}-{parts}"`` for multipart uploads).
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, AsyncIterable, AsyncIterator, Iterator
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aiobotocore.session import AioSession, get_session
from botocore.config import Config
from botocore.loaders import Loader, create_loader
from botocore.exceptions import (
    ClientError,
    ConnectionError as BotoConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from .base import DEFAULT_CHUNK_BYTES, ObjectInfo, WriteSource
from .errors import InvalidKey, NotFound, StorageConfigError, StorageError, StorageUnavailable
from httpsem.keys import validate_key, validate_prefix

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"})
_TRANSIENT_CODES = frozenset({"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError",
                              "RequestTimeTooSkewed", "Throttling"})
_QUERY_KEYS = frozenset({"endpoint", "region", "connect_timeout", "read_timeout", "max_attempts",
                         "max_connections"})


@dataclass(frozen=True, kw_only=True)
class S3Settings:
    """Where the objects live and how hard to try; parsed from an ``s3://`` URL."""

    bucket: str
    prefix: str = ""  # "" or "some/prefix/": prepended to every key
    endpoint_url: str | None = None  # None: AWS S3 itself
    region: str | None = None  # None: botocore's default chain
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 15.0
    max_attempts: int = 2  # in all, the first try included
    max_connections: int = 50
    part_bytes: int = 8 * MIB  # also the threshold above which uploads are multipart

    @classmethod
    def from_url(cls, url: str) -> "S3Settings":
        parts = urlsplit(url)
        if parts.scheme != "s3":
            raise StorageConfigError(f"not an s3:// URL: {url!r}")
        bucket = parts.netloc
        if not bucket or "@" in bucket or ":" in bucket:
            raise StorageConfigError(f"s3 URL needs a bucket name (s3://bucket/prefix): {url!r}")
        prefix = parts.path.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except InvalidKey as err:
                raise StorageConfigError(f"bad prefix in s3 URL {url!r}: {err}") from None
            prefix += "/"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = set(query) - _QUERY_KEYS
        if unknown:
            raise StorageConfigError(f"unknown s3 URL parameter {sorted(unknown)[0]!r} in {url!r}"
                                     f" (known: {', '.join(sorted(_QUERY_KEYS))})")
        endpoint = query.get("endpoint") or None
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise StorageConfigError(f"s3 endpoint must be an http(s) URL: {endpoint!r}")
        return cls(bucket=bucket, prefix=prefix, endpoint_url=endpoint,
                   region=query.get("region") or None,
                   connect_timeout_s=_positive(query, "connect_timeout", cls.connect_timeout_s),
                   read_timeout_s=_positive(query, "read_timeout", cls.read_timeout_s),
                   max_attempts=int(_positive(query, "max_attempts", cls.max_attempts)),
                   max_connections=int(_positive(query, "max_connections", cls.max_connections)))

    @property
    def where(self) -> str:
        """The endpoint for messages: the URL, or AWS S3 and its region."""
        return self.endpoint_url or f"AWS S3 ({self.region or 'default region'})"


def _positive(query: dict[str, str], name: str, default: float) -> float:
    if name not in query:
        return default
    try:
        value = float(query[name])
    except ValueError:
        value = -1.0
    if value <= 0:
        raise StorageConfigError(f"s3 URL parameter {name} must be a positive number: "
                                 f"{query[name]!r}")
    return value


class S3Storage:
    """Objects under ``prefix`` in one bucket of an S3-compatible service."""

    def __init__(self, settings: S3Settings, url: str | None = None) -> None:
        self.settings = settings
        self.url = url or f"s3://{settings.bucket}/{settings.prefix}"
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> "S3Storage":
        return cls(S3Settings.from_url(url), url)

    # -- the Storage contract -------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        client = await self._get_client()
        try:
            with self._map_errors(key, serving=True):
                head = await client.head_object(Bucket=self.settings.bucket, Key=self._s3_key(key))
        except NotFound:
            await self._bucket_still_there()
            raise
        return ObjectInfo(key=key, size_bytes=int(head["ContentLength"]),
                          etag=head["ETag"].strip('"'),
                          last_modified_s=head["LastModified"].timestamp())

    async def read(self, key: str, start: int = 0, end: int | None = None,
                   chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        validate_key(key)
        if start < 0 or chunk_bytes <= 0:
            raise ValueError(f"bad range start={start} chunk_bytes={chunk_bytes}")
        if end is not None and end <= start:
            await self.stat(key)  # an empty range of a missing object is still NotFound
            return
        params = {"Bucket": self.settings.bucket, "Key": self._s3_key(key)}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        client = await self._get_client()
        with self._map_errors(key, serving=True):
            try:
                response = await client.get_object(**params)
            except ClientError as err:
                if _error_code(err) == "InvalidRange":
                    return  # start at or past the end: nothing to send
                raise
            async with response["Body"] as body:
                async with contextlib.aclosing(body.iter_chunks(chunk_bytes)) as chunks:
                    async for chunk in chunks:
                        yield chunk

    async def write(self, key: str, source: WriteSource) -> ObjectInfo:
        validate_key(key)
        if isinstance(source, (bytes, bytearray, memoryview)):
            chunks: AsyncIterable[bytes] = _slices(bytes(source), self.settings.part_bytes)
        elif isinstance(source, (str, os.PathLike)):
            chunks = _file_chunks(os.fspath(source), self.settings.part_bytes)
        else:
            chunks = source
        await self._upload(key, chunks)
        return await self.stat(key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        client = await self._get_client()
        paginator = client.get_paginator("list_objects_v2")
        strip = len(self.settings.prefix)
        with self._map_errors(prefix):
            async for page in paginator.paginate(Bucket=self.settings.bucket,
                                                 Prefix=self.settings.prefix + prefix):
                for obj in page.get("Contents", ()):
                    key = obj["Key"][strip:]
                    try:
                        validate_key(key)
                    except InvalidKey:
                        log.debug("skipping S3 object with an unsafe key key=%r", obj["Key"])
                        continue
                    yield ObjectInfo(key=key, size_bytes=int(obj["Size"]),
                                     etag=obj["ETag"].strip('"'),
                                     last_modified_s=obj["LastModified"].timestamp())

    async def delete(self, key: str) -> None:
        validate_key(key)
        client = await self._get_client()
        with self._map_errors(key):
            await client.delete_object(Bucket=self.settings.bucket, Key=self._s3_key(key))

    async def check(self) -> None:
        client = await self._get_client()
        with self._map_errors(""):
            try:
                await client.head_bucket(Bucket=self.settings.bucket)
            except ClientError as err:
                if _error_code(err) in ("404", "NoSuchBucket"):
                    raise StorageConfigError(f"bucket {self.settings.bucket!r} does not exist "
                                             f"at {self.settings.where}") from None
                raise

    async def close(self) -> None:
        async with self._client_lock:
            stack, self._stack, self._client = self._stack, None, None
            if stack is not None:
                await stack.aclose()

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r})"

    # -- internals ------------------------------------------------------------------------

    def _s3_key(self, key: str) -> str:
        return self.settings.prefix + key

    async def _get_client(self) -> Any:
        """The one client, created on first use (its connection pool lives until close())."""
        if self._client is not None:
            return self._client
        async with self._client_lock:
            if self._client is None:
                s = self.settings
                config = Config(
                    signature_version="s3v4", s3={"addressing_style": "path"},
                    connect_timeout=s.connect_timeout_s, read_timeout=s.read_timeout_s,
                    retries={"total_max_attempts": s.max_attempts, "mode": "standard"},
                    max_pool_connections=s.max_connections,
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
                stack = AsyncExitStack()
                with self._map_errors(""):
                    self._client = await stack.enter_async_context(_new_session().create_client(
                        "s3", endpoint_url=s.endpoint_url, region_name=s.region, config=config))
                self._stack = stack
                log.debug("s3 client ready bucket=%s endpoint=%s", s.bucket, s.where)
        return self._client

    async def _upload(self, key: str, chunks: AsyncIterable[bytes]) -> None:
        """One PutObject up to ``part_bytes``; above it, a multipart upload aborted on failure."""
        client = await self._get_client()
        bucket, s3_key, part_bytes = self.settings.bucket, self._s3_key(key), self.settings.part_bytes
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                buffer += chunk
                while len(buffer) > part_bytes:  # strictly more: the last part is never empty
                    if upload_id is None:
                        with self._map_errors(key):
                            created = await client.create_multipart_upload(Bucket=bucket,
                                                                           Key=s3_key)
                        upload_id = created["UploadId"]
                    part, buffer = bytes(buffer[:part_bytes]), buffer[part_bytes:]
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                with self._map_errors(key):
                    await client.put_object(Bucket=bucket, Key=s3_key, Body=bytes(buffer))
                return
            parts.append(await self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            with self._map_errors(key):
                await client.complete_multipart_upload(
                    Bucket=bucket, Key=s3_key, UploadId=upload_id,
                    MultipartUpload={"Parts": parts})
            log.debug("multipart upload done key=%s parts=%d", key, len(parts))
        except BaseException:
            if upload_id is not None:
                await self._abort_upload(key, upload_id)
            raise

    async def _upload_part(self, key: str, upload_id: str, number: int,
                           data: bytes) -> dict[str, Any]:
        client = await self._get_client()
        with self._map_errors(key):
            done = await client.upload_part(Bucket=self.settings.bucket, Key=self._s3_key(key),
                                            UploadId=upload_id, PartNumber=number, Body=data)
        return {"PartNumber": number, "ETag": done["ETag"]}

    async def _abort_upload(self, key: str, upload_id: str) -> None:
        try:
            await self._client.abort_multipart_upload(
                Bucket=self.settings.bucket, Key=self._s3_key(key), UploadId=upload_id)
        except Exception as err:  # best effort: a bucket lifecycle rule reaps what is left
            log.warning("could not abort multipart upload key=%s upload_id=%s error=%s",
                        key, upload_id, err)

    async def _bucket_still_there(self) -> None:
        """After a HEAD's bare 404: StorageUnavailable if the bucket itself is gone (S3 answers a HEAD of
        any key in a missing bucket with the same 404 as a missing key)."""
        client = await self._get_client()
        with self._map_errors(""):
            try:
                await client.head_bucket(Bucket=self.settings.bucket)
            except ClientError as err:
                if _error_code(err) in ("404", "NoSuchBucket"):
                    raise StorageUnavailable(f"bucket {self.settings.bucket!r} does not exist (any more) "
                                             f"at {self.settings.where}") from None
                raise

    @contextlib.contextmanager
    def _map_errors(self, key: str, serving: bool = False) -> Iterator[None]:
        """Translate botocore/aiohttp exceptions into the storage hierarchy. ``serving`` (stat, read): a
        missing bucket is an outage (StorageUnavailable, 503), not a configuration error."""
        s = self.settings
        try:
            yield
        except ClientError as err:
            if serving and _error_code(err) == "NoSuchBucket":
                raise StorageUnavailable(f"bucket {s.bucket!r} does not exist (any more) at {s.where}") from err
            raise self._client_error(err, key) from err
        except (NoCredentialsError, PartialCredentialsError) as err:
            raise StorageConfigError(f"no usable AWS credentials for bucket {s.bucket!r} ({err}); "
                                     "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from err
        except (BotoConnectionError, HTTPClientError, aiohttp.ClientError,
                asyncio.TimeoutError, ConnectionError) as err:
            raise StorageUnavailable(f"S3 at {s.where} unreachable: {err}") from err

    def _client_error(self, err: ClientError, key: str) -> StorageError:
        s = self.settings
        code = _error_code(err)
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _NOT_FOUND_CODES:
            return NotFound(key)
        if code == "NoSuchBucket":
            return StorageConfigError(f"bucket {s.bucket!r} does not exist at {s.where}")
        if code in _DENIED_CODES or status in (401, 403):
            return StorageConfigError(f"access to bucket {s.bucket!r} at {s.where} denied "
                                      f"({code}): check the AWS credentials")
        if status >= 500 or status == 429 or code in _TRANSIENT_CODES:
            return StorageUnavailable(f"S3 at {s.where} failed: {code} (HTTP {status})")
        return StorageError(f"S3 at {s.where} refused {key!r}: {code} (HTTP {status})")


@functools.cache
def _models_loader() -> Loader:
    """One loader of botocore's JSON models per process (a memo of static files, not state: the
    models never change), which otherwise costs ~0.1 s of parsing per client."""
    return create_loader()


def _new_session() -> AioSession:
    """A fresh session (fresh credentials) sharing :func:`_models_loader`."""
    session = get_session()
    session.register_component("data_loader", _models_loader())
    return session


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


async def _slices(data: bytes, size: int) -> AsyncIterator[bytes]:
    for pos in range(0, len(data), size):
        yield data[pos:pos + size]
    if not data:
        yield b""


async def _file_chunks(path: str, size: int) -> AsyncIterator[bytes]:
    """A local file read in a worker thread, one part-sized chunk at a time."""
    try:
        f = await asyncio.to_thread(open, path, "rb")
    except FileNotFoundError:
        raise StorageError(f"source file to store does not exist: {path}") from None
    try:
        while chunk := await asyncio.to_thread(f.read, size):
            yield chunk
    finally:
        f.close()
