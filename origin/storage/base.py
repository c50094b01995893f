"""The storage contract every backend implements (local folder, S3-compatible, in-memory).

Byte ranges are ``start`` (inclusive) and ``end`` (exclusive), like Python slices, already
resolved against the object's size by the caller; HTTP's inclusive ``bytes=a-b`` is the
server's business. Reads are streams of chunks, never a whole object in memory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import AsyncIterable, AsyncIterator, Protocol, Union, runtime_checkable

#: What ``write`` accepts: bytes, an async stream of byte chunks, or a path to a local file.
WriteSource = Union[bytes, AsyncIterable[bytes], "os.PathLike[str]"]

DEFAULT_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True, kw_only=True)
class ObjectInfo:
    """What a stat returns: enough for ETag, Last-Modified and Content-Length."""

    key: str
    size_bytes: int
    etag: str  # opaque, without quotes; stable while the object is unchanged
    last_modified_s: float  # POSIX seconds


@runtime_checkable
class Storage(Protocol):
    """An object store holding titles under keys like ``{title}/video/{rendition}/00001.m4s``."""

    url: str

    async def stat(self, key: str) -> ObjectInfo:
        """Metadata of one object; NotFound if absent."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        """Stream bytes ``[start, end)`` of the object (``end=None``: to its end); NotFound if absent."""
        ...

    async def write(self, key: str, source: WriteSource) -> ObjectInfo:
        """Store an object whole: readers see the old object or the new one, never a part."""
        ...

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""
        ...

    async def delete(self, key: str) -> None:
        """Remove an object; deleting a missing key is not an error."""
        ...

    async def check(self) -> None:
        """Raise StorageUnavailable/StorageConfigError if the backend cannot serve now."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...


async def read_all(storage: Storage, key: str) -> bytes:
    """Whole object as bytes: for small objects only (playlists, title.json)."""
    return b"".join([chunk async for chunk in storage.read(key)])
