"""halohand.HALO, keypoint files, units, exports (fast: analytic net, resolution 64)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
import trimesh
from halo_fakes import CapsuleNet, hand_keypoints, write_bad_files
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

import halohand
from halohand.apps.export import export_mesh, mesh_bytes
from halohand.apps.keypoint_io import check_keypoints, load_keypoints, load_points, output_names
from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.fields import OccupancyConfig, OccupancyNetwork, save_model
from halohand.inference import halo as api
from halohand.inference.halo import HALO, coarse_resolution_for, detect_units
from halohand.skeleton import BONES, from_openpose, mirror
from halohand.skeleton.colors import PART_COLORS, part_vertex_colors

RES = 64


@pytest.fixture(scope="module")
def kp() -> np.ndarray:
    return hand_keypoints("spread")


@pytest.fixture(scope="module")
def halo(kp: np.ndarray) -> HALO:
    return HALO(CapsuleNet(kp))


@pytest.fixture(scope="module")
def mesh(halo: HALO, kp: np.ndarray) -> trimesh.Trimesh:
    return halo.reconstruct(kp, resolution=RES)


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    net = OccupancyNetwork(OccupancyConfig(hidden=(16, 16)))
    return save_model(tmp_path_factory.mktemp("model") / "tiny.safetensors", net)


def _max_dist(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric max nearest-vertex distance."""
    return max(cKDTree(a).query(b)[0].max(), cKDTree(b).query(a)[0].max())


# ---- units -----------------------------------------------------------------------------


def test_detect_units(kp: np.ndarray) -> None:
    assert detect_units(kp) == "m"
    assert detect_units(kp * 100) == "cm"
    assert detect_units(kp * 1000) == "mm"
    assert detect_units(np.stack([kp, kp * 1.1]) * 1000) == "mm"  # batch: median size
    assert detect_units(from_openpose(kp, "mano") * 100, fmt="mano") == "cm"
    with pytest.raises(HalohandInputError, match=r"fits none of m/cm/mm.*units"):
        detect_units(kp * 17)  # ~3 units: neither cm nor m
    with pytest.raises(HalohandInputError, match="hand length 0"):
        detect_units(np.zeros((21, 3)))
    with pytest.raises(HalohandInputError, match="unknown units"):
        api.resolve_units("inch", kp)


def test_coarse_resolution() -> None:
    assert [coarse_resolution_for(r) for r in (256, 64, 32, 16, 200, 96)] == [
        32,
        32,
        32,
        16,
        25,
        24,
    ]
    with pytest.raises(HalohandInputError, match="resolution"):
        api._check_resolution(4)


# ---- keypoint files --------------------------------------------------------------------


def test_load_keypoint_files(tmp_path, kp: np.ndarray) -> None:
    np.save(tmp_path / "a.npy", kp.astype(np.float32))
    np.save(tmp_path / "seq.npy", np.stack([kp, kp, kp]))
    (tmp_path / "b.json").write_text(json.dumps(kp.tolist()))
    demo = {"order": "openpose", "units": "mm", "side": "left", "keypoints": (kp * 1e3).tolist()}
    (tmp_path / "c_keypoints.json").write_text(json.dumps(demo))
    xyz = [{"x": x, "y": y, "z": z} for x, y, z in kp]
    (tmp_path / "d.json").write_text(json.dumps(xyz))
    np.savetxt(tmp_path / "e.txt", kp)
    np.savetxt(tmp_path / "f.txt", np.concatenate([kp, kp]), delimiter=",")
    (tmp_path / "g.json").write_text(json.dumps({"keypoints": from_openpose(kp, "mano").tolist(),
                                                  "format": "mano"}))  # fmt: skip

    a = load_keypoints(tmp_path / "a.npy")
    assert a.keypoints.shape == (1, 21, 3) and not a.is_sequence and a.keypoints.dtype == np.float64
    assert output_names(a) == ["a"]
    seq = load_keypoints(tmp_path / "seq.npy")
    assert seq.is_sequence and len(seq) == 3
    assert output_names(seq) == ["seq_0000", "seq_0001", "seq_0002"]
    c = load_keypoints(tmp_path / "c_keypoints.json")
    assert (c.side, c.units, c.fmt) == ("left", "mm", "openpose")
    np.testing.assert_allclose(c.keypoints[0], kp * 1e3)
    for name in ("b.json", "d.json", "e.txt"):
        np.testing.assert_allclose(load_keypoints(tmp_path / name).keypoints[0], kp)
    f = load_keypoints(tmp_path / "f.txt")
    assert f.is_sequence and f.keypoints.shape == (2, 21, 3)
    g = load_keypoints(tmp_path / "g.json")
    assert g.fmt == "mano"
    webxr = np.zeros((25, 3))
    np.save(tmp_path / "w.npy", webxr)
    assert load_keypoints(tmp_path / "w.npy", fmt="webxr").keypoints.shape == (1, 25, 3)


