"""Command-line interface: ``halohand --help``.

Each command group lives next to the code it drives and is registered here. Bad input
(``ValueError`` and friends) ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="halohand",
    help="Skeleton-driven neural hand models: keypoints -> occupancy -> watertight mesh.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from halohand.check_cli import check
    from halohand.data.cli import data_app
    from halohand.demo import demo
    from halohand.reconstruct_cli import occupancy, reconstruct
    from halohand.training.cli import evaluate, train
    from halohand.viewer.server import view

    app.add_typer(data_app, name="data")
    app.command("demo")(demo)
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("reconstruct")(reconstruct)
    app.command("occupancy")(occupancy)
    app.command("check")(check)
    app.command("view")(view)


_register()

EXIT_BAD_INPUT = 2

try:  # recent typer bundles its own click
    from typer._click.exceptions import ClickException as _ClickException
except ImportError:  # pragma: no cover - typer on a separate click
    from click.exceptions import ClickException as _ClickException


def main() -> None:
    """Entry point of ``halohand``; maps bad input to one line on stderr and exit 2."""
    try:
        app(standalone_mode=False)
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except _ClickException as exc:  # usage errors: missing option, bad type
        exc.show()
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
