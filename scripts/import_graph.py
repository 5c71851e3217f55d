"""Counts of the package's internal import graph: statements, module-to-module arrows,
how many sit inside functions, and the import cycles between modules and packages.

    .venv/bin/python scripts/import_graph.py [SRC] [--json OUT]

``SRC`` is the folder that holds ``halohand/`` (default ``src``). A statement counts once
however many names it imports; an arrow is an (importer, imported module) pair.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from collections import defaultdict


def _modules(root: str) -> dict[str, str]:
    mods = {}
    for folder, _, files in os.walk(os.path.join(root, "halohand")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                mod = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                mods[mod.removesuffix(".__init__")] = path
    return mods


def _resolve(name: str, mods: dict[str, str]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def count(root: str) -> dict:
    mods = _modules(root)
    statements = deferred_statements = 0
    arrows: set[tuple[str, str]] = set()
    deferred_arrows: set[tuple[str, str]] = set()
    for mod, path in mods.items():
        tree = ast.parse(open(path, encoding="utf-8").read())
        in_function = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for sub in ast.walk(node)
        }
        is_package = path.endswith("__init__.py")
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("halohand")]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = mod.split(".")[: len(mod.split(".")) - node.level + is_package]
                    base = ".".join(parts + ([base] if base else []))
                if base.startswith("halohand"):
                    targets = [f"{base}.{a.name}" for a in node.names]
            if not targets:
                continue
            deferred = id(node) in in_function
            statements += 1
            deferred_statements += deferred
            for t in targets:
                dst = _resolve(t, mods)
                if dst and dst != mod:
                    arrows.add((mod, dst))
                    if deferred:
                        deferred_arrows.add((mod, dst))
    graph: dict[str, set[str]] = defaultdict(set)
    packages: dict[str, set[str]] = defaultdict(set)
    for a, b in arrows:
        graph[a].add(b)
        pa, pb = ".".join(a.split(".")[:2]), ".".join(b.split(".")[:2])
        if pa != pb and pb != "halohand":
            packages[pa].add(pb)
    return {
        "modules": len(mods),
        "import_statements": statements,
        "import_statements_in_functions": deferred_statements,
        "arrows": len(arrows),
        "arrows_from_functions": len(deferred_arrows),
        "module_cycles": _sccs(graph),
        "package_cycles": _sccs(packages),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", default="src")
    parser.add_argument("--json")
    args = parser.parse_args()
    doc = count(args.src)
    text = json.dumps(doc, indent=1)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
