"""The Dask executor: the very same tasks on a distributed.LocalCluster give byte-identical output."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import CLIP_FLAGS

distributed = pytest.importorskip("distributed")


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_dask_local_cluster_matches_local_pool(ingested_local, clip, subs_files, tmp_path, run_ingest):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        proc = run_ingest(str(clip), "--title", "clip", "--out", str(tmp_path), "--subs", f"en={subs_files['en']}",
                          "--subs", f"fr:forced={subs_files['fr']}", *CLIP_FLAGS, "--executor", f"dask://{address}")
    assert proc.returncode == 0, proc.stderr
    assert '"executor": "dask tcp://' in proc.stdout
    # same tasks, same settings (one encoder thread per task in both runs): the same bytes everywhere
    assert _hashes(tmp_path / "clip") == _hashes(ingested_local["root"])
