"""Natural key poses shipped with the package, and smooth sequences between them (the demo).

The key poses are gestures of the pose prior (:data:`~halohand.handmodel.prior.GESTURES`)
on the template hand. ``handmodel/data/demo_poses.json`` holds, per pose, its name, the
side, the joint angles (degrees, ``[15, 3]`` flexion / abduction / twist, the
:class:`~halohand.handmodel.pose.HandPose` parameters) and the 21 keypoints in metres
(OpenPose order, wrist at the origin), so the keypoints can be fed to ``halohand
reconstruct`` directly. Regenerate the file after changing the gestures or the template::

    python -m halohand.handmodel.keyposes      # writes src/halohand/handmodel/data/demo_poses.json

Sequences interpolate the *joint angles* with an ease curve and pose the hand model at
every frame, so each frame is a valid hand: bone lengths stay exact and every angle stays
within its joint limits (the limits are a box, so a convex blend of two poses inside it is
inside it too). Blending keypoints linearly instead would shorten the bones mid-way.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from halohand.core.atomic import write_text_atomic
from halohand.core.errors import HalohandInputError
from halohand.core.schedule import smoothstep
from halohand.handmodel.pose import HandPose
from halohand.handmodel.prior import GESTURES
from halohand.handmodel.webxr import default_model

#: The demo's key poses, in sequence order (the sequence loops back to the first). Chosen
#: so that consecutive poses differ in a few fingers at a time and every transition is a
#: motion a hand makes naturally: no finger passes through another on the way (checked
#: with the rig's bone proxies; pinch -> fist or victory -> fist would drive the thumb
#: through the index finger mid-way, hence the order).
KEY_POSE_NAMES: Final[tuple[str, ...]] = (
    "relaxed",
    "point",
    "victory",
    "ok",
    "pinch",
    "thumbs_up",
    "fist",
    "spread",
)

#: Package resource of the shipped key poses.
KEY_POSES_RESOURCE: Final = "handmodel/data/demo_poses.json"


@dataclass(frozen=True)
class KeyPose:
    """One key pose: gesture name, side, joint angles ``[15, 3]`` (radians) and keypoints
    ``[21, 3]`` (metres, OpenPose order) of the template hand in that pose."""

    name: str
    side: str
    angles: np.ndarray
    keypoints: np.ndarray


def build_key_poses(names: tuple[str, ...] = KEY_POSE_NAMES, side: str = "right") -> list[KeyPose]:
    """Pose the template hand in the named gestures of the pose prior."""

    model = default_model()
    out = []
    for name in names:
        if name not in GESTURES:
            raise HalohandInputError(
                f"unknown gesture {name!r}; expected one of {', '.join(GESTURES)}"
            )
        angles = GESTURES[name].copy()
        hand = model.pose(HandPose.from_array(angles), side=side)
        out.append(KeyPose(name, side, angles, hand.keypoints.copy()))
    return out


def key_poses_document(poses: list[KeyPose]) -> dict:
    """The JSON document of ``demo_poses.json`` (angles in degrees, keypoints in metres)."""
    return {
        "description": (
            "Natural key poses of the halohand demo: gestures of the pose prior on the "
            "template hand. Regenerate with `python -m halohand.handmodel.keyposes`."
        ),
        "order": "openpose",
        "units": "m",
        "angle_columns": ["flexion", "abduction", "twist"],
        "poses": [
            {
                "name": p.name,
                "side": p.side,
                "angles_deg": np.round(np.rad2deg(p.angles), 4).tolist(),
                "keypoints": np.round(p.keypoints, 6).tolist(),
            }
            for p in poses
        ],
    }


def load_key_poses(path: str | Path | None = None) -> list[KeyPose]:
    """The shipped key poses (or those of another file in the same format)."""
    if path is None:
        text = importlib.resources.files("halohand").joinpath(KEY_POSES_RESOURCE).read_text()
    else:
        text = Path(path).read_text()
    doc = json.loads(text)
    return [
        KeyPose(
            name=str(p["name"]),
            side=str(p["side"]),
            angles=np.deg2rad(np.asarray(p["angles_deg"], dtype=np.float64)),
            keypoints=np.asarray(p["keypoints"], dtype=np.float64),
        )
        for p in doc["poses"]
    ]


@dataclass(frozen=True)
class SequenceFrame:
    """One frame of an interpolated sequence.

    Attributes:
        angles: ``[15, 3]`` joint angles (radians).
        phase: position in the loop, in [0, 1).
        segment: index of the key pose the frame leaves from.
        weight: eased blend weight toward the next key pose, in [0, 1).
        label: ``"fist"`` at a key pose, ``"fist -> thumbs_up"`` between two.
    """

    angles: np.ndarray
    phase: float
    segment: int
    weight: float
    label: str


def interpolate_sequence(poses: list[KeyPose], frames: int) -> list[SequenceFrame]:
    """``frames`` evenly timed frames of a loop through ``poses`` (back to the first).

    Each key pose gets the same time; within a transition the angles are blended with
    :func:`smoothstep`, so the motion eases into every key pose and the loop is seamless.
    """
    if not poses:
        raise HalohandInputError("no key poses to interpolate")
    if frames < 1:
        raise HalohandInputError(f"frames must be at least 1, got {frames}")
    k = len(poses)
    out = []
    for i in range(frames):
        phase = i / frames
        pos = phase * k
        seg = min(int(np.floor(pos + 1e-9)), k - 1)
        u = max(pos - seg, 0.0)
        a, b = poses[seg], poses[(seg + 1) % k]
        w = float(smoothstep(u))
        angles = (1.0 - w) * a.angles + w * b.angles
        near_key = u < 1e-6
        label = a.name if near_key else f"{a.name} -> {b.name}"
        out.append(SequenceFrame(angles, phase, seg, w, label))
    return out


def _compact_json(doc: dict) -> str:
    """Indented JSON with every innermost list (one joint, one keypoint) on one line."""
    text = json.dumps(doc, indent=1)
    # json.dumps puts every number on its own line; fold the innermost lists back.
    text = re.sub(
        r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text
    )
    return text + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the key poses to ``demo_poses.json`` beside this module (or to ``argv[0]``)."""

    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else Path(__file__).parent / "data" / "demo_poses.json"
    doc = key_poses_document(build_key_poses())
    write_text_atomic(target, _compact_json(doc))
    print(f"wrote {len(doc['poses'])} key poses to {target}")
    return 0


if __name__ == "__main__":  # pragma: no cover - script entry
    raise SystemExit(main())
