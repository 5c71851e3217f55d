"""User meshes turned to a canonical (principal) frame: invariant to the file's rotation,
mapped back exactly, optional (``keep``); registry objects and their grasps untouched."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from halohand.apps import cli
from halohand.core.errors import HalohandInputError
from halohand.objects.registry import load_object, object_from_mesh

SCALE = {"m": 1.0, "cm": 100.0, "mm": 1000.0}  # file units per metre


def _banana() -> trimesh.Trimesh:
    """A curved capsule (1.5 cm radius about a 60-degree arc of radius 10 cm, in the xz-plane)
    by marching cubes on a 3 mm grid: no symmetry that the rule could not resolve along z."""
    from skimage.measure import marching_cubes

    big, half, r, step = 0.10, np.radians(30.0), 0.015, 0.003
    lo, hi = np.array([-0.07, -0.02, -0.035]), np.array([0.07, 0.02, 0.02])
    axes = [np.arange(a - 2.3 * step, b + 2.5 * step, step) for a, b in zip(lo, hi, strict=True)]
    p = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3) + [0.0, 0.0, big]
    ang = np.clip(np.arctan2(p[:, 0], p[:, 2]), -half, half)
    near = np.stack([big * np.sin(ang), np.zeros_like(ang), big * np.cos(ang)], 1)
    sdf = (np.linalg.norm(p - near, axis=1) - r).reshape([len(a) for a in axes])
    v, f, _, _ = marching_cubes(sdf, 0.0, spacing=(step,) * 3)
    mesh = trimesh.Trimesh(v + [a[0] for a in axes], f, process=True)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


#: Shapes (metres) and how far two of their canonical copies may differ (metres): round
#: shapes may turn about their axis, which moves the facets of a polygon (24 or 40 sides).
SHAPES = {
    "box": lambda: trimesh.creation.box(extents=[0.05, 0.03, 0.02]),
    "capsule": lambda: trimesh.creation.capsule(height=0.08, radius=0.02, count=[24, 24]),
    "banana": _banana,
    "cone": lambda: trimesh.creation.cone(0.03, 0.1, sections=40),
}
GAP = {"box": 1e-6, "banana": 2e-4, "capsule": 2e-4, "cone": 1e-4}


def _turned(mesh: trimesh.Trimesh, seed: int, shift=(0.0, 0.0, 0.0)) -> trimesh.Trimesh:
    m = mesh.copy()
    t = np.eye(4)
    t[:3, :3] = Rotation.random(random_state=seed).as_matrix()
    t[:3, 3] = shift
    m.apply_transform(t)
    return m


def _surface_gap(a: trimesh.Trimesh, b: trimesh.Trimesh) -> float:
    """Largest distance (metres) of either mesh's vertices from the other's surface."""
    import igl

    def one(p: trimesh.Trimesh, q: trimesh.Trimesh) -> float:
        d = igl.signed_distance(np.asarray(p.vertices), np.asarray(q.vertices),
                                np.asarray(q.faces))[0]  # fmt: skip
        return float(np.abs(d).max())

    return max(one(a, b), one(b, a))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_turned_mesh_gives_the_same_canonical_object(shape) -> None:
    mesh = SHAPES[shape]()
    ref = object_from_mesh(mesh, units="m", object_id=shape)
    assert ref.orient == "principal"
    ext = ref.mesh.extents
    assert ext[2] >= ext.max() - 1e-9  # the longest spread along z
    for seed in range(3):
        obj = object_from_mesh(_turned(mesh, seed, (0.1, -0.2, 0.05)), units="m")
        # The same shape in the same place: the box's mirror symmetries and the capsule's
        # and cone's axis, the banana's mirror plane make several frames canonical, all
        # giving this shape (up to facets: a grid or polygon is not exactly symmetric).
        assert _surface_gap(obj.mesh, ref.mesh) < GAP[shape], (shape, seed)
        np.testing.assert_allclose(np.linalg.det(obj.rotation), 1.0, atol=1e-12)
        np.testing.assert_allclose(obj.rotation @ obj.rotation.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(obj.mesh.bounds.mean(0), 0.0, atol=1e-12)


def test_sign_rule_puts_the_bulk_at_minus_z() -> None:
    # A cone's apex is its thin end: +z; a mug-like cup with a handle: the handle along +x.
    obj = object_from_mesh(_turned(SHAPES["cone"](), 4), units="m")
    apex = obj.vertices[np.argmax(obj.vertices[:, 2])]
    np.testing.assert_allclose(apex[:2], 0.0, atol=1e-9)
    assert obj.mesh.center_mass[2] < -0.01  # bulk low
    mug = load_object("mug_1")
    turned = object_from_mesh(_turned(mug.mesh, 9), units="m")
    # Handle toward +x as in the registry; upside down is the same mug (its marching-cubes
    # facets are not mirror-symmetric in z: 1.1 mm apart).
    np.testing.assert_allclose(turned.mesh.bounds, mug.mesh.bounds, atol=2e-4)
    assert _surface_gap(turned.mesh, mug.mesh) < 1.5e-3


def test_registry_shapes_are_already_canonical() -> None:
    # Read as user meshes, the registry's shapes (a bottle, a torus, a mug, a box with
    # x > y) come back in their own frame: the rule fits the training objects' frame.
    for oid in ("bottle_2", "torus_1", "mug_3", "box_2", "capsule_4"):
        reg = load_object(oid)
        obj = object_from_mesh(reg.mesh, units="m")
        assert _surface_gap(obj.mesh, reg.mesh) < 2e-4, oid  # bottle_2: 0.08 mm tilt


def test_file_frame_grasps_lie_on_the_turned_object() -> None:
    from halohand.grasp.generate import GraspGenerator

    file_mesh = _turned(_banana(), 2, (0.3, 0.1, -0.2))
    obj = object_from_mesh(file_mesh, units="m")
    gs = GraspGenerator.pretrained().generate(obj, n=2, seed=1, refine=False, candidates=1,
                                              meshes=False)  # fmt: skip
    kp_file = gs.file_keypoints()
    canon = obj.signed_distance(gs.keypoints.reshape(-1, 3))
    import igl

    in_file = igl.signed_distance(kp_file.reshape(-1, 3), np.asarray(file_mesh.vertices),
                                  np.asarray(file_mesh.faces))[0]  # fmt: skip
    np.testing.assert_allclose(in_file, canon, atol=1e-9)
    np.testing.assert_allclose(obj.from_file_frame(kp_file), gs.keypoints, atol=1e-12)
    assert np.abs(canon).min() < 0.05  # a grasp, not a far hand


def test_a_ball_keeps_the_files_axes() -> None:
    ball = _turned(trimesh.creation.icosphere(3, radius=0.05), 6)
    np.testing.assert_array_equal(object_from_mesh(ball, units="m").rotation, np.eye(3))


def test_keep_leaves_the_files_axes() -> None:
    file_mesh = _turned(SHAPES["box"](), 1, (0.01, 0.02, 0.03))
    obj = object_from_mesh(file_mesh, units="m", orient="keep")
    assert obj.orient == "keep"
    np.testing.assert_array_equal(obj.rotation, np.eye(3))
    np.testing.assert_allclose(obj.vertices + obj.offset_m, file_mesh.vertices, atol=1e-12)
    with pytest.raises(HalohandInputError, match="orient"):
        object_from_mesh(file_mesh, units="m", orient="upright")


def _digest(oid: str) -> str:
    o = load_object(oid)
    raw = np.ascontiguousarray(o.vertices).tobytes() + np.ascontiguousarray(o.faces).tobytes()
    return hashlib.sha256(raw).hexdigest()[:16]


def test_registry_objects_and_their_grasps_are_unchanged() -> None:
    # Digests and keypoints recorded before orientation existed (main at 633a53f).
    pinned = {"box_4": "32e987cdba1d1447", "mug_4": "81d892e7c16539cd",
              "torus_0": "6c2c129fc9342254", "real_can": "a3448176152c02ef",
              "real_lemon": "d747e4f58921b9e2"}  # fmt: skip
    for oid, digest in pinned.items():
        assert _digest(oid) == digest, oid
        obj = load_object(oid)
        assert obj.orient == "keep" and (obj.rotation == np.eye(3)).all()
    from halohand.grasp.generate import GraspGenerator

    gs = GraspGenerator.pretrained().generate("box_4", n=2, seed=5, refine=True, candidates=2,
                                              meshes=False)  # fmt: skip
    before = [[[0.0926981, 0.0182191, -0.1181352], [0.0427752, 0.0145636, -0.0120831],
               [0.0040308, -0.0135955, -0.0105938], [0.0349435, -0.0641306, -0.0399978]],
              [[0.0597924, -0.0437095, 0.1043705], [0.0579737, -0.0316108, -0.0129117],
               [0.0245389, -0.0597627, -0.03767], [-0.0228086, -0.0362819, 0.004238]]]  # fmt: skip
    # 0.1 mm: the same code moves them by up to 1.7e-5 m between CPUs (float rounding on an
    # AMD EPYC against the Xeon these were recorded on); a changed grasp moves centimetres.
    np.testing.assert_allclose(gs.keypoints[:, [0, 4, 8, 20]], before, atol=1e-4)
    np.testing.assert_allclose(gs.file_keypoints(), gs.keypoints, atol=0)


def test_units_give_the_same_grasps_in_the_files_units() -> None:
    from halohand.grasp.generate import GraspGenerator

    gen = GraspGenerator.pretrained()
    turned = _turned(SHAPES["box"](), 3, (0.01, 0.0, 0.02))
    kps = {}
    for units, s in SCALE.items():
        file_mesh = turned.copy().apply_scale(s)
        gs = gen.generate(file_mesh, n=2, seed=3, refine=True, candidates=2, meshes=False,
                          units=units)  # fmt: skip
        kps[units] = gs.file_keypoints()
    for units in ("cm", "mm"):
        np.testing.assert_allclose(kps[units] / SCALE[units], kps["m"], atol=1e-6)


def _cli(monkeypatch, capsys, args: list[str]) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["halohand", "grasp", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_cli_orient_maps_back_and_reports_the_frame(tmp_path, monkeypatch, capsys) -> None:
    turned = _turned(SHAPES["box"](), 5, (0.02, 0.01, 0.0))
    kps = {}
    for units, orient in (("m", "principal"), ("mm", "principal"), ("m", "keep")):
        path = tmp_path / f"box_{units}.stl"
        turned.copy().apply_scale(SCALE[units]).export(path)
        out = tmp_path / f"g_{units}_{orient}"
        code, err = _cli(monkeypatch, capsys, [str(path), "--n", "2", "--out-dir", str(out),
                                               "--no-sheet", "--resolution", "32", "--units",
                                               units, "--orient", orient])  # fmt: skip
        assert code == 0, err
        report = json.loads((out / "grasps.json").read_text())
        assert report["orient"] == orient
        rot = np.asarray(report["rotation"])
        if orient == "keep":
            np.testing.assert_array_equal(rot, np.eye(3))
        else:
            assert np.abs(rot - np.eye(3)).max() > 0.1  # the turned box was turned back
        kps[units, orient] = np.load(out / "keypoints.npy")
        obj_out = trimesh.load(out / "object.ply", process=False)
        assert _surface_gap(obj_out, turned.copy().apply_scale(SCALE[units])) < 1e-6 * SCALE[units]
    np.testing.assert_allclose(kps["mm", "principal"] / 1000.0, kps["m", "principal"], atol=1e-6)
    bad = [str(tmp_path / "box_m.stl"), "--n", "1", "--out-dir", str(tmp_path / "bad"),
           "--orient", "upright"]  # fmt: skip
    code, err = _cli(monkeypatch, capsys, bad)
    assert code == 2 and err.count("\n") == 1 and "orient" in err, err
    assert not (tmp_path / "bad").exists()
    bad = ["evaluate", "--objects", str(tmp_path / "box_m.stl"), "--orient", "Principal",
           "--json", str(tmp_path / "bad.json")]  # fmt: skip
    code, err = _cli(monkeypatch, capsys, bad)
    assert code == 2 and err.count("\n") == 1 and "orient" in err, err
    assert not (tmp_path / "bad.json").exists()
