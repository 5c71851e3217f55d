"""``halohand check KP``: is a keypoint file a plausible human hand (and the right side)?

Reads the file with the same loader and options as ``halohand reconstruct``, runs
:func:`halohand.canonical.plausibility.check_skeleton` and prints a table per hand (one row
per frame for sequences). A readable file exits 0 whatever it holds: implausible hands are
findings, not errors. Unreadable input (wrong shape, NaN, bad file or option) ends with one
line on stderr and exit status 2 (``halohand.apps.cli``); nothing is written then. ``--json`` and
``--fix-skeleton`` files are written atomically.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from halohand.apps.cli.options import (
    KeypointConvention,
    KeypointFormat,
    KeypointSide,
    KeypointUnits,
    check_format,
    check_inputs_exist,
    check_out_file,
    check_side,
    check_units,
)
from halohand.core.atomic import atomic_open, write_text_atomic
from halohand.core.errors import HalohandInputError

if TYPE_CHECKING:
    import numpy as np

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def skeleton_warning(
    keypoints: np.ndarray,
    is_left: np.ndarray,
    units: str,
    is_sequence: bool,
    raw: np.ndarray | None = None,
    fmt: str = "openpose",
) -> str | None:
    """One line about implausible or mirrored hands for ``halohand reconstruct``, or ``None``.

    Args:
        keypoints: ``[N, 21, 3]`` project order, in ``units``.
        is_left: ``[N]`` bool.
        units: ``m``, ``cm`` or ``mm``.
        is_sequence: the file held ``[N, 21, 3]`` (hands are then named by index).
        raw / fmt: the keypoints as read, in their format ``fmt``; with them, a likely
            wrong joint order is named (:func:`~halohand.canonical.plausibility.suggest_format`).
    """
    from halohand.canonical.plausibility import check_skeleton, suggest_format, summary_line

    hands, side = (keypoints, is_left) if is_sequence else (keypoints[0], _side(is_left[0]))
    report = check_skeleton(hands, side, units)
    line = summary_line(report)
    if line and not report.plausible and raw is not None and raw.shape[-2] == 21:
        hint = suggest_format(
            raw if is_sequence else raw[0], fmt, side, units, report.count("error")
        )
        if hint is not None:
            line = f"{line}; {_hint_text(hint, fmt)}"
    return line


def _side(is_left: bool) -> str:
    return "left" if is_left else "right"


def _hint_text(hint: tuple[str, int, int], fmt: str) -> str:
    other, as_given, as_other = hint
    return (
        f"the joints look like {other} order ({as_given} errors read as {fmt}, {as_other} as "
        f"{other}): pass --format {other}"
    )


def _fmt_value(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "-"
    if unit == "deg":
        return f"{value:.1f} deg"
    if unit == "m":
        return f"{value * 100:.1f} cm" if 0.01 <= value <= 10 else f"{value:.3g} m"
    return f"{value:.3f}"


def _fmt_range(low: float, high: float, unit: str) -> str:
    if not math.isfinite(low) and not math.isfinite(high):
        return "-"
    if unit == "score":
        return f">= {low:g}"

    def one(x: float) -> str:
        if not math.isfinite(x):
            return ""
        if unit == "m":
            return f"{x * 100:g}"
        return f"{x:g}" if unit == "deg" else f"{x:.3f}"

    tail = {"deg": " deg", "m": " cm"}.get(unit, "")
    return f"[{one(low)}, {one(high)}]{tail}"


def _print_report(report: Any, path: Path, side: str, units_given: str, sequence: bool) -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    n = report.num_hands
    unit = report.units or "?"
    how = "detected" if units_given == "auto" else "given"
    size = np.median(report.hand_length)
    hands = f"{n} hands" if sequence else "1 hand"
    console.print(
        f"[bold]{path}[/bold]: {hands}, side {side}, units {unit} ({how}), "
        f"hand length {size:.4g} {unit}"
    )
    if not sequence:
        found = report.for_hand(())
        if not found:
            console.print("[green]plausible: no findings[/green]")
            return
        table = Table("severity", "check", "joint / bone", "measured", "allowed")
        for f in found:
            table.add_row(
                f"[{_STYLE[f.severity]}]{f.severity}[/]",
                f.kind,
                f.name,
                _fmt_value(f.value, f.unit),
                _fmt_range(f.low, f.high, f.unit),
            )
        console.print(table)
    else:
        table = Table("frame", "errors", "warnings", "worst finding")
        clean = 0
        for hand in report.hands():
            found = report.for_hand(hand)
            if not found:
                clean += 1
                continue
            errors = sum(f.severity == "error" for f in found)
            warnings = sum(f.severity == "warning" for f in found)
            worst = found[0]
            table.add_row(
                str(hand[0]),
                str(errors),
                str(warnings),
                f"[{_STYLE[worst.severity]}]{worst.message}[/]",
            )
        if clean < n:
            console.print(table)
        console.print(f"{clean} of {n} frames without findings")
    verdict = "[green]plausible[/green]" if report.plausible else "[bold red]implausible[/]"
    console.print(f"{verdict}: {report.count('error')} errors, {report.count('warning')} warnings")


def _read_convention(hands: Any, convention: str, units: str) -> tuple[list[str], Any]:
    """The joint placement of each hand (``convention`` resolved) and the hands moved into
    the rig's placement (unchanged when the units cannot be told: the unit error is the
    report's to give)."""
    from halohand.core.units import UNIT_SCALE
    from halohand.skeleton.conventions import resolve_convention, to_rig
    from halohand.skeleton.validation import resolve_units

    try:
        read_as = resolve_convention(convention, hands)
    except ValueError as exc:
        raise HalohandInputError(str(exc)) from None
    try:
        scale = UNIT_SCALE[resolve_units(units, hands)]
    except HalohandInputError:
        return read_as, hands
    return read_as, to_rig(hands, read_as, scale)


