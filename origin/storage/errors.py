"""Storage errors: one shallow hierarchy, translated at each backend's boundary.

    StorageError                 base; ``status_hint`` tells an HTTP server what to answer
     ├── InvalidKey              a key with ``..``, an absolute path, NUL, empty parts (400)
     │    └── HiddenKey          a part starting with ``.`` (temporary files, never objects): 404
     ├── NotFound                no object under that key (404)
     ├── StorageUnavailable      the backend cannot be reached or timed out (503)
     └── StorageConfigError      a bad storage URL, a missing bucket, bad credentials (at start)

Backends raise only these; ``aiohttp``/``botocore``/``OSError`` never leak out.
"""
from __future__ import annotations


class StorageError(Exception):
    """Base of every storage error."""

    status_hint: int = 500


class InvalidKey(StorageError):
    """The key is not a safe relative object key."""

    status_hint = 400


class HiddenKey(InvalidKey):
    """A key with a part starting with ``.``: never an object (temporary files live under such
    names), so a server answers it as a missing object."""

    status_hint = 404


class NotFound(StorageError):
    """No object exists under the key."""

    status_hint = 404


class StorageUnavailable(StorageError):
    """The backend is unreachable, timed out or failed transiently; retry later."""

    status_hint = 503


class StorageConfigError(StorageError):
    """The storage URL or its settings cannot work (unknown scheme, no bucket, bad credentials)."""

    status_hint = 500
