"""The import graph tells the truth: no circles in the tree, no imports hidden inside functions
to dodge one (the steering handlers reach their state through ``request.app[STATE]``)."""
from __future__ import annotations

import ast
from pathlib import Path

from import_graph import circles

ROOT = Path(__file__).resolve().parents[2]


def test_no_import_circles_in_the_tree():
    found = circles(ROOT)
    assert found == [], "\n".join(f"{' <-> '.join(c)}:\n  " + "\n  ".join(lines) for c, lines in found)


def _nested_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    top = {id(n) for n in tree.body}
    return [f"{path.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top
            and not (isinstance(n, ast.ImportFrom) and n.level == 0 and n.module == "__future__")]


def test_steering_and_player_fetch_modules_import_at_the_top():
    files = [*sorted((ROOT / "edge" / "steering").glob("*.py")), ROOT / "client" / "fetch.py",
             ROOT / "client" / "playlists.py"]
    assert [hit for f in files for hit in _nested_imports(f)] == []


def test_the_steering_state_lives_in_its_own_module_built_per_app():
    from edge.steering import app, pages, playback, state
    assert app.STATE is state.STATE and pages.STATE is state.STATE and playback.STATE is state.STATE
    assert app.SteeringState is state.SteeringState
    state_imports = {n.module for n in ast.walk(ast.parse(Path(state.__file__).read_text()))
                     if isinstance(n, ast.ImportFrom)}
    assert not state_imports & {"app", "pages", "playback"}
