"""The traces shipped inside the package: there, real, small, named in the README, packaged."""
from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from client.sim.manifests import load_video
from client.traces import SHIPPED_TRACES_DIR, load_traces

REPO_ROOT = Path(__file__).resolve().parents[2]


def _files() -> list[Path]:
    return sorted(p for p in SHIPPED_TRACES_DIR.rglob("*") if p.is_file())


def test_the_shipped_set_loads_and_mirrors_the_shared_layout() -> None:
    for folder, at_least in (("pensieve_hsdpa", 4), ("pensieve_fcc", 4)):
        assert len(load_traces(SHIPPED_TRACES_DIR / folder)) >= at_least
    assert load_traces(SHIPPED_TRACES_DIR / "sabre" / "network.json")[0].latencies_s is not None
    table = load_video(SHIPPED_TRACES_DIR / "pensieve_video" / "video_chunk_sizes.csv")
    sabre = load_video(SHIPPED_TRACES_DIR / "pensieve_video" / "pensieve_envivio_sabre_manifest.json")
    assert table.ladder_bps == sabre.ladder_bps
    load_video(SHIPPED_TRACES_DIR / "sabre" / "bbb.json")


def test_the_shipped_set_is_small_and_every_folder_is_in_the_readme() -> None:
    assert sum(p.stat().st_size for p in _files()) < 300_000
    readme = (SHIPPED_TRACES_DIR / "README.md").read_text()
    for p in _files():
        if p.name != "README.md":
            assert f"`{p.parent.name}/" in readme, p


def test_every_shipped_file_is_package_data() -> None:
    """setuptools would leave a file out of the wheel unless a package-data glob of ``client`` matches it."""
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    globs = [*data.get("client", []), *data.get("*", [])]
    client = SHIPPED_TRACES_DIR.parent
    for p in _files():
        rel = p.relative_to(client).as_posix()
        assert any(fnmatch.fnmatch(rel, g) and rel.count("/") == g.count("/") for g in globs), rel