def test_bad_keypoint_files(tmp_path, kp: np.ndarray) -> None:
    for name, (file, pattern) in write_bad_files(tmp_path, kp).items():
        with pytest.raises(HalohandInputError, match=pattern) as info:
            load_keypoints(tmp_path / file)
        msg = str(info.value)
        assert str(tmp_path / file) in msg and "\n" not in msg, name
    with pytest.raises(CorruptFileError):
        load_keypoints(tmp_path / "trunc.npy")
    with pytest.raises(HalohandInputError, match="unknown keypoint format 'vicon'"):
        load_keypoints(tmp_path / "full.npy", fmt="vicon")
    with pytest.raises(HalohandInputError, match="25-joint skeleton: pass the matching --format"):
        check_keypoints(np.zeros((25, 3)))
    with pytest.raises(HalohandInputError, match=r"\[N, 3\]"):
        np.save(tmp_path / "p.npy", np.zeros((4, 2)))
        load_points(tmp_path / "p.npy")


# ---- reconstruction ----------------------------------------------------------------------


def test_reconstruct_is_watertight_and_part_coloured(mesh: trimesh.Trimesh, kp) -> None:
    assert len(mesh.faces) > 1000 and mesh.is_watertight and mesh.volume > 0
    assert mesh.metadata["units"] == "m" and mesh.metadata["side"] == "right"
    parts = mesh.vertex_attributes["part"]
    assert len(np.unique(parts)) == 16  # every part wins somewhere on the surface
    np.testing.assert_array_equal(mesh.visual.vertex_colors, part_vertex_colors(parts))
    np.testing.assert_allclose(
        mesh.visual.vertex_colors[:, :3] / 255, PART_COLORS[parts], atol=3e-3
    )
    # the surface hugs the skeleton: every keypoint is inside the mesh's bounds
    lo, hi = mesh.bounds
    assert np.all(kp >= lo - 1e-3) and np.all(kp <= hi + 1e-3)


def test_reconstruct_keeps_units(halo: HALO, kp, mesh) -> None:
    mm = halo.reconstruct(kp * 1000.0, resolution=RES)  # auto -> mm
    assert mm.metadata["units"] == "mm"
    np.testing.assert_allclose(mm.vertices, mesh.vertices * 1000.0, rtol=1e-6, atol=1e-6)
    cm = halo.reconstruct(kp * 100.0, units="cm", resolution=RES)
    np.testing.assert_allclose(cm.vertices, mesh.vertices * 100.0, rtol=1e-6, atol=1e-7)


def test_reconstruct_keeps_the_frame(halo: HALO, kp, mesh) -> None:
    rot = Rotation.from_euler("xyz", [30, 50, -20], degrees=True).as_matrix()
    shift = np.array([0.3, -1.2, 0.5])
    moved = halo.reconstruct(kp @ rot.T + shift, resolution=RES)
    voxel = (np.ptp(kp, 0).max() + 2 * api.DEFAULT_PADDING_M) / RES
    assert _max_dist(moved.vertices, mesh.vertices @ rot.T + shift) < voxel
    assert abs(moved.volume / mesh.volume - 1) < 0.03
    # a pure translation moves the lattice with the hand: the same mesh, shifted
    shifted = halo.reconstruct(kp + shift, resolution=RES)
    np.testing.assert_allclose(shifted.vertices, mesh.vertices + shift, atol=1e-9)


