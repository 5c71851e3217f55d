"""The shipped hand template: mesh, rest joint frames, skin weights and part labels.

The data file ``data/webxr_hand_right.npz`` is derived from the MIT-licensed WebXR generic
hand (``data/LICENSE-webxr-generic-hand.md``) by :mod:`halohand.handmodel.build_template`.

Frame (metres): origin at the rest wrist joint, +Y from the wrist toward the fingers, +Z out
of the back of the hand, +X toward the little finger of the right hand (thumb on -X).
Joint frames follow WebXR: local -Z runs along the bone toward the tip, local +Y is dorsal
and local +X is lateral.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from halohand.core.errors import CorruptFileError
from halohand.skeleton import NUM_PARTS, PART_NAMES, WEBXR_JOINT_NAMES
from halohand.skeleton.orders import OPENPOSE_FROM_WEBXR

#: The template that ships with the package.
TEMPLATE_PATH = Path(__file__).resolve().parent / "data" / "webxr_hand_right.npz"

NUM_WEBXR_JOINTS = 25

_PHALANX_LEVEL = {"phalanx-proximal": 1, "phalanx-intermediate": 2, "phalanx-distal": 3}
_THUMB_LEVEL = {"metacarpal": 1, "phalanx-proximal": 2, "phalanx-distal": 3}


def _joint_part(name: str) -> int:
    """HALO part that a WebXR joint's bone belongs to (tips: the part of their parent bone).

    Palm = wrist + the four long-finger metacarpals; thumb1..3 = thumb metacarpal, proximal,
    distal; finger1..3 = proximal, intermediate, distal phalanx (SOURCE.md of the asset).
    """
    if name == "wrist" or (name.endswith("metacarpal") and not name.startswith("thumb")):
        return 0
    finger, _, kind = name.partition("-finger-") if "-finger-" in name else name.partition("-")
    if finger == "thumb":
        level = _THUMB_LEVEL.get(kind, 3)
    else:
        level = _PHALANX_LEVEL.get(kind, 3)
    return PART_NAMES.index(f"{finger}{level}")


#: Part of each WebXR joint, ``[25]``.
JOINT_PART = np.array([_joint_part(n) for n in WEBXR_JOINT_NAMES], dtype=np.int64)

#: WebXR joint whose frame carries each HALO part, ``[16]`` (palm -> wrist, thumb1 ->
#: thumb-metacarpal, index1 -> index-finger-phalanx-proximal, ...).
PART_JOINT = np.array(
    [min(j for j in range(NUM_WEBXR_JOINTS) if JOINT_PART[j] == k) for k in range(NUM_PARTS)]
)

#: WebXR joint index of each of the project's 21 keypoints.
KEYPOINT_JOINT = np.asarray(OPENPOSE_FROM_WEBXR, dtype=np.int64)


@dataclass(frozen=True)
class HandTemplate:
    """The right-hand template in the model frame (metres).

    Attributes:
        vertices: ``[V, 3]`` float64 rest-pose vertices (V = 1159), closed genus-0 surface.
        faces: ``[F, 3]`` int64 outward-oriented triangles (F = 2314).
        parents: ``[25]`` int64 parent of each WebXR joint (-1 for the wrist); parents
            precede children.
        rest_frames: ``[25, 4, 4]`` float64 rest joint frames (joint -> model coordinates).
        joint_weights: ``[V, 25]`` float64 dense skin weights per WebXR joint (rows sum to 1,
            at most 4 non-zero, the 5 tips carry none).
        part_weights: ``[V, 16]`` float64 skin weights summed per HALO part.
        part_labels: ``[V]`` int64 part with the largest weight.
        source_sha256: hex digest of the ``right.glb`` the template was built from.
    """

    vertices: np.ndarray
    faces: np.ndarray
    parents: np.ndarray
    rest_frames: np.ndarray
    joint_weights: np.ndarray
    part_weights: np.ndarray
    part_labels: np.ndarray
    source_sha256: str

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The 25 WebXR joint names, in template order."""
        return WEBXR_JOINT_NAMES

    @property
    def rest_joints(self) -> np.ndarray:
        """``[25, 3]`` rest joint positions (metres)."""
        return self.rest_frames[:, :3, 3]

    @property
    def rest_keypoints(self) -> np.ndarray:
        """``[21, 3]`` rest keypoints in the project's order (metres)."""
        return self.rest_joints[KEYPOINT_JOINT]


def read_template(path: Path) -> HandTemplate:
    """Read a template npz written by :mod:`halohand.handmodel.build_template`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{path}: cannot read hand template ({exc})") from exc
    required = {"vertices", "faces", "joint_names", "parents", "rest_frames", "skin_joints",
                "skin_weights", "source_sha256"}  # fmt: skip
    missing = required - set(arrays)
    if missing:
        raise CorruptFileError(f"{path}: hand template lacks {', '.join(sorted(missing))}")
    if tuple(str(n) for n in arrays["joint_names"]) != WEBXR_JOINT_NAMES:
        raise CorruptFileError(f"{path}: joint names are not the 25 WebXR joints in order")

    vertices = arrays["vertices"].astype(np.float64)
    num_v = len(vertices)
    skin_w = arrays["skin_weights"].astype(np.float64)
    skin_w /= skin_w.sum(axis=1, keepdims=True)
    joint_weights = np.zeros((num_v, NUM_WEBXR_JOINTS))
    rows = np.repeat(np.arange(num_v), skin_w.shape[1])
    np.add.at(joint_weights, (rows, arrays["skin_joints"].astype(np.int64).ravel()), skin_w.ravel())
    part_weights = np.zeros((num_v, NUM_PARTS))
    for j in range(NUM_WEBXR_JOINTS):
        part_weights[:, JOINT_PART[j]] += joint_weights[:, j]
    return HandTemplate(
        vertices=vertices,
        faces=arrays["faces"].astype(np.int64),
        parents=arrays["parents"].astype(np.int64),
        rest_frames=arrays["rest_frames"].astype(np.float64),
        joint_weights=joint_weights,
        part_weights=part_weights,
        part_labels=part_weights.argmax(axis=1).astype(np.int64),
        source_sha256=str(arrays["source_sha256"]),
    )


@lru_cache(maxsize=1)
def load_template() -> HandTemplate:
    """The shipped right-hand template (read once and cached; treat arrays as read-only)."""
    template = read_template(TEMPLATE_PATH)
    for arr in (template.vertices, template.faces, template.parents, template.rest_frames,
                template.joint_weights, template.part_weights, template.part_labels):  # fmt: skip
        arr.flags.writeable = False
    return template
