"""Build the shipped hand template from the MIT-licensed WebXR generic hand (``right.glb``).

Run::

    python -m halohand.handmodel.build_template /path/to/webxr-generic-hand/right.glb

It writes ``src/halohand/handmodel/data/webxr_hand_right.npz`` (or ``--out PATH``). The
output is byte-for-byte deterministic: the same input gives the same file.

What it does (facts checked in ``tests/test_handmodel.py``):

- reads the one skinned mesh (POSITION, JOINTS_0, WEIGHTS_0, indices) and the 25 joint nodes;
- welds the vertices duplicated along UV seams (positions rounded to 1e-6 m), keeping the
  first occurrence's order, which leaves a closed genus-0 surface of 1159 vertices;
- re-expresses everything in the hand model's frame: origin at the rest wrist joint, +Y from
  the wrist toward the fingers, +Z out of the back of the hand, +X toward the little finger
  (right hand), an exact axis permutation of the glTF mesh frame;
- stores the 25 rest joint frames (rotation re-orthonormalised from the unit quaternion;
  the long-finger frames rolled about their bone axes so each finger flexes in one plane,
  see :func:`untwist_finger_frames`) and at most 4 skin influences per vertex.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from halohand.core.errors import CorruptFileError
from halohand.core.rotations import quaternion_to_matrix, rot_z
from halohand.skeleton import WEBXR_JOINT_NAMES

#: Version of the data layout in the npz (bump when the keys or their meaning change).
FORMAT_VERSION = 1

#: Rotation taking glTF mesh coordinates to the model frame: model = R @ gltf. In the glTF
#: file the fingers point along -Y, the back of the hand faces +X and the thumb is on -Z.
GLTF_TO_MODEL = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])

#: Where the template ships inside the package.
DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "webxr_hand_right.npz"

_COMPONENT_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16,
                     5125: np.uint32, 5126: np.float32}  # fmt: skip
_TYPE_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def _accessor(gltf, blob: bytes, index: int) -> np.ndarray:
    """Read accessor ``index`` as ``[count, components]`` (handles interleaved views)."""
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    dtype = np.dtype(_COMPONENT_DTYPES[acc.componentType])
    ncomp = _TYPE_SIZES[acc.type]
    offset = (view.byteOffset or 0) + (acc.byteOffset or 0)
    item = dtype.itemsize * ncomp
    stride = view.byteStride or item
    raw = np.frombuffer(blob, np.uint8, count=stride * (acc.count - 1) + item, offset=offset)
    rows = np.lib.stride_tricks.as_strided(raw, shape=(acc.count, item), strides=(stride, 1))
    return np.ascontiguousarray(rows).view(dtype).reshape(acc.count, ncomp)


def webxr_parents() -> np.ndarray:
    """Parent of each of the 25 WebXR joints (-1 for the wrist), built from the names.

    The glTF nodes are flat under ``Armature``, so the tree comes from the naming scheme:
    metacarpals hang off the wrist and every other joint off the previous one in its finger.
    """
    parents = np.empty(len(WEBXR_JOINT_NAMES), dtype=np.int64)
    for j, name in enumerate(WEBXR_JOINT_NAMES):
        parents[j] = -1 if name == "wrist" else 0 if name.endswith("metacarpal") else j - 1
    return parents


#: First WebXR joint (phalanx-proximal) of the index, middle, ring and pinky chains.
_FINGER_BASES = (6, 11, 16, 21)


def _twist_about(rotation: np.ndarray, target_x: np.ndarray) -> np.ndarray:
    """Rotate a joint frame about its own bone axis (local Z) so that local X points as
    close as possible to ``target_x``."""
    z = rotation[:, 2]
    target = target_x - z * (target_x @ z)
    target /= np.linalg.norm(target)
    x = rotation[:, 0]
    return rotation @ rot_z(np.arctan2(np.cross(x, target) @ z, x @ target))


def untwist_finger_frames(frames: np.ndarray) -> np.ndarray:
    """Remove the rig's twist of the long-finger joint frames about their bone axes.

    In the asset the ring and little finger frames are rolled about the bone by up to 17
    degrees, so flexing about their local X sweeps the fingers across their neighbours.
    Each MCP frame (phalanx-proximal) is rolled so its X axis lies in the palm plane (model
    z = 0), and the PIP, DIP and tip frames so their X axes are as parallel as possible to
    the previous joint's: each finger then flexes in one plane. Positions, bone directions
    and the skinning of the rest pose are unchanged (frames only roll about their own Z).

    Args:
        frames: ``[25, 4, 4]`` rest joint frames in the model frame.

    Returns:
        ``[25, 4, 4]`` frames with the long-finger rotations rolled.
    """
    out = frames.copy()
    for base in _FINGER_BASES:
        ref = np.array([out[base, 0, 0], out[base, 1, 0], 0.0])
        for j in range(base, base + 4):
            out[j, :3, :3] = _twist_about(out[j, :3, :3], ref)
            ref = out[j, :3, 0].copy()
    return out


def build(glb_path: Path) -> dict[str, np.ndarray]:
    """Read ``right.glb`` and return the arrays of the template file (see module docstring)."""
    import pygltflib

    glb_path = Path(glb_path)
    data = glb_path.read_bytes()
    try:
        gltf = pygltflib.GLTF2.load_from_bytes(data)
        blob = gltf.binary_blob()
        mesh_node = next(n for n in gltf.nodes if n.skin is not None)
        prim = gltf.meshes[mesh_node.mesh].primitives[0]
        skin = gltf.skins[mesh_node.skin]
    except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt input file
        raise CorruptFileError(f"{glb_path}: not a skinned glTF binary ({exc})") from exc

    positions = _accessor(gltf, blob, prim.attributes.POSITION).astype(np.float64)
    joints = _accessor(gltf, blob, prim.attributes.JOINTS_0).astype(np.int64)
    weights = _accessor(gltf, blob, prim.attributes.WEIGHTS_0).astype(np.float64)
    tris = _accessor(gltf, blob, prim.indices).reshape(-1, 3).astype(np.int64)

    # Skin joint slots -> WebXR joint index, by node name (the file's order may differ).
    node_names = [gltf.nodes[n].name for n in skin.joints]
    if sorted(node_names) != sorted(WEBXR_JOINT_NAMES):
        raise CorruptFileError(f"{glb_path}: skin joints are not the 25 WebXR joints")
    slot_to_joint = np.array([WEBXR_JOINT_NAMES.index(n) for n in node_names])
    joints = slot_to_joint[joints]

    # Weld seam duplicates; the first occurrence fixes the order so the output is stable.
    key = np.round(positions, 6)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    welded_index = rank[inverse]  # old vertex -> new vertex
    keep = first[order]  # new vertex -> representative old vertex
    faces = welded_index[tris]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])
                  & (faces[:, 0] != faces[:, 2])]  # fmt: skip

    # Rest joint frames in mesh coordinates (all nodes are direct children of Armature).
    name_to_node = {n.name: n for n in gltf.nodes}
    frames = np.tile(np.eye(4), (25, 1, 1))
    for j, name in enumerate(WEBXR_JOINT_NAMES):
        node = name_to_node[name]
        q = np.asarray(node.rotation, dtype=np.float64)  # glTF (x, y, z, w)
        frames[j, :3, :3] = quaternion_to_matrix(q / np.linalg.norm(q))
        frames[j, :3, 3] = node.translation
    wrist = frames[0, :3, 3].copy()

    to_model = np.eye(4)
    to_model[:3, :3] = GLTF_TO_MODEL
    to_model[:3, 3] = -GLTF_TO_MODEL @ wrist
    frames = untwist_finger_frames(to_model @ frames)
    vertices = (positions[keep] - wrist) @ GLTF_TO_MODEL.T

    # Four influences per vertex, largest first; renormalised after the float32 cast below.
    skin_joints = joints[keep]
    skin_weights = weights[keep]
    srt = np.argsort(-skin_weights, axis=1, kind="stable")
    skin_joints = np.take_along_axis(skin_joints, srt, axis=1)
    skin_weights = np.take_along_axis(skin_weights, srt, axis=1)
    skin_joints[skin_weights == 0] = 0
    skin_weights /= skin_weights.sum(axis=1, keepdims=True)

    return {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "vertices": vertices.astype(np.float32),
        "faces": faces.astype(np.uint16),
        "joint_names": np.array(WEBXR_JOINT_NAMES),
        "parents": webxr_parents().astype(np.int8),
        "rest_frames": frames,
        "skin_joints": skin_joints.astype(np.uint8),
        "skin_weights": skin_weights.astype(np.float32),
        "gltf_to_model": GLTF_TO_MODEL.copy(),
        "gltf_wrist": wrist,
        "source_sha256": np.array(hashlib.sha256(data).hexdigest()),
        "source": np.array(
            "@webxr-input-profiles/assets 1.0.20 dist/profiles/generic-hand/right.glb; "
            "MIT License, Copyright (c) 2019 Amazon"
        ),
    }


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed npz with fixed timestamps, so equal arrays give equal bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=9)
    path.write_bytes(buf.getvalue())


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: ``python -m halohand.handmodel.build_template right.glb``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("glb", type=Path, help="path of the WebXR generic hand right.glb")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz path")
    args = parser.parse_args(argv)
    arrays = build(args.glb)
    save_npz(args.out, arrays)
    print(
        f"wrote {args.out}: {len(arrays['vertices'])} vertices, {len(arrays['faces'])} faces, "
        f"{len(arrays['joint_names'])} joints"
    )


if __name__ == "__main__":
    main()
