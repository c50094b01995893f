"""Executors: where encode, merge, validate and package tasks run, and how they are all stopped.

A ``TaskExecutor`` takes tasks with ``submit(fn, *args)`` (a ``concurrent.futures.Future`` back),
says how many it runs at once (``workers``), stops them all with ``cancel()`` and lets go of its
resources with ``close()``. Tasks are top-level functions of frozen dataclasses, so they pickle.

- ``local`` (default): a thread pool of ``jobs`` workers (default: the machine's cores); each task
  mostly waits on its own ffmpeg process, so threads are enough.
- ``dask://HOST:PORT`` (or ``tcp://HOST:PORT``): the very same tasks on a Dask cluster (optional
  extra ``vodstack[dask]``). Workers must see the source and the work folder under the same paths
  (one machine, or a shared filesystem), and have ffmpeg at the same path (or ``$VODSTACK_FFMPEG``).
- ``dask://local``: starts a ``distributed.LocalCluster`` of ``jobs`` single-threaded worker
  processes for the run (handy to try the Dask path on one machine).

Cancellation is the same for both: every task runs inside ``ffmpeg.cancel_scope(cancel_marker)``
(``run_task``), so its ffmpeg children are watched in short polls; ``cancel()`` writes the marker
file (in the work folder, which Dask workers see too) and waits until the tasks have returned:
queued ones never start an ffmpeg, running ones kill their ffmpeg's process group. A file rather
than a ``distributed.Event``: one mechanism for threads and for workers, no scheduler round trip
per poll, and it still works while the client is shutting down. Cancelling a Dask future alone
does not stop a task that already runs, hence the marker.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, TypeVar

from .errors import IngestError, TaskCancelled
from .ffmpeg import cancel_scope, request_cancel

R = TypeVar("R")

log = logging.getLogger(__name__)
#: name of the cancel marker inside the work folder
CANCEL_MARKER = "CANCELLED"
#: the longest ``cancel()`` waits for Dask tasks to return (each sees the marker within a poll;
#: a worker that does not see the work folder never will)
DASK_CANCEL_WAIT_S = 30.0
#: while waiting, how often ``cancel()`` checks that the cluster still has workers
CANCEL_CHECK_S = 0.5


class TaskExecutor(Protocol):
    workers: int
    description: str

    def submit(self, fn: Callable[..., R], /, *args: Any) -> cf.Future[R]: ...

    def cancel(self) -> None:
        """Stop every task (queued ones never start, running ones kill their ffmpeg); return once
        none runs any more."""

    def close(self) -> None:
        """Release the pool or the cluster connection (after the tasks are done or cancelled)."""


def run_task(cancel_marker: str, fn: Callable[..., R], *args: Any) -> R:
    """What every executor actually runs: ``fn(*args)`` as a task that stops when its ingest is
    cancelled (top level, so Dask pickles it by name)."""
    with cancel_scope(cancel_marker):
        return fn(*args)


@dataclass(frozen=True)
class Cancelled:
    """What a Dask task returns when its ingest is cancelled (its ffmpeg killed): returned, not
    raised, so workers do not log an ordinary stop as "Compute Failed" with a traceback."""

    message: str


def run_dask_task(cancel_marker: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``run_task`` on a Dask worker: ``Cancelled`` instead of raising ``TaskCancelled``."""
    try:
        return run_task(cancel_marker, fn, *args)
    except TaskCancelled as e:
        return Cancelled(str(e))


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class LocalExecutor:
    def __init__(self, jobs: int, cancel_marker: str) -> None:
        self.workers = jobs
        self.description = f"local pool of {jobs}"
        self._marker = cancel_marker
        self._pool = cf.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ingest")

    def submit(self, fn: Callable[..., R], /, *args: Any) -> cf.Future[R]:
        return self._pool.submit(run_task, self._marker, fn, *args)

    def cancel(self) -> None:
        request_cancel(self._marker)
        # running tasks see the marker within a poll, kill their ffmpeg and return
        self._pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class DaskExecutor:
    """Bridges ``distributed`` futures to ``concurrent.futures`` ones."""

    def __init__(self, address: str, jobs: int, cancel_marker: str) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise IngestError("--executor dask://... needs the optional extra: pip install 'vodstack[dask]'") from None
        self._marker = cancel_marker
        self._cluster = None
        if address == "local":
            self._cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                         dashboard_address=None, preload=[__name__])
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
        self._pending: set[Any] = set()  # dask futures whose task has not returned yet
        self._settled = threading.Condition()

    def submit(self, fn: Callable[..., R], /, *args: Any) -> cf.Future[R]:
        bridge: cf.Future[R] = cf.Future()
        dask_future = self._client.submit(run_dask_task, self._marker, fn, *args, pure=False)
        with self._settled:
            self._pending.add(dask_future)

        def done(f: Any) -> None:
            with self._settled:
                self._pending.discard(f)
                self._settled.notify_all()
            if bridge.cancelled():
                return
            try:
                if f.status == "finished":
                    result = f.result()
                    if isinstance(result, Cancelled):
                        bridge.set_exception(TaskCancelled(result.message))
                    else:
                        bridge.set_result(result)
                elif f.status == "cancelled":
                    bridge.cancel()
                else:
                    bridge.set_exception(f.exception())
            except Exception as e:  # noqa: BLE001 - the task's own error travels to the caller
                if not bridge.done():
                    bridge.set_exception(e)

        dask_future.add_done_callback(done)
        return bridge

    def cancel(self) -> None:
        request_cancel(self._marker)
        # queued tasks return at once, running ones after killing their ffmpeg (one poll); the
        # futures are left alone until then: a cancelled one reads as done while its task runs
        started_s = time.monotonic()
        reason = ""
        while True:
            with self._settled:
                self._settled.wait_for(lambda: not self._pending, timeout=CANCEL_CHECK_S)
                left = list(self._pending)
            if not left:
                break
            if time.monotonic() - started_s >= DASK_CANCEL_WAIT_S:
                reason = "timeout"
                break
            if not self._workers_left():  # killed by the same signal, say: nobody will finish them
                reason = "no workers"
                break
        if left:
            log.warning("dask tasks not seen returning after cancel", extra={"kv": {
                "tasks": len(left), "reason": reason, "waited_s": round(time.monotonic() - started_s, 1),
                "marker": self._marker}})
            self._client.cancel(left)

    def _workers_left(self) -> bool:
        try:
            return bool(self._client.nthreads())
        except Exception:  # noqa: BLE001 - a scheduler that cannot answer has no tasks to wait for either
            return False

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def dask_setup(worker: Any) -> None:
    """Preload of the ``dask://local`` workers (``distributed`` calls it in each worker process):
    they ignore SIGINT. A terminal's Ctrl-C reaches the whole foreground process group, workers
    included; the ingest stops their tasks itself (the marker) and closes the cluster after."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def open_executor(spec: str, jobs: int | None, *, cancel_marker: str) -> TaskExecutor:
    """The executor ``spec`` names; its tasks stop once ``cancel_marker`` (a path in the work
    folder) exists."""
    jobs = jobs or default_jobs()
    if spec in ("", "local"):
        return LocalExecutor(jobs, cancel_marker)
    for prefix in ("dask://", "tcp://"):
        if spec.startswith(prefix):
            return DaskExecutor(spec[len("dask://"):] if prefix == "dask://" else spec, jobs, cancel_marker)
    raise IngestError(f"unknown executor {spec!r} (use local, dask://HOST:PORT or dask://local)")
