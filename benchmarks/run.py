"""One entry point for the benchmarks: list them, run one.

Usage::

    .venv/bin/python benchmarks/run.py list [KIND]
    .venv/bin/python benchmarks/run.py run NAME [--dry-run] [-- ARGS...]

A benchmark is a script in one of three folders, its kind:

* ``speed/``: speed and memory benchmarks. Each result holds the machine (CPU model, cores,
  torch threads, torch / numpy versions, git revision) and a float32 matmul calibration in
  GFLOP/s taken in the same run, before and after the timings; where a script compares
  alternatives, they alternate within the one run.
* ``studies/``: one-off studies and acceptance checks (accuracy, canonicalization, grasp
  tuning and tables); their results hold the machine too.
* ``figures/``: figure generators for ``docs/`` (images, no JSON).

``list`` prints every benchmark with its kind and the first paragraph of its module
docstring. ``run`` runs one script in a child process from the repository root, with the
arguments after ``--`` (``run.py run fit_gap -- --hands 4``); a speed benchmark or a study
writes its JSON to ``benchmarks/results/<kind>/<name>.json`` unless the arguments name
``--json`` themselves. Paths inside the JSON are relative to the repository root
(``benchmarks/_report.py``). The exit status is the script's.

Each script also runs alone (``.venv/bin/python benchmarks/speed/bench_canonical.py``); then
it prints its JSON and writes it only with ``--json``.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: Kind folders, in listing order, with what they hold.
KINDS = {
    "speed": "speed and memory benchmarks",
    "studies": "studies and acceptance checks",
    "figures": "figure generators",
}
#: Kinds whose scripts take ``--json PATH`` and get a default one from ``run``.
JSON_KINDS = ("speed", "studies")


@dataclass(frozen=True)
class Benchmark:
    name: str
    kind: str
    path: Path

    @property
    def docstring(self) -> str | None:
        return ast.get_docstring(ast.parse(self.path.read_text(encoding="utf-8")))

    @property
    def summary(self) -> str:
        """The docstring's first sentence (of its first paragraph) on one line."""
        text = " ".join((self.docstring or "").split("\n\n")[0].split()).replace("``", "")
        return re.split(r"(?<=\.) (?=[A-Z][a-z])", text, maxsplit=1)[0]

    def default_json(self) -> str | None:
        """Where ``run`` writes the JSON (repository-relative), or None for a figure."""
        if self.kind not in JSON_KINDS:
            return None
        return f"benchmarks/results/{self.kind}/{self.name}.json"


def benchmarks() -> list[Benchmark]:
    """Every script of the kind folders (modules starting with ``_`` are helpers)."""
    found: list[Benchmark] = []
    for kind in KINDS:
        for path in sorted((HERE / kind).glob("*.py")):
            if not path.name.startswith("_"):
                found.append(Benchmark(path.stem, kind, path))
    names = [b.name for b in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SystemExit(f"benchmark names must be unique across kinds: {', '.join(twice)}")
    return found


def find(name: str) -> Benchmark:
    for bench in benchmarks():
        if bench.name == name:
            return bench
    raise SystemExit(f"no benchmark {name!r}; `benchmarks/run.py list` shows them")


def command(bench: Benchmark, args: list[str]) -> list[str]:
    """The child's command line: the script, ``args`` and, where it writes JSON and
    ``args`` name none, ``--json`` with the default path."""
    cmd = [sys.executable, str(bench.path.relative_to(REPO)), *args]
    default = bench.default_json()
    if default and not any(a == "--json" or a.startswith("--json=") for a in args):
        cmd += ["--json", default]
    return cmd


def list_benchmarks(kind: str | None) -> None:
    rows = [b for b in benchmarks() if kind in (None, b.kind)]
    width = max((len(b.name) for b in rows), default=0)
    for bench in rows:
        print(f"{bench.name:<{width}}  {bench.kind:<7}  {bench.summary}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p_list = sub.add_parser("list", help="every benchmark with its kind and description")
    p_list.add_argument("kind", nargs="?", choices=list(KINDS))
    p_run = sub.add_parser("run", help="run one benchmark (its arguments after --)")
    p_run.add_argument("name")
    p_run.add_argument("--dry-run", action="store_true", help="print the command only")
    args = parser.parse_args(argv)

    if args.action == "list":
        if extra:
            parser.error("`list` takes no arguments after --")
        list_benchmarks(args.kind)
        return 0
    bench = find(args.name)
    cmd = command(bench, extra)
    print(" ".join(cmd[1:]) if args.dry_run else f"+ {' '.join(cmd[1:])}", file=sys.stderr)
    if args.dry_run:
        return 0
    return subprocess.run(cmd, cwd=REPO, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
