"""Publish: put a packaged title into storage so that no player ever sees part of it.

Order: every media object (init, segments, WebVTT), then the media and I-frame playlists, then
``title.json``, then ``master.m3u8``; then objects a previous ingest of the title left and this one
no longer references are deleted. ``title.json`` and ``master.m3u8`` are the title's visibility:
until both are written nothing points at the new objects, and a failed or interrupted ingest
stops before them. When a title is re-ingested with a different result, its old ``master.m3u8``
and ``title.json`` are removed first, so the title is hidden while it changes rather than mixed.
Re-running the same ingest writes the same bytes to the same keys (idempotent).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from origin.storage import NotFound, Storage, read_all

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


async def publish_title(storage: Storage, title_id: str, *, files: dict[str, str], playlists: dict[str, str],
                        title_json: str, concurrency: int = 8, progress: Progress | None = None) -> int:
    """Upload; ``files`` and ``playlists`` are keyed by path relative to the title
    (``playlists`` includes ``master.m3u8``). Returns the number of objects written."""
    master = playlists["master.m3u8"]
    media_playlists = {k: v for k, v in playlists.items() if k != "master.m3u8"}
    prefix = f"{title_id}/"
    try:
        previous = (await read_all(storage, prefix + "title.json")).decode("utf-8", "replace")
    except NotFound:
        previous = None
    if previous is not None and previous != title_json:
        log.info("re-ingest changes the title: hiding it until published", extra={"kv": {"title": title_id}})
        await storage.delete(prefix + "master.m3u8")
        await storage.delete(prefix + "title.json")

    total = len(files) + len(media_playlists) + 2
    done = 0
    sem = asyncio.Semaphore(concurrency)

    async def put(key: str, source: str | bytes) -> None:
        nonlocal done
        async with sem:
            if isinstance(source, str):
                import pathlib

                await storage.write(prefix + key, pathlib.Path(source))
            else:
                await storage.write(prefix + key, source)
        done += 1
        if progress:
            progress(done, total)

    await _all([put(k, path) for k, path in files.items()])
    await _all([put(k, text.encode("utf-8")) for k, text in media_playlists.items()])
    await put("title.json", title_json.encode("utf-8"))
    await put("master.m3u8", master.encode("utf-8"))

    keep = {prefix + k for k in (*files, *playlists, "title.json")}
    stale = [info.key async for info in storage.list(prefix) if info.key not in keep]
    for key in stale:
        await storage.delete(key)
    if stale:
        log.info("removed objects of a previous ingest", extra={"kv": {"title": title_id, "count": len(stale)}})
    return total


async def _all(coros: list[Awaitable[None]]) -> None:
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
