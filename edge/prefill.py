"""Prefill (proactive fill, like Open Connect's nightly fill window): jobs that fill whole titles.

A job takes a list of titles (or a popularity list, most popular first), reads each title's
``title.json`` through the normal fill path, and fills every object it lists (``edge.titlejson``):
whole objects, or every slice of a large one. Fills are paced by a token bucket at the job's rate
(``--fill-rate-mbps`` unless the request says otherwise) and, if a window is given, run only inside
it (waiting for it to open, pausing when it closes). Prefilled parts go to disk, not RAM. Jobs run
one after the other; their progress is readable at ``GET /_/prefill/{id}``.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .config import parse_window
from .errors import EdgeError
from .inflight import FillSpec, Pace
from .objects import ObjectMeta, slice_key
from .node import Edge
from .ratelimit import Bucket, in_window, take
from .slices import slice_count
from .titlejson import TitleJsonError, prefill_items, read_title

log = logging.getLogger(__name__)

MAX_ERRORS_KEPT = 20


@dataclass
class PrefillJob:
    id: str
    titles: list[str]
    rate_mbps: float
    window: str = ""
    state: str = "queued"  # queued | waiting_window | running | done | failed
    objects_total: int = 0
    objects_done: int = 0
    objects_cached: int = 0  # already there, skipped
    objects_failed: int = 0
    bytes_filled: int = 0
    titles_done: int = 0
    started_at_s: float | None = None
    finished_at_s: float | None = None
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        elapsed = ((self.finished_at_s or time.time()) - self.started_at_s) if self.started_at_s else 0.0
        return {**self.__dict__, "elapsed_s": round(elapsed, 3),
                "rate_achieved_mbps": round(self.bytes_filled * 8 / 1e6 / elapsed, 3) if elapsed > 0 else 0.0}


class PrefillManager:
    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.jobs: dict[str, PrefillJob] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, titles: list[str], rate_mbps: float | None = None, window: str | None = None) -> PrefillJob:
        if window is None:
            window = self.edge.cfg.prefill_window
        parse_window(window)  # ValueError for the handler
        job = PrefillJob(id=str(next(self._ids)), titles=titles,
                         rate_mbps=rate_mbps or self.edge.cfg.fill_rate_mbps, window=window)
        self.jobs[job.id] = job
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, job: PrefillJob) -> None:
        async with self._lock:
            job.started_at_s = time.time()
            rate_bytes_per_s = job.rate_mbps * 1e6 / 8
            burst = max(16 * 1024.0, rate_bytes_per_s * 0.05)
            bucket = Bucket(0.0, time.monotonic())

            async def pace(nbytes: int) -> None:
                nonlocal bucket
                job.bytes_filled += nbytes
                self.edge.metrics.prefill_bytes.inc(nbytes)
                bucket, delay_s = take(bucket, nbytes, rate_bytes_per_s, burst, time.monotonic())
                if delay_s > 0:
                    await asyncio.sleep(delay_s)

            window = parse_window(job.window)
            try:
                for title in job.titles:
                    await self._wait_window(job, window)
                    try:
                        doc = read_title(await self._title_json(title, pace), title)
                        items = prefill_items(doc, title)
                    except (EdgeError, TitleJsonError, ValueError) as e:
                        self._error(job, f"{title}/title.json: {e}")
                        continue
                    job.objects_total += len(items)
                    for item in items:
                        await self._wait_window(job, window)
                        try:
                            filled = await self._ensure(f"{title}/{item.path}", pace)
                        except EdgeError as e:
                            self._error(job, f"{title}/{item.path}: {e}")
                            continue
                        job.objects_done += 1
                        job.objects_cached += 0 if filled else 1
                    job.titles_done += 1
                job.state = "done" if not job.objects_failed else "failed"
            except asyncio.CancelledError:
                job.state = "failed"
                raise
            finally:
                job.finished_at_s = time.time()
                log.info("prefill finished", extra={"kv": {k: v for k, v in job.to_json().items() if k != "errors"}})

    def _error(self, job: PrefillJob, message: str) -> None:
        job.objects_failed += 1
        if len(job.errors) < MAX_ERRORS_KEPT:
            job.errors.append(message)
        log.warning("prefill error", extra={"kv": {"job": job.id, "error": message}})

    async def _wait_window(self, job: PrefillJob, window: tuple[int, int] | None) -> None:
        while True:
            now = dt.datetime.now()
            if in_window(window, now.hour * 60 + now.minute):
                job.state = "running"
                return
            job.state = "waiting_window"
            await asyncio.sleep(min(30.0, 60 - now.second))

    async def _title_json(self, title: str, pace: Pace | None) -> bytes:
        key = f"{title}/title.json"
        found = await self.edge.cached(key)
        if found is not None and found.part is not None:
            body = found.part.body
        else:
            fill, _ = self.edge.fills.get_or_start(FillSpec(object_key=key, cache_key=key, prefill=True, pace=pace))
            body = (await fill.wait_done()).body
        return body

    async def _ensure(self, key: str, pace: Pace | None) -> bool:
        """Fill ``key`` (all of its slices if it is large); False if it was all cached already."""
        edge = self.edge
        meta = edge.sliced_meta(key)
        if meta is None:
            if edge.holds(key):
                return False
            fill, _ = edge.fills.get_or_start(FillSpec(object_key=key, cache_key=key, prefill=True, pace=pace))
            meta = await fill.wait_meta()
            await fill.wait_done()
            if not meta.sliced:
                return True
        filled = False
        for n in range(slice_count(meta.size_bytes, edge.cfg.slice_bytes)):
            found = await edge.find_slice(meta, n, prefill=True, pace=pace) if not self._has_slice(meta, n) else None
            if found is not None and found.fill is not None:
                await found.fill.wait_done()
                filled = True
        return filled

    def _has_slice(self, meta: ObjectMeta, n: int) -> bool:
        ck = slice_key(meta.key, self.edge.cfg.slice_bytes, n)
        return self.edge.holds(ck)
