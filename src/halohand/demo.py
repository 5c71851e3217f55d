"""``halohand demo``: the main job on the embedded default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the outputs.")] = Path(
        "output"
    ),
) -> None:
    """Run the demo on the embedded default hand model."""
    raise NotImplementedError("demo is being built")
