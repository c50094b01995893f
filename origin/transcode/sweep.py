"""Leftovers of interrupted work: temporary files in storage and ingest work folders, and when each may go.

A write to local storage goes through a temporary file named after its writer
(``{root}/.vodstack-tmp/{hex}.{pid}.{host}.tmp``); an ingest works in a folder named after its
process (``vodstack-ingest-{title}-{pid}.{host}-{random}``). A process killed with SIGKILL
leaves them behind. ``leftover_reason`` decides, purely, whether one may be removed:

1. its writer still runs on this host: never (whatever its age);
2. its writer is known and no longer runs on this host: yes (``WRITER_GONE``);
3. the writer cannot be known here (another host, or a name from an older version that did not
   say): once it is older than the grace (``OLDER_THAN_GRACE``).

A work folder kept on purpose (``--keep-work``) holds a ``.vodstack-kept`` file and is never
removed. The next ingest and ``vodstack gc`` run these sweeps.
"""
from __future__ import annotations

import enum
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from origin.storage.local import TempLeftover, host_name

log = logging.getLogger(__name__)

#: How long a leftover whose writer cannot be checked is left alone (and ``vodstack gc``'s default grace).
DEFAULT_GRACE_S = 86400.0
WORK_PREFIX = "vodstack-ingest-"
KEPT_MARKER = ".vodstack-kept"
_WORK_NAME = re.compile(rf"^{WORK_PREFIX}.+-(?P<pid>[0-9]+)\.(?P<host>[A-Za-z0-9-]+)-[a-z0-9_]+$")


class LeftoverReason(enum.Enum):
    """Why a leftover may be removed."""

    WRITER_GONE = "writer_gone"  #: the process that wrote it no longer runs on this host
    OLDER_THAN_GRACE = "older_than_grace"  #: its writer cannot be checked here, and it is older than the grace


@dataclass(frozen=True, kw_only=True)
class Leftover:
    """A temporary file or work folder, as the sweep sees it."""

    path: str
    modified_s: float  #: POSIX seconds
    writer_alive: bool | None  #: None: cannot be known here (another host, or an unnamed writer)


def leftover_reason(item: Leftover, now_s: float, grace_s: float) -> LeftoverReason | None:
    """Why ``item`` may be removed now, or None to keep it (rules in the module docstring)."""
    if item.writer_alive is True:
        return None
    if item.writer_alive is False:
        return LeftoverReason.WRITER_GONE
    if now_s - item.modified_s > grace_s:
        return LeftoverReason.OLDER_THAN_GRACE
    return None


@dataclass(frozen=True, kw_only=True)
class RemovedLeftover:
    path: str
    reason: LeftoverReason


def writer_alive(pid: int | None, host: str | None) -> bool | None:
    """Whether process ``pid`` on ``host`` runs (None: not this host, or no pid)."""
    if pid is None or host is None or host != host_name():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


# -- temporary files in storage ------------------------------------------------------------------

@runtime_checkable
class HoldsTempFiles(Protocol):
    """A storage backend that writes through temporary files of its own (``LocalStorage``)."""

    async def temp_leftovers(self, prefixes: list[str] | None = None) -> list[TempLeftover]: ...

    async def remove_temp(self, leftover: TempLeftover) -> None: ...


async def sweep_temp_leftovers(storage: object, *, titles: list[str] | None = None, now_s: float | None = None,
                               grace_s: float = DEFAULT_GRACE_S, dry_run: bool = False) -> list[RemovedLeftover]:
    """Remove the temporary files of dead writers from ``storage`` (a backend without any: nothing):
    the temp folder's, and old-style ones in the folders of ``titles`` (None: the whole storage)."""
    if not isinstance(storage, HoldsTempFiles):
        return []
    now = time.time() if now_s is None else now_s
    removed = []
    prefixes = None if titles is None else [f"{t}/" for t in titles]
    for temp in await storage.temp_leftovers(prefixes):
        reason = leftover_reason(Leftover(path=temp.path, modified_s=temp.modified_s,
                                          writer_alive=writer_alive(temp.writer_pid, temp.writer_host)), now, grace_s)
        if reason is None:
            continue
        if not dry_run:
            await storage.remove_temp(temp)
        removed.append(RemovedLeftover(path=temp.path, reason=reason))
    return removed


# -- ingest work folders ---------------------------------------------------------------------------

def work_folder_prefix(title: str) -> str:
    """The name an ingest's work folder starts with (``tempfile.mkdtemp`` adds a random end)."""
    return f"{WORK_PREFIX}{title}-{os.getpid()}.{host_name()}-"


def keep_work_folder(path: str) -> None:
    """Mark a work folder as kept on purpose (``--keep-work``): sweeps never remove it."""
    with open(os.path.join(path, KEPT_MARKER), "w", encoding="utf-8") as f:
        f.write("kept by --keep-work\n")


def work_folders(work_dir: str | None) -> list[Leftover]:
    """The ingest work folders under ``work_dir`` (None: the system temp folder), kept ones left out."""
    base = work_dir or tempfile.gettempdir()
    try:
        entries = list(os.scandir(base))
    except OSError:
        return []
    found = []
    for e in sorted(entries, key=lambda e: e.name):
        if not e.name.startswith(WORK_PREFIX):
            continue
        try:
            if not e.is_dir(follow_symlinks=False) or os.path.exists(os.path.join(e.path, KEPT_MARKER)):
                continue
            modified_s = e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        m = _WORK_NAME.match(e.name)
        alive = writer_alive(int(m["pid"]), m["host"]) if m else None
        found.append(Leftover(path=e.path, modified_s=modified_s, writer_alive=alive))
    return found


def sweep_work_folders(work_dir: str | None, *, now_s: float | None = None, grace_s: float = DEFAULT_GRACE_S,
                       dry_run: bool = False) -> list[RemovedLeftover]:
    """Remove the work folders of ingests that died without cleaning up (blocking)."""
    now = time.time() if now_s is None else now_s
    removed = []
    for folder in work_folders(work_dir):
        reason = leftover_reason(folder, now, grace_s)
        if reason is None:
            continue
        if not dry_run:
            shutil.rmtree(folder.path, ignore_errors=True)
        log.info("removed an abandoned ingest work folder", extra={"kv": {"path": folder.path,
                                                                         "reason": reason.value}})
        removed.append(RemovedLeftover(path=folder.path, reason=reason))
    return removed