def check(
    keypoints: Annotated[
        Path,
        typer.Argument(
            metavar="KP", help="Keypoint file (.npy, .json, .txt): [21, 3] or [N, 21, 3]."
        ),
    ],
    side: KeypointSide = None,
    units: KeypointUnits = None,
    fmt: KeypointFormat = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full report (.json).")
    ] = None,
    fix_out: Annotated[
        Path | None,
        typer.Option(
            "--fix-skeleton",
            help="Write the nearest plausible skeleton (.npy, input order, shape and units).",
        ),
    ] = None,
    convention: KeypointConvention = "auto",
) -> None:
    """Check that keypoints are a plausible human hand: joint angles, proportions, units, side.

    Prints the findings (warning: unusual; error: not a human hand or wrong side/units).
    Exits 0 when the file could be read, whatever it holds; 2 for unreadable input.
    """
    side, units, fmt = check_side(side), check_units(units), check_format(fmt)
    check_out_file(json_out, "--json", ".json")
    check_out_file(fix_out, "--fix-skeleton", ".npy")
    check_inputs_exist([keypoints])

    import numpy as np

    from halohand.apps.keypoint_io import load_keypoints
    from halohand.skeleton import from_openpose, to_openpose

    kf = load_keypoints(keypoints, fmt)
    use_side = side or kf.side or "right"
    use_units = units or kf.units or "auto"

    from halohand.canonical.plausibility import check_skeleton, fix_skeleton, suggest_format

    kp = np.asarray(to_openpose(kf.keypoints, kf.fmt))
    hands = kp if kf.is_sequence else kp[0]
    # Proportions are judged in the rig's joint placement: a MANO-style hand's fingertips
    # are on the skin, which is its convention, not an implausible hand.
    read_as, rig_hands = _read_convention(hands, convention, use_units)
    report = check_skeleton(rig_hands, use_side, use_units)

    hint = None
    if not report.plausible and kf.keypoints.shape[-2] == 21:
        hint = suggest_format(kf.keypoints if kf.is_sequence else kf.keypoints[0], kf.fmt,
                              use_side, use_units, report.count("error"))  # fmt: skip

    fixed = None
    if fix_out is not None:
        if hint is not None:
            raise HalohandInputError(
                f"{keypoints}: --fix-skeleton refused: {_hint_text(hint, kf.fmt)}; a fix in "
                f"the wrong joint order would move joints far from the data"
            )
        try:
            fixed = fix_skeleton(hands, use_side, report.units or "auto")
        except HalohandInputError as exc:
            raise HalohandInputError(f"{keypoints}: --fix-skeleton: {exc}") from None

    _print_report(report, keypoints, use_side, use_units, kf.is_sequence)
    # one reading for the file's hands (resolve_convention reads a call's hands alike)
    read = read_as[0]
    suffix = " (fingertips on the skin; judged with the tips on the rig's joints)"
    typer.echo(f"convention: {read}" + (suffix if read == "mano" else ""))
    doc: dict[str, Any] = {"file": str(keypoints), "side": use_side, "format": kf.fmt,
                           "convention": read}  # fmt: skip
    doc.update(report.to_dict())
    if hint is not None:
        typer.echo(f"hint: {_hint_text(hint, kf.fmt)}")
        doc["format_hint"] = {"format": hint[0], "errors_as_given": hint[1],
                              "errors_as_hint": hint[2]}  # fmt: skip
    if fixed is not None:
        assert fix_out is not None
        out = fixed.keypoints
        # 25/26-joint formats hold metacarpal joints that 21 keypoints cannot rebuild.
        order = kf.fmt if kf.fmt not in ("webxr", "openxr") else "openpose"
        out = np.asarray(from_openpose(out, order))
        with atomic_open(fix_out, "wb") as fh:
            np.save(fh, out)
        moved = fixed.moved_mm if fixed.units else fixed.moved
        unit = "mm" if fixed.units else "units"
        doc["fix"] = {
            "file": str(fix_out),
            "order": order,
            "max_moved": float(np.max(moved)),
            "mean_moved": float(np.mean(moved)),
            "unit": unit,
        }
        note = "" if order == kf.fmt else f" (order {order}: {kf.fmt} cannot be rebuilt)"
        typer.echo(
            f"wrote {fix_out}{note}: joints moved up to {np.max(moved):.3g} {unit} "
            f"(mean {np.mean(moved):.3g} {unit})"
        )
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(doc, indent=1) + "\n")
        typer.echo(f"wrote {json_out}")
