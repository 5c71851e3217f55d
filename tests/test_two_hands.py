"""Two interacting hands: the pair sampler, the ``pairs`` data kind, the InterHand2.6M
adapter, ``HALO.reconstruct_pair`` and two-hand input to ``halohand reconstruct``.

Reconstruction runs on the analytic capsule net of ``halo_fakes`` (fast, predictable); the
sampler and the data engine run on the embedded hand model with exact signed distance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from halo_fakes import CapsuleNet, hand_keypoints, run_cli

from halohand.apps.cli import reconstruct as reconstruct_cli
from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.data import constants as C
from halohand.data.dataset import OccupancyDataset, PairDataset, load_shard
from halohand.data.engine import generate, verify
from halohand.data.interhand import (
    INTERHAND_JOINT_NAMES,
    interhand_pairs,
    pair_array_m,
    read_interhand,
)
from halohand.data.pairs import (
    INTERACTIONS,
    PairSampler,
    penetration,
    penetration_volume,
    resolve_contact,
)
from halohand.inference.halo import HALO
from halohand.inference.two_hands import separate_occupancy
from halohand.objects.inside import winding_number
from halohand.skeleton.orders import INTERHAND_FROM_OPENPOSE, JOINT_NAMES

RES = 32


@pytest.fixture(scope="module")
def sampler() -> PairSampler:
    return PairSampler()


def _to_interhand42(kp2: np.ndarray) -> np.ndarray:
    return np.concatenate([kp2[0][INTERHAND_FROM_OPENPOSE], kp2[1][INTERHAND_FROM_OPENPOSE]])


# ------------------------------------------------------------------ penetration and contact


def _sphere(centre: tuple[float, float, float], r: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    s = trimesh.creation.icosphere(subdivisions=3, radius=r)
    return np.asarray(s.vertices) + centre, np.asarray(s.faces, dtype=np.int64)


def test_penetration_of_two_overlapping_spheres_matches_geometry() -> None:
    va, fa = _sphere((0.0, 0.0, 0.0))
    vb, fb = _sphere((0.015, 0.0, 0.0))
    pen = penetration(va, fa, vb, fb)
    # the deepest vertex of one sphere lies 5 mm from the other's centre: 5 mm deep
    assert pen.max_depth == pytest.approx(0.005, abs=2e-4)
    assert pen.min_distance == pytest.approx(-pen.max_depth)
    r, d = 0.01, 0.015
    lens = np.pi * (4 * r + d) * (2 * r - d) ** 2 / 12  # volume of the lens of two balls
    assert penetration_volume(va, fa, vb, fb, voxel_m=0.0005) == pytest.approx(lens, rel=0.1)
    apart = penetration(va, fa, vb + [0.03, 0, 0], fb)
    assert apart.count == 0 and apart.max_depth == 0.0
    assert apart.min_distance == pytest.approx(0.025, abs=2e-4)  # centres 45 mm apart


@pytest.mark.parametrize("start", [0.0, 0.2])
def test_contact_resolution_stops_at_touching(start: float) -> None:
    va, fa = _sphere((0.0, 0.0, 0.0))
    vb, fb = _sphere((0.005, 0.0, 0.0))  # deep inside: moved out; or from afar: moved in
    t, pen = resolve_contact(va, fa, vb, fb, np.array([1.0, 0.0, 0.0]), start, 0.001)
    gap = 0.005 + t  # centre distance after the move
    assert 0.0 < pen.max_depth <= 0.001
    assert 0.02 - 0.0012 < gap < 0.02


# ------------------------------------------------------------------ the pair sampler


_SLOW = pytest.mark.slow  # ~0.7 s a pair; two kinds run by default, every kind with -m slow


@pytest.mark.parametrize(
    "kind",
    [k if k in ("hold_finger", "near") else pytest.param(k, marks=_SLOW) for k in INTERACTIONS],
)
def test_pairs_touch_without_penetrating(sampler: PairSampler, kind: str) -> None:
    pair = sampler.sample(np.random.default_rng([1, INTERACTIONS.index(kind)]), kind)
    r, lf = pair.right, pair.left
    assert (r.side, lf.side, pair.interaction) == ("right", "left", kind)
    fr, fl = r.faces.astype(np.int64), lf.faces.astype(np.int64)
    # recomputed independently of the sampler's own record
    pen = penetration(r.vertices, fr, lf.vertices, fl)
    assert pen.max_depth <= sampler.tolerance_m + 1e-9
    if kind == "near":
        assert pen.count == 0 and pen.min_distance >= 0.5 * pair.gap_m > 0.0
    else:
        assert pen.count > 0, "the hands should touch"
        assert penetration_volume(r.vertices, fr, lf.vertices, fl) < 30e-9  # < 30 mm^3
    for hand in pair.hands:
        mesh = trimesh.Trimesh(hand.vertices, hand.faces, process=False)
        assert mesh.is_watertight and mesh.volume > 0
        # the keypoints moved with the mesh: the wrist and fingertips lie on or in the hand
        wn = winding_number(hand.vertices, hand.faces.astype(np.int64), hand.keypoints[[0, 9]])
        assert np.all(wn > 0.5)
    assert not np.allclose(r.bone_lengths, lf.bone_lengths)  # independent identities


def test_pair_sampling_is_deterministic(sampler: PairSampler) -> None:
    a = sampler.sample(np.random.default_rng(5))
    b = PairSampler().sample(np.random.default_rng(5))  # a fresh sampler: no hidden state
    assert a.interaction == b.interaction
    np.testing.assert_array_equal(a.right.vertices, b.right.vertices)
    np.testing.assert_array_equal(a.left.keypoints, b.left.keypoints)
    assert a.penetration == b.penetration


def test_sampler_rejects_unknown_interactions(sampler: PairSampler) -> None:
    with pytest.raises(HalohandInputError, match="unknown interaction"):
        PairSampler(interactions=("hug",))
    with pytest.raises(HalohandInputError, match="unknown interaction"):
        sampler.sample(np.random.default_rng(0), "hug")


# ------------------------------------------------------------------ the data engine


@pytest.fixture(scope="module")
def pair_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "d"
    generate(out, {"train": 2}, seed=3, source=PairSampler, source_name=PairSampler.name,
             side="both", hands_per_shard=1, workers=1, progress=False, kind="pairs")  # fmt: skip
    return out


def test_pair_shards_hold_per_hand_labels_on_shared_points(pair_data: Path) -> None:
    assert verify(pair_data) == (2, 2)
    manifest = json.loads((pair_data / "manifest.json").read_text())
    assert manifest["kind"] == "pairs" and manifest["settings"]["kind"] == "pairs"
    shard = load_shard(pair_data / "train" / "shard_00001.npz", verify=True)
    item = shard.pair(0)
    assert item["hand_index"] == 1 and item["interaction"] in INTERACTIONS
    assert item["occ_uniform"].shape == (2, C.NUM_UNIFORM_POINTS)
    assert item["occ_near"].shape == (2, C.NUM_NEAR_POINTS)
    assert item["keypoints"].shape == (2, 21, 3)
    pts = np.concatenate([item["points_uniform"], item["points_near"]]).astype(np.float64)
    occ = np.concatenate([item["occ_uniform"], item["occ_near"]], axis=1)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(pts), 3000, replace=False)
    for side, (v, f) in enumerate(item["meshes"]):
        # labels are the inside test on the stored points, per hand
        expected = winding_number(v, f, pts[pick]) >= 0.5
        np.testing.assert_array_equal(occ[side, pick], expected)
        # the near pool is split between the hands: each half hugs its own hand
        half = C.NUM_NEAR_POINTS // 2
        near = item["occ_near"][side]
        own = near[:half] if side == 0 else near[half:]
        assert own.mean() > 0.2
    both = occ.all(0).mean()
    assert both < 1e-3  # the hands barely overlap
    assert item["penetration"][0] <= PairSampler().tolerance_m + 1e-9
    with pytest.raises(CorruptFileError, match="pair"):
        shard.hand(0)


def test_pair_dataset_items(pair_data: Path) -> None:
    ds = PairDataset(pair_data, "train", n_points=512, seed=0)
    assert len(ds) == 2
    item = ds[1]
    assert item["points"].shape == (512, 3) and item["occupancies"].shape == (2, 512)
    assert item["keypoints"].shape == (2, 21, 3) and int(item["index"]) == 1
    full = PairDataset(pair_data, "train", n_points=None).pair(1)
    # the sampled labels are the stored ones at the sampled points
    pts = np.concatenate([full["points_uniform"], full["points_near"]])
    occ = np.concatenate([full["occ_uniform"], full["occ_near"]], axis=1)
    lookup = {tuple(p): i for i, p in enumerate(np.round(pts / C.COORD_QUANTUM_M).astype(int))}
    rows = [lookup[tuple(p)] for p in np.round(item["points"].numpy() / C.COORD_QUANTUM_M)
            .astype(int)]  # fmt: skip
    np.testing.assert_array_equal(item["occupancies"].numpy().astype(bool), occ[:, rows])
    assert item["occupancies"].sum() > 0
    with pytest.raises(HalohandInputError, match="PairDataset"):
        OccupancyDataset(pair_data, "train")


def test_pair_data_resumes_to_identical_bytes(pair_data: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(pair_data, copy)
    (copy / "train" / "shard_00000.npz").unlink()
    report = generate(copy, {"train": 2}, seed=3, source=PairSampler,
                      source_name=PairSampler.name, side="both", hands_per_shard=1,
                      workers=1, progress=False, kind="pairs")  # fmt: skip
    assert (report.shards_written, report.shards_skipped) == (1, 1)
    for name in ("train/shard_00000.npz", "manifest.json"):
        assert (copy / name).read_bytes() == (pair_data / name).read_bytes()
    with pytest.raises(HalohandInputError, match="pairs are sampled by"):
        generate(tmp_path / "x", {"train": 1}, seed=0, source=PairSampler, workers=1)


# ------------------------------------------------------------------ InterHand2.6M


def _named_joints(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0.0, 50.0, (42, 3)) + [0.0, 0.0, 800.0]  # mm


def test_interhand_joint_order_by_name() -> None:
    world = _named_joints(np.random.default_rng(0))
    kp = interhand_pairs(world)
    ih_to_project = {"thumb4": "thumb_tip", "thumb3": "thumb_ip", "thumb2": "thumb_mcp",
                     "thumb1": "thumb_cmc", "wrist": "wrist"}  # fmt: skip
    for f in ("index", "middle", "ring", "pinky"):
        ih_to_project.update({f"{f}4": f"{f}_tip", f"{f}3": f"{f}_dip",
                              f"{f}2": f"{f}_pip", f"{f}1": f"{f}_mcp"})  # fmt: skip
    for i, name in enumerate(INTERHAND_JOINT_NAMES):
        j = JOINT_NAMES.index(ih_to_project[name])
        np.testing.assert_allclose(kp[0, j], world[i] / 1000.0)  # right: 0-20
        np.testing.assert_allclose(kp[1, j], world[21 + i] / 1000.0)  # left: 21-41


def _write_annotations(tmp_path: Path, world: np.ndarray) -> tuple[Path, Path]:
    invalid = [[1]] * 42
    invalid[26] = [0]  # the left hand's index3 (21 + 5): its index DIP
    joints = {
        "12": {
            "7": {"world_coord": world.tolist(), "joint_valid": [[1]] * 42,
                  "hand_type": "interacting", "hand_type_valid": 1},
            "3": {"world_coord": world.tolist(), "joint_valid": invalid,
                  "hand_type": "interacting", "hand_type_valid": 1},
        },
        "2": {"10": {"world_coord": world.tolist(), "joint_valid": [1] * 42,
                     "hand_type": "right", "hand_type_valid": 1}},
    }  # fmt: skip
    rot = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # 90 degrees about z
    cam = {
        "campos": {"400262": [10.0, 20.0, -500.0]},
        "camrot": {"400262": rot},
        "focal": {"400262": [1000.0, 1100.0]},
        "princpt": {"400262": [160.0, 240.0]},
    }
    (tmp_path / "j.json").write_text(json.dumps(joints))
    (tmp_path / "c.json").write_text(json.dumps({"12": cam, "2": cam}))
    return tmp_path / "j.json", tmp_path / "c.json"


def test_interhand_annotations_world_and_camera(tmp_path: Path) -> None:
    world = _named_joints(np.random.default_rng(1))
    jpath, cpath = _write_annotations(tmp_path, world)
    frames = read_interhand(jpath)
    # captures and frames in numeric order, not string order
    assert [(f.capture, f.frame) for f in frames] == [("2", "10"), ("12", "3"), ("12", "7")]
    right_only, broken, full = frames
    assert right_only.hand_type == "right" and list(right_only.complete) == [True, False]
    assert list(broken.complete) == [True, False]  # left index DIP invalid
    assert not broken.valid[1, JOINT_NAMES.index("index_dip")]
    assert broken.valid[1].sum() == 20 and broken.valid[0].all()
    assert list(full.complete) == [True, True] and full.frame_of == "world"
    np.testing.assert_allclose(full.keypoints, interhand_pairs(world))

    cam_frames = read_interhand(jpath, cpath, "400262")
    wrist_world = world[20] / 1000.0  # right wrist, m
    x, y, z = wrist_world - np.array([10.0, 20.0, -500.0]) / 1000.0
    np.testing.assert_allclose(cam_frames[2].keypoints[0, 0], [-y, x, z], atol=1e-12)
    assert cam_frames[2].frame_of == "camera 400262"
    with pytest.raises(HalohandInputError, match="no camera 999"):
        read_interhand(jpath, cpath, "999")
    with pytest.raises(HalohandInputError, match="needs the camera file"):
        read_interhand(jpath, camera_id="400262")
    (tmp_path / "bad.json").write_text(json.dumps({"1": {"0": {"world_coord": [[0, 0, 0]]}}}))
    with pytest.raises(CorruptFileError, match=r"world_coord must be \[42, 3\]"):
        read_interhand(tmp_path / "bad.json")


def test_pair_arrays_in_both_layouts() -> None:
    kp = np.stack([hand_keypoints("spread"), hand_keypoints("fist") + 0.1])  # m, openpose
    np.testing.assert_allclose(pair_array_m(_to_interhand42(kp) * 1000.0), kp, atol=1e-12)
    np.testing.assert_allclose(pair_array_m(kp * 100.0), kp, atol=1e-12)  # cm detected
    with pytest.raises(HalohandInputError, match=r"\[42, 3\].*\[2, 21, 3\]"):
        pair_array_m(np.zeros((3, 21, 3)))


# ------------------------------------------------------------------ API and CLI


@pytest.fixture(scope="module")
def two_hands() -> np.ndarray:
    """A right and a left spread hand side by side, metres, project order."""
    right = hand_keypoints("spread")
    left = right * [-1.0, 1.0, 1.0] + [0.25, 0.0, 0.0]  # mirror image, 25 cm away
    return np.stack([right, left])


@pytest.fixture
def model() -> HALO:
    return HALO(CapsuleNet(hand_keypoints("spread")))


def test_reconstruct_pair_is_two_independent_hands(model: HALO, two_hands: np.ndarray) -> None:
    pair = model.reconstruct_pair(two_hands, resolution=RES)
    assert pair.units == "m"
    assert pair.right.metadata["side"] == "right" and pair.left.metadata["side"] == "left"
    for mesh in pair.meshes:
        assert mesh.is_watertight and len(mesh.faces) > 100
    alone = model.reconstruct(two_hands[1], side="left", resolution=RES)
    np.testing.assert_allclose(pair.left.vertices, alone.vertices)
    # [42, 3] InterHand layout in mm gives the same meshes, in mm
    mm = model.reconstruct_pair(_to_interhand42(two_hands) * 1000.0, resolution=RES)
    assert mm.units == "mm"
    np.testing.assert_allclose(mm.right.vertices / 1000.0, pair.right.vertices, atol=1e-9)
    nodes = set(pair.scene().graph.nodes_geometry)
    assert {"hand_right", "hand_left", "skeleton_right", "skeleton_left"} == nodes


def test_pair_occupancy_has_gradients(model: HALO, two_hands: np.ndarray) -> None:
    pair = model.reconstruct_pair(two_hands, resolution=RES)
    mid = torch.tensor(two_hands[:, 9], requires_grad=True)  # each hand's middle MCP
    occ = pair.occupancy(mid)
    assert occ.shape == (2, 2)
    assert occ[0, 0] > 0.5 and occ[1, 1] > 0.5  # inside its own hand
    assert occ[0, 1] < 0.01 and occ[1, 0] < 0.01  # 25 cm from the other
    occ[0, 0].backward()
    assert mid.grad is not None and torch.isfinite(mid.grad).all()
    direct = model.pair_occupancy(mid.detach(), two_hands)
    torch.testing.assert_close(direct, occ.detach())


def test_refine_hook_sees_metres_and_moves_the_mesh(model: HALO, two_hands: np.ndarray) -> None:
    seen = []

    def lift_left(kp_m: np.ndarray) -> np.ndarray:
        seen.append(kp_m.copy())
        out = kp_m.copy()
        out[1] += [0.0, 0.0, 0.01]  # 1 cm up
        return out

    base = model.reconstruct_pair(two_hands * 1000.0, resolution=RES)
    moved = model.reconstruct_pair(two_hands * 1000.0, resolution=RES, refine=lift_left)
    np.testing.assert_allclose(seen[0], two_hands, atol=1e-12)  # metres, project order
    shift = moved.left.vertices.mean(0) - base.left.vertices.mean(0)
    np.testing.assert_allclose(shift, [0.0, 0.0, 10.0], atol=1e-6)  # mm, the input's unit
    np.testing.assert_allclose(moved.right.vertices, base.right.vertices)
    with pytest.raises(HalohandInputError, match="refiner must return"):
        model.reconstruct_pair(two_hands, resolution=RES, refine=lambda k: k[:1])


@pytest.fixture
def cli_model(monkeypatch: pytest.MonkeyPatch, model: HALO) -> HALO:
    monkeypatch.setattr(reconstruct_cli, "_load_model", lambda checkpoint, device: model)
    return model


def test_cli_two_hand_files(monkeypatch, capsys, tmp_path, cli_model, two_hands) -> None:
    np.save(tmp_path / "ih.npy", _to_interhand42(two_hands) * 1000.0)
    np.save(tmp_path / "stacked.npy", two_hands)
    joints = {"5": {"9": {"world_coord": (_to_interhand42(two_hands) * 1000).tolist(),
                          "joint_valid": [1] * 42, "hand_type": "interacting"}}}  # fmt: skip
    (tmp_path / "ann.json").write_text(json.dumps(joints))
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        monkeypatch, capsys, "reconstruct", tmp_path / "ih.npy", tmp_path / "ann.json",
        "--out-dir", out, "--resolution", RES,
    )  # fmt: skip
    assert code == 0, err
    assert "wrote 6 mesh files (4 hand meshes and 2 two-hand scenes)" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "ann_c5_f9_left.ply", "ann_c5_f9_pair.glb", "ann_c5_f9_right.ply",
        "ih_left.ply", "ih_pair.glb", "ih_right.ply",
    ]  # fmt: skip
    scene = trimesh.load(out / "ih_pair.glb")
    assert {"hand_right", "hand_left"} <= set(scene.graph.nodes_geometry)
    left = trimesh.load(out / "ih_left.ply", process=False)
    assert left.is_watertight and left.vertices[:, 0].mean() > 200.0  # mm, the left hand
    # [2, 21, 3] is a sequence of single hands unless --pair says otherwise
    code, stdout, err = run_cli(monkeypatch, capsys, "reconstruct", tmp_path / "stacked.npy",
                                "--out-dir", tmp_path / "o2", "--resolution", RES)  # fmt: skip
    assert code == 0 and "wrote 2 meshes to" in stdout
    assert (tmp_path / "o2" / "stacked_0000.ply").exists()
    assert "mirrored" in err and "pass --pair" in err  # the left hand read as a right one
    code, stdout, err = run_cli(
        monkeypatch, capsys, "reconstruct", tmp_path / "stacked.npy", "--pair",
        "--out-dir", tmp_path / "o3", "--resolution", RES,
    )  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "o3" / "stacked_pair.glb").exists()
    code, _, err = run_cli(monkeypatch, capsys, "reconstruct", tmp_path / "ih.npy",
                           "--side", "left", "--out-dir", tmp_path / "o4")  # fmt: skip
    assert code == 2 and "--side does not apply" in err
    np.save(tmp_path / "three.npy", np.zeros((3, 21, 3)))
    code, _, err = run_cli(monkeypatch, capsys, "reconstruct", tmp_path / "three.npy",
                           "--pair", "--out-dir", tmp_path / "o5")  # fmt: skip
    assert code == 2 and "--pair needs" in err
    assert not (tmp_path / "o4").exists() and not (tmp_path / "o5").exists()


def test_viewer_reads_both_hands_of_a_pair_scene(model: HALO, two_hands, tmp_path) -> None:
    from halohand.apps.export import export_scene
    from halohand.apps.viewer.server import load_frame

    pair = model.reconstruct_pair(two_hands, resolution=RES)
    export_scene(pair.scene(), tmp_path / "p.glb")
    frame = load_frame(tmp_path / "p.glb")
    assert frame.triangles == len(pair.right.faces) + len(pair.left.faces)


def test_data_pairs_cli_bad_input_and_other_kind(monkeypatch, capsys, pair_data, tmp_path) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "data", "pairs", "--out", tmp_path / "p",
                           "--n-train", "-1")  # fmt: skip
    assert code == 2 and "--n-train" in err and not (tmp_path / "p").exists()
    # a single-hand run refuses the pair folder, naming the kind
    code, _, err = run_cli(monkeypatch, capsys, "data", "generate", "--out", pair_data,
                           "--n-train", "2", "--source", "toy")  # fmt: skip
    assert code == 2 and "kind='pairs'" in err


def test_data_pairs_cli_thickness_mean(monkeypatch, capsys, pair_data, tmp_path) -> None:
    out = tmp_path / "thick"
    code, _, err = run_cli(monkeypatch, capsys, "data", "pairs", "--out", out, "--n-train", "1",
                           "--seed", "3", "--workers", "1", "--pairs-per-shard", "1",
                           "--thickness-mean", "0.15", "--no-progress")  # fmt: skip
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["source"] == "webxr-pairs-thick0.15"

    def volumes(folder: Path) -> list[float]:
        item = load_shard(folder / "train" / "shard_00000.npz", verify=True).pair(0)
        return [trimesh.Trimesh(v, f, process=False).volume for v, f in item["meshes"]]

    # every part starts 15 % thicker: both hands gain 15-20 % of volume on the same seed
    # (measured on seeds 0-3; the pose and placement may differ after the collision checks)
    for thick, plain in zip(volumes(out), volumes(pair_data), strict=True):
        assert thick > 1.1 * plain
    code, _, err = run_cli(monkeypatch, capsys, "data", "pairs", "--out", tmp_path / "bad",
                           "--n-train", "1", "--thickness-mean", "0.2")  # fmt: skip
    assert code == 2 and "--thickness-mean" in err and not (tmp_path / "bad").exists()


def test_pair_keypoints_formats_and_tensors() -> None:
    from halohand.inference.two_hands import pair_keypoints
    from halohand.skeleton.orders import OPENPOSE_FROM_WEBXR

    rng = np.random.default_rng(0)
    webxr = rng.normal(size=(2, 25, 3))
    kp, fmt = pair_keypoints(webxr, "webxr")
    assert fmt == "webxr" and kp.shape == (2, 21, 3)
    np.testing.assert_array_equal(kp[1], webxr[1][OPENPOSE_FROM_WEBXR])
    # a [42, 3] tensor stays a tensor, and gradients reach every joint through the reorder
    t = torch.tensor(rng.normal(size=(42, 3)), requires_grad=True)
    out, _ = pair_keypoints(t)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 21, 3)
    out.sum().backward()
    assert torch.equal(t.grad, torch.ones_like(t))
    with pytest.raises(HalohandInputError, match="NaN"):
        pair_keypoints(np.full((42, 3), np.nan))


def test_separate_occupancy_rule() -> None:
    rng = np.random.default_rng(0)
    own, other = rng.uniform(0, 1, 1000), rng.uniform(0, 1, 1000)
    level = 0.4
    out = separate_occupancy(own, other, level)
    free = other <= level
    np.testing.assert_array_equal(out[free], own[free])  # unchanged unless the other claims
    np.testing.assert_allclose(out[~free], own[~free] - (other[~free] - level))
    assert ((out > level) == ((own > level) & (free | (own > other)))).all()
    both = (own > level) & (other > level)
    back = separate_occupancy(other, own, level)
    # where both claimed a point, exactly one keeps it (ties excepted)
    claim = both & (own != other)
    assert ((out[claim] > level) ^ (back[claim] > level)).all() and claim.sum() > 50
    t = separate_occupancy(torch.tensor(own, requires_grad=True), torch.tensor(other), level)
    np.testing.assert_allclose(t.detach().numpy(), out)
    t.sum().backward()  # differentiable


def test_separate_removes_the_overlap_of_two_hands(model: HALO, two_hands: np.ndarray) -> None:
    """The left hand moved onto the right one: the independent meshes overlap by cm^3; the
    separated ones meet without overlapping, and stay watertight."""
    from halohand.interaction.plausibility import penetration_volume as mesh_overlap

    crossed = two_hands.copy()
    crossed[1] += [-0.25 + 0.035, 0.0, 0.012]  # palms overlapping by ~1-2 cm
    base = model.reconstruct_pair(crossed, resolution=48)
    sep = model.reconstruct_pair(crossed, resolution=48, separate=True)
    before, after = mesh_overlap(*base.meshes), mesh_overlap(*sep.meshes)
    assert before > 1.0  # cm^3
    assert after < 0.05 * before
    for mesh in sep.meshes:
        assert mesh.is_watertight
    assert sep.separated and not base.separated
    # the occupancy the meshes came from: no point is inside both hands
    pts = torch.from_numpy(np.concatenate([base.right.vertices, base.left.vertices]))
    occ = sep.occupancy(pts)
    level = model.iso_level
    assert not ((occ[0] > level) & (occ[1] > level)).any()
    with pytest.raises(HalohandInputError, match="exactly two hands"):
        next(model.meshes(model.prepare(crossed[:1]), 32, separate=True))


def test_cli_separates_overlapping_pairs_by_default(
    monkeypatch, capsys, tmp_path, cli_model, two_hands
) -> None:
    from halohand.interaction.plausibility import penetration_volume as mesh_overlap

    crossed = two_hands.copy()
    crossed[1] += [-0.25 + 0.035, 0.0, 0.012]
    np.save(tmp_path / "x.npy", crossed)
    overlap = {}
    for flag in ("--separate", "--no-separate"):
        out = tmp_path / flag.strip("-")
        code, _, err = run_cli(monkeypatch, capsys, "reconstruct", tmp_path / "x.npy", "--pair",
                               "--out-dir", out, "--resolution", 48, flag)  # fmt: skip
        assert code == 0, err
        meshes = [trimesh.load(out / f"x_{s}.ply", process=False) for s in ("right", "left")]
        assert all(m.is_watertight for m in meshes)
        overlap[flag] = mesh_overlap(*meshes)
    assert (
        overlap["--no-separate"] > 1.0 and overlap["--separate"] < 0.05 * overlap["--no-separate"]
    )
