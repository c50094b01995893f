"""Finding and running ffmpeg: the one place the pipeline starts a subprocess (``run_child``).

The binary is, in order: an explicit path (``--ffmpeg``), ``$VODSTACK_FFMPEG``, the one shipped in
the ``imageio-ffmpeg`` wheel (ffmpeg 9 with libx264, libx265, SVT-AV1 and libvmaf).

Every child (encode, audio, merge, validate/VMAF, package, the ``-encoders`` probe) is started by
``run_child``, which owns its whole life:

- it runs in its own session and process group (``start_new_session``), at the task's ``nice``
  level, and gets SIGKILL if the thread that started it dies (Linux ``PR_SET_PDEATHSIG``: a
  SIGKILLed ingest, or a Dask worker that dies, leaves no encoder behind);
- it is waited on in short polls (``CANCEL_POLL_S``); between polls, a task running inside
  ``cancel_scope(marker)`` checks its ingest's cancel marker (a file in the work folder, which
  the workers of a Dask cluster see too) and stops once the marker exists or the work folder is
  gone: ``TaskCancelled``;
- whatever ends the wait other than the child's own exit (cancellation, ``timeout_s``, a
  ``KeyboardInterrupt`` in the thread waiting) kills its process group with SIGKILL and reaps
  it before the exception goes on. A child is never left running behind the call that started it.

Because its own group keeps a terminal's Ctrl-C away from ffmpeg, stopping it on a signal is the
ingest's job: the pipeline writes the marker and waits for its tasks (``executor.py``).
"""
from __future__ import annotations

import contextlib
import contextvars
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from functools import lru_cache
from typing import Iterator

from .errors import EncodeError, TaskCancelled

log = logging.getLogger(__name__)
STDERR_TAIL_LINES = 8
PR_SET_PDEATHSIG = 1
#: how often a waiting task looks at its cancel marker (a stat of one file)
CANCEL_POLL_S = 0.2

# Loaded in the parent: the child between fork and exec must not take the loader's locks.
try:
    _LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    _PRCTL = _LIBC.prctl if _LIBC is not None else None
except (OSError, AttributeError):
    _PRCTL = None

#: the cancel marker of the task running in this thread (None: not inside a cancellable task)
_CANCEL_MARKER: contextvars.ContextVar[str | None] = contextvars.ContextVar("cancel_marker", default=None)


def find_ffmpeg(explicit: str | None = None) -> str:
    """Absolute path of the ffmpeg to use."""
    candidate = explicit or os.environ.get("VODSTACK_FFMPEG")
    if candidate:
        path = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if not path:
            raise EncodeError(f"ffmpeg not found at {candidate!r}")
        return os.path.abspath(path)
    import imageio_ffmpeg

    exe: str = imageio_ffmpeg.get_ffmpeg_exe()  # imageio_ffmpeg has no type information
    return exe


@lru_cache(maxsize=8)
def capabilities(ffmpeg: str) -> frozenset[str]:
    """Encoder and filter names this ffmpeg has (``libx264``, ``libvmaf``...)."""
    names: set[str] = set()
    for what in ("-encoders", "-filters"):
        _, out, _ = run_child([ffmpeg, "-hide_banner", what], what=f"ffmpeg {what}")
        for line in out.decode("utf-8", "replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and not line.startswith(" ="):
                names.add(parts[1])
    return frozenset(names)


@contextlib.contextmanager
def cancel_scope(marker: str) -> Iterator[None]:
    """Run the block as a task of the ingest whose cancel marker is ``marker``: every child it
    starts is killed once the marker exists (or its folder is gone), and no new one starts."""
    token = _CANCEL_MARKER.set(marker)
    try:
        raise_if_cancelled(marker, "task")
        yield
    finally:
        _CANCEL_MARKER.reset(token)


def cancel_requested(marker: str) -> bool:
    """Has the ingest owning ``marker`` been cancelled? (the marker exists, or its work folder is gone)"""
    return os.path.exists(marker) or not os.path.isdir(os.path.dirname(marker))


def raise_if_cancelled(marker: str | None, what: str) -> None:
    if marker is None or not cancel_requested(marker):
        return
    work = os.path.dirname(marker)
    if os.path.isdir(work):
        raise TaskCancelled(f"{what}: cancelled, the ingest is stopping")
    raise TaskCancelled(f"{what}: cancelled, the work folder {work} is not there (removed, or not shared with "
                        f"this worker: {socket.gethostname()})")


def request_cancel(marker: str) -> None:
    """Write the cancel marker: every task of that ingest, here or on a Dask worker, stops."""
    try:
        with open(marker, "x", encoding="utf-8") as f:
            f.write(f"cancelled by pid {os.getpid()}\n")
    except FileExistsError:
        pass
    except FileNotFoundError:  # the work folder is gone: that cancels the tasks as well
        pass


def _child_setup(niceness: int) -> None:  # runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
    if niceness:
        try:
            os.nice(niceness)
        except OSError:
            pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group and reap the child. Only the thread that waits on the
    child calls this, before reaping it, so the group id cannot belong to another process yet."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def run_child(args: list[str], *, what: str, niceness: int = 0,
              timeout_s: float | None = None) -> tuple[int, bytes, bytes]:
    """Run ``args`` in its own process group; ``(exit code, stdout, stderr)`` once it exits.

    TaskCancelled if the task's cancel marker appears, EncodeError on ``timeout_s`` or if it cannot
    start: in every such case (and on any other exception while waiting) the child's process group
    has been killed and the child reaped before the exception leaves."""
    marker = _CANCEL_MARKER.get()
    raise_if_cancelled(marker, what)
    log.debug("child start", extra={"kv": {"task": what, "cmd": " ".join(args)}})
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=lambda: _child_setup(niceness))
    except OSError as e:
        raise EncodeError(f"{what}: cannot run {args[0]}: {e.strerror}") from None
    deadline_s = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=CANCEL_POLL_S)
                return proc.returncode, out, err
            except subprocess.TimeoutExpired:
                pass
            # checked after the child started too: a marker written while it started still stops it
            raise_if_cancelled(marker, what)
            if deadline_s is not None and time.monotonic() >= deadline_s:
                raise EncodeError(f"{what}: ffmpeg timed out after {timeout_s:.0f} s")
    finally:
        if proc.returncode is None:
            _kill_group(proc)


def run_ffmpeg(args: list[str], *, what: str, niceness: int = 0, timeout_s: float | None = None) -> str:
    """Run ``args`` (ffmpeg first) through ``run_child``; return its stderr; EncodeError naming
    ``what`` if it fails (TaskCancelled if its ingest is cancelled)."""
    code, _, raw = run_child(args, what=what, niceness=niceness, timeout_s=timeout_s)
    err = raw.decode("utf-8", "replace")
    if code != 0:
        tail = " | ".join(line.strip() for line in err.strip().splitlines()[-STDERR_TAIL_LINES:])
        raise EncodeError(f"{what}: ffmpeg exited with {code}: {tail}")
    return err
