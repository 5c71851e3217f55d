"""``halohand view``: input checks, GLB conversion and the HTTP routes, without a browser.

The browser check (``scripts/test_viewer_headless.py``) runs at the end only where a
headless Chromium has been set up (``make viewer-install``); it is skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import io
import json
import socket
import urllib.error
import urllib.request
import webbrowser
from pathlib import Path

import numpy as np
import pytest
import trimesh
from conftest import REPO
from halo_fakes import run_cli

from halohand.apps.export import export_mesh
from halohand.apps.viewer.server import STATIC_DIR, ViewerServer, load_frames
from halohand.skeleton.colors import part_vertex_colors


@pytest.fixture(scope="module")
def hand() -> tuple[trimesh.Trimesh, np.ndarray]:
    from halohand.handmodel.prior import PosePrior
    from halohand.handmodel.webxr import default_model

    posed = default_model().pose(PosePrior().gesture("spread"))
    colors = part_vertex_colors(posed.part_labels)
    mesh = trimesh.Trimesh(posed.vertices, posed.faces, vertex_colors=colors, process=False)
    return mesh, np.asarray(posed.keypoints)


@pytest.fixture(scope="module")
def meshes(tmp_path_factory: pytest.TempPathFactory, hand) -> Path:
    """One hand as ``hand.glb`` (with skeleton), ``hand.ply`` and ``hand.obj``."""
    mesh, kp = hand
    folder = tmp_path_factory.mktemp("meshes")
    export_mesh(mesh, folder / "hand.glb", keypoints=kp)
    export_mesh(mesh, folder / "hand.ply")
    export_mesh(mesh, folder / "hand.obj")
    return folder


def get(url: str, method: str = "GET") -> tuple[int, bytes, str]:
    """(status, body, content type) of one request."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def test_formats_convert_to_glb_with_colours(meshes: Path, hand) -> None:
    mesh, _ = hand
    frames = load_frames([meshes / "hand.glb", meshes / "hand.ply", meshes / "hand.obj"])
    assert [f.name for f in frames] == ["hand.glb", "hand.ply", "hand.obj"]
    assert frames[0].glb == (meshes / "hand.glb").read_bytes()  # passed through: skeleton kept
    for frame in frames:
        assert frame.triangles == len(mesh.faces)
        np.testing.assert_allclose(frame.bounds, mesh.bounds, atol=1e-6)
        assert frame.glb is not None and frame.glb[:4] == b"glTF"
        scene = trimesh.load(io.BytesIO(frame.glb), file_type="glb")
        (surface,) = [g for g in scene.geometry.values() if isinstance(g, trimesh.Trimesh)]
        colors = surface.visual.vertex_colors[:, :3]
        assert len(np.unique(colors, axis=0)) >= 10  # the part colours survived conversion
    assert {"hand", "skeleton", "keypoints"} <= set(
        trimesh.load(io.BytesIO(frames[0].glb), file_type="glb").geometry
    )


def test_folder_is_a_sequence_in_name_order(tmp_path: Path, hand) -> None:
    mesh, kp = hand
    for i in (2, 0, 1):
        export_mesh(mesh, tmp_path / f"seq_{i:04d}.glb", keypoints=kp)
    (tmp_path / "notes.txt").write_text("not a mesh")
    frames = load_frames([tmp_path])
    assert [f.name for f in frames] == ["seq_0000.glb", "seq_0001.glb", "seq_0002.glb"]


def test_empty_frames_kept_in_a_sequence(tmp_path: Path, hand, capsys) -> None:
    mesh, _ = hand
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    export_mesh(mesh, tmp_path / "seq_0000.ply")
    export_mesh(empty, tmp_path / "seq_0001.ply")
    frames = load_frames([tmp_path])
    assert [f.triangles > 0 for f in frames] == [True, False]
    assert frames[1].glb is None
    assert "no surface in seq_0001.ply" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no triangle surface"):
        load_frames([tmp_path / "seq_0001.ply"])


