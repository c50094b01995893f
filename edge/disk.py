"""The disk tier: one data file and one sidecar per cached part, bounded in bytes, surviving restarts.

Layout under ``{cache_dir}/objects/{h[:2]}/``, ``h`` = sha256(cache key)[:32]:

    {h}.data          the part's bytes
    {h}.meta          JSON sidecar: cache key, ObjectMeta, base, length, sha256 of the data, fetch time
    {h}.*.{pid}.*.tmp a write in progress (by process ``pid``)

An edge with several workers (``--workers N``, ``edge/workers.py``) shares one cache folder: worker ``s``
writes ``{h}.w{s}.data``/``{h}.w{s}.meta`` (worker 0 the plain names above), indexes, bounds (at its
share ``disk_mb / N``) and deletes only the files of the slots it owns (``slot % N == s``: a smaller
``N`` after a reload adopts the files of the slots that went), and reads the other workers' committed
parts on a miss in its own index (:meth:`DiskTier.borrow`: sidecar, then data, sha256 verified, never
deleted). So no worker deletes a file another one indexes, and a torn or vanished sibling file reads
as a miss.

Writes go to a temp name and are renamed into place; the sidecar is written (temp + rename) only
after the data is in place, so the sidecar is the commit record. At start the index is rebuilt from
the sidecars: temp files, data without a sidecar, and sidecars whose data is missing or of the wrong
length are deleted (that is what an unclean stop, SIGKILL included, can leave). Every read verifies
the sha256; a part that fails is dropped (counted in ``corrupt``) and the caller refetches it.
Space is reserved in the index before a write starts, so data on disk never exceeds the bound.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import aiofiles
import aiofiles.os

from .lookup import Found, TierName
from .objects import CachedPart, ObjectMeta, object_key_of
from .ram import EVICTION_CLASSES, RAM_POLICIES

log = logging.getLogger(__name__)

#: Bytes counted per entry on top of the data: the sidecar (a few hundred bytes; its real size is used).
SIDECAR_FORMAT = "vodstack-edge-part/1"


@dataclass(frozen=True, kw_only=True)
class DiskEntry:
    """One part on disk (or being written: ``ready`` False)."""

    cache_key: str
    meta: ObjectMeta
    base_bytes: int
    length_bytes: int
    sha256: str
    fetched_at_s: float
    sidecar_bytes: int
    ready: bool = True
    file_slot: int = 0  #: the worker slot whose file names hold it (module docstring)

    @property
    def nbytes(self) -> int:
        return self.length_bytes + self.sidecar_bytes


def _hash_name(cache_key: str) -> str:
    return hashlib.sha256(cache_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _stem(h: str, file_slot: int) -> str:
    return h if file_slot == 0 else f"{h}.w{file_slot}"


_NAME = re.compile(r"^(?P<h>[0-9a-f]{32})(?:\.w(?P<slot>[0-9]+))?\.(?P<ext>data|meta)$")
_TMP_WRITER = re.compile(r"\.(?P<pid>[0-9]+)\.[0-9a-f]+\.tmp$")
#: With several workers, a data file without its sidecar is left alone this long at start: another
#: process may be between the two renames of its commit.
COMMIT_GRACE_S = 30.0


def _tmp_name(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftover_tmp(name: str) -> bool:
    """A temp file no live process (but this one, before its first write) is writing."""
    m = _TMP_WRITER.search(name)
    if m is None:
        return True
    pid = int(m["pid"])
    return pid == os.getpid() or not pid_alive(pid)


def _replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp name beside ``path`` and rename it over ``path`` (blocking)."""
    tmp = _tmp_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _sidecar(entry: DiskEntry) -> bytes:
    return json.dumps({"format": SIDECAR_FORMAT, "key": entry.cache_key, "object": entry.meta.to_json(),
                       "base_bytes": entry.base_bytes, "length_bytes": entry.length_bytes,
                       "sha256": entry.sha256, "fetched_at_s": entry.fetched_at_s},
                      separators=(",", ":")).encode()


