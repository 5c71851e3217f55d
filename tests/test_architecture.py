"""The package's architecture, checked: no import cycles between modules, and internal
imports at module level except where a heavy dependency is deliberately deferred.

The layering itself (which package may import which) is ``lint-imports``' contract in
pyproject.toml, run by ``make test``; this file checks what a layers contract cannot see.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[1] / "src" / "halohand"

#: Where halohand modules may be imported inside functions, and why: ``apps/`` (the command
#: line and the demo defer everything heavy so that ``halohand --help`` starts at once),
#: the root ``__init__.py`` (``import halohand`` stays free of torch until ``halohand.HALO``)
#: and the hand-source registry (MANO is optional and needs a user-supplied file).
DEFERRED_IMPORTS_ALLOWED = ("apps/", "__init__.py", "handmodel/sources.py")


def _deferral_allowed(rel: str) -> bool:
    return rel.startswith("apps/") or rel in DEFERRED_IMPORTS_ALLOWED[1:]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("halohand", cache_dir=None)
    assert _cycles(graph) == []


def _deferred_internal_imports(path: Path) -> list[int]:
    tree = ast.parse(path.read_text())
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom) and (sub.module or "").startswith("halohand"):
                    lines.append(sub.lineno)
                elif isinstance(sub, ast.Import) and any(
                    a.name.startswith("halohand") for a in sub.names
                ):
                    lines.append(sub.lineno)
    return sorted(set(lines))


def test_internal_imports_are_at_module_level() -> None:
    offenders = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if _deferral_allowed(rel):
            continue
        lines = _deferred_internal_imports(path)
        if lines:
            offenders[rel] = lines
    assert offenders == {}, f"halohand imports inside functions: {offenders}"


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for m in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(m)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]
