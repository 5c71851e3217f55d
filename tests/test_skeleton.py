"""Skeleton conventions against the tables of the ecosystem notes (section 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from halohand import skeleton as sk
from halohand.skeleton import orders

# Names per index, transcribed from the tables of ecosystem-notes.md section 3.
MANO_TABLE = [
    "wrist", "index1", "index2", "index3", "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3", "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3", "thumb4", "index4", "middle4", "ring4", "pinky4",
]  # fmt: skip
OPENPOSE_TABLE = ["wrist"] + [f"{f}{k}" for f in sk.FINGERS for k in range(1, 5)]
BIOMECH_TABLE = ["wrist"] + [f"{f}{k}" for k in range(1, 5) for f in sk.FINGERS]
INTERHAND_TABLE = [f"{f}{k}" for f in sk.FINGERS for k in range(4, 0, -1)] + ["wrist"]
WEBXR_KIND = {"metacarpal": None, "phalanx-proximal": 1, "phalanx-intermediate": 2,
              "phalanx-distal": 3, "tip": 4}  # fmt: skip


def _labels(table: list[str]) -> np.ndarray:
    """A [J, 3] array whose rows encode the joint names, so reorders can be checked by name."""
    code = {name: i for i, name in enumerate(OPENPOSE_TABLE)}
    return np.array([[code[n], 10 * code[n], -code[n]] for n in table], dtype=float)


@pytest.mark.parametrize(
    ("fmt", "table"),
    [("mano", MANO_TABLE), ("biomech", BIOMECH_TABLE), ("interhand", INTERHAND_TABLE),
     ("openpose", OPENPOSE_TABLE), ("mediapipe", OPENPOSE_TABLE)],
)  # fmt: skip
def test_to_openpose_matches_tables(fmt: str, table: list[str]) -> None:
    out = sk.to_openpose(_labels(table), fmt)
    np.testing.assert_array_equal(out, _labels(OPENPOSE_TABLE))
    back = sk.from_openpose(out, fmt)
    np.testing.assert_array_equal(back, _labels(table))


def test_webxr_and_openxr_drop_metacarpals() -> None:
    code = {name: i for i, name in enumerate(OPENPOSE_TABLE)}
    rows = []
    for name in sk.WEBXR_JOINT_NAMES:
        if name == "wrist":
            rows.append(code["wrist"])
            continue
        finger = name.split("-")[0]
        kind = name.split("-", 2)[-1] if finger != "thumb" else name.split("-", 1)[1]
        if finger == "thumb":
            # The thumb metacarpal joint is the CMC keypoint; its "distal" is the IP.
            level = {"metacarpal": 1, "phalanx-proximal": 2, "phalanx-distal": 3, "tip": 4}[kind]
        else:
            level = WEBXR_KIND[kind]
        rows.append(-1 if level is None else code[f"{finger}{level}"])
    webxr = np.array([[r, 10 * r, -r] for r in rows], dtype=float)
    np.testing.assert_array_equal(sk.to_openpose(webxr, "webxr"), _labels(OPENPOSE_TABLE))
    openxr = np.concatenate([np.full((1, 3), -5.0), webxr])
    np.testing.assert_array_equal(sk.to_openpose(openxr, "openxr"), _labels(OPENPOSE_TABLE))
    assert len(sk.OPENXR_JOINT_NAMES) == 26 and sk.OPENXR_JOINT_NAMES[0] == "palm"
    with pytest.raises(ValueError, match="cannot convert"):
        sk.from_openpose(_labels(OPENPOSE_TABLE), "webxr")


def test_index_maps_are_inverse_permutations() -> None:
    ident = np.arange(21)
    np.testing.assert_array_equal(orders.OPENPOSE_FROM_MANO[orders.MANO_FROM_OPENPOSE], ident)
    np.testing.assert_array_equal(orders.OPENPOSE_FROM_BIOMECH[orders.BIOMECH_FROM_OPENPOSE], ident)
    np.testing.assert_array_equal(
        orders.OPENPOSE_FROM_INTERHAND[orders.INTERHAND_FROM_OPENPOSE], ident
    )


def test_converters_work_on_batched_torch() -> None:
    kp = torch.randn(4, 3, 21, 3, dtype=torch.float64)
    for fmt in ("mano", "biomech", "interhand"):
        assert torch.equal(sk.to_openpose(sk.from_openpose(kp, fmt), fmt), kp)


def test_split_interhand() -> None:
    right = _labels(INTERHAND_TABLE)
    both = np.concatenate([right, right + 100])
    r, l = sk.split_interhand(both[None])
    np.testing.assert_array_equal(r[0], _labels(OPENPOSE_TABLE))
    np.testing.assert_array_equal(l[0], _labels(OPENPOSE_TABLE) + 100)


@pytest.mark.parametrize("shape", [(20, 3), (21, 2), (21,), (5, 22, 3)])
def test_wrong_shapes_raise(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shape"):
        sk.to_openpose(np.zeros(shape), "mano")
    with pytest.raises(ValueError):
        sk.bone_lengths(np.zeros(shape))


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown keypoint format"):
        sk.to_openpose(np.zeros((21, 3)), "coco")


def test_bones_and_parents() -> None:
    assert sk.PARENTS[0] == -1
    # Every chain walks back to the wrist in at most 4 steps.
    for j in range(1, 21):
        k, steps = j, 0
        while k != 0:
            k, steps = sk.PARENTS[k], steps + 1
        assert steps <= 4
    assert sk.BONES.shape == (20, 2)
    # Each finger bone part owns the bone that starts at its proximal joint (HALO parts).
    for child, part in enumerate(sk.BONE_PART, start=1):
        parent = sk.PARENTS[child]
        if part == 0:
            assert parent == 0
        else:
            assert tuple(sk.PART_BONES[part]) == (parent, child)


def test_bone_lengths_closed_form() -> None:
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(7, 21, 3))
    lengths = sk.bone_lengths(kp)
    for b, (p, c) in enumerate(sk.BONES):
        np.testing.assert_allclose(lengths[:, b], np.linalg.norm(kp[:, c] - kp[:, p], axis=-1))
    parts = sk.part_bone_lengths(torch.as_tensor(kp))
    np.testing.assert_allclose(parts[:, 0].numpy(), np.linalg.norm(kp[:, 9] - kp[:, 0], axis=-1))
    np.testing.assert_allclose(parts[:, 13].numpy(), np.linalg.norm(kp[:, 2] - kp[:, 1], axis=-1))
    np.testing.assert_allclose(sk.hand_length(kp), lengths[:, 8:12].sum(-1))


def test_mirror_is_involution_and_keeps_lengths() -> None:
    rng = np.random.default_rng(1)
    kp = rng.normal(size=(3, 21, 3))
    m = sk.mirror(kp)
    np.testing.assert_array_equal(m[..., 0], -kp[..., 0])
    np.testing.assert_array_equal(sk.mirror(m), kp)
    np.testing.assert_allclose(sk.bone_lengths(m), sk.bone_lengths(kp))
    t = sk.mirror(torch.as_tensor(kp, dtype=torch.float32))
    assert t.dtype == torch.float32