class DiskTier:
    """Parts on local disk; ``limit_bytes`` bounds data plus sidecars."""

    name = TierName.DISK

    def __init__(self, root: Path, limit_bytes: int, policy: str = "lru",
                 on_evict: Callable[[str], None] | None = None,
                 on_corrupt: Callable[[str], None] | None = None, *, slot: int = 0, count: int = 1) -> None:
        self.root = Path(root)
        self.slot, self.count = slot, count
        #: set when the worker retires at a reload: its successor in the slot owns the files now, so this
        #: one writes and deletes nothing more (reads still verify every part)
        self.read_only = False
        self.objects_dir = self.root / "objects"
        self.limit_bytes = limit_bytes
        self.evictions = 0
        self.corrupt = 0
        self.dropped_at_start = 0
        self._on_evict = on_evict
        self._on_corrupt = on_corrupt
        eviction, _ = RAM_POLICIES[policy]
        self._index = EVICTION_CLASSES[eviction](limit_bytes, getsizeof=lambda e: e.nbytes,
                                                 on_evict=self._evicted)
        self._doomed: list[tuple[str, int]] = []  # (hash name, file slot) whose files must go (evicted, replaced)
        self._sliced: dict[str, ObjectMeta] = {}  # object key -> meta, for objects cached in slices
        self._slice_counts: dict[str, int] = {}   # object key -> slices in the index
        self._writes: set[asyncio.Task[bool]] = set()
        self._pending: dict[str, CachedPart] = {}  # filled, being written: served from here meanwhile
        self._write_of: dict[str, asyncio.Task[bool]] = {}  # the write behind of a pending key

    # ------------------------------------------------------------ paths
    def _paths(self, cache_key: str, file_slot: int | None = None) -> tuple[Path, Path]:
        h = _hash_name(cache_key)
        d = self.objects_dir / h[:2]
        stem = _stem(h, self.slot if file_slot is None else file_slot)
        return d / f"{stem}.data", d / f"{stem}.meta"

    def _owns(self, file_slot: int) -> bool:
        return file_slot % self.count == self.slot

    # ------------------------------------------------------------ start
    async def open(self) -> None:
        """Create the folders and rebuild the index from the sidecars (in a thread)."""
        entries, dropped = await asyncio.to_thread(self._scan)
        self.dropped_at_start = dropped
        for entry in sorted(entries, key=lambda e: e.fetched_at_s):
            older = self._index.pop(entry.cache_key, None)  # two copies (an adopted slot's): the newer stays
            if older is not None:
                self._forget(entry.cache_key, older)
            try:
                self._index[entry.cache_key] = entry  # over the bound (a smaller --disk-mb): oldest go
            except ValueError:
                self._doomed.append((_hash_name(entry.cache_key), entry.file_slot))
                continue
            self._counted(entry)
            if entry.meta.sliced:
                self._sliced[entry.meta.key] = entry.meta
        await self._delete_doomed()
        if dropped:
            log.warning("disk tier dropped broken parts at start", extra={"kv": {"dropped": dropped}})
        log.info("disk tier open", extra={"kv": {"dir": self.root, "parts": len(self._index),
                                                 "used_bytes": self.used_bytes, "limit_bytes": self.limit_bytes}})

    def _scan(self) -> tuple[list[DiskEntry], int]:
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        entries: list[DiskEntry] = []
        dropped = 0
        for sub in sorted(self.objects_dir.iterdir()):
            if not sub.is_dir():
                continue
            names = {p.name for p in sub.iterdir()}
            for name in sorted(names):
                path = sub / name
                if name.endswith(".tmp"):
                    if _leftover_tmp(name):
                        path.unlink(missing_ok=True)
                    continue
                m = _NAME.match(name)
                file_slot = int(m["slot"] or 0) if m else 0
                if m is not None and not self._owns(file_slot):
                    continue  # another worker's
                stem, _, ext = name.rpartition(".")
                if ext == "data" and f"{stem}.meta" not in names:
                    if self.count > 1 and _younger_than(path, COMMIT_GRACE_S):
                        continue
                    path.unlink(missing_ok=True)
                    dropped += 1
                elif ext == "meta":
                    entry = self._read_sidecar(path, sub / f"{stem}.data", file_slot)
                    if entry is None:
                        path.unlink(missing_ok=True)
                        (sub / f"{stem}.data").unlink(missing_ok=True)
                        dropped += 1
                    else:
                        entries.append(entry)
        return entries, dropped

    @staticmethod
    def _read_sidecar(meta_path: Path, data_path: Path, file_slot: int = 0) -> DiskEntry | None:
        try:
            raw = meta_path.read_bytes()
            d = json.loads(raw)
            if d.get("format") != SIDECAR_FORMAT or _stem(_hash_name(d["key"]), file_slot) != meta_path.stem:
                return None
            entry = DiskEntry(cache_key=d["key"], meta=ObjectMeta.from_json(d["object"]),
                              base_bytes=int(d["base_bytes"]), length_bytes=int(d["length_bytes"]),
                              sha256=str(d["sha256"]), fetched_at_s=float(d["fetched_at_s"]),
                              sidecar_bytes=len(raw), file_slot=file_slot)
            if data_path.stat().st_size != entry.length_bytes:
                return None
            return entry
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # ------------------------------------------------------------ bookkeeping
    def _evicted(self, key: str, entry: DiskEntry) -> None:
        self.evictions += 1
        self._forget(key, entry)
        if self._on_evict is not None:
            self._on_evict(key)

    def _counted(self, entry: DiskEntry) -> None:
        if entry.meta.sliced:
            self._slice_counts[entry.meta.key] = self._slice_counts.get(entry.meta.key, 0) + 1

    def _forget(self, key: str, entry: DiskEntry) -> None:
        self._doomed.append((_hash_name(key), entry.file_slot))
        if entry.meta.sliced:
            left = self._slice_counts.get(entry.meta.key, 1) - 1
            if left <= 0:
                self._slice_counts.pop(entry.meta.key, None)
                self._sliced.pop(entry.meta.key, None)
            else:
                self._slice_counts[entry.meta.key] = left

    async def _delete_doomed(self) -> None:
        doomed, self._doomed = self._doomed, []
        if doomed and not self.read_only:
            await asyncio.to_thread(self._unlink_all, doomed)

    def _unlink_all(self, names: list[tuple[str, int]]) -> None:
        for h, file_slot in names:
            d = self.objects_dir / h[:2]
            stem = _stem(h, file_slot)
            # the sidecar first: without it the data is an orphan, removed at the next start
            (d / f"{stem}.meta").unlink(missing_ok=True)
            (d / f"{stem}.data").unlink(missing_ok=True)

    @property
    def used_bytes(self) -> int:
        return int(self._index.currsize)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, cache_key: str) -> bool:
        if cache_key in self._pending:
            return True
        entry = self._index.get(cache_key)
        return entry is not None and entry.ready

    def sliced_meta(self, object_key: str) -> ObjectMeta | None:
        return self._sliced.get(object_key)

    def keys(self) -> list[str]:
        return list({**dict.fromkeys(self._pending), **{k: None for k, e in self._index.items() if e.ready}})

    # ------------------------------------------------------------ read
    async def get(self, cache_key: str) -> CachedPart | None:
        """The part, checksum verified; None if absent or corrupt (then dropped). A part still being
        written behind a fill is served from memory."""
        pending = self._pending.get(cache_key)
        if pending is not None:
            return pending
        entry = self._index.get(cache_key)
        if entry is None or not entry.ready:
            return None
        data_path, _ = self._paths(cache_key, entry.file_slot)
        try:
            async with aiofiles.open(data_path, "rb") as f:
                body = await f.read()
        except OSError:
            body = None
        if body is None or len(body) != entry.length_bytes or \
                await asyncio.to_thread(lambda: hashlib.sha256(body).hexdigest()) != entry.sha256:
            if self.read_only:  # retiring: the slot's successor may have replaced the file; not corruption
                self._index.pop(cache_key, None)
                return None
            self.corrupt += 1
            if self._on_corrupt is not None:
                self._on_corrupt(cache_key)
            log.warning("disk part corrupt, dropped", extra={"kv": {"key": cache_key, "path": data_path}})
            await self.delete(cache_key)
            return None
        return CachedPart(meta=entry.meta, base_bytes=entry.base_bytes, body=body, fetched_at_s=entry.fetched_at_s)

    async def borrow(self, cache_key: str) -> CachedPart | None:
        """Another worker's committed copy of ``cache_key`` (the newest, sha256 verified), or None. Never
        indexed or deleted here: its owner bounds and evicts it (a file gone mid-read is a miss)."""
        if self.count == 1:
            return None
        return await asyncio.to_thread(self._borrow, cache_key)

    def _borrow(self, cache_key: str) -> CachedPart | None:
        best: CachedPart | None = None
        for file_slot in range(self.count):
            if file_slot == self.slot:
                continue
            data_path, meta_path = self._paths(cache_key, file_slot)
            entry = self._read_sidecar(meta_path, data_path, file_slot)
            if entry is None or entry.cache_key != cache_key or (best and best.fetched_at_s >= entry.fetched_at_s):
                continue
            try:
                body = data_path.read_bytes()
            except OSError:
                continue
            if len(body) == entry.length_bytes and hashlib.sha256(body).hexdigest() == entry.sha256:
                best = CachedPart(meta=entry.meta, base_bytes=entry.base_bytes, body=body,
                                  fetched_at_s=entry.fetched_at_s)
        return best

    def sibling_holds(self, cache_key: str) -> bool:
        """Whether another worker has committed ``cache_key`` (a sidecar exists; not read)."""
        return self.count > 1 and any(self._paths(cache_key, s)[1].exists() for s in range(self.count) if s != self.slot)

    # ------------------------------------------------------------ write
    async def put(self, cache_key: str, part: CachedPart) -> bool:
        """Write ``part`` (temp + rename, then the sidecar); False if it cannot fit or the write failed."""
        if self.read_only:
            return False
        digest = await asyncio.to_thread(lambda: hashlib.sha256(part.body).hexdigest())
        entry = DiskEntry(cache_key=cache_key, meta=part.meta, base_bytes=part.base_bytes,
                          length_bytes=part.nbytes, sha256=digest, fetched_at_s=part.fetched_at_s,
                          sidecar_bytes=0, ready=False, file_slot=self.slot)
        sidecar = _sidecar(entry)
        entry = DiskEntry(**{**entry.__dict__, "sidecar_bytes": len(sidecar)})
        old = self._index.pop(cache_key, None)
        if old is not None:
            self._forget(cache_key, old)
        try:
            self._index[cache_key] = entry  # reserves the space; evicts others as needed
        except ValueError:
            await self._delete_doomed()
            return False
        self._counted(entry)
        await self._delete_doomed()
        data_path, meta_path = self._paths(cache_key)
        tmp_data, tmp_meta = _tmp_name(data_path), _tmp_name(meta_path)
        try:
            await aiofiles.os.makedirs(data_path.parent, exist_ok=True)
            async with aiofiles.open(tmp_data, "wb") as f:
                await f.write(part.body)
            if self._index.get(cache_key) is not entry:  # evicted or purged while writing
                await aiofiles.os.remove(tmp_data)
                return False
            await aiofiles.os.replace(tmp_data, data_path)
            async with aiofiles.open(tmp_meta, "wb") as f:
                await f.write(sidecar)
            await aiofiles.os.replace(tmp_meta, meta_path)
        except OSError as e:
            log.warning("disk write failed", extra={"kv": {"key": cache_key, "error": e}})
            for p in (tmp_data, tmp_meta):
                p.unlink(missing_ok=True)
            if self._index.get(cache_key) is entry:
                self._index.pop(cache_key, None)
                self._forget(cache_key, entry)
                await self._delete_doomed()
            return False
        if self._index.get(cache_key) is not entry:  # purged or evicted during the sidecar write
            await asyncio.to_thread(self._unlink_all, [(_hash_name(cache_key), self.slot)])
            return False
        self._index[cache_key] = DiskEntry(**{**entry.__dict__, "ready": True})
        if part.meta.sliced:
            self._sliced[part.meta.key] = part.meta
        return True

    def put_behind(self, cache_key: str, part: CachedPart) -> None:
        """Write in the background (after a fill); :meth:`flush` waits for these."""
        self._pending[cache_key] = part
        task = asyncio.get_running_loop().create_task(self.put(cache_key, part))
        self._writes.add(task)
        self._write_of[cache_key] = task

        def done(t: asyncio.Task[bool]) -> None:
            self._writes.discard(t)
            if self._write_of.get(cache_key) is t:
                del self._write_of[cache_key]
            if self._pending.get(cache_key) is part:
                del self._pending[cache_key]

        task.add_done_callback(done)

    async def written(self, cache_key: str) -> None:
        """Wait for the write behind of ``cache_key``, if one runs (its commit, or its failure)."""
        task = self._write_of.get(cache_key)
        if task is not None:
            await asyncio.wait((task,))

    async def flush(self) -> None:
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def refresh(self, cache_key: str, meta: ObjectMeta, fetched_at_s: float) -> None:
        """A revalidated part: same bytes, new metadata and fetch time (rewrites the sidecar only)."""
        entry = self._index.get(cache_key)
        if entry is None or not entry.ready:
            return
        if self.read_only:
            return
        new = DiskEntry(**{**entry.__dict__, "meta": meta, "fetched_at_s": fetched_at_s})
        _, meta_path = self._paths(cache_key, entry.file_slot)
        try:  # one thread hop: a playlist is revalidated every few seconds while it is hot
            await asyncio.to_thread(_replace_file, meta_path, _sidecar(new))
        except OSError:
            return
        if self._index.get(cache_key) is entry:
            self._index[cache_key] = new

    # ------------------------------------------------------------ the Tier protocol (lookup.py)
    async def lookup(self, key: str) -> Found | None:
        part = await self.get(key)
        if part is None:
            part = await self.borrow(key)
        return None if part is None else Found(TierName.DISK, part)

    def admit(self, key: str, part: CachedPart, *, force: bool = False) -> bool:
        """Written behind (``force`` changes nothing: the disk admits every part that fits)."""
        self.put_behind(key, part)
        return True

    async def purge(self, matches: Callable[[str], bool]) -> int:
        dropped = 0
        for k in [k for k in self.keys() if matches(k)]:
            dropped += await self.delete(k)
        return dropped

    # ------------------------------------------------------------ delete
    async def delete(self, cache_key: str) -> bool:
        self._pending.pop(cache_key, None)
        entry = self._index.pop(cache_key, None)
        if entry is None:
            return False
        self._forget(cache_key, entry)
        await self._delete_doomed()
        return True

    async def delete_object(self, object_key: str) -> int:
        """Drop an object and all its slices."""
        for k in [k for k in self._pending if object_key_of(k) == object_key]:
            del self._pending[k]
        keys = [k for k in self._index if object_key_of(k) == object_key]
        for k in keys:
            self._forget(k, self._index.pop(k))
        await self._delete_doomed()
        return len(keys)

    async def delete_prefix(self, prefix: str) -> int:
        for k in [k for k in self._pending if k.startswith(prefix)]:
            del self._pending[k]
        keys = [k for k in self._index if k.startswith(prefix)]
        for k in keys:
            self._forget(k, self._index.pop(k))
        await self._delete_doomed()
        return len(keys)


def _younger_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except OSError:
        return False
