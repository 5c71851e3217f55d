"""Shape correctives of the embedded hand: named soft-tissue changes keypoints cannot see.

Bone lengths, palm width and per-part thickness (:class:`~halohand.handmodel.HandIdentity`)
scale the template's parts; they cannot change the shape of a part's surface. Real hands
also differ in the soft tissue over the bones: how full the thenar eminence is, how deep
the palm's hollow, how far the skin between thumb and index reaches, how full the fingertip
pads are, how the knuckles stand out. Each corrective here is one smooth displacement field
over the template's rest vertices along their normals (a hand-built "shape blend shape"),
with a weight that peaks at 1 and fades with distance from an anatomical anchor:

============== ====================================================== ===================
name           region, anchor                                         positive coefficient
============== ====================================================== ===================
``thenar``     palmar skin around the thumb metacarpal, between it   fuller mound
               and the palm centre (Gaussian, sigma 14 mm)
``palm_hollow`` palmar skin of the palm around its centre (Gaussian,  deeper hollow
               sigma 14 x 16 mm across x along)
``thumb_web``  the first web space, around the point halfway          web recedes (less
               between the thumb and index MCP joints (sigma 9 mm)    webbing)
``finger_pads`` palmar skin of the five distal phalanges, peaking at  fuller pads
               55 % of the way from the DIP (thumb: IP) joint to the
               tip joint
``knuckles``   dorsal skin over the MCP and PIP joints (thumb: MCP    more prominent
               and IP; sigma 6 mm around the skin point above the     knuckles
               joint)
============== ====================================================== ===================

A coefficient is the displacement at the field's peak in millimetres at the template's size
(17.8 cm hand); the model then stretches and scales the displaced template like the plain
one, so a corrective grows with the hand and its parts' thickness. Joints and keypoints do
not move (tested). Regions and widths were chosen on renders of the template
(``benchmarks/figures/shape_correctives.py``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import numpy as np

from halohand.core.schedule import smoothstep
from halohand.handmodel.template import HandTemplate, load_template
from halohand.skeleton import PART_NAMES

#: Names of the correctives, in the order of ``HandIdentity.shape``.
SHAPE_NAMES: Final = ("thenar", "palm_hollow", "thumb_web", "finger_pads", "knuckles")
NUM_SHAPES: Final = len(SHAPE_NAMES)

#: Largest accepted magnitude of each coefficient (mm at the template's size): beyond it the
#: template's 1,159 vertices render the change as lumps (pads and knuckles first, whose
#: fields span few vertices), or it exceeds the tissue under the field.
SHAPE_LIMIT_MM: Final = (5.0, 4.0, 5.0, 2.0, 2.0)

#: Spread of the correctives in the wide-shape data (std, mm at the template's size; drawn
#: independently and clipped at 2.5 std). No population survey of these soft-tissue depths
#: is available here: the pattern (larger over the palm's thick tissue, smaller on the pads
#: and knuckles) is a judgement, and the scale is set by the keypoint-only ceiling it
#: leaves, which must stay at IoU >= 0.97: 0.971 here, 0.968 at 5/3 of it
#: (``benchmarks/studies/keypoint_ceiling.py --shape-scale``, 50 hands).
SHAPE_PRIOR_STD_MM: Final = (0.9, 0.6, 0.9, 0.3, 0.3)

# WebXR joint indices (``halohand.skeleton.WEBXR_JOINT_NAMES``).
_THUMB_CMC, _THUMB_MCP, _THUMB_IP, _THUMB_TIP = 1, 2, 3, 4
_LONG_METACARPALS = (5, 10, 15, 20)
_LONG_MCP = (6, 11, 16, 21)
_LONG_PIP = (7, 12, 17, 22)
_DISTAL = ((3, 4), (8, 9), (13, 14), (18, 19), (23, 24))  # (DIP or thumb IP, tip)


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 below ``lo``, 1 above ``hi``, eased between."""
    return smoothstep((x - lo) / (hi - lo))


