"""MANO source on a synthetic, chumpy-structured ``MANO_RIGHT.pkl`` made here (no MANO file).

The synthetic model is a closed-top tube ("mitten") with exactly MANO's counts: 778 vertices,
1538 faces, one open boundary of 16 vertices. Its vertices are relabelled so that the open
boundary is MANO's wrist ring (in loop order) and the fingertip vertices carry MANO's tip ids,
so the real ids are exercised. Five finger sectors of 3-4 columns, three phalanx bands per
finger, MANO's kinematic tree, blended weights at each band's first ring.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import trimesh

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.handmodel import make_source
from halohand.handmodel.hand import PosedHand
from halohand.handmodel.mano import (
    MANO_PARENTS,
    TIP_CONVENTIONS,
    WRIST_RING,
    ManoHandSource,
    ManoModel,
    load_mano,
    mano_forward,
    mano_keypoints,
    mano_pose,
    mano_posed_hand,
    seal_wrist,
    tip_ids,
)
from halohand.handmodel.mano import loader as mano_loader
from halohand.skeleton import part_bone_lengths

RINGS, COLS = 48, 16
# Finger sectors (columns) -> MANO chain (first part id of the finger).
SECTORS = {"thumb": (0, 1, 2), "index": (3, 4, 5), "middle": (6, 7, 8), "ring": (9, 10, 11),
           "pinky": (12, 13, 14, 15)}  # fmt: skip
CHAIN = {"index": 1, "middle": 4, "pinky": 7, "ring": 10, "thumb": 13}
TIP_COL = {"thumb": 1, "index": 4, "middle": 7, "ring": 10, "pinky": 13}
FINGER_ORDER = ("thumb", "index", "middle", "ring", "pinky")


def _gen(k: int, c: int) -> int:
    return k * COLS + c


def _mitten() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, faces, weights and J_regressor in generation order (ring-major)."""
    theta = 2 * np.pi * np.arange(COLS) / COLS
    y = 0.004 * np.arange(RINGS)
    verts = [np.stack([0.03 * np.cos(theta), np.full(COLS, yk), 0.02 * np.sin(theta)], 1)
             for yk in y]  # fmt: skip
    beta = 2 * np.pi * (np.arange(9) + 0.5) / 9
    top = y[-1]
    verts.append(np.stack([0.015 * np.cos(beta), np.full(9, top + 0.004), 0.01 * np.sin(beta)], 1))
    verts.append(np.array([[0.0, top + 0.006, 0.0]]))
    v = np.concatenate(verts)
    inner0, center = RINGS * COLS, RINGS * COLS + 9

    faces = []
    for k in range(RINGS - 1):
        for c in range(COLS):
            a, b = _gen(k, c), _gen(k, (c + 1) % COLS)
            a2, b2 = _gen(k + 1, c), _gen(k + 1, (c + 1) % COLS)
            faces += [(a, a2, b), (b, a2, b2)]  # outward for increasing angle, +y up
    cap = []
    i = j = 0
    alpha = 2 * np.pi * np.arange(COLS + 1) / COLS
    bet = 2 * np.pi * (np.arange(10) + 0.5) / 9
    while i < COLS or j < 9:
        o, o2 = _gen(RINGS - 1, i % COLS), _gen(RINGS - 1, (i + 1) % COLS)
        n, n2 = inner0 + j % 9, inner0 + (j + 1) % 9
        if i < COLS and (j == 9 or alpha[i + 1] <= bet[j + 1]):
            cap.append((o, o2, n))
            i += 1
        else:
            cap.append((o, n2, n))
            j += 1
    cap += [(center, inner0 + (j + 1) % 9, inner0 + j) for j in range(9)]
    for a, b, c in cap:  # orient the cap upwards (+y)
        nrm = np.cross(v[b] - v[a], v[c] - v[a])
        faces.append((a, b, c) if nrm[1] > 0 else (a, c, b))
    f = np.array(faces, dtype=np.int64)

    # Weights: palm below ring 12, then three bands per finger; blend 50/50 at band starts.
    w = np.zeros((len(v), 16))
    col_finger = {c: fg for fg, cols in SECTORS.items() for c in cols}
    for k in range(RINGS):
        for c in range(COLS):
            level = min(k // 12, 3)
            part = 0 if level == 0 else CHAIN[col_finger[c]] + level - 1
            parent = int(MANO_PARENTS[part]) if part else 0
            if level and k % 12 == 0:
                w[_gen(k, c), [part, parent]] = 0.5
            else:
                w[_gen(k, c), part] = 1.0
    for jj in range(9):
        c = int(np.round(beta[jj] / (2 * np.pi) * COLS)) % COLS
        w[inner0 + jj, CHAIN[col_finger[c]] + 2] = 1.0
    w[center, CHAIN["middle"] + 2] = 1.0

    jreg = np.zeros((16, len(v)))
    jreg[0, [_gen(0, c) for c in range(COLS)]] = 1.0
    for fg, cols in SECTORS.items():
        for level in (1, 2, 3):
            jreg[CHAIN[fg] + level - 1, [_gen(12 * level, c) for c in cols]] = 1.0
    jreg /= jreg.sum(1, keepdims=True)
    return v, f, w, jreg


def _relabel() -> np.ndarray:
    """new_id[generation index]: wrist ring -> WRIST_RING, tip vertices -> MANO tip ids."""
    n = 778
    new_id = np.full(n, -1)
    for c in range(COLS):
        new_id[_gen(0, c)] = WRIST_RING[c]
    for fi, fg in enumerate(FINGER_ORDER):
        new_id[_gen(RINGS - 1, TIP_COL[fg])] = TIP_CONVENTIONS["smplx"][fi]
        new_id[_gen(RINGS - 2, TIP_COL[fg])] = TIP_CONVENTIONS["manopth"][fi]
    free = np.setdiff1d(np.arange(n), new_id[new_id >= 0])
    new_id[new_id < 0] = free
    assert len(np.unique(new_id)) == n
    return new_id


def synthetic_mano(seed: int = 0) -> dict[str, np.ndarray]:
    """Plain arrays of a MANO-shaped model (778 v, 1538 f) with MANO's ids."""
    rng = np.random.default_rng(seed)
    v, f, w, jreg = _mitten()
    new_id = _relabel()
    inv = np.argsort(new_id)  # inv[file id] = generation index
    kintree = np.stack([MANO_PARENTS, np.arange(16)]).astype(np.uint32)  # -1 -> 2**32 - 1
    comps, _ = np.linalg.qr(rng.standard_normal((45, 45)))
    return {
        "v_template": v[inv],
        "f": new_id[f].astype(np.uint32),
        "weights": w[inv],
        "kintree_table": kintree,
        "J_regressor": jreg[:, inv],
        "shapedirs": 0.002 * rng.standard_normal((778, 3, 10)),
        "posedirs": 0.001 * rng.standard_normal((778, 3, 135)),
        "hands_components": comps.T,
        "hands_mean": 0.1 * rng.standard_normal(45),
        "hands_coeffs": rng.standard_normal((64, 45)) * np.linspace(0.6, 0.05, 45),
        "J": jreg[:, inv] @ v[inv],
    }


@contextlib.contextmanager
def fake_chumpy() -> Iterator[tuple[type, type]]:
    """Install a minimal ``chumpy`` (``ch.Ch``, ``reordering.Reshape``) for pickling only."""
    pkg = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")
    reordering = types.ModuleType("chumpy.reordering")

    class Ch:  # chumpy.ch.Ch pickles its __dict__; the value is in "x"
        def __init__(self, x: np.ndarray) -> None:
            self.x = np.asarray(x)
            self._dirty_vars: set[str] = set()
            self._itr = None

    class Reshape:  # chumpy.reordering.Reshape: a child "a" and "newshape"
        def __init__(self, a: Ch, newshape: tuple[int, ...]) -> None:
            self.a = a
            self.newshape = newshape

    for cls, mod in ((Ch, ch), (Reshape, reordering)):
        cls.__module__ = mod.__name__
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
    pkg.ch, pkg.reordering = ch, reordering  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch", "chumpy.reordering")}
    sys.modules.update({"chumpy": pkg, "chumpy.ch": ch, "chumpy.reordering": reordering})
    try:
        yield Ch, Reshape
    finally:
        for k, old in saved.items():
            if old is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = old


class _Py2StylePickler(pickle.Pickler):
    """Writes array data as latin-1 text, as a Python 2 ``str`` reads with encoding="latin1"."""

    def reducer_override(self, obj: object) -> object:
        if type(obj) is np.ndarray:
            fn, args, state = obj.__reduce__()  # type: ignore[misc]
            state = (*state[:4], state[4].decode("latin1"))
            return fn, args, state
        return NotImplemented


def write_mano_pickle(path: Path, arrays: dict[str, np.ndarray], style: str = "py3") -> Path:
    """Pickle ``arrays`` with MANO's structure: chumpy entries, sparse regressor.

    ``style``: ``"py3"`` (protocol 2), ``"py2"`` (protocol 2, Python 2 / numpy 1 / old scipy
    module names and text array data) or ``"protocol0"``.
    """
    with fake_chumpy() as (Ch, Reshape):
        data = dict(arrays)
        data["shapedirs"] = Ch(arrays["shapedirs"])
        data["v_template"] = Ch(arrays["v_template"])
        data["J"] = Reshape(Ch(arrays["J"].reshape(-1)), (16, 3))
        data["J_regressor"] = sp.csc_matrix(arrays["J_regressor"])
        data["bs_style"] = "lbs"
        data["bs_type"] = "lrotmin"
        data["pose_training_info"] = {"num_frames": 1554, "mean": np.zeros(3)}
        if style == "py2":
            buf = io.BytesIO()
            _Py2StylePickler(buf, protocol=2).dump(data)
            raw = buf.getvalue().replace(b"numpy._core.", b"numpy.core.")
            raw = raw.replace(b"scipy.sparse._csc\n", b"scipy.sparse.csc\n")
            assert b"numpy.core.multiarray" in raw and b"scipy.sparse.csc\n" in raw
        else:
            raw = pickle.dumps(data, protocol=0 if style == "protocol0" else 2)
        path.write_bytes(raw)
    return path


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return synthetic_mano()


@pytest.fixture(scope="module")
def pkl(tmp_path_factory: pytest.TempPathFactory, arrays: dict[str, np.ndarray]) -> Path:
    return write_mano_pickle(tmp_path_factory.mktemp("mano") / "MANO_RIGHT.pkl", arrays)


@pytest.fixture(scope="module")
def model(pkl: Path) -> ManoModel:
    return load_mano(pkl)


# ------------------------------------------------------------------------------ loading


def test_pickle_needs_chumpy_but_loader_does_not(pkl: Path, arrays: dict) -> None:
    assert "chumpy" not in sys.modules
    with pytest.raises((ModuleNotFoundError, AttributeError)):
        pickle.loads(pkl.read_bytes(), encoding="latin1")
    m = load_mano(pkl)
    assert "chumpy" not in sys.modules
    np.testing.assert_array_equal(m.shapedirs, arrays["shapedirs"])
    np.testing.assert_array_equal(m.v_template, arrays["v_template"])
    np.testing.assert_allclose(m.J_regressor, arrays["J_regressor"])
    np.testing.assert_array_equal(m.faces, arrays["f"].astype(np.int64))
    np.testing.assert_array_equal(m.parents, MANO_PARENTS)
    assert m.side == "right" and m.num_betas == 10 and m.faces.shape == (1538, 3)
    assert not m.v_template.flags.writeable
    np.testing.assert_allclose(m.pca_std, arrays["hands_coeffs"].std(0))
    raw = mano_loader._read_pickle(pkl)  # the chumpy Reshape entry resolves too
    np.testing.assert_array_equal(mano_loader._resolve_array(raw["J"]), arrays["J"])
    assert raw["bs_style"] == "lbs"


@pytest.mark.parametrize("style", ["py2", "protocol0"])
def test_python2_style_pickles_load(tmp_path: Path, arrays: dict, style: str) -> None:
    m = load_mano(write_mano_pickle(tmp_path / "MANO_RIGHT.pkl", arrays, style))
    np.testing.assert_array_equal(m.shapedirs, arrays["shapedirs"])
    np.testing.assert_array_equal(m.posedirs, arrays["posedirs"])
    np.testing.assert_allclose(m.J_regressor, arrays["J_regressor"])


def test_left_file_gets_shapedirs_fix(tmp_path: Path, arrays: dict) -> None:
    left = load_mano(write_mano_pickle(tmp_path / "MANO_LEFT.pkl", arrays))
    assert left.side == "left"
    np.testing.assert_array_equal(left.shapedirs[:, 0], -arrays["shapedirs"][:, 0])
    np.testing.assert_array_equal(left.shapedirs[:, 1:], arrays["shapedirs"][:, 1:])
    assert load_mano(tmp_path, side="left").side == "left"  # a folder with MANO_LEFT.pkl


# ------------------------------------------------------------------------------ posing


def test_zero_pose_is_template_plus_shape(model: ManoModel, arrays: dict) -> None:
    betas = np.linspace(-1, 1, 10)
    out = mano_forward(model, np.zeros((16, 3)), betas)
    shaped = arrays["v_template"] + arrays["shapedirs"] @ betas
    np.testing.assert_allclose(out.vertices, shaped, atol=1e-12)
    np.testing.assert_allclose(out.rest_vertices, shaped, atol=1e-12)
    np.testing.assert_allclose(out.joints, arrays["J_regressor"] @ shaped, atol=1e-12)
    np.testing.assert_allclose(out.pose_offsets, 0.0, atol=1e-15)
    np.testing.assert_allclose(
        out.skinning_transforms, np.broadcast_to(np.eye(4), (16, 4, 4)), atol=1e-15
    )


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _subtree(j: int) -> set[int]:
    out = {j}
    for i in range(16):
        p = i
        while p != -1:
            if p == j:
                out.add(i)
            p = int(MANO_PARENTS[p])
    return out


@pytest.mark.parametrize("joint", [2, 4, 13])
def test_single_joint_rotation_moves_only_its_vertices(model: ManoModel, joint: int) -> None:
    axis, angle = np.array([0.3, -0.5, 0.8]), 0.7
    pose = np.zeros((16, 3))
    pose[joint] = axis / np.linalg.norm(axis) * angle
    rest = mano_forward(model, np.zeros((16, 3)), pose_correctives=False)
    out = mano_forward(model, pose, pose_correctives=False)
    sub = sorted(_subtree(joint))
    w_sub = model.weights[:, sub].sum(1)
    still = w_sub == 0
    assert still.sum() > 100 and (w_sub == 1).sum() > 20
    np.testing.assert_array_equal(out.vertices[still], rest.vertices[still])
    r, c = _rot(axis, angle), rest.joints[joint]
    own = model.weights[:, joint] == 1
    np.testing.assert_allclose(out.vertices[own], (rest.vertices[own] - c) @ r.T + c, atol=1e-12)
    moved = np.abs(out.joints - rest.joints).max(1) > 1e-9
    assert set(np.flatnonzero(moved)) == _subtree(joint) - {joint}


def test_batched_torch_matches_numpy_and_has_gradients(model: ManoModel) -> None:
    rng = np.random.default_rng(3)
    pose = 0.4 * rng.standard_normal((2, 3, 16, 3))
    betas = rng.standard_normal((3, 10))
    ref = mano_forward(model, pose, betas)
    assert ref.vertices.shape == (2, 3, 778, 3) and ref.transforms.shape == (2, 3, 16, 4, 4)
    single = mano_forward(model, pose[1, 2], betas[2])
    np.testing.assert_allclose(ref.vertices[1, 2], single.vertices, atol=1e-12)
    tp = torch.tensor(pose, requires_grad=True)
    out = mano_forward(model, tp, torch.tensor(betas))
    np.testing.assert_allclose(out.vertices.detach().numpy(), ref.vertices, atol=1e-12)
    out.vertices.sum().backward()
    assert tp.grad is not None and torch.isfinite(tp.grad).all()
    z = torch.zeros(16, 3, dtype=torch.float64, requires_grad=True)
    mano_forward(model, z).vertices.square().sum().backward()
    assert torch.isfinite(z.grad).all()


def test_pca_and_hands_mean(model: ManoModel, arrays: dict) -> None:
    zero = np.zeros(45)
    np.testing.assert_allclose(mano_pose(model, pca=zero)[1:].reshape(-1), arrays["hands_mean"])
    np.testing.assert_array_equal(mano_pose(model, pca=zero, flat_hand_mean=True), 0.0)
    c = np.arange(6) * 0.1
    pose = mano_pose(model, pca=c, flat_hand_mean=True)
    np.testing.assert_allclose(pose[1:].reshape(-1), c @ arrays["hands_components"][:6])
    a = mano_forward(model, pca=c).vertices
    b = mano_forward(model, mano_pose(model, pca=c)).vertices
    np.testing.assert_allclose(a, b)


def test_keypoints_and_tip_conventions(model: ManoModel) -> None:
    out = mano_forward(model, np.zeros((16, 3)))
    kp = mano_keypoints(out.vertices, out.joints)
    np.testing.assert_array_equal(kp[[4, 8, 12, 16, 20]], out.vertices[list(tip_ids())])
    np.testing.assert_array_equal(kp[[0, 5, 9, 13, 17]], out.joints[[0, 1, 4, 10, 7]])
    kp2 = mano_keypoints(out.vertices, out.joints, "manopth")
    assert not np.allclose(kp, kp2) and np.array_equal(kp[:4], kp2[:4])
    with pytest.raises(HalohandInputError, match="fingertip convention"):
        tip_ids("bogus")


# ------------------------------------------------------------------------------ sealing


def test_seal_closes_the_synthetic_mano_mesh(model: ManoModel) -> None:
    open_mesh = trimesh.Trimesh(model.v_template, model.faces, process=False)
    assert not open_mesh.is_watertight
    v, f = seal_wrist(model.v_template, model.faces)
    assert v.shape == (779, 3) and f.shape == (1554, 3)
    np.testing.assert_allclose(v[-1], model.v_template[WRIST_RING].mean(0))
    mesh = trimesh.Trimesh(v, f, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    v2, f2 = seal_wrist(model.v_template, model.faces, ring=None)  # auto-detected loop
    assert trimesh.Trimesh(v2, f2, process=False).is_watertight
    vt, _ = seal_wrist(torch.tensor(model.v_template), model.faces)
    np.testing.assert_allclose(vt.numpy(), v, atol=1e-15)


def test_seal_rejects_a_ring_that_is_not_the_boundary(model: ManoModel) -> None:
    with pytest.raises(HalohandInputError, match="not an open boundary"):
        seal_wrist(model.v_template, model.faces, ring=np.arange(16))


# ------------------------------------------------------------------------------ posed hands


@pytest.mark.parametrize("correctives", [False, True])
def test_part_transforms_map_posed_to_canonical(model: ManoModel, correctives: bool) -> None:
    rng = np.random.default_rng(7)
    pose = 0.5 * rng.standard_normal((16, 3))
    betas = rng.standard_normal(10)
    hand = mano_posed_hand(model, pose, betas, pose_correctives=correctives)
    offsets = mano_forward(model, pose, betas, pose_correctives=correctives).pose_offsets
    for part in range(16):
        own = np.flatnonzero(model.weights[:, part] == 1)
        assert len(own) > 0
        p = np.c_[hand.vertices[own], np.ones(len(own))] @ hand.part_transforms[part].T
        np.testing.assert_allclose(p[:, :3], hand.canonical_vertices[own] + offsets[own], atol=1e-6)
    assert correctives == bool(np.abs(offsets).max() > 1e-4)
    r = hand.part_transforms[:, :3, :3]
    np.testing.assert_allclose(
        r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape), atol=1e-12
    )


def _check_hand(hand: PosedHand, model: ManoModel) -> None:
    assert hand.vertices.shape == (779, 3) and hand.faces.shape == (1554, 3)
    assert hand.canonical_vertices.shape == (779, 3) and hand.keypoints.shape == (21, 3)
    assert hand.part_transforms.shape == (16, 4, 4) and hand.bone_lengths.shape == (16,)
    assert hand.skin_weights.shape == (779, 16) and hand.part_labels.shape == (779,)
    np.testing.assert_allclose(hand.skin_weights.sum(1), 1.0)
    assert hand.part_labels[-1] == 0 and hand.skin_weights[-1, 0] == 1.0
    np.testing.assert_allclose(hand.keypoints[0], 0.0, atol=1e-15)
    np.testing.assert_allclose(hand.bone_lengths, part_bone_lengths(hand.keypoints))
    mesh = trimesh.Trimesh(hand.vertices, hand.faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    rest = trimesh.Trimesh(hand.canonical_vertices, hand.faces, process=False)
    assert rest.volume > 0  # outward faces on both sides
    if hasattr(hand, "rest_keypoints"):
        np.testing.assert_allclose(hand.rest_keypoints[0], 0.0, atol=1e-15)


def test_source_sampling_is_deterministic_and_mirrors_left(pkl: Path, model: ManoModel) -> None:
    src = make_source("mano", pkl)
    assert isinstance(src, ManoHandSource) and src.name == "mano"
    a = src.sample(np.random.default_rng(11))
    b = src.sample(np.random.default_rng(11))
    c = src.sample(np.random.default_rng(12))
    for name in ("vertices", "keypoints", "part_transforms", "canonical_vertices"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.allclose(a.vertices, c.vertices)
    _check_hand(a, model)
    assert a.side == "right"
    left = src.sample(np.random.default_rng(11), side="left")
    _check_hand(left, model)
    assert left.side == "left"
    np.testing.assert_allclose(left.vertices, a.vertices * [-1, 1, 1])
    np.testing.assert_allclose(left.keypoints, a.keypoints * [-1, 1, 1])
    np.testing.assert_allclose(left.bone_lengths, a.bone_lengths)
    own = np.flatnonzero(model.weights[:, 5] == 1)
    p = np.c_[left.vertices[own], np.ones(len(own))] @ left.part_transforms[5].T
    q = np.c_[a.vertices[own], np.ones(len(own))] @ a.part_transforms[5].T
    np.testing.assert_allclose(p[:, :3], q[:, :3] * [-1, 1, 1], atol=1e-12)
    with pytest.raises(HalohandInputError, match="side"):
        src.sample(np.random.default_rng(0), side="both")


def test_left_model_file_is_the_native_side(tmp_path: Path, arrays: dict) -> None:
    src = ManoHandSource(write_mano_pickle(tmp_path / "MANO_LEFT.pkl", arrays))
    hand = src.sample(np.random.default_rng(1), side="left")
    assert hand.side == "left"
    assert src.sample(np.random.default_rng(1), side="right").side == "right"


# ------------------------------------------------------------------------------ errors


def test_corrupt_pickle_names_the_file(tmp_path: Path, pkl: Path) -> None:
    bad = tmp_path / "MANO_RIGHT.pkl"
    bad.write_bytes(pkl.read_bytes()[:5000])
    with pytest.raises(CorruptFileError, match=str(bad).replace("\\", "\\\\")):
        load_mano(bad)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"this is not a pickle at all")
    with pytest.raises(CorruptFileError, match="junk.pkl"):
        ManoHandSource(junk)


def test_missing_keys_and_bad_shapes_name_the_file(tmp_path: Path, arrays: dict) -> None:
    partial = {k: v for k, v in arrays.items() if k != "posedirs"}
    path = write_mano_pickle(tmp_path / "partial.pkl", partial)
    with pytest.raises(HalohandInputError, match=r"partial\.pkl: missing keys \['posedirs'\]"):
        load_mano(path)
    wrong = dict(arrays, weights=arrays["weights"][:, :15])
    with pytest.raises(HalohandInputError, match=r"wrong\.pkl: 'weights' has shape"):
        load_mano(write_mano_pickle(tmp_path / "wrong.pkl", wrong))
    tree = dict(arrays, kintree_table=np.stack([np.r_[-1, np.zeros(15)], np.arange(16)]))
    with pytest.raises(HalohandInputError, match="kintree_table"):
        load_mano(write_mano_pickle(tmp_path / "tree.pkl", tree))
    lst = tmp_path / "list.pkl"
    lst.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(HalohandInputError, match=r"list\.pkl: the pickle holds a list"):
        load_mano(lst)
    with pytest.raises(HalohandInputError, match="not found"):
        load_mano(tmp_path / "nope" / "MANO_RIGHT.pkl")
    with pytest.raises(HalohandInputError, match="--mano-model"):
        make_source("mano", None)


def test_pickle_cannot_run_code(tmp_path: Path, arrays: dict) -> None:
    target = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.write_text, (target, "x"))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(dict(arrays, weights=Evil()), protocol=2))
    with pytest.raises(HalohandInputError, match=r"evil\.pkl: entry 'weights' holds no numeric"):
        load_mano(path)
    assert not target.exists()


