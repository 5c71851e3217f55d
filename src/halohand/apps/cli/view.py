"""``halohand view FILE...``: the local web viewer (:mod:`halohand.apps.viewer`).

The command declaration lives here and the server in :mod:`halohand.apps.viewer.server`,
which loads (with ``http.server`` and trimesh) when the command runs, not for ``--help``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

#: ``--port`` default.
DEFAULT_PORT = 8765


def view(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE...",
            help="Meshes (.glb, .ply, .obj) or folders of them; several make a sequence.",
        ),
    ],
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on; 0 picks a free one.")
    ] = DEFAULT_PORT,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (keep loopback unless needed).")
    ] = "127.0.0.1",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL instead of opening a browser.")
    ] = False,
    fps: Annotated[float, typer.Option("--fps", help="Playback speed of a sequence.")] = 10.0,
) -> None:
    """Show meshes in a local web page: part colours, skeleton (GLB), sequence player.

    Runs until Ctrl+C. The page works offline (three.js ships with halohand).
    """
    import webbrowser

    from halohand.apps.viewer.server import ViewerServer, load_frames

    frames = load_frames(files)
    server = ViewerServer(frames, host=host, port=port, fps=fps)
    n = len(frames)
    typer.echo(f"halohand view: {n} frame{'s' if n != 1 else ''} at {server.url} (Ctrl+C to stop)")
    sys.stdout.flush()  # a parent process reading the URL from a pipe needs it now
    if not no_browser:
        try:
            webbrowser.open(server.url)
        except webbrowser.Error:
            pass  # no browser on this machine: the printed URL is enough
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        server.close()
