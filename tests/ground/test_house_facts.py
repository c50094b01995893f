"""Facts of the house anyone can check from the source (issue 14, "what must hold"): no module over
600 lines, and no module-level mutable state in the servers (a table at module level is read-only:
a tuple, a frozenset or a ``MappingProxyType``; state lives in the app, built per server).
The import-graph facts are in ``test_ground_floor.py`` and ``tests/steering/test_steering_state.py``."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("vodstack", "manifests", "origin", "edge", "client", "httpsem", "serverkit", "errorbase")
#: the server processes' code: origin, edge (with steering), and what they start through
SERVERS = ("origin/server", "origin/storage", "edge", "serverkit", "httpsem")
MAX_LINES = 600
MUTABLE_CALLS = {"dict", "list", "set", "bytearray", "defaultdict", "OrderedDict", "Counter", "deque",
                 "WeakSet", "WeakKeyDictionary", "WeakValueDictionary"}


def _modules(*folders: str) -> list[Path]:
    paths = sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))
    assert paths, f"no modules under {folders} in {REPO}"
    return paths


def mutable_module_state(source: str) -> list[str]:
    """``"line: name"`` for each module-level binding of a mutable container, and each ``global``."""
    tree = ast.parse(source)
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        names = [ast.unparse(t) for t in targets]
        if names == ["__all__"]:
            continue
        literal = isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp))
        call = isinstance(value, ast.Call) and (
            getattr(value.func, "id", None) in MUTABLE_CALLS or getattr(value.func, "attr", None) in MUTABLE_CALLS)
        if literal or call:
            found.append(f"{node.lineno}: {', '.join(names)}")
    found += [f"{n.lineno}: global {', '.join(n.names)}" for n in ast.walk(tree) if isinstance(n, ast.Global)]
    return found


def test_the_rule_sees_mutable_state():
    src = "A = {}\nB: list[int] = []\nC = set()\nD = collections.OrderedDict()\n__all__ = ['x']\n" \
          "E = (1, 2)\nF = MappingProxyType({1: 2})\ndef f():\n    global G\n"
    assert mutable_module_state(src) == ["1: A", "2: B", "3: C", "4: D", "9: global G"]


@pytest.mark.parametrize("path", _modules(*SERVERS), ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_level_mutable_state_in_the_servers(path):
    assert mutable_module_state(path.read_text()) == []


def test_no_module_over_600_lines():
    long = {str(p.relative_to(REPO)): n for p in _modules(*PACKAGES)
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
