"""A fill in flight: what it fetches (:class:`FillSpec`) and the bytes so far, readable from any offset by many
waiters as they arrive (:class:`Fill`). The fetching itself (upstreams, failover, resume) is ``fill.py``'s."""
from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable

from .errors import EdgeError, UpstreamError
from .objects import CachedPart, ObjectMeta

Pace = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class FillSpec:
    """What to fetch: ``object_key`` bytes ``[range)`` (None: the whole object) into ``cache_key``."""

    object_key: str
    cache_key: str
    range: tuple[int, int] | None = None
    expect: ObjectMeta | None = None       # slices: the object they are cut from (ETag must match)
    validator: CachedPart | None = None    # revalidation: conditional GET, 304 keeps these bytes
    allow_slicing: bool = True
    probe_bytes: int | None = None         # unknown object asked by range: first ask for this much only
    prefill: bool = False                  # filled ahead of demand: stored on disk only
    pace: Pace | None = None               # prefill: called with each chunk's size


class Fill:
    """One fetch in flight: chunks so far, readable from any offset by many waiters."""

    def __init__(self, spec: FillSpec) -> None:
        self.spec = spec
        self.cache_key = spec.cache_key
        self.object_key = spec.object_key
        self.base_bytes = spec.range[0] if spec.range else 0
        self.length_bytes: int | None = (spec.range[1] - spec.range[0]) if spec.range else None
        self.meta: ObjectMeta | None = None
        #: a body of unknown length: its metadata but the size, which the filler sets when the body ends
        self.pending_meta: ObjectMeta | None = None
        self.chunks: list[bytes] = []
        self.offsets: list[int] = []
        self.received_bytes = 0
        self.done = False
        self.error: EdgeError | None = None
        self.part: CachedPart | None = None
        self.not_modified = False
        self.probe_refused = False  # a probe's Range was unsatisfiable (an empty object): ask without Range
        self.upstream = ""
        self.pace = spec.pace
        self.purged = False  # set by a purge while in flight: the result is not stored
        self.borrowed = False  # answered from the edge's disk after waiting on the fill lock: stored in RAM only
        self._progress: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------ filler side
    def _notify(self) -> None:
        fut, self._progress = self._progress, asyncio.get_running_loop().create_future()
        fut.set_result(None)

    def _append(self, chunk: bytes) -> None:
        self.offsets.append(self.received_bytes)
        self.chunks.append(chunk)
        self.received_bytes += len(chunk)
        self._notify()

    def _finish(self, part: CachedPart | None, error: EdgeError | None) -> None:
        self.part, self.error, self.done = part, error, True
        self._notify()

    # ------------------------------------------------------------ waiter side
    async def _wait(self) -> None:
        await asyncio.wait((self._progress,))  # never cancels the shared future

    async def wait_meta(self) -> ObjectMeta:
        """The object's metadata as soon as the reply headers are in (raises the fill's error)."""
        while self.meta is None and not self.done:
            await self._wait()
        if self.meta is None or (self.error is not None and self.received_bytes == 0):
            raise self.error or UpstreamError("fill ended without an answer")
        return self.meta

    async def wait_done(self) -> CachedPart:
        while not self.done:
            await self._wait()
        if self.part is None:
            raise self.error or UpstreamError("fill failed")
        return self.part

    async def iter_range(self, start: int, end: int) -> AsyncIterator[memoryview]:
        """Bytes ``[start, end)`` of this part (relative to its base) as they arrive."""
        pos = start
        while pos < end:
            if pos < self.received_bytes:
                i = bisect.bisect_right(self.offsets, pos) - 1
                chunk, off = self.chunks[i], self.offsets[i]
                stop = min(end - off, len(chunk))
                yield memoryview(chunk)[pos - off:stop]
                pos = off + stop
            elif self.done:
                raise self.error or UpstreamError("fill ended early")
            else:
                await self._wait()
