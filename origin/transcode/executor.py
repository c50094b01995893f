"""Executors: where encode, merge, validate and package tasks run.

A ``TaskExecutor`` is shaped like ``concurrent.futures.Executor`` (``submit(fn, *args)`` returns a
``concurrent.futures.Future``; ``shutdown(cancel_futures=...)``) and says how many tasks it runs at
once (``workers``). Tasks are top-level functions of frozen dataclasses, so they pickle.

- ``local`` (default): a thread pool of ``jobs`` workers (default: the machine's cores); each task
  mostly waits on its own ffmpeg process, so threads are enough.
- ``dask://HOST:PORT`` (or ``tcp://HOST:PORT``): the very same tasks on a Dask cluster (optional
  extra ``vodstack[dask]``). Workers must see the source and the work folder under the same paths
  (one machine, or a shared filesystem), and have ffmpeg at the same path (or ``$VODSTACK_FFMPEG``).
- ``dask://local``: starts a ``distributed.LocalCluster`` of ``jobs`` single-threaded worker
  processes for the run (handy to try the Dask path on one machine).
"""
from __future__ import annotations

import concurrent.futures as cf
import os
from typing import Any, Callable, Protocol

from .errors import IngestError


class TaskExecutor(Protocol):
    workers: int
    description: str

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class LocalExecutor:
    def __init__(self, jobs: int) -> None:
        self.workers = jobs
        self.description = f"local pool of {jobs}"
        self._pool = cf.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ingest")

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        return self._pool.submit(fn, *args)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


class DaskExecutor:
    """Bridges ``distributed`` futures to ``concurrent.futures`` ones."""

    def __init__(self, address: str, jobs: int) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise IngestError("--executor dask://... needs the optional extra: pip install 'vodstack[dask]'") from None
        self._cluster = None
        if address == "local":
            self._cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                         dashboard_address=None)
            address = self._cluster.scheduler_address
        elif "://" not in address:
            address = f"tcp://{address}"
        try:
            self._client = Client(address, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError) as e:
            if self._cluster is not None:
                self._cluster.close()
            raise IngestError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        info = self._client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
        self.description = f"dask {address} ({self.workers} worker threads)"
        self._pending: set[Any] = set()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        bridge: cf.Future = cf.Future()
        dask_future = self._client.submit(fn, *args, pure=False)
        self._pending.add(dask_future)

        def done(f: Any) -> None:
            self._pending.discard(f)
            if bridge.cancelled():
                return
            try:
                if f.status == "finished":
                    bridge.set_result(f.result())
                elif f.status == "cancelled":
                    bridge.cancel()
                else:
                    bridge.set_exception(f.exception())
            except Exception as e:  # noqa: BLE001 - the task's own error travels to the caller
                if not bridge.done():
                    bridge.set_exception(e)

        dask_future.add_done_callback(done)
        return bridge

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures and self._pending:
            self._client.cancel(list(self._pending))
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def open_executor(spec: str = "local", jobs: int | None = None) -> TaskExecutor:
    jobs = jobs or default_jobs()
    if spec in ("", "local"):
        return LocalExecutor(jobs)
    for prefix in ("dask://", "tcp://"):
        if spec.startswith(prefix):
            return DaskExecutor(spec[len("dask://"):] if prefix == "dask://" else spec, jobs)
    raise IngestError(f"unknown executor {spec!r} (use local, dask://HOST:PORT or dask://local)")
