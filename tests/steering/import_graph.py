"""Import circles in the tree: every import (module level, function-local, TYPE_CHECKING) as an edge
between our modules; strongly connected components of more than one module are circles.

    python tests/steering/import_graph.py [ROOT]    prints the circles, exit 1 if there is one
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

SKIP = {".venv", "node_modules", ".git", "tests", "build", "dist"}


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for p in root.rglob("*.py"):
        rel = p.relative_to(root)
        if set(rel.parts) & SKIP:
            continue
        parts = list(rel.with_suffix("").parts)
        if not (root / parts[0] / "__init__.py").exists():
            continue  # a loose script, not a package module
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def circles(root: Path) -> list[tuple[list[str], list[str]]]:
    """``[(modules of one circle, ["path:line imports module (top|nested)", ...])]``."""
    mods = modules(root)

    def target(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    def imports(mod: str, path: Path) -> list[tuple[str, int, str]]:
        tree = ast.parse(path.read_text(), str(path))
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        top = {id(n) for n in tree.body}
        found = []
        for node in ast.walk(tree):
            kind = "top" if id(node) in top else "nested"
            if isinstance(node, ast.Import):
                found += [(t, node.lineno, kind) for a in node.names if (t := target(a.name))]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")
                    base = ".".join(up[: len(up) - (node.level - 1)] + ([base] if base else []))
                for a in node.names:
                    t = f"{base}.{a.name}" if f"{base}.{a.name}" in mods else target(base)
                    if t:
                        found.append((t, node.lineno, kind))
        return [(t, ln, k) for t, ln, k in found if t != mod]

    graph = {m: imports(m, p) for m, p in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w, _, _ in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [(comp, [f"{mods[m].relative_to(root)}:{ln} imports {t} ({kind})"
                    for m in comp for t, ln, kind in graph[m] if t in comp]) for comp in comps]


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    found = circles(root)
    for comp, lines in found:
        print("circle:", " <-> ".join(comp))
        for line in lines:
            print("    " + line)
    print(f"{len(modules(root))} modules, {len(found)} circles")
    sys.exit(1 if found else 0)
