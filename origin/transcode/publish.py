"""Publish: put a packaged title into storage as a new immutable version, then point the entry points at it.

Every object except the entry points (``manifests.ENTRY_POINTS``) goes under
``{title}/v/{version}/``, ``version`` being the content hash of all of them, media playlists
included (``manifests.content_version``). So an object path never names two different byte
strings and no cache anywhere can mix versions.

Order: every object of the version (concurrently), then ``title.json``, then the DASH
``manifest.mpd``, then ``master.m3u8`` last (both manifests name the very same objects). Nothing is hidden and nothing of an earlier version is deleted: a player that loaded the old
``master.m3u8`` or ``manifest.mpd`` keeps playing the old version. The version the entry points named before is
recorded in ``title.json``'s ``previous_versions`` with the time it was replaced, and
``vodstack gc`` removes it once its grace has passed. An interrupted publish leaves at most a
version folder no entry point names, which gc removes too.

Re-running the same ingest gives the same version: objects already there with their size are not
written again, and when the entry points already name that version nothing changes at all
(idempotent; ETags stay as they were).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import pathlib
import time
from dataclasses import dataclass, replace
from typing import Awaitable, Callable

from manifests import (ENTRY_POINTS, UNVERSIONED, VERSIONS_FOLDER, PreviousVersion, Title, TitleFormatError, content_version, dumps_mpd,
                       dumps_multivariant, dumps_title, loads_title, multivariant_from_title, version_prefix,
                       with_path_prefix)
from origin.storage import NotFound, Storage, read_all

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
HASH_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Replaced:
    """The version the entry points named before this publish."""

    version: str  # a content hash, or ``UNVERSIONED``
    published_at_s: float | None  # when its title.json was written (POSIX seconds), if known


@dataclass(frozen=True, kw_only=True)
class PublishResult:
    title: Title  #: as published: paths under ``v/{version}/``, ``version`` and ``previous_versions`` set
    version: str
    objects: int  #: objects of the version, plus the three entry points
    written: int  #: objects actually written (an identical re-run writes none)
    replaced: Replaced | None  #: None: a new title, or the same version again
    unchanged: bool  #: the entry points already named this very version


async def publish_title(storage: Storage, title_id: str, *, title: Title, files: dict[str, str],
                        playlists: dict[str, str], concurrency: int = 8, progress: Progress | None = None,
                        clock: Callable[[], float] = time.time) -> PublishResult:
    """Publish ``title`` (paths relative to the version) with its ``files`` (path relative to the
    version -> local file) and media ``playlists`` (path -> text; a ``master.m3u8`` in it is ignored:
    the master and the MPD are rendered from the versioned title). ``clock`` gives POSIX seconds."""
    media_playlists = {k: v.encode("utf-8") for k, v in playlists.items() if k != "master.m3u8"}
    measured = await asyncio.to_thread(_measure, files)
    digests = {k: digest for k, (digest, _) in measured.items()}
    digests.update({k: hashlib.sha256(v).hexdigest() for k, v in media_playlists.items()})
    version = content_version(digests.items())
    prefix = f"{title_id}/"
    vprefix = prefix + version_prefix(version)

    current, current_at_s = await _current(storage, prefix)
    history = current.previous_versions if current is not None else ()
    replaced = None
    if current is not None and (current.version or UNVERSIONED) != version:
        replaced = Replaced(version=current.version or UNVERSIONED, published_at_s=current_at_s)
        history = (*tuple(p for p in history if p.version != replaced.version),
                   PreviousVersion(version=replaced.version, superseded_at_s=round(clock(), 3)))
    history = tuple(p for p in history if p.version != version)  # a version made current again
    history = tuple([p for p in history if await _has_objects(storage, prefix, p.version)])  # gc'd: forgotten
    published = replace(with_path_prefix(title, version_prefix(version)), version=version,
                        previous_versions=history)
    title_json = dumps_title(published).encode("utf-8")
    mpd = dumps_mpd(published, trick_mode=True).encode("utf-8")  # key chunks are whole fragments
    master = dumps_multivariant(multivariant_from_title(published)).encode("utf-8")

    unchanged = current is not None and current.version == version
    # an identical re-run skips what is there; otherwise every object is written afresh (a gc that
    # judged an old folder by its objects' age then sees them new)
    present = {info.key: info.size_bytes async for info in storage.list(vprefix)} if unchanged else {}
    total = len(files) + len(media_playlists) + len(ENTRY_POINTS)
    done = written = 0
    sem = asyncio.Semaphore(concurrency)

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    async def put(key: str, source: bytes | pathlib.Path, size_bytes: int) -> None:
        nonlocal written
        if present.get(key) != size_bytes:  # the name is a content hash: same name and size, same bytes
            async with sem:
                await storage.write(key, source)
            written += 1
        tick()

    await _all([put(vprefix + k, pathlib.Path(path), measured[k][1]) for k, path in files.items()])
    await _all([put(vprefix + k, data, len(data)) for k, data in media_playlists.items()])
    for name, data in (("title.json", title_json), ("manifest.mpd", mpd), ("master.m3u8", master)):  # master last
        if await _read_or_none(storage, prefix + name) != data:
            await storage.write(prefix + name, data)
            written += 1
        tick()
    log.info("published", extra={"kv": {"title": title_id, "version": version, "written": written,
                                        "replaced": replaced.version if replaced else "-"}})
    return PublishResult(title=published, version=version, objects=total, written=written, replaced=replaced,
                         unchanged=unchanged)


async def _current(storage: Storage, prefix: str) -> tuple[Title | None, float | None]:
    """The title the entry points name now (None if there is none), and when it was published."""
    try:
        info = await storage.stat(prefix + "title.json")
        text = await read_all(storage, prefix + "title.json")
    except NotFound:
        return None, None
    try:
        return loads_title(text), info.last_modified_s
    except TitleFormatError:
        log.warning("current title.json is unreadable: treated as unversioned", extra={"kv": {"key": info.key}})
        return Title(title=prefix[:-1], duration_s=0, segment_duration_s=0), info.last_modified_s


async def _has_objects(storage: Storage, prefix: str, version: str) -> bool:
    """Whether anything of ``version`` is left (UNVERSIONED: any object outside ``v/`` and the entry points)."""
    if version != UNVERSIONED:
        async for _ in storage.list(prefix + version_prefix(version)):
            return True
        return False
    async for info in storage.list(prefix):
        rel = info.key[len(prefix):]
        if rel not in ENTRY_POINTS and not rel.startswith(VERSIONS_FOLDER + "/"):
            return True
    return False


async def _read_or_none(storage: Storage, key: str) -> bytes | None:
    try:
        return await read_all(storage, key)
    except NotFound:
        return None


def _measure(files: dict[str, str]) -> dict[str, tuple[str, int]]:
    """SHA-256 hex and size in bytes of each local file (blocking: runs in a thread)."""
    out = {}
    for key, path in files.items():
        h = hashlib.sha256()
        size_bytes = 0
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK_BYTES):
                h.update(chunk)
                size_bytes += len(chunk)
        out[key] = (h.hexdigest(), size_bytes)
    return out


async def _all(coros: list[Awaitable[None]]) -> None:
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
