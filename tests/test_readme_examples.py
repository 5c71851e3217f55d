"""The README's Python example runs as written, on the files that ship in examples/."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def _python_blocks(section: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


def test_keypoints_to_a_surface_example_runs(tmp_path, monkeypatch) -> None:
    (code,) = _python_blocks("Keypoints to a surface")
    monkeypatch.chdir(REPO)
    code = code.replace('"hand.glb"', repr(str(tmp_path / "hand.glb")))
    code = code.replace('"scene.glb"', repr(str(tmp_path / "scene.glb")))
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)  # noqa: S102 - the README's own example
    assert (tmp_path / "hand.glb").stat().st_size > 0
    assert (tmp_path / "scene.glb").stat().st_size > 0
    assert env["occ"].shape == (2000,)


def test_every_example_file_named_in_the_readme_ships() -> None:
    text = (REPO / "README.md").read_text()
    named = set(re.findall(r"examples/[\w./-]*[\w]", text))
    assert named, "the README names no example files"
    assert sorted(p for p in named if not (REPO / p).exists()) == []  # files and folders


def test_from_a_photo_example_runs(monkeypatch) -> None:
    (code,) = _python_blocks("From a photo")
    monkeypatch.chdir(REPO)
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)  # noqa: S102 - the README's own example
    assert [h.side for h in env["result"].hands] == ["left"]
    assert len(env["meshes"]) == 1 and env["meshes"][0].is_watertight
