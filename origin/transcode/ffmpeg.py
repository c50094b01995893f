"""Finding and running ffmpeg: the one place the pipeline starts a subprocess.

The binary is, in order: an explicit path (``--ffmpeg``), ``$VODSTACK_FFMPEG``, the one shipped in
the ``imageio-ffmpeg`` wheel (ffmpeg 9 with libx264, libx265, SVT-AV1 and libvmaf). Children are
started at lower priority (``nice``) and get SIGKILL when the ingest process dies (Linux
``PR_SET_PDEATHSIG``), so a killed ingest leaves no encoder running behind it.
"""
from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
from functools import lru_cache

from .errors import EncodeError

log = logging.getLogger(__name__)
STDERR_TAIL_LINES = 8
PR_SET_PDEATHSIG = 1

# Loaded in the parent: the child between fork and exec must not take the loader's locks.
try:
    _LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    _PRCTL = _LIBC.prctl if _LIBC is not None else None
except (OSError, AttributeError):
    _PRCTL = None


def find_ffmpeg(explicit: str | None = None) -> str:
    """Absolute path of the ffmpeg to use."""
    candidate = explicit or os.environ.get("VODSTACK_FFMPEG")
    if candidate:
        path = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if not path:
            raise EncodeError(f"ffmpeg not found at {candidate!r}")
        return os.path.abspath(path)
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@lru_cache(maxsize=8)
def capabilities(ffmpeg: str) -> frozenset[str]:
    """Encoder and filter names this ffmpeg has (``libx264``, ``libvmaf``...)."""
    names: set[str] = set()
    for what in ("-encoders", "-filters"):
        out = subprocess.run([ffmpeg, "-hide_banner", what], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and not line.startswith(" ="):
                names.add(parts[1])
    return frozenset(names)


def _child_setup(niceness: int) -> None:  # runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
    if niceness:
        try:
            os.nice(niceness)
        except OSError:
            pass


def run_ffmpeg(args: list[str], *, what: str, niceness: int = 0, timeout_s: float | None = None) -> str:
    """Run ``args`` (ffmpeg first); return its stderr; EncodeError naming ``what`` if it fails."""
    log.debug("ffmpeg start", extra={"kv": {"task": what, "cmd": " ".join(args)}})
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout_s, preexec_fn=lambda: _child_setup(niceness))
    except subprocess.TimeoutExpired:
        raise EncodeError(f"{what}: ffmpeg timed out after {timeout_s:.0f} s") from None
    except OSError as e:
        raise EncodeError(f"{what}: cannot run {args[0]}: {e.strerror}") from None
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = " | ".join(line.strip() for line in err.strip().splitlines()[-STDERR_TAIL_LINES:])
        raise EncodeError(f"{what}: ffmpeg exited with {proc.returncode}: {tail}")
    return err