def test_forward_input_errors(model: ManoModel) -> None:
    with pytest.raises(HalohandInputError, match="pose must have shape"):
        mano_forward(model, np.zeros((15, 3)))
    with pytest.raises(HalohandInputError, match="betas"):
        mano_forward(model, np.zeros((16, 3)), np.zeros(11))
    with pytest.raises(HalohandInputError, match="NaN"):
        mano_forward(model, np.full((16, 3), np.nan))
    with pytest.raises(HalohandInputError, match="exactly one"):
        mano_forward(model)


def test_pose_prior_fallback_and_seal_ring_fallback(tmp_path: Path, arrays: dict) -> None:
    no_coeffs = {k: v for k, v in arrays.items() if k != "hands_coeffs"}
    m = load_mano(write_mano_pickle(tmp_path / "a.pkl", no_coeffs))
    assert m.hands_coeffs is None
    np.testing.assert_allclose(m.pca_std, 0.5 / np.sqrt(np.arange(1, 46)))
    # Faces inward and the wrist boundary relabelled: the source finds the loop and flips.
    perm = np.arange(778)
    perm[[WRIST_RING[0], 0]] = perm[[0, WRIST_RING[0]]]  # swap ids WRIST_RING[0] <-> 0
    moved = {k: arrays[k][perm] for k in ("v_template", "weights", "shapedirs", "posedirs")}
    moved = dict(arrays, **moved, J_regressor=arrays["J_regressor"][:, perm])
    moved["f"] = perm[arrays["f"]][:, ::-1].copy()
    src = ManoHandSource(write_mano_pickle(tmp_path / "b.pkl", moved), tips="freihand")
    assert 0 in src.wrist_ring and WRIST_RING[0] not in src.wrist_ring
    hand = src.sample(np.random.default_rng(0))
    mesh = trimesh.Trimesh(hand.canonical_vertices, hand.faces, process=False)
    assert mesh.is_watertight and mesh.volume > 0
