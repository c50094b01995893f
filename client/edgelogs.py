"""The shell around `client.joined`: find the edges' access logs, read what a run added to them, wait
(bounded) for their batched lines, and build the report's ``joined`` section.

    offsets = note_offsets(globs)                 # before the sessions start: each file's size
    section = await collect(globs, offsets, sessions)   # after they end

The edges write their access logs in batches (``httpsem/buffered_log.py``: 0.5 s after a batch's first
line, or at 64 KiB), so right after a run the last lines may not be in the files yet. `collect` reads
the files (from the noted offsets: only what this run added, so a session id of an earlier run with
the same seed is not joined again) until every session's last request has its line, polling every
``poll_s`` for at most ``timeout_s`` (`IDLE_WAIT_S` when the files gained nothing at all: the edges do
not log there); then it gives up and says so in the section's ``note``.
"""
from __future__ import annotations

import asyncio
import glob
import os
import time
from typing import Any, Iterable, Sequence

from .joined import EdgeLine, JoinSession, join, joined_section, read_edge_logs, unflushed

__all__ = ["expand", "note_offsets", "collect", "FLUSH_WAIT_S"]

#: How long to wait for the edges' last batched lines (their flush interval is 0.5 s).
FLUSH_WAIT_S = 3.0
#: How long to wait when the files gained nothing at all since the start (two flush intervals).
IDLE_WAIT_S = 1.0


def expand(globs: Iterable[str]) -> list[str]:
    """The files the patterns name, sorted, each once (a plain path that does not exist is kept: it is
    reported as unreadable)."""
    out: dict[str, None] = {}
    for pattern in globs:
        found = sorted(glob.glob(os.path.expanduser(pattern)))
        if not found and not glob.has_magic(pattern):
            found = [pattern]
        out.update(dict.fromkeys(found))
    return list(out)


def note_offsets(globs: Iterable[str]) -> dict[str, int]:
    """Each log file's size now: the part of it written before the sessions start is not theirs."""
    offsets = {}
    for path in expand(globs):
        try:
            offsets[path] = os.path.getsize(path)
        except OSError:
            pass
    return offsets


async def collect(globs: Sequence[str], offsets: dict[str, int], sessions: Sequence[JoinSession], *,
                  timeout_s: float = FLUSH_WAIT_S, poll_s: float = 0.2,
                  segments: dict[str, Sequence[Any]] | None = None) -> dict[str, Any] | None:
    """The ``joined`` section for ``sessions`` (`client.joined.joined_section`); None when the patterns
    name no file."""
    sids = {s.session_id for s in sessions}
    started = time.monotonic()
    at = dict(offsets)  # where each file was read up to: a poll reads only what came since the last one
    by_path: dict[str, list[EdgeLine]] = {}
    read: dict[str, dict[str, Any]] = {}  # per file: the first poll's info, bytes and lines summed over polls
    while True:
        paths = expand(globs)
        if not paths:
            return None
        polled = await asyncio.to_thread(lambda: [(path, read_edge_logs([path], sids, at)) for path in paths])
        for path, (new, infos) in polled:
            by_path.setdefault(path, []).extend(new)
            f = infos[0]
            if "error" in f:
                read[path] = {**read.get(path, {}), **f}
                continue
            at[path] = f["from_byte"] + f["bytes"]
            old = read.get(path)
            read[path] = f if old is None or "error" in old else {**old, "bytes": old["bytes"] + f["bytes"],
                                                                    "lines": old["lines"] + f["lines"]}
        files = [read[p] for p in paths if p in read]
        lines = [line for p in paths for line in by_path.get(p, ())]  # file by file, as one whole read gives
        joined = [join(s, lines) for s in sessions]
        waiting = unflushed(joined)
        idle = not any(f.get("bytes") for f in files)
        waited = time.monotonic() - started
        if not waiting or waited >= timeout_s or (idle and waited >= min(IDLE_WAIT_S, timeout_s)):
            break
        await asyncio.sleep(poll_s)
    note = None
    if waiting and idle:
        note = ("the edge logs gained no line during the run: are the edges logging there (`vodstack edge "
                "--access-log FILE`; `--no-access-log` turns it off)?")
    elif waiting:
        note = (f"the edge logs held no line for the last request of {len(waiting)} of {len(sessions)} sessions "
                f"after {timeout_s:g} s (an edge that died loses its unwritten lines; CMCD must be on)")
    return joined_section(joined, files=files, note=note, segments=segments)
