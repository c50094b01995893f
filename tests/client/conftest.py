"""Fixtures for the client (ABR, traces, simulator) tests.

    traces_dir       the shared development traces (``<repo>/../shared/traces``); tests that need
                     them skip, with the reason, when that folder is absent
    pensieve_video   Pensieve's 48-chunk test video from that folder
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_TRACES = REPO_ROOT.parent / "shared" / "traces"


@pytest.fixture(scope="session")
def traces_dir() -> Path:
    if not (SHARED_TRACES / "pensieve_video").is_dir():
        pytest.skip(f"shared traces not found at {SHARED_TRACES} (the CI clone has ../shared beside the repo)")
    return SHARED_TRACES


@pytest.fixture(scope="session")
def pensieve_video(traces_dir: Path):
    from client.sim.manifests import load_video

    return load_video(traces_dir / "pensieve_video" / "video_chunk_sizes.csv")
