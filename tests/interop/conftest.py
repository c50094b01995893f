"""Fixtures of the interop tests (helpers in interop_helpers.py): real clients none of us wrote
against a loopback stack, through an edge with a valid token.

    interop_storage   session: one storage folder with the 30 s title "interop" (segments layout)
                      and "interop-br" (byte-range layout), H.264 only, en/fr audio and subtitles
    stack             session: a running two-region stack (interop_helpers.interop_topology)
    artifacts         the folder for screenshots and browser logs: artifacts/interop/ in the repo

Tools that are missing skip the tests that need them, with the reason; with $CI set they fail.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from interop_helpers import (ARTIFACTS, TITLE, TITLE_BYTERANGE, StackThread, ingest, interop_topology,
                             make_source)


@pytest.fixture(scope="session")
def interop_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("interop")
    source, subs = make_source(folder / "source")
    storage = folder / "storage"
    ingest(source, subs, title=TITLE, out=storage, layout="segments")
    ingest(source, subs, title=TITLE_BYTERANGE, out=storage, layout="byterange")
    return storage


@pytest.fixture(scope="session")
def stack(interop_storage: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackThread]:
    running = StackThread(interop_topology(tmp_path_factory.mktemp("interop-data"), interop_storage))
    try:
        running.start()
    except BaseException:
        tail = running.log_tail()
        running.close()
        raise AssertionError(f"the interop stack did not start; its last lines:\n{tail}") from None
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
