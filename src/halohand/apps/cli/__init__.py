"""Command-line interface: ``halohand --help``.

Each command (or group) is declared in a module of this package and registered here. Bad input
(``ValueError`` and friends) ends with one line on stderr and exit status 2. The options the
commands share (and their validators) are declared once, in :mod:`halohand.apps.cli.options`.

Imports inside functions: this package is the one place where they are deliberate. Every
``halohand`` run imports every command module (to build the command tree), so a module-level
import of numpy, torch, trimesh, scipy, scikit-image or the packages built on them
(``halohand.inference``, ``.grasp``, ``.training``, ``.evaluation``, ``.canonical``,
``halohand.skeleton``, ``halohand.apps.keypoint_io`` / ``.export`` / ``.demo`` /
``.viewer``...) would cost every ``--help`` and every usage error its import time (seconds
for torch). Command modules therefore import at the top only typer, the standard library,
``halohand.core.errors`` / ``.units`` / ``.atomic``, ``halohand.data.constants`` and
:mod:`.options`; a command imports
the rest in its body, the heavy modules after it has checked its options and read its
inputs, so that bad input is answered at once too. ``tests/test_cli_startup.py`` checks
that importing this package loads none of numpy, torch, trimesh or scipy;
``benchmarks/speed/cli_startup.py`` times the command.
"""

from __future__ import annotations

import os
import sys

import typer

from halohand.apps.cli.options import CommandGroup
from halohand.core.errors import HalohandInputError

app = typer.Typer(
    cls=CommandGroup,
    name="halohand",
    help="Skeleton-driven neural hand models: keypoints -> occupancy -> watertight mesh.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from halohand.apps.cli.check import check
    from halohand.apps.cli.contact import contact
    from halohand.apps.cli.data import data_app
    from halohand.apps.cli.demo import demo
    from halohand.apps.cli.grasp import grasp_app
    from halohand.apps.cli.image import image
    from halohand.apps.cli.reconstruct import occupancy, reconstruct
    from halohand.apps.cli.train import (
        calibrate,
        evaluate,
        train,
        train_image_occupancy,
        train_pair_refiner,
        train_refiner,
    )
    from halohand.apps.cli.view import view

    app.add_typer(data_app, name="data")
    app.add_typer(grasp_app, name="grasp")
    app.command("demo")(demo)
    app.command("train")(train)
    app.command("train-refiner")(train_refiner)
    app.command("train-pair-refiner")(train_pair_refiner)
    app.command("train-image-occupancy")(train_image_occupancy)
    app.command("evaluate")(evaluate)
    app.command("calibrate")(calibrate)
    app.command("reconstruct")(reconstruct)
    app.command("image")(image)
    app.command("occupancy")(occupancy)
    app.command("check")(check)
    app.command("contact")(contact)
    app.command("view")(view)


_register()

EXIT_BAD_INPUT = 2

try:  # recent typer bundles its own click
    from typer._click.exceptions import ClickException as _ClickException
    from typer._click.exceptions import NoArgsIsHelpError as _NoArgsIsHelpError
except ImportError:  # pragma: no cover - typer on a separate click
    from click.exceptions import ClickException as _ClickException
    from click.exceptions import NoArgsIsHelpError as _NoArgsIsHelpError


def _first_line(text: str, default: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else default


def _os_error_line(exc: OSError) -> str:
    """``path: reason`` for an error the system raised on a path (a long path shortened)."""
    if exc.strerror and exc.filename is not None:
        name = str(exc.filename).replace("\r", "\\r").replace("\n", "\\n")
        if len(name) > 120:
            name = f"{name[:40]}...{name[-40:]}"
        return f"{name}: {exc.strerror}"
    return _first_line(str(exc), type(exc).__name__)


#: OpenMP wait policy of the command (a user's ``OMP_WAIT_POLICY`` wins).
OMP_WAIT_POLICY = "PASSIVE"


def main() -> None:
    """Entry point of ``halohand``; maps bad input to one line on stderr and exit 2."""
    # torch's OpenMP runtime (GNU libgomp) reads its wait policy once, when torch loads,
    # i.e. inside a command: with PASSIVE its idle threads sleep instead of spinning, so a
    # busy neighbour is not slowed by, and does not stall, threads that wait for work
    # (next to another job, 3.5 s -> 0.15 s for the chunked differentiable query of 5e4
    # points on two threads; the hot paths quiet and loaded under it:
    # benchmarks/results/speed/bench_neighbour_passive.json).
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    try:
        app(standalone_mode=False)
    except HalohandInputError as exc:  # one line by design, unless a path holds a newline
        text = str(exc).strip().replace("\r", "\\r").replace("\n", "\\n")
        print(f"error: {text or type(exc).__name__}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except ValueError as exc:
        print(f"error: {_first_line(str(exc), type(exc).__name__)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except OSError as exc:  # a path the system refuses: missing, too long, read-only, a file...
        print(f"error: {_os_error_line(exc)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except _NoArgsIsHelpError as exc:  # a command group alone: its help
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except _ClickException as exc:  # usage errors (missing option, bad type): one line too
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"error: {_first_line(exc.format_message(), 'usage error')}{hint}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