def test_left_hand_is_the_mirror_image(halo: HALO, kp, mesh) -> None:
    left = halo.reconstruct(mirror(kp), side="left", resolution=RES)
    assert left.metadata["side"] == "left" and left.is_watertight and left.volume > 0
    assert _max_dist(left.vertices, mirror(mesh.vertices)) < 1e-6
    assert abs(left.volume - mesh.volume) < 1e-3 * mesh.volume
    # the same mirrored keypoints read as a right hand give a different (wrong) surface
    assert halo.prepare(mirror(kp), side="right").is_left.tolist() == [False]


def test_reconstruct_batch_and_formats(halo: HALO, kp, mesh) -> None:
    seq = np.stack([kp, kp + 0.01])
    meshes = halo.reconstruct(seq, resolution=32)
    assert isinstance(meshes, list) and len(meshes) == 2
    np.testing.assert_allclose(meshes[1].vertices, meshes[0].vertices + 0.01, atol=1e-9)
    mano = halo.reconstruct(from_openpose(kp, "mano"), fmt="mano", resolution=RES)
    np.testing.assert_allclose(mano.vertices, mesh.vertices)
    sides = halo.prepare(seq, side=["right", "left"])
    assert sides.is_left.tolist() == [False, True]


def test_bad_hands_raise(halo: HALO, kp) -> None:
    zero = kp.copy()
    zero[10] = zero[9]  # zero-length middle proximal bone
    with pytest.raises(HalohandInputError, match="degenerate"):
        halo.reconstruct(zero, resolution=16)
    with pytest.raises(HalohandInputError, match="NaN"):
        halo.reconstruct(np.full((21, 3), np.nan))
    with pytest.raises(HalohandInputError, match="side"):
        halo.reconstruct(kp, side="both")
    with pytest.raises(HalohandInputError, match="unknown keypoint format"):
        halo.reconstruct(kp, fmt="kinect")


# ---- occupancy ---------------------------------------------------------------------------


def test_occupancy_capsules_inside_outside(halo: HALO, kp) -> None:
    mids = 0.5 * (kp[[6, 10, 14, 18]] + kp[[7, 11, 15, 19]])  # finger middle phalanges
    far = kp.mean(0) + np.array([[0.2, 0.0, 0.0], [0.0, -0.2, 0.0]])
    occ = halo.occupancy(np.concatenate([mids, far]), kp)
    assert isinstance(occ, torch.Tensor) and occ.shape == (6,)
    assert (occ[:4] > 0.9).all() and (occ[4:] < 0.01).all()
    occ_mm = halo.occupancy(np.concatenate([mids, far]) * 1000, kp * 1000)
    torch.testing.assert_close(occ_mm, occ, atol=1e-5, rtol=0)


