"""One edge, several worker processes (``vodstack edge --workers N``): what the workers share.

The master, the sockets and the reload are ``serverkit/workers.py``'s; this module is what makes N
workers one edge rather than N edges on one port:

* **The disk tier** is one folder (``disk.py``: each worker owns the files of its slot and reads its
  siblings' committed parts on a miss).
* **One upstream fetch per object per edge** (:class:`FillLock`), as nginx's ``proxy_cache_lock``
  holds across its workers: before a worker fetches a part nobody here has, it takes
  ``{cache_dir}/locks/{h}.lock`` (``O_CREAT|O_EXCL``, holding the worker's pid); the other workers
  that want the part meanwhile wait for it to appear on disk (polling their siblings' sidecars) and
  read it from there. The lock is released once the part is committed to disk, or the fill failed
  (then a waiter fetches it itself). A lock whose holder died is broken; a waiter gives up waiting
  after ``fill_lock_timeout_s`` and fetches (as ``proxy_cache_lock_timeout``). Revalidations and a
  range request's first probe of an unknown object take no lock (each worker revalidates its own
  copy; see docs/edge.md).
* **Admin and metrics** (:class:`Siblings`): each worker also serves its app on an abstract unix
  socket named after the master's pid and its slot; ``/_/metrics`` and ``/_/health`` answered by any
  worker add up every worker's, ``/_/purge`` purges in all of them, and a prefill job is found in the
  worker that runs it. Heartbeats go from worker 0 only, with the whole edge's figures.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from serverkit.workers import WorkerRole

from .disk import pid_alive
from .objects import CachedPart

if TYPE_CHECKING:
    from .disk import DiskTier

log = logging.getLogger(__name__)

#: A sibling's own figures: the query that asks a worker for itself, not the whole edge.
LOCAL_QUERY = "worker=local"
LOCK_POLL_S = 0.01


class FillLock:
    """The cross-worker fill lock of one edge (module docstring)."""

    def __init__(self, cache_dir: Path, disk: DiskTier, timeout_s: float) -> None:
        self.dir = Path(cache_dir) / "locks"
        self.disk = disk
        self.timeout_s = timeout_s
        self.waited = 0      #: fills answered from a sibling's copy after waiting on its lock
        self.timed_out = 0   #: waits that gave up and fetched anyway
        self.broken = 0      #: locks of dead holders broken

    def stats(self) -> dict[str, int]:
        return {"waited": self.waited, "timed_out": self.timed_out, "broken": self.broken}

    def _path(self, cache_key: str) -> Path:
        return self.dir / f"{hashlib.sha256(cache_key.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}.lock"

    def _try_take(self, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except FileNotFoundError:
            self.dir.mkdir(parents=True, exist_ok=True)
            return self._try_take(path)
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True

    def _holder(self, path: Path) -> int | None:
        """The holder's pid; None when the lock is gone (0 while its holder is still writing its pid)."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError:
            return 0
        return int(text) if text.strip().isdigit() else 0

    async def _find(self, cache_key: str) -> CachedPart | None:
        """The part on this edge's disk: this worker's own (a fill of its own that ended while this request
        looked elsewhere, pending or written) or a sibling's committed copy."""
        return await self.disk.get(cache_key) or await self.disk.borrow(cache_key)

    async def acquire(self, cache_key: str) -> CachedPart | None:
        """Hold the lock for ``cache_key`` (None: fetch it, then :meth:`release`), or the part this edge's
        disk got while this worker waited (a sibling's or its own earlier fill's; nothing to release)."""
        path = self._path(cache_key)
        deadline = time.monotonic() + self.timeout_s
        while True:
            if self._try_take(path):
                part = await self._find(cache_key)  # committed between our last look and the take
                if part is not None:
                    self._drop(path)
                    self.waited += 1
                    return part
                return None
            holder = self._holder(path)
            if holder and holder != os.getpid() and not pid_alive(holder):
                self._drop(path)
                self.broken += 1
                log.warning("fill lock of a dead worker broken", extra={"kv": {"key": cache_key, "pid": holder}})
                continue
            await asyncio.sleep(LOCK_POLL_S)
            part = await self._find(cache_key)
            if part is not None:
                self.waited += 1
                return part
            if time.monotonic() >= deadline:
                self.timed_out += 1
                log.warning("fill lock wait timed out; fetching", extra={"kv": {"key": cache_key,
                                                                               "timeout_s": self.timeout_s}})
                return None

    async def release(self, cache_key: str) -> None:
        """After the fill: once its part is on disk (or its write failed), let the waiters look."""
        await self.disk.written(cache_key)
        self._drop(self._path(cache_key))

    def _drop(self, path: Path) -> None:
        """Remove the lock if this process holds it or its holder is dead (never one being taken: pid 0)."""
        holder = self._holder(path)
        if holder and (holder == os.getpid() or not pid_alive(holder)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def socket_name(master_pid: int, generation: int, slot: int) -> str:
    """The abstract unix socket (Linux: no file, gone with the process) of one worker of one master's
    generation (a reload's new workers start while the old ones still hold theirs)."""
    return f"\0vodstack-edge-{master_pid}-{generation}-{slot}"


class Siblings:
    """This worker's view of the others of its edge (module docstring)."""

    def __init__(self, role: WorkerRole, master_pid: int | None = None) -> None:
        self.role = role
        self.master_pid = os.getppid() if master_pid is None else master_pid
        self.session: aiohttp.ClientSession | None = None

    @property
    def others(self) -> list[int]:
        return [s for s in range(self.role.count) if s != self.role.slot]

    def _name(self, slot: int) -> str:
        return socket_name(self.master_pid, self.role.generation, slot)

    async def serve(self, runner: web.BaseRunner) -> web.UnixSite:
        """Serve this worker's app on its unix socket."""
        site = web.UnixSite(runner, self._name(self.role.slot))
        for attempt in range(50):  # a dead predecessor in the slot (same generation): its socket is closing
            try:
                await site.start()
                return site
            except OSError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        return site

    def _session(self, slot: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=self._name(slot)),
                                     timeout=aiohttp.ClientTimeout(total=5))

    async def ask(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                  json: Any = None) -> list[tuple[int, int, bytes]]:
        """``(slot, status, body)`` from every other worker that answered (one that did not is left out)."""
        sep = "&" if "?" in path else "?"

        async def one(slot: int) -> tuple[int, int, bytes] | None:
            try:
                async with self._session(slot) as s:
                    async with s.request(method, f"http://worker{path}{sep}{LOCAL_QUERY}", headers=headers,
                                         json=json) as r:
                        return slot, r.status, await r.read()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                log.warning("sibling worker did not answer", extra={"kv": {"slot": slot, "path": path,
                                                                          "error": type(e).__name__}})
                return None

        answers = await asyncio.gather(*(one(s) for s in self.others))
        return [a for a in answers if a is not None]


