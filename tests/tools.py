"""Outside tools the tests use (Debian's ffmpeg/ffprobe...): skipped locally when absent, a failure in CI."""
from __future__ import annotations

import os
import shutil

import pytest

IN_CI = bool(os.environ.get("CI"))


def need_tool(name: str, how: str) -> str:
    """The tool's path; if it is missing, skip (locally) or fail (CI installs every tool)."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed ({how})"
        if IN_CI:
            pytest.fail(f"{reason}; CI is set and .ci/run installs it", pytrace=False)
        pytest.skip(reason)
    return path