def test_routes(meshes: Path) -> None:
    frames = load_frames([meshes / "hand.glb", meshes / "hand.ply"])
    with ViewerServer(frames, port=0, fps=5) as server:
        server.start()
        base = server.url.rstrip("/")
        status, body, ctype = get(base + "/")
        assert status == 200 and ctype.startswith("text/html") and b"/static/viewer.js" in body
        status, body, ctype = get(base + "/static/viewer.js")
        assert status == 200 and "javascript" in ctype and b"three-bundle.min.js" in body
        status, body, _ = get(base + "/static/vendor/three-bundle.min.js")
        assert status == 200 and len(body) > 100_000
        status, body, ctype = get(base + "/frames.json")
        manifest = json.loads(body)
        assert ctype == "application/json" and manifest["fps"] == 5
        assert [f["url"] for f in manifest["frames"]] == ["/frames/0000.glb", "/frames/0001.glb"]
        assert np.array(manifest["bounds"]).shape == (2, 3)
        status, body, ctype = get(base + "/frames/0000.glb?t=1")  # query strings are ignored
        assert status == 200 and ctype == "model/gltf-binary"
        assert body == (meshes / "hand.glb").read_bytes()
        status, body, _ = get(base + "/frames/0001.glb", method="HEAD")
        assert status == 200 and body == b""
        for missing in ("/frames/0002.glb", "/nope", "/static/../server.py", "/static/%2e%2e/x"):
            assert get(base + missing)[0] == 404, missing


def test_vendored_three_is_small_and_licensed() -> None:
    vendor = STATIC_DIR / "vendor"
    assert "MIT License" in (vendor / "LICENSE").read_text()
    assert (vendor / "three-bundle.min.js").stat().st_size < 1_000_000
    # the page loads nothing from outside the package: it must work offline
    page = (STATIC_DIR / "index.html").read_text() + (STATIC_DIR / "viewer.js").read_text()
    assert "http://" not in page and "https://" not in page


def test_packaged_static_files_are_listed() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert '"apps/viewer/static/*"' in text and '"apps/viewer/static/vendor/*"' in text


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.glb", None, "no such file"),
        ("hand.stl", b"solid x\nendsolid x\n", "unsupported file type '.stl'"),
        ("broken.ply", b"ply\nformat nonsense\n", "not a readable PLY"),
        ("broken.glb", b"glTF\x02\x00\x00\x00garbage", "not a readable GLB"),
        ("broken.obj", b"\x00\x01\x02 binary junk\n", "not a readable OBJ"),
        ("empty.obj", b"", "empty file"),
    ],
)
def test_bad_input_exits_2(
    tmp_path: Path, monkeypatch, capsys, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out, err = run_cli(monkeypatch, capsys, "view", path, "--no-browser", "--port", "0")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert "http://" not in out  # no server was started


def test_empty_folder_and_busy_port_exit_2(tmp_path: Path, meshes: Path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "view", tmp_path, "--no-browser")
    assert code == 2 and "holds no .glb, .ply or .obj" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        args = ("view", meshes / "hand.ply", "--no-browser", "--port", str(port))
        code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and err.count("\n") == 1 and "--port 0" in err


def test_command_prints_url_opens_browser_and_serves(meshes: Path, monkeypatch, capsys) -> None:
    """In-process: serve_forever is replaced by one request, as the real command blocks.

    The installed entry point itself runs in the headless check.
    """
    seen: dict[str, object] = {}

    def one_request(self: ViewerServer) -> None:
        self.start()
        seen["manifest"] = json.loads(get(self.url + "frames.json")[1])

    monkeypatch.setattr(ViewerServer, "serve_forever", one_request)
    monkeypatch.setattr(webbrowser, "open", lambda url: seen.setdefault("opened", url))
    code, out, err = run_cli(monkeypatch, capsys, "view", meshes / "hand.obj", "--port", "0")
    assert code == 0, err
    url = next(w for w in out.split() if w.startswith("http://127.0.0.1:"))
    assert seen["opened"] == url
    assert seen["manifest"]["frames"][0]["name"] == "hand.obj"  # type: ignore[index]


def _headless_module():
    spec = importlib.util.spec_from_file_location(
        "test_viewer_headless", REPO / "scripts" / "test_viewer_headless.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_headless_chromium_screenshot(tmp_path: Path) -> None:
    headless = _headless_module()
    _, _, reason = headless.find_browser()
    if reason:
        pytest.skip(f"headless browser check not set up ({reason}); see docs/viewer.md")
    assert headless.main(["--out", str(tmp_path / "shot.png")]) == 0
    assert (tmp_path / "shot.png").stat().st_size > 10_000