def is_local(request: web.Request) -> bool:
    """A sibling asking for this worker's own figures (or actions), not the whole edge's."""
    return request.query.get("worker") == "local"


# ---------------------------------------------------------------- adding up workers
_SUMMED_HEALTH = ("active_connections", "active_requests", "bytes_out_per_s", "ram_bytes", "ram_limit_bytes",
                  "disk_bytes", "disk_limit_bytes", "fills_in_flight", "requests")


def merge_health(own: dict[str, Any], others: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One edge's health from its workers': counts and bytes added up, fullness recomputed, the
    ratios weighted by bytes served; name, status, url and circuits are the answering worker's."""
    rows = [own, *others]
    out = dict(own)
    for k in _SUMMED_HEALTH:
        out[k] = sum(r.get(k, 0) or 0 for r in rows)
    out["ram_fullness"] = out["ram_bytes"] / out["ram_limit_bytes"] if out["ram_limit_bytes"] else 0.0
    out["disk_fullness"] = out["disk_bytes"] / out["disk_limit_bytes"] if out["disk_limit_bytes"] else 0.0
    served = [r.get("bytes_served", 0) or 0 for r in rows]
    total = sum(served)
    for k in ("byte_hit_ratio", "hit_ratio"):
        out[k] = sum(r.get(k, 0) * w for r, w in zip(rows, served)) / total if total else own.get(k, 0.0)
    out["bytes_served"] = total
    locks = [r["fill_lock"] for r in rows if isinstance(r.get("fill_lock"), dict)]
    if locks:
        out["fill_lock"] = {k: sum(int(lk.get(k, 0)) for lk in locks) for k in ("waited", "timed_out", "broken")}
    out["workers"] = len(rows)
    return out


def merge_metrics(texts: Iterable[str]) -> str:
    """Prometheus text of several workers as one: every sample added up by name and labels (``_created``:
    the earliest), the byte hit ratio recomputed from the summed bytes, and ``vodstack_edge_workers``."""
    families: dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}
    n = 0
    for text in texts:
        n += 1
        for fam in text_string_to_metric_families(text):
            _, _, samples = families.setdefault(fam.name, (fam.type, fam.documentation, {}))
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                if s.name.endswith("_created"):
                    samples[key] = min(samples.get(key, s.value), s.value)
                else:
                    samples[key] = samples.get(key, 0.0) + s.value
    served = families.get("vodstack_edge_served_bytes")
    ratio_family = families.get("vodstack_edge_byte_hit_ratio")
    if served is not None and ratio_family is not None:
        by_tier = {dict(labels).get("tier"): v for (name, labels), v in served[2].items() if name.endswith("_total")}
        total = sum(by_tier.values())
        hit = sum(by_tier.get(t, 0.0) for t in ("ram", "disk", "stale"))
        ratio_family[2].clear()
        ratio_family[2][("vodstack_edge_byte_hit_ratio", ())] = hit / total if total else 0.0
    families["vodstack_edge_workers"] = ("gauge", "Worker processes whose figures these are", {
        ("vodstack_edge_workers", ()): float(n)})
    lines: list[str] = []
    for name, (kind, doc, samples) in families.items():
        lines.append(f"# HELP {name} {_escape_help(doc)}")
        lines.append(f"# TYPE {name} {kind}")
        for (sname, labels), value in samples.items():
            label_text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
            number = floatToGoString(value)
            lines.append(f"{sname}{{{label_text}}} {number}" if labels else f"{sname} {number}")
    return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
