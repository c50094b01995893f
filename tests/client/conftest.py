"""Fixtures for the client (ABR, traces, simulator) tests.

    traces_dir       real traces laid out like ``../shared/traces``: that development set when it
                     is beside the repo, else the small set shipped in the package
                     (``client/traces_data/``, `SHIPPED_TRACES_DIR`), so a lone clone runs them too
    dev_traces_dir   the full development set (``<repo>/../shared/traces``) for the tests that
                     assert on all of it (folder counts, Sabre's means over the 68 HSDPA traces);
                     those skip, with the reason, when it is absent
    pensieve_video   Pensieve's 48-chunk test video (shipped too)
"""
from __future__ import annotations

from pathlib import Path

import pytest

from client.traces import SHIPPED_TRACES_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_TRACES = REPO_ROOT.parent / "shared" / "traces"


@pytest.fixture(scope="session")
def dev_traces_dir() -> Path:
    if not (SHARED_TRACES / "pensieve_video").is_dir():
        pytest.skip(f"the full development set is not at {SHARED_TRACES} (this test is about all of it; "
                    f"the CI clone has ../shared beside the repo)")
    return SHARED_TRACES


@pytest.fixture(scope="session")
def traces_dir() -> Path:
    return SHARED_TRACES if (SHARED_TRACES / "pensieve_video").is_dir() else SHIPPED_TRACES_DIR


@pytest.fixture(scope="session")
def pensieve_video(traces_dir: Path):
    from client.sim.manifests import load_video

    return load_video(traces_dir / "pensieve_video" / "video_chunk_sizes.csv")
