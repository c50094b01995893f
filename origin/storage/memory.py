"""In-memory storage: a real backend (not a mock) for tests of the code above storage."""
from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import AsyncIterator

from .base import DEFAULT_CHUNK_BYTES, ObjectInfo, WriteSource
from .errors import NotFound
from httpsem.keys import validate_key, validate_prefix


class MemoryStorage:
    """Objects kept in a dict; ``memory://NAME`` URLs share one store per NAME within a process."""

    _named: dict[str, dict[str, tuple[bytes, ObjectInfo]]] = {}

    def __init__(self, name: str = "") -> None:
        self.url = f"memory://{name}"
        self._objects = self._named.setdefault(name, {}) if name else {}

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        try:
            return self._objects[key][1]
        except KeyError:
            raise NotFound(key) from None

    async def read(self, key: str, start: int = 0, end: int | None = None,
                   chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        validate_key(key)
        try:
            data = self._objects[key][0]
        except KeyError:
            raise NotFound(key) from None
        stop = len(data) if end is None else min(end, len(data))
        for pos in range(start, stop, chunk_bytes):
            yield data[pos:min(pos + chunk_bytes, stop)]
            await asyncio.sleep(0)

    async def write(self, key: str, source: WriteSource) -> ObjectInfo:
        validate_key(key)
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        elif isinstance(source, os.PathLike) or isinstance(source, str):
            data = await asyncio.to_thread(_read_file, os.fspath(source))
        else:
            data = b"".join([bytes(c) async for c in source])
        info = ObjectInfo(key=key, size_bytes=len(data), etag=hashlib.md5(data).hexdigest(),
                          last_modified_s=float(int(time.time())))
        self._objects[key] = (data, info)
        return info

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        for key in sorted(k for k in self._objects if k.startswith(prefix)):
            yield self._objects[key][1]

    async def delete(self, key: str) -> None:
        validate_key(key)
        self._objects.pop(key, None)

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def MemoryStorage_from_url(url: str) -> MemoryStorage:  # noqa: N802 - registry factory
    """``memory://NAME`` -> the process-wide store called NAME (``memory://`` -> a fresh one)."""
    return MemoryStorage(url.split("://", 1)[1].strip("/"))
