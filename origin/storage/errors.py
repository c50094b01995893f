"""Storage errors: one shallow hierarchy, translated at each backend's boundary.

    StorageError                 base (an ``errorbase.VodstackError``); ``status_hint`` tells an
     │                           HTTP server what to answer
     ├── NotFound                no object under that key (404)
     ├── StorageUnavailable      the backend cannot be reached or timed out (503)
     ├── StorageConfigError      a bad storage URL, a missing bucket, bad credentials (at start)
     └── UnstorableKey           a key the rule allows that this backend cannot hold (a part too
                                 long for the file system, a folder in the way, a symlink out of
                                 the root): also an ``InvalidKey`` (400)

Bad keys are ``InvalidKey`` and its ``HiddenKey`` (400 and 404), which live with the key rule in
``httpsem.keys`` (the edge checks keys too) and are re-exported here for the backends' callers;
they are not storage errors. Backends raise only these; ``aiohttp``/``botocore``/``OSError`` never leak out.
"""
from __future__ import annotations

from errorbase import VodstackError
from httpsem.keys import HiddenKey, InvalidKey

__all__ = ["HiddenKey", "InvalidKey", "NotFound", "StorageConfigError", "StorageError", "StorageUnavailable",
           "UnstorableKey"]


class StorageError(VodstackError):
    """Base of every storage error."""

    status_hint: int = 500


class NotFound(StorageError):
    """No object exists under the key."""

    status_hint = 404


class StorageUnavailable(StorageError):
    """The backend is unreachable, timed out or failed transiently; retry later."""

    status_hint = 503


class StorageConfigError(StorageError):
    """The storage URL or its settings cannot work (unknown scheme, no bucket, bad credentials)."""

    status_hint = 500


class UnstorableKey(StorageError, InvalidKey):
    """A key ``validate_key`` allows that this backend cannot store or reach: both a storage error
    and a bad key (400)."""

    status_hint = 400
