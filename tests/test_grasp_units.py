"""Object units: m, cm and mm files give the same grasps; an ambiguous size is not guessed."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from halohand.apps import cli
from halohand.core.errors import HalohandInputError
from halohand.objects.registry import object_from_mesh

SCALE = {"m": 1.0, "cm": 100.0, "mm": 1000.0}  # file units per metre


def _box(extents_m, units: str) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=np.asarray(extents_m) * SCALE[units])


def test_two_cm_cube_in_mm_is_ambiguous_and_asks_for_units() -> None:
    cube = _box([0.02] * 3, "mm")  # diagonal 34.6: a 35 cm or a 3.5 cm object
    with pytest.raises(HalohandInputError) as exc:
        object_from_mesh(cube, units="auto", object_id="cube")
    msg = str(exc.value)
    assert "\n" not in msg and "ambiguous" in msg and "--units" in msg
    assert "34.6 cm or 3.46 cm" in msg
    np.testing.assert_allclose(object_from_mesh(cube, units="mm").mesh.extents, 0.02)
    np.testing.assert_allclose(object_from_mesh(cube, units="cm").mesh.extents, 0.2)
    # The other side of the overlap: a 30 x 20 x 10 cm object saved in cm (37.4).
    with pytest.raises(HalohandInputError, match="ambiguous"):
        object_from_mesh(_box([0.3, 0.2, 0.1], "cm"))


@pytest.mark.parametrize("extents", [[0.04, 0.06, 0.1], [0.05, 0.03, 0.02], [0.1, 0.08, 0.12]])
def test_unambiguous_sizes_read_alike_in_every_unit(extents) -> None:
    # Diagonals 12.3, 6.2 and 17.5 cm: 6-20 cm objects fit one unit only in each file.
    for units in SCALE:
        obj = object_from_mesh(_box(extents, units), units="auto", orient="keep")
        assert obj.unit_scale == pytest.approx(1.0 / SCALE[units])
        np.testing.assert_allclose(obj.mesh.extents, extents, rtol=1e-12)


def test_same_grasps_in_the_files_units() -> None:
    from halohand.grasp.generate import GraspGenerator

    gen = GraspGenerator.pretrained()
    kps = {}
    for units in SCALE:
        obj = object_from_mesh(_box([0.05, 0.03, 0.02], units).apply_translation(
            np.array([0.01, 0.0, 0.02]) * SCALE[units]), units=units)  # fmt: skip
        gs = gen.generate(obj, n=2, seed=3, refine=False, candidates=1, meshes=False)
        kps[units] = gs.file_keypoints()  # the file's frame (turned back, rescaled)
    for units in ("cm", "mm"):
        np.testing.assert_allclose(kps[units] / SCALE[units], kps["m"], atol=1e-6)


def test_cli_names_the_ambiguity_and_exits_2(tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "cube_mm.stl"
    _box([0.02] * 3, "mm").export(path)
    monkeypatch.setattr("sys.argv", ["halohand", "grasp", str(path), "--n", "1", "--out-dir",
                                     str(tmp_path / "g"), "--no-sheet"])  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        cli.main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "--units" in err, err
    assert not (tmp_path / "g").exists()
