"""Fixtures of the steering tests (helpers in steering_procs.py).

    stored_master   the text of a stored multivariant playlist
    title_root      session: a folder holding title "tiny" made by ffmpeg, as ingest published it
                    before DASH (no manifest.mpd), and the synthetic title "syn" (vodstack.sample:
                    sparse segments, title.json, manifest.mpd, master.m3u8)
    origin_urls     session: one real origin process per region serving title_root
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.tools import need_tool
from vodstack.sample import build_synthetic_title
from steering_procs import REGIONS, STORED_MASTER, Server, make_tiny_title


@pytest.fixture
def stored_master() -> str:
    return STORED_MASTER


@pytest.fixture(scope="session")
def title_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_tool("ffmpeg", "apt-get install ffmpeg")
    root = make_tiny_title(tmp_path_factory.mktemp("storage"))
    build_synthetic_title(root, "syn", duration_s=12.0, segment_s=4.0)
    return root


@pytest.fixture(scope="session")
def origin_urls(title_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One real origin process per region, all serving ``title_root``."""
    logs = tmp_path_factory.mktemp("origin-logs")
    servers = {}
    try:
        for region in REGIONS:
            servers[region] = Server(f"origin-{region}", ["origin", "--storage", str(title_root), "--port", "0",
                                                          "--region", region], logs)
        yield {region: s.url for region, s in servers.items()}
    finally:
        for s in servers.values():
            s.stop()
