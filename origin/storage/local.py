"""Local-folder storage: objects are files under one root folder, written atomically.

Decisions written down here:

* Every blocking call (stat, open, read, write, fsync, rename, scandir) runs in a worker
  thread via ``asyncio.to_thread``; reads stream one chunk per thread hop.
* ``write`` goes to ``{root}/.vodstack-tmp/{12 hex}.{pid}.{host}.tmp`` (same file system, so
  the rename stays atomic), is fsynced, then ``os.replace``d over the key: a reader sees the old
  file or the new one, never a part. The temp folder is no key (``validate_key`` refuses parts
  starting with ``.``), so a temp file is never listed or served, even when its writer was killed
  before it could remove it; ``temp_leftovers`` / ``remove_temp`` let ``vodstack gc`` and the next
  ingest find and remove such files (the name says which process wrote it). Temp files of older
  versions (``.{name}.tmp-{12 hex}`` beside the key) are found by ``temp_leftovers`` too.
* The ETag is nginx's: ``f"{mtime_ns:x}-{size:x}"`` -- cheap, stable while the file is
  unchanged.
* ``path_for(key)`` resolves symlinks and refuses any path that ends up outside the root
  (``InvalidKey``); every operation goes through it. ``open_fd(key)`` opens a file for the
  origin's sendfile and checks where the open descriptor really points instead.
* ``list`` walks folders in key order (a folder sorts as ``name + "/"``), skips temp files,
  lists symlinked files that stay inside the root and does not follow symlinked folders.
* ``delete`` removes the file and then the parent folders it left empty, up to the root.
* A key that collides with a folder (``a`` when ``a/b`` exists, or the reverse) cannot be
  written on a file system: ``InvalidKey``. Reading or stat-ing a folder is ``NotFound``.
* Missing is told from unavailable: when a read, stat, ``open_fd`` or ``list`` finds nothing, the
  root itself is checked (one ``stat``); a root that is gone (moved away, unmounted) makes every
  call ``StorageUnavailable`` (the origin's 503 + ``Retry-After``), never ``NotFound`` (a 404 that
  caches would believe and keep).
"""
from __future__ import annotations

import asyncio
import builtins
import errno
import logging
import os
import re
import secrets
import socket
import stat as stat_mod
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterable, AsyncIterator, BinaryIO
from urllib.parse import unquote, urlsplit

from .base import DEFAULT_CHUNK_BYTES, ObjectInfo, WriteSource
from .errors import NotFound, StorageConfigError, StorageError, StorageUnavailable, UnstorableKey
from httpsem.keys import validate_key, validate_prefix

log = logging.getLogger(__name__)

#: Stream chunks smaller than this are gathered before one thread hop writes them.
WRITE_BUFFER_BYTES = 1024 * 1024

_TEMP_NAME = re.compile(r"^\..+\.tmp-[0-9a-f]{12}$")
#: Where ``write`` keeps its temporary files, under the root.
TEMP_FOLDER = ".vodstack-tmp"
_TEMP_FILE = re.compile(r"^[0-9a-f]{12}\.(?P<pid>[0-9]+)\.(?P<host>[A-Za-z0-9-]+)\.tmp$")
_MISSING_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR})


def is_temp_name(name: str) -> bool:
    """True for the temp files ``write`` leaves while it runs (``.{name}.tmp-{hex}``)."""
    return _TEMP_NAME.match(name) is not None


