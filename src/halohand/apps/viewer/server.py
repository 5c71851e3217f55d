"""The server behind ``halohand view``: hand meshes on a small three.js page over local HTTP.

Every input is read, validated and converted to GLB (PLY / OBJ through trimesh; GLB files
are passed through unchanged, so the skeleton nodes of :mod:`halohand.apps.export` survive)
before the server binds, so bad input ends with one line on stderr and exit status 2
instead of a page that fails later. All responses are prepared up front and held in
memory: the handler only looks paths up, which keeps it free of file-system access and
of path-traversal concerns.

Routes: ``/`` (the page), ``/static/...`` (its scripts and the vendored three.js),
``/frames.json`` (the frame list and the bounds of all frames, to place the camera once
for a whole sequence) and ``/frames/NNNN.glb``.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.quiet import quiet_mesh_reader

#: Mesh files the viewer reads (lower-case suffixes).
MESH_SUFFIXES = (".glb", ".ply", ".obj")
STATIC_DIR = Path(__file__).resolve().parent / "static"

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".glb": "model/gltf-binary",
}
# OBJ is plain text; trimesh reads unparseable text as an empty scene instead of failing,
# so a line must start with one of these statements (or be blank / a comment) to count.
_OBJ_STATEMENTS = re.compile(
    rb"^\s*(?:#.*|(?:v|vt|vn|vp|f|l|p|o|g|s|usemtl|mtllib|cstype|deg|curv|surf)(?:\s.*)?)?$"
)


@dataclass(frozen=True)
class Frame:
    """One input mesh, ready to serve.

    Attributes:
        name: the file name shown on the page.
        glb: the GLB bytes, or ``None`` for a frame without any geometry.
        triangles: triangle count (0 for a frame whose model predicted no surface).
        bounds: ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` of everything drawn, or
            ``None`` for an empty frame.
    """

    name: str
    glb: bytes | None
    triangles: int
    bounds: list[list[float]] | None


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """Files in display order: folders give their mesh files sorted by name.

    Sorting by name puts ``seq_0000.glb, seq_0001.glb, ...`` from ``halohand reconstruct``
    in frame order.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise HalohandInputError(f"{path}: no such file or folder")
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES
            )
            if not found:
                raise HalohandInputError(f"{path}: folder holds no .glb, .ply or .obj files")
            files.extend(found)
        elif path.suffix.lower() not in MESH_SUFFIXES:
            raise HalohandInputError(
                f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                f"use .glb, .ply or .obj (or a folder of them)"
            )
        else:
            files.append(path)
    return files


def _triangle_meshes(loaded: Any) -> list[Any]:
    """The triangle meshes inside whatever ``trimesh.load`` returned, in world coordinates."""
    import trimesh

    if isinstance(loaded, trimesh.Trimesh):
        return [loaded] if len(loaded.faces) else []
    if isinstance(loaded, trimesh.Scene):
        return [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    return []  # a point cloud or a path: nothing to shade


def _bounds(loaded: Any) -> list[list[float]] | None:
    bounds = getattr(loaded, "bounds", None)
    if bounds is None:
        return None
    arr = np.asarray(bounds, dtype=np.float64)
    if arr.shape != (2, 3) or not np.isfinite(arr).all():
        return None
    return arr.round(9).tolist()


def load_frame(path: Path) -> Frame:
    """Read one mesh file and convert it to GLB; raises :class:`HalohandInputError`."""
    import trimesh

    from halohand.apps.export import mesh_bytes

    path = Path(path)
    suffix = path.suffix.lower()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot read ({exc.strerror})") from None
    if not data:
        raise CorruptFileError(f"{path}: empty file")
    if suffix == ".obj":
        bad = next(
            (i for i, line in enumerate(data.splitlines(), 1) if not _OBJ_STATEMENTS.match(line)),
            None,
        )
        if bad is not None:
            raise CorruptFileError(f"{path}: not a readable OBJ file (line {bad})")
    try:
        # process=False keeps vertices (and so per-vertex part colours) exactly as written;
        # the reader's own log lines (warnings with tracebacks) and numpy warnings are kept
        # off stderr: the file is judged here, in one message
        with quiet_mesh_reader():
            loaded = trimesh.load(str(path), file_type=suffix[1:], process=False)
    except Exception as exc:  # trimesh raises many types for broken files
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptFileError(
            f"{path}: not a readable {suffix[1:].upper()} file ({detail})"
        ) from None
    meshes = _triangle_meshes(loaded)
    for m in meshes:  # some readers keep faces that name vertices the file does not have
        faces = np.asarray(m.faces)
        if faces.min() < 0 or faces.max() >= len(m.vertices):
            raise CorruptFileError(
                f"{path}: faces use vertices the file does not have (largest index "
                f"{int(faces.max())}, {len(m.vertices)} vertices)"
            )
    triangles = sum(len(m.faces) for m in meshes)
    if suffix == ".glb":
        # served as written: keeps the skeleton / keypoints nodes and any materials
        return Frame(path.name, data, triangles, _bounds(loaded))
    if not meshes:
        return Frame(path.name, None, 0, None)
    mesh = meshes[0] if len(meshes) == 1 else trimesh.util.concatenate(meshes)
    return Frame(path.name, mesh_bytes(mesh, "glb"), triangles, _bounds(mesh))


def load_frames(paths: Iterable[Path]) -> list[Frame]:
    """Read every input (files or folders) before anything is served.

    Frames without a surface (``halohand reconstruct`` writes an empty mesh where the model
    predicts none) are kept in a sequence so the frame numbers stay right, with a warning;
    raises when no input has a surface.
    """
    frames = [load_frame(p) for p in expand_inputs(paths)]
    if not frames:
        raise HalohandInputError("no mesh files given")
    empty = [f.name for f in frames if f.triangles == 0]
    if len(empty) == len(frames):
        which = frames[0].name if len(frames) == 1 else f"all {len(frames)} files"
        raise HalohandInputError(f"{which}: no triangle surface to show")
    if empty:
        more = f" and {len(empty) - 1} more" if len(empty) > 1 else ""
        print(f"warning: no surface in {empty[0]}{more}; shown as empty frames", file=sys.stderr)
    return frames


def _union_bounds(frames: Sequence[Frame]) -> list[list[float]] | None:
    boxes = np.array([f.bounds for f in frames if f.bounds is not None], dtype=np.float64)
    if not len(boxes):
        return None
    return [boxes[:, 0].min(0).tolist(), boxes[:, 1].max(0).tolist()]


def build_routes(frames: Sequence[Frame], fps: float = 10.0) -> dict[str, tuple[bytes, str]]:
    """URL path -> (body, content type) for everything the server answers."""
    routes: dict[str, tuple[bytes, str]] = {}
    for file in sorted(STATIC_DIR.rglob("*")):
        if file.is_file():
            rel = file.relative_to(STATIC_DIR).as_posix()
            ctype = _CONTENT_TYPES.get(file.suffix.lower(), "text/plain; charset=utf-8")
            routes[f"/static/{rel}"] = (file.read_bytes(), ctype)
    routes["/"] = routes["/static/index.html"]
    listing = []
    for i, frame in enumerate(frames):
        url = f"/frames/{i:04d}.glb" if frame.glb is not None else None
        if url is not None and frame.glb is not None:
            routes[url] = (frame.glb, _CONTENT_TYPES[".glb"])
        listing.append({"name": frame.name, "url": url, "triangles": frame.triangles})
    manifest = {"frames": listing, "bounds": _union_bounds(frames), "fps": fps}
    routes["/frames.json"] = (json.dumps(manifest).encode(), _CONTENT_TYPES[".json"])
    return routes


class _Handler(BaseHTTPRequestHandler):
    server: _RouteServer
    server_version = "halohand-view"

    def _answer(self, with_body: bool) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        found = self.server.routes.get(path)
        if found is None:
            self.send_error(HTTPStatus.NOT_FOUND, "not found")
            return
        body, ctype = found
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        # a restarted viewer serves other meshes under the same URLs
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(with_body=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # one line per request would drown the URL the user needs to see


class _RouteServer(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, tuple[bytes, str]]


class ViewerServer:
    """The viewer's HTTP server; ``port=0`` picks a free port.

    Use :meth:`start` to serve from a background thread (tests, notebooks) or
    :meth:`serve_forever` to block (the command line). Also a context manager.
    """

    def __init__(
        self, frames: Sequence[Frame], host: str = "127.0.0.1", port: int = 0, fps: float = 10.0
    ) -> None:
        if not 0 <= port <= 65535:
            raise HalohandInputError(f"--port must be 0-65535, got {port}")
        if not 0 < fps <= 120:
            raise HalohandInputError(f"--fps must be in (0, 120], got {fps}")
        routes = build_routes(frames, fps)
        try:
            self._httpd = _RouteServer((host, port), _Handler)
        except OSError as exc:
            hint = "; pass --port 0 for a free port" if port else ""
            raise HalohandInputError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}){hint}"
            ) from None
        self._httpd.routes = routes
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._httpd.server_address[0])
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def start(self) -> ViewerServer:
        """Serve from a daemon thread and return at once."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ViewerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
