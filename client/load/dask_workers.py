"""Load workers as tasks on a Dask cluster (``vodstack load --scheduler tcp://HOST:PORT``).

    cluster = await DaskCluster.connect("tcp://10.0.0.5:8786")   # LoadError: unreachable, no workers
    cfg = cluster.sized(cfg)              # --workers, or one load worker per Dask worker
    w = cluster.worker(k, sessions)       # what `runner.WorkerProcess` is, on the cluster
    ...
    await cluster.close()

Each load worker is one Dask task, `run_load_worker` (top level: pickled by name, so the Dask
workers need vodstack installed), pinned to one Dask worker (``workers=[address]``,
``allow_other_workers=False``): load workers are spread over the cluster's workers first and
their threads second, and a task whose worker dies is never run a second time elsewhere (its
sessions would play twice). The task starts the very process a local run starts,
``python -m client.load.worker`` (its own event loop, uvloop or asyncio as ``cfg.loop`` says), as
its child, hands it the job and relays: the child's lines go back to the runner, ``go`` and
``stop`` go down to it. The sessions so never share an interpreter with the Dask worker's threads
(its event loop, heartbeats, statistical profiler): measured with them in the task's own thread,
a session cost 0.230 % of a core against a local worker's 0.193 % (bench/load_capacity/run.py
--scheduler, 400 sessions); the child is killed with the task (``PR_SET_PDEATHSIG``, and on any
way out of the task). The ``cpu_s`` of the child's stats gets the Dask worker process's own CPU
since the task began added, so the report's CPU per session is the load worker's whole cost.

**Messages back** (ready, session, stats, done) go through the scheduler's event broker: the
session loop's ``emit`` only appends to a deque; a relay thread takes what is there every
``RELAY_INTERVAL_S`` (and at least every ``HEARTBEAT_S``, empty) as one numbered batch and hands it
to ``Worker.log_event`` (no round trip: the worker's batched stream to the scheduler, which pushes
it down the client's stream; ``Client.subscribe_topic`` calls the handler in arrival order). Both
streams are single TCP connections, so batches arrive in order; the numbers make a loss visible
(a gap is a reported worker problem) and the task's return value says how many it sent and holds
the ``done`` message as a backstop. Measured on this machine (1 Dask worker, 1000 messages/s of
~1 KB for 8 s, batched every 50 ms): ``log_event`` 8000/8000 in order, emit-to-handler latency p50
30 ms, p99 54 ms; ``distributed.Queue`` (a blocking ``put`` per batch, the runner polling ``get``)
8000/8000, p50 29 ms, p99 64 ms. Equal speed; ``log_event`` was chosen because it is pushed: no
round trip per batch holding up the relay, no loop of ``get`` calls on the runner. Its cost: the
scheduler keeps the last ``distributed.admin.low-level-log-length`` (1000) events of a topic. The topic is the runner's client id, which the scheduler drops
``distributed.scheduler.events-cleanup-delay`` (1 h) after the runner leaves; other events it logs
under that id (``update-graph``, ``cancel``) are ignored here. A batch names its load worker
``load_worker``: the scheduler overwrites a dict event's ``worker`` with the Dask worker's address.

**Control** (``go``, ``stop``) goes the other way through one ``distributed.Queue`` per load
worker, read off the session loop by a watcher thread (a ``get`` that waits up to ``CONTROL_POLL_S``
on the scheduler; an item that comes as the wait times out stays in the queue for the next one).
Between polls the watcher checks that the task is still wanted: if the runner went away
(its client closed, the task released) the sessions stop as a worker process's do when its parent
dies.

**Clock.** A worker on another host has another monotonic clock, so ``go`` carries no time of the
runner's: it says ``start_in_s`` and the task starts the plan's clock at its own monotonic now plus
that. Sessions and stats are on each worker's own clock from its start; between the runner's clock
(the timeline, the chaos schedule) and a worker's lies the one-way latency of the go message (a
few ms on a LAN).

**Failures** are bounded: the scheduler unreachable within ``CONNECT_TIMEOUT_S``, a cluster with no
worker after ``NO_WORKERS_WAIT_S``, or fewer worker threads than ``--workers``: one `LoadError`.
A task that raises, a worker that leaves the cluster (checked every ``WATCH_S``), or a task silent
for ``SILENT_LIMIT_S`` after its ready message: the load worker is finished, with the reason as a
worker problem in the report.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from typing import Any, Callable

from .config import LoadConfig
from .errors import LoadError
from .plan import PlannedSession

__all__ = ["DaskCluster", "DaskWorker", "run_load_worker"]

log = logging.getLogger(__name__)

RELAY_INTERVAL_S = 0.1  #: how often the relay thread sends what the sessions emitted
HEARTBEAT_S = 1.0  #: the relay sends a batch at least this often, empty if need be
CONTROL_POLL_S = 1.0  #: the watcher's wait for a control message, between checks that the task is wanted
CHILD_STOP_S = 15.0  #: a released task's child is given this long to stop its sessions, then killed
CONNECT_TIMEOUT_S = 10.0
NO_WORKERS_WAIT_S = 5.0  #: a cluster that has no worker yet is given this long to get one
WATCH_S = 1.0  #: how often the runner checks that each task's worker is still in the cluster
SILENT_LIMIT_S = 15.0  #: a task heard nothing from for this long after its ready message is lost
IN_FLIGHT_WAIT_S = 5.0  #: after a task returned, how long its last batches are waited for
SEND_TIMEOUT_S = 10.0
STOP_GRACE_S = 15.0
#: the key that marks this module's batches and task results among the topic's other events
MARK = "vodstack_load"


# --- on the Dask worker ------------------------------------------------------------------------


class _Relay(threading.Thread):
    """Takes the emitted messages off the session loop and publishes them in numbered batches."""

    def __init__(self, publish: Callable[[dict[str, Any]], None], worker: int) -> None:
        super().__init__(name=f"vodstack-load-relay-{worker}", daemon=True)
        self._publish = publish
        self._worker = worker
        self._box: collections.deque[dict[str, Any]] = collections.deque()
        self._ended = threading.Event()
        self.sent = 0
        self.done: dict[str, Any] | None = None

    def emit(self, doc: dict[str, Any]) -> None:  # on the session loop: never blocks
        self._box.append(doc)

    def run(self) -> None:
        last = 0.0
        while True:
            ended = self._ended.wait(RELAY_INTERVAL_S)
            batch = []
            while self._box:
                batch.append(self._box.popleft())
            now = time.monotonic()
            if batch or now - last >= HEARTBEAT_S:
                for doc in batch:
                    if doc.get("type") == "done":
                        self.done = doc
                try:
                    self._publish({MARK: True, "load_worker": self._worker, "seq": self.sent, "messages": batch})
                except Exception:  # noqa: BLE001 - a batch that cannot go: the runner sees the gap in seq
                    log.exception("load messages not sent", extra={"kv": {"worker": self._worker,
                                                                         "messages": len(batch)}})
                self.sent += 1
                last = now
            if ended and not self._box:
                return

    def close(self) -> None:
        self._ended.set()
        self.join()


def _watch_control(control: Any, deliver: Callable[[dict[str, Any]], None], ended: threading.Event,
                   wanted: Callable[[], bool]) -> None:
    """The watcher thread: control messages to the session loop until ``stop`` or the task's end."""
    while not ended.is_set():
        msg: dict[str, Any] | None
        try:
            msg = control.get(timeout=CONTROL_POLL_S)
        except TimeoutError:
            msg = None
        except Exception as e:  # noqa: BLE001 - the scheduler or the queue gone: nobody can say go or stop
            msg = {"type": "stop", "why": f"control queue: {e!r}"}
        if msg is None and not wanted():
            msg = {"type": "stop", "why": "the runner released the task"}
        if msg is not None:
            deliver(msg)
            if msg.get("type") == "stop":
                return


