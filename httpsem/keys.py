"""Object keys: the one check that keeps every storage backend inside its root and every server's
request inside the object space, and the two errors it raises.

    InvalidKey      a key with ``..``, an absolute path, NUL, empty parts (``status_hint`` 400)
     └── HiddenKey  a part starting with ``.`` (temporary files, never objects): 404

Storage backends raise them for bad keys (``origin.storage`` re-exports both), the origin and the
edge answer them with ``status_hint``. They are :class:`errorbase.VodstackError`, not
``StorageError``: a bad key is the caller's mistake, not a storage failure.
"""
from __future__ import annotations

from errorbase import VodstackError

MAX_KEY_BYTES = 1024


class InvalidKey(VodstackError):
    """The key is not a safe relative object key."""

    status_hint: int = 400


class HiddenKey(InvalidKey):
    """A key with a part starting with ``.``: never an object (temporary files live under such
    names), so a server answers it as a missing object."""

    status_hint = 404


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key (``title/video/r1/00001.m4s``), else raise InvalidKey.

    Rejected: empty keys, absolute paths, backslashes, NUL and other control characters,
    empty, ``.`` or ``..`` parts, and keys longer than 1024 bytes (S3's limit): InvalidKey.
    A part starting with ``.`` (``.00001.m4s.tmp-...``, ``.vodstack-tmp``) is HiddenKey, an
    InvalidKey that servers answer 404: backends keep their temporary files under such names,
    and no object ever has one.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("empty object key")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKey(f"object key longer than {MAX_KEY_BYTES} bytes")
    if any(ord(c) < 0x20 or c == "\x7f" for c in key):
        raise InvalidKey(f"object key has a control character: {key!r}")
    if "\\" in key:
        raise InvalidKey(f"object key has a backslash: {key!r}")
    if key.startswith("/"):
        raise InvalidKey(f"object key is absolute: {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKey(f"object key has an empty, '.' or '..' part: {key!r}")
    for part in key.split("/"):
        if part.startswith("."):
            raise HiddenKey(f"object key has a part starting with '.': {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty (everything) or a key, optionally ending in ``/``."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix
