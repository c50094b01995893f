"""Objects of storages with local files (``path_for``) answered in one worker-thread hop.

For a local file the stat, the open and the decision can all happen in the thread that has to
touch the file system anyway: ``path_for`` (inside the root, symlinks resolved) → open → fstat
→ :class:`ObjectInfo` → ``plan_response`` (pure) → small bodies read and the file closed, larger
ones left open for sendfile. One thread hop per request instead of three, and the plan always
describes the very file that is sent (writes are atomic renames; an open file is one version).

The ObjectInfo is built with LocalStorage's own ETag rule (``etag_for``: nginx's
``{mtime_ns:x}-{size:x}``), so answers match ``LocalStorage.stat`` exactly.
"""
from __future__ import annotations

import os
import stat as stat_mod
from dataclasses import dataclass
from typing import IO, Any, Mapping

from origin.storage import NotFound, ObjectInfo, StorageUnavailable
from origin.storage.local import etag_for

from .semantics import ResponsePlan, plan_response


@dataclass(frozen=True)
class LocalAnswer:
    """A decided answer; its body is ``data`` (already read), or ``file`` (open, for sendfile), or none."""

    plan: ResponsePlan
    file: IO[bytes] | None = None
    data: bytes | None = None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def answer_local_file(storage: Any, key: str, method: str, headers: Mapping[str, str], *,
                      playlist_max_age_s: int, media_max_age_s: int, read_below_bytes: int) -> LocalAnswer:
    """Blocking, run it in a thread. Raises InvalidKey (outside the root), NotFound, StorageUnavailable."""
    try:
        path = storage.path_for(key)
    except (OSError, RuntimeError):  # a symlink loop, a folder we may not enter
        raise NotFound(key) from None
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed here or by the sender
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise NotFound(key) from None
    except OSError as e:
        raise StorageUnavailable(f"cannot open {key!r}: {e.strerror or e}") from None
    try:
        st = os.fstat(f.fileno())
        if not stat_mod.S_ISREG(st.st_mode):
            raise NotFound(key)
        info = ObjectInfo(key=key, size_bytes=st.st_size, etag=etag_for(st), last_modified_s=st.st_mtime)
        plan = plan_response(method, headers, path=key, size_bytes=info.size_bytes, etag=info.etag,
                             last_modified_s=info.last_modified_s, playlist_max_age_s=playlist_max_age_s,
                             media_max_age_s=media_max_age_s)
        if not plan.send_body:
            f.close()
            return LocalAnswer(plan)
        if plan.length < read_below_bytes:
            data = os.pread(f.fileno(), plan.length, plan.start)
            f.close()
            return LocalAnswer(plan, data=data)
        return LocalAnswer(plan, file=f)
    except OSError as e:
        f.close()
        raise StorageUnavailable(f"cannot read {key!r}: {e.strerror or e}") from None
    except BaseException:
        f.close()
        raise