def _gaussian(points: np.ndarray, centre: np.ndarray, sigma: np.ndarray | float) -> np.ndarray:
    d = (points - centre) / sigma
    return np.exp(-0.5 * np.sum(d * d, axis=-1))


def _vertex_normals(template: HandTemplate) -> np.ndarray:
    import trimesh

    mesh = trimesh.Trimesh(template.vertices, template.faces, process=False)
    return np.asarray(mesh.vertex_normals, dtype=np.float64)


def build_shape_basis(template: HandTemplate) -> np.ndarray:
    """``[NUM_SHAPES, V, 3]`` displacement (metres) of each template vertex per millimetre of
    each corrective (rest pose, model frame: +Y toward the fingers, +Z dorsal, thumb on -X).
    """
    v = template.vertices
    n = _vertex_normals(template)
    joints = template.rest_frames[:, :3, 3]
    dorsal_axis = template.rest_frames[:, :3, 1]  # each joint frame's +Y is dorsal
    palm_w = template.part_weights[:, PART_NAMES.index("palm")]
    palmar = _ramp(-n[:, 2], 0.2, 0.7)  # facing the palm side (-Z)
    palm_centre = 0.5 * (joints[list(_LONG_METACARPALS)].mean(0) + joints[list(_LONG_MCP)].mean(0))

    thumb_mc = 0.5 * (joints[_THUMB_CMC] + joints[_THUMB_MCP])
    thenar = _gaussian(v, 0.6 * thumb_mc + 0.4 * palm_centre, 0.014)
    thenar *= _ramp(-n[:, 2], 0.0, 0.5)

    hollow = _gaussian(v[:, :2], palm_centre[:2], np.array([0.014, 0.016])) * palm_w * palmar

    web = _gaussian(v, 0.5 * (joints[_THUMB_MCP] + joints[_LONG_MCP[0]]), 0.009)

    pads = np.zeros(len(v))
    distal_parts = ("thumb3", "index3", "middle3", "ring3", "pinky3")
    for (base, tip), part in zip(_DISTAL, distal_parts, strict=True):
        bone = joints[tip] - joints[base]
        t = (v - joints[base]) @ bone / (bone @ bone)
        facing = _ramp(-(n @ dorsal_axis[base]), 0.0, 0.6)
        w = template.part_weights[:, PART_NAMES.index(part)]
        pads = np.maximum(pads, w * facing * np.exp(-(((t - 0.55) / 0.35) ** 2)))

    knuckles = np.zeros(len(v))
    for j in (_THUMB_MCP, _THUMB_IP, *_LONG_MCP, *_LONG_PIP):
        # Anchored on the dorsal skin over the joint, not at the joint centre 7-10 mm deeper.
        height = (v - joints[j]) @ dorsal_axis[j]
        near = np.linalg.norm(v - joints[j], axis=1) < 0.012
        anchor = joints[j] + height[near].max() * dorsal_axis[j]
        facing = _ramp(n @ dorsal_axis[j], 0.2, 0.7)
        knuckles = np.maximum(knuckles, _gaussian(v, anchor, 0.006) * facing)

    # Signs: positive fills outward (thenar, pads, knuckles) or recedes inward (hollow, web).
    fields = ((thenar, 1.0), (hollow, -1.0), (web, -1.0), (pads, 1.0), (knuckles, 1.0))
    basis = np.stack([sign * (w / w.max())[:, None] * n for w, sign in fields])
    return basis * 1e-3


@lru_cache(maxsize=1)
def shape_basis() -> np.ndarray:
    """:func:`build_shape_basis` of the shipped template, built once per process (read-only)."""
    basis = build_shape_basis(load_template())
    basis.flags.writeable = False
    return basis


def basis_for(template: HandTemplate) -> np.ndarray:
    """The correctives of ``template``: the cached :func:`shape_basis` for the shipped one."""
    return shape_basis() if template is load_template() else build_shape_basis(template)
