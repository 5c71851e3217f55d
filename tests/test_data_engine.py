"""The data engine: determinism, byte identity, resume after a kill, labels, reader errors.

Runs on the synthetic toy source (``halohand.handmodel.toy``) so it does not depend on the hand
models; one test repeats the label check on the WebXR source when it is available.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.data import constants as C
from halohand.data.dataset import OccupancyDataset, load_shard
from halohand.data.engine import (
    dequantize,
    generate,
    hand_seed,
    make_hand,
    validate_hand,
    verify,
)
from halohand.data.shards import shard_arrays, write_npz_deterministic
from halohand.handmodel.toy import ToyHandSource
from halohand.objects.inside import winding_number

COUNTS = {"train": 2, "val": 1, "test": 0}
SETTINGS = {"seed": 7, "side": "both", "hands_per_shard": 2}
CLI = [sys.executable, "-m", "halohand.apps.cli"]


def _run_reference(out: Path, workers: int) -> None:
    generate(out, COUNTS, source=ToyHandSource(), workers=workers, progress=False, **SETTINGS)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "ref"
    _run_reference(out, workers=1)
    return out


def test_layout_and_manifest(reference: Path) -> None:
    files = _files(reference)
    assert sorted(files) == [
        "manifest.json",
        "train/shard_00000.npz",
        "val/shard_00000.npz",
    ]
    manifest = json.loads(files["manifest.json"])
    assert manifest["complete"] is True
    assert manifest["settings"]["counts"] == {"train": 2, "val": 1, "test": 0}
    assert manifest["settings"]["source"] == "toy"
    assert [s["hands"] for s in manifest["shards"]] == [2, 1]
    assert verify(reference) == (2, 3)


@pytest.mark.slow
def test_same_seed_is_byte_identical_with_any_worker_count(reference: Path, tmp_path: Path) -> None:
    _run_reference(tmp_path / "again", workers=2)
    assert _files(tmp_path / "again") == _files(reference)


def test_rerun_skips_finished_shards(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    report = generate(out, COUNTS, source=ToyHandSource(), workers=1, progress=False, **SETTINGS)
    assert report.hands_generated == 0 and report.shards_skipped == 2
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == stamps
    assert _files(out) == _files(reference)


def test_other_settings_in_same_folder_are_refused(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    with pytest.raises(HalohandInputError, match="seed=7"):
        generate(out, COUNTS, seed=8, source=ToyHandSource(), side="both", hands_per_shard=2)


@pytest.mark.slow
def test_killed_run_resumes_to_identical_bytes(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    args = ["data", "generate", "--out", str(out), "--source", "toy", "--workers", "1"]
    args += ["--n-train", "2", "--n-val", "1", "--seed", "7", "--side", "both"]
    args += ["--hands-per-shard", "2", "--no-progress"]
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "train" / "shard_00000.npz"
    deadline = time.monotonic() + 60
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists()
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    assert not (out / "val" / "shard_00000.npz").exists()
    assert filecmp.cmp(first, reference / "train" / "shard_00000.npz", shallow=False)

    report = generate(out, COUNTS, source=ToyHandSource(), workers=1, progress=False, **SETTINGS)
    assert report.shards_skipped == 1 and report.hands_generated == 1
    assert _files(out) == _files(reference)
    assert not list(out.rglob(".*.tmp"))


def test_corrupt_shard_is_regenerated_on_rerun(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    shard = out / "val" / "shard_00000.npz"
    shard.write_bytes(shard.read_bytes()[:5000])
    report = generate(out, COUNTS, source=ToyHandSource(), workers=1, progress=False, **SETTINGS)
    assert report.shards_regenerated == ["val/shard_00000.npz"]
    assert _files(out) == _files(reference)


def test_foreign_shard_in_folder_is_an_error(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    shard = load_shard(out / "val" / "shard_00000.npz")
    arrays = {k: np.asarray(v) for k, v in shard.arrays.items()}
    hands = [{k: v[0] for k, v in arrays.items() if k in _per_hand_keys()}]
    hands[0]["mesh_vertices"], hands[0]["mesh_faces"] = shard.mesh(0)
    meta = dict(shard.meta, seed=99)
    write_npz_deterministic(shard.path, shard_arrays(hands, meta))
    with pytest.raises(CorruptFileError, match="val/shard_00000.npz.*different run"):
        generate(out, COUNTS, source=ToyHandSource(), workers=1, progress=False, **SETTINGS)


def _per_hand_keys() -> set[str]:
    from halohand.data.shards import hand_schema

    return set(hand_schema(C.constants_dict()))


def test_shapes_dtypes_and_units(reference: Path) -> None:
    shard = load_shard(reference / "train" / "shard_00000.npz", verify=True)
    assert shard.num_hands == 2
    a = shard.arrays
    assert a["points_uniform"].shape == (2, C.NUM_UNIFORM_POINTS, 3)
    assert a["points_uniform"].dtype == np.int16
    assert a["occ_near"].shape == (2, C.NUM_NEAR_POINTS // 8)
    assert a["surface_points"].shape == (2, C.NUM_LABELLED_SURFACE, 3)
    assert a["pointcloud_normals"].dtype == np.float16
    assert [int(s) for s in a["side"]] == [0, 1]  # "both": even index right, odd left
    h = shard.hand(1)
    assert h["side"] == "left" and h["hand_index"] == 1
    b = C.BOX_HALF_SIDE_M
    assert np.all(np.abs(h["points_uniform"]) <= b + C.COORD_QUANTUM_M)
    assert 0.10 < np.abs(h["keypoints"]).max() < 0.25  # metres
    assert np.allclose(np.linalg.norm(h["pointcloud_normals"], axis=1), 1, atol=2e-3)
    assert set(np.unique(h["surface_labels"])) == set(range(16))
    # Near-surface offsets have the documented scale: distance to the surface ~ |N(0, s^2)|.
    import igl

    near = h["points_near"][:2000].astype(np.float64)
    dist = np.abs(igl.signed_distance(near, h["mesh_vertices"], h["mesh_faces"])[0])
    assert 0.5 * C.NEAR_SURFACE_SIGMA_M < np.median(dist) < 1.5 * C.NEAR_SURFACE_SIGMA_M
    # Uniform occupancy is small but not zero, near-surface occupancy is substantial.
    assert 0 < h["occ_uniform"].mean() < 0.02 and 0.2 < h["occ_near"].mean() < 0.6
    # The stored file is a plain npz.
    with np.load(shard.path) as z:
        assert np.array_equal(z["points_near"], a["points_near"])


def test_labels_agree_with_independent_inside_tests(reference: Path) -> None:
    ds = OccupancyDataset(reference, "train")
    for i in range(len(ds)):
        h = ds.hand(i)
        pts = np.concatenate([h["points_uniform"], h["points_near"]]).astype(np.float64)
        occ = np.concatenate([h["occ_uniform"], h["occ_near"]])
        v, f = h["mesh_vertices"], h["mesh_faces"]
        parity = trimesh.Trimesh(v, f, process=False).contains(pts)
        assert (parity == occ).mean() >= 0.999
        exact = winding_number(v, f, pts[-5000:]) >= 0.5  # a near-surface subset
        assert np.array_equal(exact, occ[-5000:])


@pytest.mark.slow
def test_labels_on_webxr_hands() -> None:
    from halohand.handmodel import make_source

    try:
        source = make_source("webxr")
    except (ImportError, FileNotFoundError, NotImplementedError) as exc:
        pytest.skip(f"webxr source not available: {exc}")
    import igl

    for index in (3,):  # a hand whose fingers overlap a little (measured, see docs/data.md)
        arrays, _ = make_hand(source, 0, "train", index, "left")
        v, f = arrays["mesh_vertices"], arrays["mesh_faces"].astype(np.int64)
        pts = dequantize(np.concatenate([arrays["points_uniform"], arrays["points_near"]]))
        occ = np.unpackbits(np.concatenate([arrays["occ_uniform"], arrays["occ_near"]]))
        parity = trimesh.Trimesh(v, f, process=False).contains(pts)
        assert (parity == occ.astype(bool)).mean() >= 0.999
        # Where ray parity disagrees, the hand overlaps itself (winding number ~2): inside.
        bad = np.nonzero(parity != occ.astype(bool))[0]
        if len(bad):
            assert np.all(igl.winding_number(v, f, pts[bad]) > 1.5)


def test_surface_labels_follow_skin_weights() -> None:
    import igl

    source = ToyHandSource()
    arrays, _ = make_hand(source, 0, "train", 3, "right")
    hand = source.sample(np.random.default_rng(hand_seed(0, "train", 3, 0)), "right")
    # Toy skin weights are one-hot per closed component, so the barycentric argmax of a
    # sample is the label of the component (face) it lies on.
    pts = arrays["surface_points"].astype(np.float64)
    dist2, face, _ = igl.point_mesh_squared_distance(pts, hand.vertices, hand.faces)
    assert np.sqrt(dist2).max() < 1e-6
    assert np.array_equal(arrays["surface_labels"], hand.part_labels[hand.faces[face, 0]])


def test_dataset_items(reference: Path) -> None:
    import torch
    from torch.utils.data import DataLoader

    ds = OccupancyDataset(reference, "train", seed=0)
    assert len(ds) == 2 and len(OccupancyDataset(reference, "val")) == 1
    item = ds[1]
    assert item["points"].shape == (C.QUERY_SUBSAMPLE, 3) and item["points"].dtype == torch.float32
    assert item["occupancies"].shape == (C.QUERY_SUBSAMPLE,)
    assert int(item["point_is_uniform"].sum()) == C.QUERY_SUBSAMPLE // 2
    assert item["surface_points"].shape == (C.SURFACE_SUBSAMPLE, 3)
    assert item["surface_labels"].dtype == torch.int64
    assert item["part_transforms"].shape == (16, 4, 4)
    assert int(item["index"]) == 1 and int(item["side"]) == 1
    assert torch.equal(ds[1]["points"], item["points"])  # seeded: reproducible
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["points"], item["points"])
    # Sampled occupancies are the exact labels of the sampled points.
    h = ds.hand(1)
    inside = winding_number(h["mesh_vertices"], h["mesh_faces"], item["points"].double().numpy())
    assert np.array_equal(inside >= 0.5, item["occupancies"].numpy() == 1)
    full = OccupancyDataset(reference, "train", n_points=None, n_surface=None)[1]
    assert full["points"].shape == (C.NUM_UNIFORM_POINTS + C.NUM_NEAR_POINTS, 3)
    assert full["occupancies"].mean() > 0
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["points"].shape == (2, C.QUERY_SUBSAMPLE, 3)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign_npz", "empty"])
def test_corrupt_or_foreign_shard_names_the_file(
    reference: Path, tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "shard_00000.npz"
    data = (reference / "val" / "shard_00000.npz").read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "foreign_npz":
        np.savez(path, points=np.zeros((4, 3)))
    else:
        path.write_bytes(b"")
    with pytest.raises(CorruptFileError, match=str(path)):
        load_shard(path)


def test_bit_rot_is_caught_by_crc(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    path = out / "val" / "shard_00000.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    load_shard(path)  # the structure is intact
    with pytest.raises(CorruptFileError, match="CRC"):
        load_shard(path, verify=True)
    with pytest.raises(CorruptFileError, match="val/shard_00000.npz"):
        verify(out)


def test_dataset_reports_the_bad_shard(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    bad = out / "val" / "shard_00000.npz"
    bad.write_bytes(bad.read_bytes()[:100])
    OccupancyDataset(out, "train")[0]
    with pytest.raises(CorruptFileError, match="val/shard_00000.npz"):
        OccupancyDataset(out, "val")[0]


def test_validate_hand_rejects_open_and_inverted_meshes() -> None:
    hand = ToyHandSource().sample(np.random.default_rng(0))
    validate_hand(hand)
    from dataclasses import replace

    with pytest.raises(HalohandInputError, match="watertight"):
        validate_hand(replace(hand, faces=hand.faces[1:]))
    with pytest.raises(HalohandInputError, match="inward"):
        validate_hand(replace(hand, faces=hand.faces[:, ::-1].copy()))
    with pytest.raises(HalohandInputError, match="keypoints"):
        validate_hand(replace(hand, keypoints=hand.keypoints[:20]))


def _cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run ``halohand`` in this process through its real entry point; returns the exit code."""
    from halohand.apps.cli import main

    monkeypatch.setattr(sys, "argv", ["halohand", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_help(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert _cli(monkeypatch, "data", "generate", "--help") == 0
    out = capsys.readouterr().out
    for option in ("--n-train", "--seed", "--source", "--workers", "--hands-per-shard"):
        assert option in out


@pytest.mark.parametrize(
    "extra",
    [
        ["--n-train", "0"],
        ["--n-train", "-2"],
        ["--n-train", "1", "--source", "nope"],
        ["--n-train", "1", "--source", "mano"],
        ["--n-train", "1", "--side", "up"],
        ["--n-train", "1", "--source", "toy", "--bone-length-std", "0.05"],
        ["--n-train", "1", "--bone-length-std", "0.5"],
        ["--n-train", "1", "--source", "toy", "--shape-scale", "1"],
        ["--n-train", "1", "--shape-scale", "3"],
        ["--n-train", "1", "--shape-scale", "nan"],
        ["--n-train", "1", "--source", "toy", "--thickness-mean", "0.1"],
        ["--n-train", "1", "--thickness-mean", "0.2"],
        ["--n-train", "1", "--thickness-mean", "nan"],
    ],
)
def test_cli_bad_input_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path, extra: list
) -> None:
    code = _cli(monkeypatch, "data", "generate", "--out", str(tmp_path / "x"), *extra)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()


def test_cli_verify(reference: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert _cli(monkeypatch, "data", "verify", str(reference)) == 0
    assert "all valid" in capsys.readouterr().out
    assert _cli(monkeypatch, "data", "verify", str(reference / "train")) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"counts": {"train": -1}}, "--n-train"),
        ({"counts": {"bogus": 1}}, "unknown split"),
        ({"side": "up"}, "--side"),
        ({"workers": 0}, "--workers"),
        ({"hands_per_shard": 0}, "--hands-per-shard"),
        ({"seed": -1}, "--seed"),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = {"counts": {"train": 1}, "seed": 0, "source": ToyHandSource()} | kwargs
    with pytest.raises(HalohandInputError, match=match):
        generate(tmp_path / "x", **args)
    assert not (tmp_path / "x").exists()


def test_dataset_serves_skin_tips_from_the_stored_meshes(reference: Path) -> None:
    from halohand.handmodel.skin_tips import skin_tip_keypoints
    from halohand.skeleton.orders import FINGER_CHAINS

    tips = [c[3] for c in FINGER_CHAINS]
    rig = OccupancyDataset(reference, "train", seed=3)
    skin = OccupancyDataset(reference, "train", seed=3, keypoint_convention="mano")
    for i in range(len(rig)):
        a, b = rig[i], skin[i]
        h = rig.hand(i)
        want = skin_tip_keypoints(h["mesh_vertices"], h["mesh_faces"], h["keypoints"])
        np.testing.assert_allclose(b["keypoints"].numpy(), want, atol=1e-6)
        assert (np.linalg.norm(want[tips] - h["keypoints"][tips], axis=1) > 1e-3).all()
        for key in ("points", "occupancies", "surface_points", "part_transforms"):
            assert np.array_equal(a[key].numpy(), b[key].numpy()), key
    # mixed: each item one placement, drawn per (seed, epoch, index); the points as rig's
    mixed = OccupancyDataset(reference, "train", seed=3, keypoint_convention="mixed")
    draws = []
    for epoch in range(12):
        for ds in (rig, mixed):
            ds.set_epoch(epoch)
        for i in range(len(rig)):
            item = mixed[i]
            on_skin = mixed.skin_tips(i)
            assert on_skin == mixed.skin_tips(i)  # reproducible
            assert np.array_equal(item["points"].numpy(), rig[i]["points"].numpy())
            np.testing.assert_allclose(
                item["keypoints"].numpy(), mixed.keypoints(i, on_skin), atol=1e-6
            )
            draws.append(on_skin)
    assert 0 < sum(draws) < len(draws)
    with pytest.raises(HalohandInputError, match="unknown keypoint convention"):
        OccupancyDataset(reference, "train", keypoint_convention="openpose")


def test_a_wider_bone_length_spread_is_a_named_source(tmp_path: Path) -> None:
    from halohand.handmodel.sources import make_source

    wide = make_source("webxr", bone_length_std=0.08)
    assert wide.identity_prior.bone_std == 0.08
    assert make_source("webxr").identity_prior.bone_std == 0.025
    rng = np.random.default_rng(0)
    spread = np.std([np.log(wide.identity_prior.sample(rng).length_factors[1:])
                     for _ in range(400)], axis=0)  # fmt: skip
    # per-bone log std: the bone's own 0.08 and its finger's shared 0.035 (clipped draws)
    assert np.median(spread) == pytest.approx(np.hypot(0.08, 0.035), rel=0.15)
    with pytest.raises(HalohandInputError, match="webxr source only"):
        make_source("toy", bone_length_std=0.05)


def test_a_shape_spread_is_a_named_source_on_the_default_stream() -> None:
    from halohand.apps.cli.data import _source_name
    from halohand.handmodel.shape import SHAPE_PRIOR_STD_MM
    from halohand.handmodel.sources import make_source

    wide = make_source("webxr", shape_scale=1.0)
    assert wide.identity_prior.shape_std_mm == pytest.approx(SHAPE_PRIOR_STD_MM)
    plain = make_source("webxr").identity_prior
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    shapes = []
    for _ in range(300):
        drawn, base = wide.identity_prior.sample(a), plain.sample(b)
        # The correctives are drawn after everything else: the other fields are the
        # default prior's, so the same seed gives the same hands apart from the tissue.
        np.testing.assert_array_equal(drawn.length_factors, base.length_factors)
        np.testing.assert_array_equal(drawn.thickness_offsets, base.thickness_offsets)
        assert drawn.hand_length == base.hand_length and not np.any(base.shape)
        shapes.append(drawn.shape)
        b.standard_normal(len(SHAPE_PRIOR_STD_MM))  # keep the two streams in step
    shapes = np.array(shapes)
    assert np.all(np.abs(shapes) <= 2.5 * np.array(SHAPE_PRIOR_STD_MM) + 1e-12)
    np.testing.assert_allclose(shapes.std(0), SHAPE_PRIOR_STD_MM, rtol=0.15)
    assert _source_name(None, 1.0) == "webxr-shape1"
    assert _source_name(0.08, 0.5) == "webxr-bone0.08-shape0.5"
    assert _source_name(None, None) is None
    with pytest.raises(HalohandInputError, match="webxr source only"):
        make_source("toy", shape_scale=1.0)


def test_a_thickness_mean_shifts_every_offset_on_the_default_stream() -> None:
    from halohand.apps.cli.data import _source_name
    from halohand.handmodel.sources import make_source

    thick = make_source("webxr", thickness_mean=0.12).identity_prior
    plain = make_source("webxr").identity_prior
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(50):
        drawn, base = thick.sample(a), plain.sample(b)
        np.testing.assert_array_equal(drawn.length_factors, base.length_factors)
        assert drawn.hand_length == base.hand_length and drawn.palm_width == base.palm_width
        np.testing.assert_allclose(drawn.thickness_offsets - base.thickness_offsets, 0.12)
        # a thicker part, the same keypoints: girth is what keypoints cannot see
        np.testing.assert_allclose(
            drawn.thickness_factors() / base.thickness_factors(),
            (1.12 + base.thickness_offsets) / (1 + base.thickness_offsets),
        )
    assert _source_name(None, None, 0.12) == "webxr-thick0.12"
    with pytest.raises(HalohandInputError, match="webxr source only"):
        make_source("toy", thickness_mean=0.1)