def test_occupancy_gradients_and_batches(tiny_model_path, kp) -> None:
    model = HALO.from_checkpoint(tiny_model_path)
    rng = np.random.default_rng(0)
    pts = kp[rng.integers(0, 21, 64)] + rng.normal(0, 0.01, (64, 3))
    p = torch.tensor(np.stack([pts, pts + 0.02]), requires_grad=True)
    k = torch.tensor(np.stack([kp, kp + 0.02]), requires_grad=True)
    occ, parts = model.occupancy(p, k, side=["right", "right"], units="m", return_parts=True)
    assert occ.shape == (2, 64) and parts.shape == (2, 64, 16)
    assert occ.requires_grad
    occ.sum().backward()
    for g in (p.grad, k.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    # a translated hand with translated points gives the same occupancy
    torch.testing.assert_close(occ[1], occ[0], atol=1e-5, rtol=0)
    # single hand, numpy in -> tensor out without a graph
    single = model.occupancy(pts, kp)
    assert single.shape == (64,) and not single.requires_grad
    torch.testing.assert_close(single, occ[0].detach(), atol=1e-6, rtol=0)
    # [N, 3] points around a batch of hands
    assert model.occupancy(pts, np.stack([kp, kp])).shape == (2, 64)
    with pytest.raises(HalohandInputError, match="batch"):
        model.occupancy(np.zeros((3, 5, 3)), np.stack([kp, kp]))


def test_occupancy_gradients_with_the_capsule_net(halo: HALO, kp) -> None:
    p = torch.tensor(0.5 * (kp[[6, 10]] + kp[[7, 11]]) + 0.008, requires_grad=True)
    k = torch.tensor(kp, requires_grad=True)
    halo.occupancy(p, k).sum().backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert torch.isfinite(k.grad).all() and k.grad.abs().sum() > 0


# ---- loading -----------------------------------------------------------------------------


def test_from_checkpoint_and_pretrained(tiny_model_path, tmp_path, monkeypatch) -> None:
    model = HALO.from_checkpoint(tiny_model_path)
    assert isinstance(model.network, OccupancyNetwork) and not model.network.training
    assert isinstance(HALO.pretrained(tiny_model_path), HALO)
    monkeypatch.setattr(api, "pretrained_path", lambda: None)
    with pytest.raises(FileNotFoundError, match="no pretrained weights shipped"):
        HALO.pretrained()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 4)
    with pytest.raises(CorruptFileError, match="bad.safetensors"):
        HALO.from_checkpoint(bad)
    mano = OccupancyNetwork(OccupancyConfig(hidden=(8,), transforms="mano"))
    with pytest.raises(HalohandInputError, match="keypoint-driven"):
        HALO(mano)
    assert halohand.HALO is HALO


# ---- exports -----------------------------------------------------------------------------


def test_exports_carry_colours_and_skeleton(mesh: trimesh.Trimesh, kp, tmp_path) -> None:
    import pygltflib

    glb = mesh_bytes(mesh, "glb", keypoints=kp)
    gltf = pygltflib.GLTF2.load_from_bytes(glb)
    nodes = {n.name: n for n in gltf.nodes}
    assert {"hand", "skeleton", "keypoints"} <= set(nodes)
    modes = {gltf.meshes[n.mesh].primitives[0].mode for n in nodes.values()}
    assert {pygltflib.TRIANGLES, pygltflib.LINES, pygltflib.POINTS} <= modes
    scene = trimesh.load(io.BytesIO(glb), file_type="glb")
    hand = scene.geometry["hand"]
    np.testing.assert_array_equal(hand.visual.vertex_colors, mesh.visual.vertex_colors)
    bones = scene.geometry["skeleton"]  # 20 segments between the 21 keypoints
    assert _max_dist(np.asarray(bones.vertices), kp) < 1e-6
    v = np.asarray(bones.vertices)  # glTF LINES: vertex pairs are the segments
    seg = np.sort(np.linalg.norm(v[1::2] - v[0::2], axis=1))
    expected = np.sort(np.linalg.norm(kp[BONES[:, 1]] - kp[BONES[:, 0]], axis=1))
    np.testing.assert_allclose(seg, expected, atol=1e-6)

    for ext in ("ply", "obj"):
        path = export_mesh(mesh, tmp_path / f"hand.{ext}")
        back = trimesh.load(path, process=False)
        assert len(back.faces) == len(mesh.faces)
        np.testing.assert_array_equal(back.visual.vertex_colors, mesh.visual.vertex_colors)
        np.testing.assert_allclose(back.vertices, mesh.vertices, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hand.obj", "hand.ply"]  # no temps
    with pytest.raises(HalohandInputError, match="unknown mesh format"):
        export_mesh(mesh, tmp_path / "hand.stl")