def _read_child(child: subprocess.Popen[bytes], emit: Callable[[dict[str, Any]], None], base_cpu_s: float,
                extra: dict[str, Any], tail: collections.deque[str]) -> None:
    """The reader thread: the child's JSON lines to the relay. Its ``cpu_s`` (stats, done) gets this
    Dask worker process's own CPU since the task began added (the relay, the Dask worker's threads):
    the load worker's whole cost, as a local worker process's is."""
    assert child.stdout is not None
    for raw in child.stdout:
        try:
            msg = json.loads(raw)
        except ValueError:
            tail.append(raw.decode(errors="replace").rstrip())
            continue
        if isinstance(msg.get("cpu_s"), (int, float)):
            msg["cpu_s"] = round(msg["cpu_s"] + time.process_time() - base_cpu_s, 3)
        if msg.get("type") == "ready":
            msg.update(extra)
        emit(msg)


def _pump_stderr(child: subprocess.Popen[bytes], tail: collections.deque[str]) -> None:
    assert child.stderr is not None
    for raw in child.stderr:
        line = raw.decode(errors="replace").rstrip()
        if line:
            tail.append(line)


def _set_pdeathsig() -> None:  # in the child, between fork and exec: SIGTERM when the task's thread goes
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_load_worker(job: dict[str, Any], control_name: str, topic: str, loop: str,
                    log_level: str = "error") -> dict[str, Any]:
    """The Dask task of one load worker (module docstring); returns how many batches it sent, its
    ``done`` message, the child's exit code and the last lines of its stderr."""
    from distributed import Queue, get_worker

    dask_worker = get_worker()
    key = dask_worker.get_current_task()

    def wanted() -> bool:
        ts = dask_worker.state.tasks.get(key)
        return ts is not None and ts.state in ("executing", "long-running")

    index = int(job["worker"])
    base_cpu_s = time.process_time()
    relay = _Relay(lambda doc: dask_worker.log_event(topic, doc), index)
    control = Queue(control_name)
    ended = threading.Event()
    tail: collections.deque[str] = collections.deque(maxlen=20)
    extra = {"host": socket.gethostname(), "dask_worker": dask_worker.address}
    child = subprocess.Popen([sys.executable, "-m", "client.load.worker", "--loop", loop, "--log-level", log_level],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True, preexec_fn=_set_pdeathsig)
    assert child.stdin is not None
    stdin = child.stdin
    lock = threading.Lock()

    def deliver(msg: dict[str, Any]) -> None:  # from the watcher thread
        with lock, contextlib.suppress(OSError, ValueError):  # the child gone: its exit says the rest
            stdin.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
            stdin.flush()

    threads = [threading.Thread(target=_read_child, args=(child, relay.emit, base_cpu_s, extra, tail), daemon=True),
               threading.Thread(target=_pump_stderr, args=(child, tail), daemon=True),
               threading.Thread(target=_watch_control, args=(control, deliver, ended, wanted), daemon=True,
                                name=f"vodstack-load-control-{index}")]
    relay.start()
    for t in threads:
        t.start()
    try:
        deliver(job)
        while child.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(CONTROL_POLL_S)
            if not wanted() and child.poll() is None:  # the runner released the task: the sessions stop
                deliver({"type": "stop"})
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(CHILD_STOP_S)
                break
    finally:
        ended.set()
        if child.poll() is None:
            child.kill()
            child.wait()
        with contextlib.suppress(OSError):
            stdin.close()
        for t in threads:
            t.join(CONTROL_POLL_S + 5.0)
        relay.close()
    return {MARK: True, "load_worker": index, "batches": relay.sent, "done": relay.done,
            "exit_code": child.returncode, "stderr_tail": list(tail)[-3:]}