def host_name() -> str:
    """This machine's name as temp file names carry it (letters, digits and ``-``)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63] or "host"


@dataclass(frozen=True, kw_only=True)
class TempLeftover:
    """A temporary file found in the storage folder: a write running now, or one whose writer died."""

    path: str  #: relative to the root
    modified_s: float  #: POSIX seconds
    size_bytes: int
    writer_pid: int | None = None  #: None: a temp file of an older version, which did not say
    writer_host: str | None = None


def etag_for(st: os.stat_result) -> str:
    """nginx-style ETag: hex mtime in nanoseconds, a dash, hex size in bytes."""
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


def _translate(err: OSError, key: str, root: Path | None = None) -> StorageError:
    """One OSError -> our hierarchy: missing things are NotFound, the rest StorageUnavailable.

    With ``root`` given, "missing" is checked against the root first: when the root folder itself
    is gone (moved away, unmounted), every object is unavailable (503), not missing (404), so that
    no cache takes an outage for a deletion."""
    if err.errno in _MISSING_ERRNOS:
        if root is not None and not _root_present(root):
            return StorageUnavailable(f"storage root {root} does not exist any more")
        return NotFound(key)
    if err.errno == errno.ENAMETOOLONG:
        return UnstorableKey(f"object key has a part too long for this file system: {key!r}")
    return StorageUnavailable(f"local storage: {key!r}: {err.strerror or err}")


def _write_error(err: OSError, key: str) -> StorageError:
    """Writing: a key that collides with a folder (or a file where a folder must go) is invalid."""
    if err.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
        return UnstorableKey(f"object key collides with a folder or file on disk: {key!r}")
    if err.errno == errno.ENAMETOOLONG:
        return _translate(err, key)
    return StorageUnavailable(f"local storage: {key!r}: {err.strerror or err}")


@dataclass(frozen=True)
class _Entry:
    """One folder entry seen by ``list``: a file with its stat, or a folder to descend into."""

    name: str
    is_dir: bool
    stat: os.stat_result | None


class LocalStorage:
    """Objects stored as files under ``root`` (``/srv/titles`` or ``file:///srv/titles``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = _prepare_root(Path(root))
        self.url = self.root.as_uri()
        self._root_prefix = str(self.root).rstrip("/") + "/"

    @classmethod
    def from_url(cls, url: str) -> "LocalStorage":
        """A bare path or a ``file:///abs/path`` URL (no host, absolute path)."""
        if "://" not in url:
            return cls(url)
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise StorageConfigError(f"not a file URL: {url!r}")
        if parts.netloc not in ("", "localhost"):
            raise StorageConfigError(f"file URL must have no host (file:///abs/path): {url!r}")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise StorageConfigError(f"file URL needs an absolute path: {url!r}")
        return cls(path)

    # -- keys -> paths --------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        """Absolute, symlink-resolved path of ``key``, guaranteed inside the root.

        Raises InvalidKey for a bad key or one that escapes the root through a symlink.
        It touches the file system (resolving symlinks): call it from a thread in async code.
        The path may not exist yet.
        """
        validate_key(key)
        path = (self.root / key).resolve()
        if path == self.root or not path.is_relative_to(self.root):
            raise UnstorableKey(f"object key leads outside the storage root: {key!r}")
        return path

    def open_fd(self, key: str) -> int:
        """Open ``key`` for reading: a descriptor of a regular file inside the root (the caller closes it).

        Blocking: call it from a thread. Where ``path_for`` + open costs an ``lstat`` per path
        component (``resolve``), this opens the path and asks the kernel where the descriptor
        really points (one ``readlink`` of ``/proc/self/fd/N``): cheaper, and it checks the very
        file opened. The open is non-blocking and never takes a terminal, so a FIFO or a device
        reached through a symlink cannot hang or grab anything before it is refused; nothing is
        read from a file outside the root. Raises InvalidKey, NotFound, StorageUnavailable.
        """
        validate_key(key)
        try:
            fd = os.open(self.root / key, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as err:
            if err.errno == errno.ELOOP:  # a symlink loop leads nowhere
                raise NotFound(key) from None
            raise _translate(err, key, self.root) from None
        try:
            try:
                real = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:  # no /proc: resolve the name instead
                real = str(self.path_for(key))
            if not real.startswith(self._root_prefix):
                raise UnstorableKey(f"object key leads outside the storage root: {key!r}")
            if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
                raise NotFound(key)
        except OSError as err:
            os.close(fd)
            raise _translate(err, key) from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    # -- the Storage contract -------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        return await asyncio.to_thread(self._stat_sync, key)

    def _stat_sync(self, key: str) -> ObjectInfo:
        path = self.path_for(key)
        try:
            st = path.stat()
        except OSError as err:
            raise _translate(err, key, self.root) from None
        if not _is_regular(st):
            raise NotFound(key)
        return _info(key, st)

    async def read(self, key: str, start: int = 0, end: int | None = None,
                   chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        validate_key(key)
        if start < 0 or chunk_bytes <= 0:
            raise ValueError(f"bad range start={start} chunk_bytes={chunk_bytes}")
        f = await asyncio.to_thread(self._open_for_read, key, start)
        try:
            pos = start
            while end is None or pos < end:
                want = chunk_bytes if end is None else min(chunk_bytes, end - pos)
                try:
                    chunk = await asyncio.to_thread(f.read, want)
                except OSError as err:
                    raise _translate(err, key) from None
                if not chunk:
                    break
                pos += len(chunk)
                yield chunk
        finally:
            f.close()

    def _open_for_read(self, key: str, start: int) -> BinaryIO:
        path = self.path_for(key)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by read()'s finally
        except OSError as err:
            raise _translate(err, key, self.root) from None
        try:
            if not _is_regular(os.fstat(f.fileno())):
                raise NotFound(key)
            if start:
                f.seek(start)
        except BaseException:
            f.close()
            raise
        return f

    async def write(self, key: str, source: WriteSource) -> ObjectInfo:
        validate_key(key)
        temp = await asyncio.to_thread(self._open_temp, key)
        try:
            if isinstance(source, (bytes, bytearray, memoryview)):
                await asyncio.to_thread(temp.write, bytes(source))
            elif isinstance(source, (str, os.PathLike)):
                await asyncio.to_thread(temp.copy_from, os.fspath(source))
            else:
                await _write_stream(temp, source)
            st = await asyncio.to_thread(temp.commit)
        except BaseException as err:
            await asyncio.to_thread(temp.discard)
            if isinstance(err, OSError):
                raise _write_error(err, key) from None
            raise
        return _info(key, st)

    def _open_temp(self, key: str) -> "_TempFile":
        """Create the key's folders and an exclusive temp file in the temp folder."""
        path = self.path_for(key)
        attempts = 3  # a concurrent delete may remove a folder we have just made
        for attempt in range(1, attempts + 1):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                return _TempFile.create(path, self.root / TEMP_FOLDER)
            except FileNotFoundError as err:
                if attempt == attempts:
                    raise _write_error(err, key) from None
            except OSError as err:
                raise _write_error(err, key) from None
        raise AssertionError("unreachable")

    async def temp_leftovers(self, prefixes: list[str] | None = None) -> list[TempLeftover]:
        """The temporary files under the root: every one in the temp folder, and old-style ones
        beside keys, in the whole tree or (``prefixes``, e.g. ``["t1/"]``) only under those folders."""
        for p in prefixes or ():
            validate_prefix(p)
        return await asyncio.to_thread(self._temp_leftovers_sync, prefixes)

    def _temp_leftovers_sync(self, prefixes: list[str] | None) -> list[TempLeftover]:
        found: list[TempLeftover] = []
        tops = [self.root] if prefixes is None else [self.root / TEMP_FOLDER, *(self.root / p for p in prefixes)]
        for folder, dirs, names in (w for top in tops for w in os.walk(top)):
            rel_folder = os.path.relpath(folder, self.root)
            in_temp = rel_folder == TEMP_FOLDER
            dirs[:] = sorted(d for d in dirs if (rel_folder == "." and d == TEMP_FOLDER) or not d.startswith("."))
            for name in sorted(names):
                m = _TEMP_FILE.match(name) if in_temp else None
                if not (m or (not in_temp and is_temp_name(name))):
                    continue
                try:
                    st = os.lstat(os.path.join(folder, name))
                except OSError:
                    continue  # its write finished (or failed) while we looked
                rel = name if rel_folder == "." else f"{rel_folder}/{name}"
                found.append(TempLeftover(path=rel, modified_s=st.st_mtime, size_bytes=st.st_size,
                                          writer_pid=int(m["pid"]) if m else None, writer_host=m["host"] if m else None))
        return found

    async def remove_temp(self, leftover: TempLeftover) -> None:
        """Remove one temporary file ``temp_leftovers`` found (gone already: not an error)."""
        await asyncio.to_thread(self._remove_temp_sync, leftover)

    def _remove_temp_sync(self, leftover: TempLeftover) -> None:
        path = self.root / leftover.path
        name = path.name
        if not (path.parent.resolve().is_relative_to(self.root) and (_TEMP_FILE.match(name) or is_temp_name(name))):
            raise UnstorableKey(f"not a temporary file of this storage: {leftover.path!r}")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise _translate(err, leftover.path) from None

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        # Start at the deepest folder the prefix names fully; filter names there by the rest.
        folder, _, name_start = prefix.rpartition("/")
        async for info in self._walk(f"{folder}/" if folder else "", name_start):
            yield info

    async def _walk(self, key_base: str, name_start: str) -> AsyncIterator[ObjectInfo]:
        """Depth first; entries come sorted in key order, so the keys come out in order."""
        entries = await asyncio.to_thread(self._scan, key_base, name_start)
        for entry in entries:
            key = key_base + entry.name
            if entry.is_dir:
                async for info in self._walk(key + "/", ""):
                    yield info
            else:
                assert entry.stat is not None  # a file's entry carries its stat (``_entry``)
                yield _info(key, entry.stat)

    def _scan(self, key_base: str, name_start: str) -> builtins.list[_Entry]:  # ``list`` here: the method
        """One folder's entries whose names start with ``name_start``, in key order."""
        folder = self.path_for(key_base.rstrip("/")) if key_base else self.root
        try:
            with os.scandir(folder) as it:
                raw = [e for e in it if e.name.startswith(name_start) and not e.name.startswith(".")]
        except OSError as err:
            if err.errno in _MISSING_ERRNOS:
                if not _root_present(self.root):
                    raise StorageUnavailable(f"storage root {self.root} does not exist any more") from None
                return []
            raise _translate(err, key_base) from None
        entries: list[_Entry] = []
        for e in raw:
            try:
                entry = self._entry(e)
            except OSError:
                continue  # vanished or unreadable while we looked: not listed
            if entry is not None:
                entries.append(entry)
        entries.sort(key=lambda e: e.name + "/" if e.is_dir else e.name)
        return entries

    def _entry(self, e: os.DirEntry[str]) -> _Entry | None:
        if e.is_symlink():
            target = Path(e.path).resolve()
            if not target.is_relative_to(self.root) or not target.is_file():
                return None  # escapes the root, dangles, or is a folder: never followed
            return _Entry(e.name, False, target.stat())
        if e.is_dir(follow_symlinks=False):
            return _Entry(e.name, True, None)
        st = e.stat(follow_symlinks=False)
        return _Entry(e.name, False, st) if _is_regular(st) else None

    async def delete(self, key: str) -> None:
        validate_key(key)
        await asyncio.to_thread(self._delete_sync, key)

    def _delete_sync(self, key: str) -> None:
        path = self.path_for(key)
        try:
            os.unlink(path)
        except OSError as err:
            if err.errno in _MISSING_ERRNOS or (err.errno == errno.EPERM and path.is_dir()):
                return  # no object under that key (a folder is not an object)
            raise _translate(err, key) from None
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break  # not empty (or raced with a writer): stop climbing
            parent = parent.parent

    async def check(self) -> None:
        await asyncio.to_thread(_check_root, self.root)

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"


# -- helpers that run in worker threads --------------------------------------------------


def _prepare_root(root: Path) -> Path:
    """Resolve the root, create it if missing, and check it is a writable folder."""
    try:
        resolved = root.expanduser().resolve()
        resolved.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StorageConfigError(f"storage root {root} is not a folder") from None
    except OSError as err:
        raise StorageConfigError(
            f"storage root {root} cannot be created: {err.strerror or err}") from None
    _check_root(resolved)
    return resolved


def _check_root(root: Path) -> None:
    if not root.is_dir():
        if root.exists():
            raise StorageConfigError(f"storage root {root} is not a folder")
        raise StorageUnavailable(f"storage root {root} does not exist any more")
    if not os.access(root, os.W_OK | os.X_OK):
        raise StorageConfigError(f"storage root {root} is not writable")


def _root_present(root: Path) -> bool:
    """Whether the root is still a folder (one ``stat``; called only after something was missing)."""
    try:
        return stat_mod.S_ISDIR(os.stat(root).st_mode)
    except OSError:
        return False


def _is_regular(st: os.stat_result) -> bool:
    return stat_mod.S_ISREG(st.st_mode)


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(key=key, size_bytes=st.st_size, etag=etag_for(st),
                      last_modified_s=st.st_mtime)


class _TempFile:
    """``{hex}.{pid}.{host}.tmp`` in the temp folder: written, fsynced, then renamed over the final path."""

    def __init__(self, path: Path, tmp: Path, fd: int) -> None:
        self.path, self.tmp, self.fd = path, tmp, fd
        self.closed = False

    @classmethod
    def create(cls, path: Path, temp_folder: Path) -> "_TempFile":
        temp_folder.mkdir(exist_ok=True)
        tmp = temp_folder / f"{secrets.token_hex(6)}.{os.getpid()}.{host_name()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        return cls(path, tmp, fd)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def copy_from(self, src: str) -> None:
        try:
            f_in = open(src, "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise StorageError(f"source file to store does not exist: {src}") from None
        with f_in:
            while chunk := f_in.read(WRITE_BUFFER_BYTES):
                self.write(chunk)

    def commit(self) -> os.stat_result:
        """fsync, rename over the final path, fsync the folder; the stat of the new object."""
        os.fsync(self.fd)
        st = os.fstat(self.fd)
        self._close()
        os.replace(self.tmp, self.path)
        _fsync_dir(self.path.parent)
        return st

    def discard(self) -> None:
        self._close()
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass
        except OSError as err:
            log.warning("could not remove temp file path=%s error=%s", self.tmp, err)

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


async def _write_stream(temp: _TempFile, source: AsyncIterable[bytes]) -> None:
    """Write an async stream, gathering small chunks so each thread hop writes ~1 MiB."""
    buffer = bytearray()
    async for chunk in source:
        buffer += chunk
        if len(buffer) >= WRITE_BUFFER_BYTES:
            data, buffer = bytes(buffer), bytearray()
            await asyncio.to_thread(temp.write, data)
    if buffer:
        await asyncio.to_thread(temp.write, bytes(buffer))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(fd)
