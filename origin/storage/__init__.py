"""Object storage for titles: one async contract, backends chosen by URL scheme.

    open_storage("/srv/titles")                      -> LocalStorage (also file:///srv/titles)
    open_storage("s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1")
                                                     -> S3Storage (credentials from AWS_* env)
    open_storage("memory://name")                    -> MemoryStorage
"""
from __future__ import annotations

from importlib import import_module
from types import MappingProxyType
from typing import Mapping
from urllib.parse import urlsplit

from .base import DEFAULT_CHUNK_BYTES, ObjectInfo, Storage, WriteSource, read_all
from .errors import HiddenKey, InvalidKey, NotFound, StorageConfigError, StorageError, StorageUnavailable
from httpsem.keys import validate_key

#: scheme -> "module:factory"; each factory takes the URL string and returns a Storage.
BACKENDS: Mapping[str, str] = MappingProxyType({
    "file": "origin.storage.local:LocalStorage.from_url",
    "s3": "origin.storage.s3:S3Storage.from_url",
    "memory": "origin.storage.memory:MemoryStorage_from_url",
})


def open_storage(url: str) -> Storage:
    """Build the backend named by ``url``'s scheme (a bare path means a local folder)."""
    if not url:
        raise StorageConfigError("empty storage URL")
    scheme = urlsplit(url).scheme if "://" in url else "file"
    target = BACKENDS.get(scheme)
    if target is None:
        raise StorageConfigError(
            f"unknown storage scheme {scheme!r} in {url!r} (known: {', '.join(sorted(BACKENDS))})")
    module_name, _, attr = target.partition(":")
    obj: object = import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    assert callable(obj), target  # BACKENDS names factories
    storage = obj(url)
    assert isinstance(storage, Storage), target  # every backend implements the protocol
    return storage


__all__ = [
    "BACKENDS", "DEFAULT_CHUNK_BYTES", "HiddenKey", "InvalidKey", "NotFound", "ObjectInfo", "Storage",
    "StorageConfigError", "StorageError", "StorageUnavailable", "WriteSource", "open_storage",
    "read_all", "validate_key",
]