# --- on the runner -----------------------------------------------------------------------------


def _slots(workers: dict[str, Any]) -> list[str]:
    """One address per worker thread: every worker's first thread, then every worker's second, ..."""
    nthreads = {addr: max(int(info.get("nthreads") or 1), 1) for addr, info in sorted(workers.items())}
    most = max(nthreads.values(), default=0)
    return [addr for k in range(most) for addr, n in nthreads.items() if n > k]


class DaskCluster:
    """One run's connection to a Dask scheduler: the asynchronous client, the cluster's worker
    threads, and the routing of the tasks' batches to their `DaskWorker`."""

    def __init__(self, client: Any, address: str, workers: dict[str, Any]) -> None:
        self.client = client
        self.address = address
        self.n_workers = len(workers)
        self.slots = _slots(workers)
        self.run_id = uuid.uuid4().hex[:12]
        self.topic = str(client.id)
        self.workers: dict[int, DaskWorker] = {}
        self._live: set[str] = set(workers)
        self._live_at = time.monotonic()
        client.subscribe_topic(self.topic, self._on_event)

    @classmethod
    async def connect(cls, address: str) -> DaskCluster:
        """Connect (`LoadError` if the scheduler cannot be reached or has no worker)."""
        try:
            from distributed import Client
        except ImportError:
            raise LoadError("--scheduler needs the optional extra: pip install 'vodstack[dask]'") from None
        addr = address if "://" in address else f"tcp://{address}"
        try:
            client = await Client(addr, asynchronous=True, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as e:
            raise LoadError(f"cannot reach the Dask scheduler at {addr}: {e}") from None
        try:
            workers = await cls._workers_of(client)
            if not workers:
                with contextlib.suppress(TimeoutError, OSError):
                    await client.wait_for_workers(1, timeout=NO_WORKERS_WAIT_S)
                workers = await cls._workers_of(client)
            if not workers:
                raise LoadError(f"the Dask cluster at {addr} has no workers (start some: dask worker {addr} "
                                "--nthreads 1)")
            return cls(client, addr, workers)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), CONNECT_TIMEOUT_S)
            raise

    @staticmethod
    async def _workers_of(client: Any) -> dict[str, Any]:
        info = await asyncio.wait_for(client.scheduler.identity(n_workers=-1), CONNECT_TIMEOUT_S)
        return dict(info.get("workers") or {})

    def sized(self, cfg: LoadConfig) -> LoadConfig:
        """``cfg`` with its worker count: as given, or (0) one per Dask worker, at most one per session."""
        n = cfg.workers or min(self.n_workers, cfg.players)
        if n > len(self.slots):
            raise LoadError(f"--workers {n}: the Dask cluster at {self.address} has {len(self.slots)} worker "
                            f"thread(s), and each load worker takes one")
        return replace(cfg, workers=n)

    def worker(self, index: int, sessions: list[PlannedSession]) -> DaskWorker:
        w = DaskWorker(self, index, sessions, self.slots[index])
        self.workers[index] = w
        return w

    def _on_event(self, event: Any) -> None:
        _, doc = event
        if isinstance(doc, dict) and doc.get(MARK):
            w = self.workers.get(int(doc.get("load_worker", -1)))
            if w is not None:
                w.on_batch(doc)

    async def still_in_cluster(self, address: str) -> bool:
        """Whether ``address`` is one of the scheduler's workers (read at most once a ``WATCH_S``)."""
        if time.monotonic() - self._live_at >= WATCH_S:
            self._live_at = time.monotonic()
            with contextlib.suppress(OSError, TimeoutError):
                self._live = set(await self._workers_of(self.client))
        return address in self._live

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.close(), CONNECT_TIMEOUT_S)


