"""Local files, opened once and answered from the loop: an open-file cache after nginx's ``open_file_cache``.

A request for an object of a storage with local files (``open_fd``) needs its size, validators
and bytes. Finding them touches the file system (resolve symlinks, open, fstat), which may block,
so it happens in a worker thread: :func:`open_local_object`. But a thread hop per request is what
the origin's CPU went on (the executor's wake-ups and the GIL hand-overs between the loop and the
worker cost more than the whole sendfile of a 2 KB object), so what one hop learned is kept:

* :class:`OpenFiles` keeps up to ``max_files`` objects by key, least recently used first out,
  each for a time (nginx's ``open_file_cache_valid``): ``valid_s`` for playlists and
  ``title.json``, ``media_valid_s`` for media, which are immutable under their key (the origin
  itself tells every cache to keep them a year). Within that time a request is answered without
  leaving the loop; after it, the next request opens the object again in a thread (a
  republished object, written by atomic rename, is seen at most that late).
* objects below ``read_below_bytes`` are kept as bytes (a range is a slice; the whole body
  leaves with the headers in one write); larger ones as an open descriptor. Each response gets
  sends from that descriptor by ``os.sendfile`` with explicit offsets (so responses can share
  it); what the socket does not take at once goes from a file of its own, reopened through
  ``/proc/self/fd`` (the inode is held open: no path is walked, nothing can block).

The ObjectInfo is built with LocalStorage's own ETag rule (``etag_for``: nginx's
``{mtime_ns:x}-{size:x}``), so answers match ``LocalStorage.stat`` exactly, and the plan of a
response always describes the very object that is sent: one open file is one version.
"""
from __future__ import annotations

import os
import resource
import sys
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Iterator

from origin.storage import ObjectInfo, StorageUnavailable
from origin.storage.local import etag_for

from httpsem.semantics import is_playlist

#: Reopening a descriptor by its /proc link gives a file with a position of its own (dup() would share one).
PROC_FD = "/proc/self/fd"


@dataclass(eq=False)
class OpenObject:
    """One local object as opened: its info and either its bytes or an open descriptor."""

    key: str
    info: ObjectInfo
    data: bytes | None
    fd: int | None
    opened_s: float
    """``time.monotonic()`` when it was opened."""
    users: int = 0
    """Responses sending from ``fd`` right now: it is closed only once they are done."""
    dropped: bool = False

    def file(self) -> IO[bytes]:
        """A file of its own for one response, with its own position (the caller closes it)."""
        assert self.fd is not None
        try:
            return open(f"{PROC_FD}/{self.fd}", "rb", buffering=0)  # noqa: SIM115
        except OSError:  # no /proc (then nothing is cached and the descriptor is this response's own)
            return os.fdopen(os.dup(self.fd), "rb", buffering=0)

    @contextmanager
    def in_use(self) -> Iterator[int]:
        """The descriptor, kept open until the block ends even if the object is dropped meanwhile."""
        assert self.fd is not None
        self.users += 1
        try:
            yield self.fd
        finally:
            self.users -= 1
            if self.dropped and self.users == 0:
                self.close()

    def drop(self) -> None:
        """No longer cached: close the descriptor now, or once its last response is sent."""
        self.dropped = True
        if self.users == 0:
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def open_local_object(storage: Any, key: str, *, read_below_bytes: int) -> OpenObject:
    """Blocking, run it in a thread. ``storage`` has ``open_fd`` (LocalStorage).
    Raises InvalidKey (outside the root), NotFound, StorageUnavailable."""
    fd = storage.open_fd(key)  # a regular file inside the root
    try:
        st = os.fstat(fd)
        info = ObjectInfo(key=key, size_bytes=st.st_size, etag=etag_for(st), last_modified_s=st.st_mtime)
        data = os.pread(fd, st.st_size, 0) if st.st_size < read_below_bytes else None
    except OSError as e:
        os.close(fd)
        raise StorageUnavailable(f"cannot read {key!r}: {e.strerror or e}") from None
    except BaseException:
        os.close(fd)
        raise
    if data is None:
        return OpenObject(key, info, data=None, fd=fd, opened_s=time.monotonic())
    os.close(fd)
    if len(data) != st.st_size:  # truncated while we read: nothing is sent from it
        raise StorageUnavailable(f"{key!r} changed while reading")
    return OpenObject(key, info, data=data, fd=None, opened_s=time.monotonic())


def descriptor_budget() -> int:
    """The most objects to keep open: a quarter of the process's descriptor limit (``ulimit -n``;
    1024 where a service manager leaves the default), the rest for client connections."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return sys.maxsize if soft == resource.RLIM_INFINITY else max(0, soft // 4)


class OpenFiles:
    """Opened objects by key: at most ``max_files``, each trusted for ``valid_s`` seconds after it
    was opened, media ``media_valid_s`` (0 files: off).

    Used from the event loop only. An evicted or replaced descriptor is closed at once, or when
    the last response sending from it (:meth:`OpenObject.in_use`) is done.
    """

    def __init__(self, *, max_files: int, valid_s: float, media_valid_s: float | None = None) -> None:
        self.max_files = min(max_files, descriptor_budget()) if os.path.isdir(PROC_FD) else 0
        self.valid_s = valid_s
        self.media_valid_s = valid_s if media_valid_s is None else media_valid_s
        self._objects: OrderedDict[str, OpenObject] = OrderedDict()

    def __len__(self) -> int:
        return len(self._objects)

    def get(self, key: str) -> OpenObject | None:
        """The object if it is still trusted, else None (and it is dropped)."""
        obj = self._objects.get(key)
        if obj is None:
            return None
        if time.monotonic() - obj.opened_s >= self.valid_s_for(key):
            self._drop(key)
            return None
        self._objects.move_to_end(key)
        return obj

    def put(self, obj: OpenObject) -> bool:
        """Keep ``obj`` (its descriptor becomes the cache's); False when the cache is off."""
        if self.max_files <= 0 or self.valid_s_for(obj.key) <= 0:
            return False
        self._drop(obj.key)
        self._objects[obj.key] = obj
        while len(self._objects) > self.max_files:
            self._drop(next(iter(self._objects)))
        return True

    def valid_s_for(self, key: str) -> float:
        return self.valid_s if is_playlist(key) else self.media_valid_s

    def clear(self) -> None:
        for key in list(self._objects):
            self._drop(key)

    def _drop(self, key: str) -> None:
        obj = self._objects.pop(key, None)
        if obj is not None:
            obj.drop()