class DaskWorker:
    """One load worker as a Dask task, with the interface of `runner.WorkerProcess`."""

    def __init__(self, cluster: DaskCluster, index: int, sessions: list[PlannedSession], address: str) -> None:
        self.cluster = cluster
        self.index = index
        self.sessions = sessions
        self.address = address
        self.tail: collections.deque[str] = collections.deque(maxlen=20)
        self.ready = asyncio.Event()
        self.finished = asyncio.Event()
        self.done_msg: dict[str, Any] | None = None
        self.future: Any = None
        self.control: Any = None
        self.tasks: list[asyncio.Task[None]] = []
        self._on_message: Callable[[dict[str, Any]], None] = lambda msg: None
        self._next_seq = 0
        self._lost_batches = 0
        self._heard_at = time.monotonic()

    async def start(self, cfg: LoadConfig, job: dict[str, Any], on_message: Any) -> None:
        from distributed import Queue

        self._on_message = on_message
        name = f"vodstack-load-{self.cluster.run_id}-{self.index}"
        self.control = await Queue(f"{name}-control", client=self.cluster.client)
        self.future = self.cluster.client.submit(
            run_load_worker, job, self.control.name, self.cluster.topic, cfg.loop, cfg.worker_log_level, key=name,
            workers=[self.address], allow_other_workers=False, pure=False)
        self.tail.append(f"its Dask task went to {self.address}")
        self.tasks = [asyncio.create_task(self._watch_task()), asyncio.create_task(self._watchdog())]

    def on_batch(self, doc: dict[str, Any]) -> None:
        if self.finished.is_set():
            return
        seq = int(doc["seq"])
        if seq != self._next_seq:
            self._lost_batches += max(seq - self._next_seq, 1)
            self.tail.append(f"message batch {seq} arrived where {self._next_seq} was due")
        self._next_seq = seq + 1
        self._heard_at = time.monotonic()
        for msg in doc["messages"]:
            self._deliver(msg)

    def _deliver(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "ready":
            self.ready.set()
        elif msg.get("type") == "done":
            self.done_msg = msg
        self._on_message(msg)

    async def send(self, doc: dict[str, Any]) -> None:
        """``go`` (its ``t0`` becomes ``start_in_s``: the module docstring's clock note) or ``stop``."""
        if self.control is None:
            return
        if doc.get("type") == "go" and "t0" in doc:
            doc = {"type": "go", "start_in_s": max(float(doc["t0"]) - time.monotonic(), 0.0)}
        try:
            await asyncio.wait_for(self.control.put(doc), SEND_TIMEOUT_S)
        except (OSError, TimeoutError, RuntimeError) as e:
            self.tail.append(f"could not send {doc.get('type')} to its Dask task: {e!r}")

    async def _watch_task(self) -> None:
        try:
            result = await self.future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            if not self.finished.is_set():
                self.tail.append("its Dask task was cancelled")
        except Exception as e:  # noqa: BLE001 - whatever the task raised is this worker's problem, reported
            if not self.finished.is_set():
                self.tail.append(f"its Dask task failed: {type(e).__name__}: {e}"[:500])
        else:
            sent = int(result.get("batches", 0)) if isinstance(result, dict) else 0
            deadline = time.monotonic() + IN_FLIGHT_WAIT_S
            while self._next_seq < sent and time.monotonic() < deadline and not self.finished.is_set():
                await asyncio.sleep(0.02)
            if self._next_seq < sent:
                self._lost_batches += sent - self._next_seq
                self.tail.append(f"{sent - self._next_seq} of its {sent} message batches never arrived")
            done = result.get("done") if isinstance(result, dict) else None
            if self.done_msg is None and done is not None and not self.finished.is_set():
                self._deliver(done)
            if done is None and isinstance(result, dict):
                self.tail.append(f"its load worker process exited with code {result.get('exit_code')}: "
                                 + " / ".join(result.get("stderr_tail") or ()))
        finally:
            self.finished.set()

    async def _watchdog(self) -> None:
        while not self.finished.is_set():
            await asyncio.sleep(WATCH_S)
            if self.finished.is_set():
                return
            if not await self.cluster.still_in_cluster(self.address):
                await self._lose(f"its Dask worker {self.address} left the cluster")
            elif self.ready.is_set() and time.monotonic() - self._heard_at > SILENT_LIMIT_S:
                await self._lose(f"no message from its Dask task on {self.address} for {SILENT_LIMIT_S:g} s")

    async def _lose(self, why: str) -> None:
        self.tail.append(why)
        self.finished.set()
        await self._cancel()

    async def _cancel(self) -> None:
        if self.future is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.future.cancel(), SEND_TIMEOUT_S)

    def problem(self) -> str | None:
        """What went wrong with this load worker, for the report (None: nothing)."""
        if self.done_msg is not None and not self._lost_batches:
            return None
        what = "ended without finishing" if self.done_msg is None else "lost messages"
        return f"worker {self.index} (a Dask task on {self.address}) {what}: " + " / ".join(list(self.tail)[-3:])

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Ask it to stop (its sessions become ``cut``), wait ``grace_s``, then cancel the task."""
        if self.future is None:
            return
        if not self.finished.is_set():
            await self.send({"type": "stop"})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.finished.wait(), grace_s)
        if not self.finished.is_set():
            await self._lose(f"its Dask task did not stop within {grace_s:g} s: cancelled")
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
