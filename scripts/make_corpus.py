"""Write the fuzz corpus of ``tests/corpus/`` (bad and odd inputs), reproducibly.

    .venv/bin/python scripts/make_corpus.py            # (re)write tests/corpus/
    .venv/bin/python scripts/make_corpus.py --check    # exit 1 if a file would change

Three folders of small files, each made here from a fixed seed or by hand:

* ``keypoints/``: keypoint files for ``halohand reconstruct``, ``occupancy`` and ``check``;
* ``points/``: query-point files for ``halohand occupancy``;
* ``meshes/``: object meshes for ``halohand grasp MESH`` and ``grasp evaluate --objects``.

``manifest.json`` lists every file with its purpose and the exit status each command must
end with (2: one ``error:`` line; 0: the input is valid, however odd, and the command
runs, with ``warning:`` lines where it is implausible); ``match`` is a fragment the error
line contains. ``README.md`` is the same table for people. ``tests/test_corpus.py`` runs
every file through its commands. The base hand is ``examples/hand_right.npy`` (metres,
OpenPose order); nothing here depends on a model or on randomness outside the seeds below.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "corpus"
HAND = np.load(REPO / "examples" / "hand_right.npy")  # [21, 3] metres, openpose

#: Exit statuses: every command refuses the input / every command accepts it.
BAD = {"reconstruct": 2, "occupancy": 2, "check": 2}
GOOD = {"reconstruct": 0, "occupancy": 0, "check": 0}
MESH_BAD = {"sample": 2, "evaluate": 2}
MESH_GOOD = {"sample": 0, "evaluate": 0}
#: Refused by the model commands; ``check`` reads the file and reports the hand as a finding
#: (``check`` exits 0 for any readable file, whatever it holds).
SKELETON_BAD = {"reconstruct": 2, "occupancy": 2, "check": 0}

ENTRIES: list[dict] = []
FILES: dict[str, bytes] = {}


def add(name: str, data: bytes, purpose: str, expect: dict[str, int], match: str = "") -> None:
    """One corpus file (``name`` relative to the corpus), why it is there, what must happen."""
    assert name not in FILES, name
    FILES[name] = data
    entry = {"file": name, "purpose": purpose, "expect": expect}
    if match:
        entry["match"] = match
    ENTRIES.append(entry)


def npy(arr: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, **kwargs)
    return buf.getvalue()


def jsonb(doc: object) -> bytes:
    return (json.dumps(doc) + "\n").encode()


def txt(arr: np.ndarray, sep: str = " ") -> bytes:
    return "".join(sep.join(f"{v:.6f}" for v in row) + "\n" for row in arr).encode()


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ keypoints


def keypoint_arrays() -> None:
    h = HAND
    add("keypoints/shape_20x3.npy", npy(h[:20]), "one joint missing", BAD, "[21, 3]")
    add("keypoints/shape_22x3.npy", npy(np.vstack([h, h[:1]])), "one joint too many", BAD,
        "[21, 3]")  # fmt: skip
    add("keypoints/shape_3x21.npy", npy(h.T.copy()), "transposed hand", BAD, "transpose")
    add("keypoints/shape_63.npy", npy(h.reshape(-1)), "flattened hand", BAD, "reshape")
    add("keypoints/shape_21x2_2d.npy", npy(h[:, :2].copy()), "2D (image) keypoints", BAD,
        "2D")  # fmt: skip
    add("keypoints/shape_21x4_homogeneous.npy", npy(np.hstack([h, np.ones((21, 1))])),
        "homogeneous 4D points", BAD, "homogeneous")  # fmt: skip
    add("keypoints/shape_0x21x3.npy", npy(np.zeros((0, 21, 3))), "a sequence of no hands",
        BAD, "no keypoints")  # fmt: skip
    add("keypoints/shape_2x2x21x3.npy", npy(np.stack([np.stack([h, h])] * 2)),
        "4-D array (batch of sequences)", BAD, "[N, 21, 3]")  # fmt: skip
    add("keypoints/scalar.npy", npy(np.float64(0.1)), "0-d array", BAD, "[21, 3]")
    bad = h.copy()
    bad[7, 1] = np.nan
    add("keypoints/nan_joint.npy", npy(bad), "one NaN coordinate", BAD, "NaN or inf")
    bad = h.copy()
    bad[3, 0] = -np.inf
    add("keypoints/inf_joint.npy", npy(bad), "one -inf coordinate", BAD, "NaN or inf")
    add("keypoints/huge_1e300.npy", npy(h * 1e300), "coordinates near the float limit", BAD,
        "no hand is that large")  # fmt: skip
    add("keypoints/float64_max.npy", npy(np.full((21, 3), np.finfo(np.float64).max)),
        "every coordinate the largest float", BAD, "no hand is that large")  # fmt: skip
    add("keypoints/subnormal.npy", npy(h * 1e-310), "subnormal coordinates (hand ~1e-311)",
        SKELETON_BAD, "degenerate")  # fmt: skip
    add("keypoints/strings.npy", npy(h.astype("U9")), "numbers as a unicode string array", BAD,
        "numbers")  # fmt: skip
    add("keypoints/bytes.npy", npy(h.astype("S12")), "numbers as a bytes array", BAD,
        "numbers")  # fmt: skip
    add("keypoints/complex.npy", npy(h.astype(np.complex128)), "complex dtype", BAD,
        "real numbers")  # fmt: skip
    add("keypoints/bool.npy", npy(h > 0), "bool dtype", BAD, "real numbers")
    rec = np.zeros(21, dtype=[("x", "f8"), ("y", "f8"), ("z", "f8")])
    rec["x"], rec["y"], rec["z"] = h.T
    add("keypoints/structured.npy", npy(rec), "structured dtype with x, y, z fields", BAD,
        "numbers")  # fmt: skip
    add("keypoints/datetime.npy", npy(np.zeros((21, 3), dtype="datetime64[s]")),
        "datetime dtype", BAD, "numbers")  # fmt: skip
    add("keypoints/timedelta.npy", npy(np.zeros((21, 3), dtype="timedelta64[ms]")),
        "timedelta dtype (a numpy number)", BAD, "time spans")  # fmt: skip
    seq = np.stack([h] * 4)
    seq[2, 11, 2] = np.nan
    add("keypoints/sequence_nan_frame.npy", npy(seq), "a sequence with NaN in hand 2", BAD,
        "hand 2")  # fmt: skip
    # valid but odd arrays
    add("keypoints/int16_mm.npy", npy(np.round(h * 1000).astype(np.int16)),
        "valid: whole millimetres as int16", GOOD)  # fmt: skip
    add("keypoints/float16_m.npy", npy(h.astype(np.float16)), "valid: float16 metres", GOOD)
    add("keypoints/float32_cm.npy", npy((h * 100).astype(np.float32)),
        "valid: float32 centimetres", GOOD)  # fmt: skip
    add("keypoints/big_endian.npy", npy(h.astype(">f8")), "valid: big-endian float64", GOOD)
    add("keypoints/fortran_order.npy", npy(np.asfortranarray(h)), "valid: Fortran order",
        GOOD)  # fmt: skip
    add("keypoints/UPPER.NPY", npy(h), "valid: upper-case suffix", GOOD)
    add("keypoints/sequence_1x21x3.npy", npy(h[None]), "valid: a sequence of one hand", GOOD)
    add("keypoints/mirrored_left_hand.npy", npy(h * [-1.0, 1.0, 1.0]),
        "valid: a left hand read as right (warning names the side)", GOOD)  # fmt: skip
    add("keypoints/translated_far.npy", npy(h + [500.0, -300.0, 800.0]),
        "valid: a hand 1 km from the origin (metres)", GOOD)  # fmt: skip


def keypoint_skeletons() -> None:
    h = HAND
    bone = h.copy()
    bone[8] = bone[7]  # index tip on the DIP joint
    add("keypoints/zero_length_bone.npy", npy(bone), "a zero-length bone (index tip = DIP)",
        SKELETON_BAD, "shorter than")  # fmt: skip
    add("keypoints/identical_joints.npy", npy(np.tile(h[5], (21, 1))),
        "all 21 joints at one point", SKELETON_BAD, "degenerate")  # fmt: skip
    add("keypoints/all_zero.npy", npy(np.zeros((21, 3))), "all joints at the origin", SKELETON_BAD,
        "degenerate")  # fmt: skip
    line = h.copy()
    direction = np.array([0.3, 0.9, -0.3]) / np.linalg.norm([0.3, 0.9, -0.3])
    for mcp in (1, 5, 9, 13, 17):
        # every knuckle on one line; rounded to 1e-9 m so the file is the same on every CPU
        # (the product's last bit differed between a Xeon and an AMD EPYC)
        line[mcp] = np.round(direction * np.linalg.norm(h[mcp]), 9)
    add("keypoints/collinear_palm.npy", npy(line), "wrist and every knuckle on one line",
        SKELETON_BAD, "palm plane")  # fmt: skip
    flat = h.copy()
    flat[:, 2] = 0.0
    add("keypoints/flat_hand.npy", npy(flat), "valid: every joint in one plane (z = 0)", GOOD)
    add("keypoints/hand_km.npy", npy(h / 1000.0), "a hand in kilometres", SKELETON_BAD,
        "fits none")  # fmt: skip
    add("keypoints/hand_inches.npy", npy(h / 0.0254),
        "valid: a hand in inches, 7 units long, reads as a 7 cm hand (check warns on its "
        "size; inches are not a unit the tools take)", GOOD)  # fmt: skip
    add("keypoints/two_hands_42x3.npy", npy(np.vstack([h, h * [-1, 1, 1]])),
        "42 joints (two hands in one array): reconstruct reads a pair (InterHand layout), "
        "occupancy and check take one hand", {"reconstruct": 0, "occupancy": 2, "check": 2},
        "two hands")  # fmt: skip
    add("keypoints/random_noise.npy", npy(rng(1).normal(scale=0.05, size=(21, 3))),
        "random points at hand scale", SKELETON_BAD,
        "fits none")  # fmt: skip


def keypoint_npy_files() -> None:
    add("keypoints/empty.npy", b"", "empty file", BAD, "empty file")
    whole = npy(HAND)
    add("keypoints/truncated.npy", whole[: len(whole) - 200], "truncated .npy", BAD,
        "truncated")  # fmt: skip
    add("keypoints/header_only.npy", whole[:128], ".npy header without data", BAD,
        "truncated")  # fmt: skip
    add("keypoints/pickled_object.npy", npy(np.array([{"x": 1}, HAND], dtype=object),
                                            allow_pickle=True),
        "object array (pickle)", BAD, "pickled")  # fmt: skip
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        info = zipfile.ZipInfo("arr_0.npy", date_time=(2020, 1, 1, 0, 0, 0))
        zf.writestr(info, whole)
    add("keypoints/npz_renamed.npy", zbuf.getvalue(), ".npz archive named .npy", BAD, ".npz")
    add("keypoints/bad_header.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': garbage}\n" + whole[128:],
        "NumPy magic with a garbage header", BAD, "corrupt .npy header")  # fmt: skip
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 21, 3), }"
    header = header.ljust(117) + "\n"
    add("keypoints/huge_shape_header.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", 118)
        + header.encode() + whole[128:], "header announcing 10^12 hands", BAD, ".npy")  # fmt: skip
    add("keypoints/json_text.npy", jsonb(HAND.tolist()), "JSON text named .npy", BAD,
        "not a .npy file")  # fmt: skip
    add("keypoints/random_bytes.npy", rng(2).bytes(700), "random bytes named .npy", BAD,
        "not a .npy file")  # fmt: skip
    add("keypoints/magic_random.npy", b"\x93NUMPY" + rng(3).bytes(500),
        "NumPy magic then random bytes", BAD, ".npy")  # fmt: skip


def keypoint_json_files() -> None:
    h = np.round(HAND, 6).tolist()
    add("keypoints/empty.json", b"", "empty file", BAD, "empty file")
    add("keypoints/whitespace.json", b"  \n\t\n", "only whitespace", BAD, "invalid JSON")
    add("keypoints/wrong_key.json", jsonb({"points": h}), 'object without "keypoints"', BAD,
        '"keypoints"')  # fmt: skip
    add("keypoints/nested_garbage.json",
        jsonb([[1, "a", None], {"b": [2, [3, {}]]}, [[[]]], True] * 6),
        "mixed lists, dicts, strings and nulls", BAD, "")  # fmt: skip
    add("keypoints/deep_nesting.json", b"[" * 3000 + b"]" * 3000, "3000 nested lists", BAD,
        "nested too deeply")  # fmt: skip
    huge = json.dumps(h).replace("0.0,", "1e400,", 1)
    add("keypoints/huge_number.json", huge.encode(), "1e400 (inf when parsed)", BAD,
        "NaN or inf")  # fmt: skip
    big = json.dumps(h).replace("0.0,", "1" + "0" * 400 + ",", 1)
    add("keypoints/huge_integer.json", big.encode(), "a 401-digit integer", BAD, "")
    add("keypoints/nulls.json", jsonb([[None, None, None]] * 21), "nulls", BAD, "numbers")
    add("keypoints/nan_literal.json", json.dumps([[float("nan")] * 3] + h[1:]).encode(),
        "NaN literals (Python's JSON extension)", BAD, "NaN or inf")  # fmt: skip
    add("keypoints/numbers_as_strings.json", jsonb([[str(v) for v in row] for row in h]),
        "numbers quoted as strings", BAD, "numbers")  # fmt: skip
    add("keypoints/ragged.json", jsonb([row[: 1 + i % 3] for i, row in enumerate(h)]),
        "rows of 1-3 numbers", BAD, "numbers")  # fmt: skip
    add("keypoints/bools.json", jsonb([[True, False, True]] * 21), "booleans", BAD,
        "real numbers")  # fmt: skip
    add("keypoints/top_level_number.json", b"42\n", "a single number", BAD, "[21, 3]")
    add("keypoints/top_level_string.json", b'"hand"\n', "a single string", BAD, "numbers")
    add("keypoints/keypoints_string.json", jsonb({"keypoints": "see hand.npy"}),
        '"keypoints" is a string', BAD, "numbers")  # fmt: skip
    add("keypoints/keypoints_dict.json", jsonb({"keypoints": {"wrist": [0, 0, 0]}}),
        '"keypoints" is an object', BAD, "numbers")  # fmt: skip
    add("keypoints/keypoints_empty.json", jsonb({"keypoints": []}), '"keypoints": []', BAD,
        "no keypoints")  # fmt: skip
    add("keypoints/truncated.json", json.dumps(h).encode()[:300], "cut off mid-file", BAD,
        "invalid JSON")  # fmt: skip
    add("keypoints/trailing_garbage.json", json.dumps(h).encode() + b" }{", "extra data", BAD,
        "invalid JSON")  # fmt: skip
    add("keypoints/landmarks_missing_z.json", jsonb([{"x": r[0], "y": r[1]} for r in h]),
        'landmark objects without "z"', BAD, '"z"')  # fmt: skip
    add("keypoints/landmarks_string_x.json",
        jsonb([{"x": "left", "y": r[1], "z": r[2]} for r in h]),
        'landmark "x" is a string', BAD, "numbers")  # fmt: skip
    add("keypoints/landmarks_mixed.json", jsonb([{"x": 0, "y": 0, "z": 0}, *h[1:]]),
        "landmark objects and lists mixed", BAD, "numbers")  # fmt: skip
    add("keypoints/side_up.json", jsonb({"side": "up", "keypoints": h}), '"side": "up"', BAD,
        '"side"')  # fmt: skip
    add("keypoints/side_list.json", jsonb({"side": ["right"], "keypoints": h}),
        '"side" is a list', BAD, '"side"')  # fmt: skip
    add("keypoints/units_inch.json", jsonb({"units": "inch", "keypoints": h}),
        '"units": "inch"', BAD, '"units"')  # fmt: skip
    add("keypoints/units_number.json", jsonb({"units": 1000, "keypoints": h}),
        '"units" is a number', BAD, '"units"')  # fmt: skip
    add("keypoints/format_unknown.json", jsonb({"format": "kinect", "keypoints": h}),
        '"format": "kinect"', BAD, "unknown keypoint format")  # fmt: skip
    add("keypoints/format_number.json", jsonb({"format": 21, "keypoints": h}),
        '"format" is a number', BAD, "unknown keypoint format")  # fmt: skip
    add("keypoints/non_utf8.json", '{"side": "droite", "note": "m\xe9tres"}'.encode("latin-1"),
        "Latin-1 bytes", BAD, "UTF-8")  # fmt: skip
    add("keypoints/utf16.json", json.dumps(h).encode("utf-16"), "UTF-16 with its BOM", BAD,
        "UTF-8")  # fmt: skip
    add("keypoints/npy_bytes.json", npy(HAND), "a .npy file named .json", BAD, "UTF-8")
    # valid but odd
    add("keypoints/bom.json", b"\xef\xbb\xbf" + jsonb({"keypoints": h}),
        "valid: UTF-8 byte-order mark (Windows editors)", GOOD)  # fmt: skip
    add("keypoints/landmarks.json", jsonb([{"x": r[0], "y": r[1], "z": r[2], "visibility": 1}
                                          for r in h]),
        "valid: MediaPipe-style landmark objects", GOOD)  # fmt: skip
    add("keypoints/side_null.json", jsonb({"side": None, "units": None, "keypoints": h}),
        "valid: null metadata (defaults)", GOOD)  # fmt: skip
    add("keypoints/mm_metadata.json",
        jsonb({"units": "mm", "side": "right", "format": "openpose",
               "keypoints": np.round(HAND * 1000, 3).tolist(), "extra": {"ignored": True}}),
        "valid: metadata and an unknown key", GOOD)  # fmt: skip


def keypoint_text_files() -> None:
    add("keypoints/empty.txt", b"", "empty file", BAD, "empty file")
    add("keypoints/comments_only.txt", b"# x y z\n# nothing here\n\n", "only comments", BAD,
        "no keypoints")  # fmt: skip
    rows = txt(HAND).decode().splitlines()
    ragged = "\n".join(r if i % 5 else r + " 0.5" for i, r in enumerate(rows)) + "\n"
    add("keypoints/ragged.txt", ragged.encode(), "some rows of 4 numbers", BAD, "line 1 has 4")
    add("keypoints/two_columns.txt", txt(HAND[:, :2]), "2 numbers per row", BAD, "2 values")
    add("keypoints/words.txt", b"wrist 0 0 0\n" + txt(HAND[1:]), "a label column", BAD,
        "not numbers")  # fmt: skip
    add("keypoints/nan.txt", txt(HAND).replace(b"0.000000", b"nan", 1), "nan in a row", BAD,
        "NaN or inf")  # fmt: skip
    add("keypoints/infinity.txt", txt(HAND).replace(b"0.000000", b"-Infinity", 1),
        "-Infinity in a row", BAD, "NaN or inf")  # fmt: skip
    add("keypoints/rows_22.txt", txt(np.vstack([HAND, HAND[:1]])), "22 rows", BAD,
        "not a multiple")  # fmt: skip
    add("keypoints/non_utf8.txt", txt(HAND) + b"# mesur\xe9 en m\xe8tres\n",
        "a Latin-1 comment", BAD, "not a text file")  # fmt: skip
    add("keypoints/binary.txt", rng(4).bytes(600), "random bytes named .txt", BAD, "")
    add("keypoints/header.csv", b"x,y,z\n" + txt(HAND, ","), "a CSV header row", BAD,
        "not numbers")  # fmt: skip
    add("keypoints/semicolons.csv", txt(HAND, ";").replace(b".", b","),
        "European CSV (decimal commas, ; separators)", BAD, "0,000000;")  # fmt: skip
    # valid but odd
    add("keypoints/bom.txt", b"\xef\xbb\xbf" + txt(HAND), "valid: UTF-8 byte-order mark",
        GOOD)  # fmt: skip
    add("keypoints/crlf_tabs_comments.txt",
        b"# wrist first\r\n" + txt(HAND, "\t").replace(b"\n", b"  # joint\r\n"),
        "valid: CRLF, tabs and trailing comments", GOOD)  # fmt: skip
    add("keypoints/sequence_42_rows.csv", txt(np.vstack([HAND, HAND]), ","),
        "valid: 42 rows = a sequence of two hands", GOOD)  # fmt: skip


def keypoint_other_files() -> None:
    add("keypoints/no_suffix", npy(HAND), "a .npy file without suffix", BAD, "unsupported")
    add("keypoints/hand.xyz", txt(HAND), "unknown suffix", BAD, "unsupported")
    add("keypoints/hand.npy.gz", npy(HAND), "compressed suffix", BAD, "unsupported")
    add(
        "keypoints/folder.npy/README",
        b"A folder named folder.npy: not a keypoint file.\n",
        "(its folder, folder.npy, is the input: a directory with a .npy name)",
        {},
        "folder",
    )


# ------------------------------------------------------------------ query points


def points_files() -> None:
    good = np.round(rng(5).uniform(-0.05, 0.2, size=(50, 3)), 5)
    add("points/nan.npy", npy(np.vstack([good, [[np.nan, 0, 0]]])), "a NaN point",
        {"occupancy": 2}, "NaN or inf")  # fmt: skip
    add("points/shape_50x2.npy", npy(good[:, :2].copy()), "2D points", {"occupancy": 2},
        "[N, 3]")  # fmt: skip
    add("points/shape_3x50.npy", npy(good.T.copy()), "transposed points", {"occupancy": 2},
        "[N, 3]")  # fmt: skip
    add("points/empty_array.npy", npy(np.zeros((0, 3))), "valid: no points",
        {"occupancy": 0})  # fmt: skip
    add("points/strings.npy", npy(good[:5].astype("U9")), "strings", {"occupancy": 2}, "real")
    add("points/huge.npy", npy(good * 1e300), "coordinates near the float limit",
        {"occupancy": 0})  # fmt: skip
    add("points/batch_5x50x3.npy", npy(np.stack([good] * 5)), "5 point sets for 1 hand",
        {"occupancy": 2}, "point sets")  # fmt: skip
    add("points/empty.npy", b"", "empty file", {"occupancy": 2}, "empty")
    add("points/points.json", jsonb(good.tolist()), "JSON instead of .npy",
        {"occupancy": 2}, ".npy")  # fmt: skip
    add("points/timedelta.npy", npy(good.astype("timedelta64[ms]")), "timedelta dtype",
        {"occupancy": 2}, "real")  # fmt: skip
    add("points/int64.npy", npy(np.round(good * 1000).astype(np.int64)),
        "valid: integer millimetres (with an mm hand)", {"occupancy": 0})  # fmt: skip


# ------------------------------------------------------------------ meshes


def _box(extents=(0.06, 0.04, 0.1)):
    import trimesh

    return trimesh.creation.box(extents)


def _stl(mesh) -> bytes:
    return mesh.export(file_type="stl_ascii").encode()


def _obj(v: np.ndarray, f: np.ndarray, head: str = "", one_based: bool = True) -> bytes:
    lines = [head] if head else []
    lines += [f"v {x:.6g} {y:.6g} {z:.6g}" for x, y, z in v]
    lines += ["f " + " ".join(str(int(i) + one_based) for i in face) for face in f]
    return ("\n".join(lines) + "\n").encode()


def _ply_ascii(v: np.ndarray, f: np.ndarray | None) -> bytes:
    head = ["ply", "format ascii 1.0", f"element vertex {len(v)}", "property float x",
            "property float y", "property float z"]  # fmt: skip
    if f is not None:
        head += [f"element face {len(f)}", "property list uchar int vertex_indices"]
    body = [" ".join(f"{c:.6g}" for c in row) for row in v]
    if f is not None:
        body += [f"{len(face)} " + " ".join(str(int(i)) for i in face) for face in f]
    return ("\n".join([*head, "end_header", *body]) + "\n").encode()


def meshes() -> None:
    import trimesh

    box = _box()
    v, f = np.asarray(box.vertices), np.asarray(box.faces)
    for suffix in ("stl", "obj", "ply", "glb", "off"):
        add(f"meshes/empty.{suffix}", b"", "empty file", MESH_BAD, "empty")
        add(f"meshes/garbage.{suffix}", rng(10 + len(suffix)).bytes(777),
            "random bytes", MESH_BAD, "")  # fmt: skip
    add("meshes/single_triangle.stl",
        _stl(trimesh.Trimesh([[0, 0, 0], [0.05, 0, 0], [0, 0.05, 0]], [[0, 1, 2]])),
        "an open surface: one triangle", MESH_BAD, "")  # fmt: skip
    add("meshes/nan_vertices.obj", _obj(np.vstack([v[:-1], [[np.nan, 0, 0]]]), f),
        "a NaN vertex", MESH_BAD, "non-finite")  # fmt: skip
    add("meshes/inf_vertices.ply", _ply_ascii(np.vstack([v[:-1], [[np.inf, 0, 0]]]), f),
        "an inf vertex", MESH_BAD, "")  # fmt: skip
    add("meshes/unused_nan_vertex.obj", _obj(np.vstack([v, [[np.nan, np.nan, np.nan]]]), f),
        "valid: a NaN vertex no face uses (the OBJ reader drops it)", MESH_GOOD)  # fmt: skip
    flat_v = np.array([[0, 0, 0], [0.05, 0, 0], [0.1, 0, 0], [0, 0.05, 0]], dtype=float)
    add("meshes/degenerate_faces.obj", _obj(flat_v, [[0, 1, 2], [0, 0, 3], [1, 1, 1]]),
        "zero-area faces only", MESH_BAD, "")  # fmt: skip
    add("meshes/two_points.ply", _ply_ascii(np.array([[0, 0, 0], [0.05, 0.05, 0.05]]), None),
        'a 2-point "mesh" (no faces)', MESH_BAD, "")  # fmt: skip
    add("meshes/box_1km.stl", _stl(_box((1000.0, 600.0, 400.0))), "a box 1 km long (m)",
        MESH_BAD, "units")  # fmt: skip
    add("meshes/box_0.1mm.stl", _stl(_box((1e-4, 6e-5, 4e-5))), "a box 0.1 mm long (m)",
        MESH_BAD, "units")  # fmt: skip
    with np.errstate(all="ignore"):
        huge = _stl(_box((3e300, 2e300, 1e300)))
    add("meshes/box_1e300.stl", huge,
        "a box near the float limit", MESH_BAD, "")  # fmt: skip
    cup = trimesh.creation.cylinder(radius=0.035, height=0.1, sections=12)
    top = cup.triangles_center[:, 2] > 0.049
    cup.update_faces(~top)
    cup.remove_unreferenced_vertices()
    add("meshes/open_cup.stl", _stl(cup), "a cup without its lid (open rim of 12 edges)",
        MESH_BAD, "not a closed surface")  # fmt: skip
    other = _box((0.05, 0.05, 0.05))
    other.apply_translation([0.15, 0, 0])
    scene = trimesh.Scene([box, other])
    add("meshes/two_bodies.glb", scene.export(file_type="glb"), "a scene of two boxes apart",
        MESH_BAD, "separate parts")  # fmt: skip
    add("meshes/two_bodies.stl", _stl(trimesh.util.concatenate([box, other])),
        "two boxes apart in one STL", MESH_BAD, "separate parts")  # fmt: skip
    flat_sq = np.array([[0, 0, 0], [0.08, 0, 0], [0.08, 0.06, 0], [0, 0.06, 0]], float)
    add("meshes/flat_square.obj", _obj(flat_sq, [[0, 1, 2], [0, 2, 3], [0, 2, 1], [0, 3, 2]]),
        "a two-sided square: closed but no volume", MESH_BAD, "")  # fmt: skip
    whole = _obj(v, f)
    add("meshes/short_vertex_line.obj", whole + whole[:10],
        "an OBJ ending in a vertex line cut short (read as [V, 1] vertices)", MESH_BAD,
        "malformed")  # fmt: skip
    zero_h = np.asarray(v) * [1.0, 1.0, 0.0]
    add("meshes/zero_height_box.obj", _obj(zero_h, f),
        "a closed box squashed flat: no volume", MESH_BAD, "no volume")  # fmt: skip
    add("meshes/faces_out_of_range.obj", _obj(v, np.vstack([f, [[0, 1, 99]]])),
        "a face using vertex 100 of 8", MESH_BAD, "")  # fmt: skip
    add("meshes/faces_out_of_range.ply", _ply_ascii(v, np.vstack([f, [[0, 1, 99]]])),
        "a face using vertex 99 of 8", MESH_BAD, "")  # fmt: skip
    blob = box.export(file_type="stl")
    add("meshes/binary_stl_bad_count.stl", blob[:80] + struct.pack("<I", 10**6) + blob[84:],
        "binary STL announcing 10^6 triangles, holding 12", MESH_BAD, "")  # fmt: skip
    add("meshes/ascii_stl_nan.stl", _stl(box).replace(b"vertex", b"vertex nan", 1).replace(
        b"vertex nan ", b"vertex nan nan nan\n vertex ", 1),
        "an ASCII STL with 'nan' coordinates", MESH_BAD, "")  # fmt: skip
    add("meshes/off_bad_counts.off", b"OFF\n100 200 0\n0 0 0\n0.05 0 0\n0 0.05 0\n3 0 1 2\n",
        "OFF header announcing more than it holds", MESH_BAD, "")  # fmt: skip
    add("meshes/ply_huge_count.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex "
        b"1000000000\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
        + rng(6).bytes(120), "binary PLY announcing 10^9 vertices", MESH_BAD, "")  # fmt: skip
    cloud = trimesh.PointCloud(np.asarray(box.vertices))
    add("meshes/point_cloud.glb", trimesh.Scene([cloud]).export(file_type="glb"),
        "a GLB holding only points", MESH_BAD, "")  # fmt: skip
    add("meshes/no_suffix", _stl(box), "an STL without suffix", MESH_BAD, "unknown mesh format")
    add("meshes/box.step", _stl(box), "an unsupported suffix", MESH_BAD, "unknown mesh format")
    add(
        "meshes/folder.stl/README",
        b"A folder named folder.stl: not a mesh.\n",
        "(its folder, folder.stl, is the input: a directory with a mesh name)",
        {},
        "folder",
    )
    # valid but odd
    latin = _stl(box).decode().replace("solid", "solid Pi\xe8ce d\xe9coup\xe9e", 1)
    add("meshes/latin1_comment.stl", latin.encode("latin-1"),
        "valid: ASCII STL named in Latin-1", MESH_GOOD)  # fmt: skip
    stl = _stl(box).decode()
    start = stl.index("facet normal")
    garbled = stl[:start] + "facet normal 0 0 x" + stl[stl.index("\n", start) :]
    add("meshes/garbled_normal.stl", garbled.encode(),
        "valid: an ASCII STL with one unreadable normal (normals are recomputed)",
        MESH_GOOD)  # fmt: skip
    add("meshes/missing_mtl.obj", _obj(v, f, "mtllib missing.mtl\nusemtl wood"),
        "valid: OBJ referencing a missing .mtl", MESH_GOOD)  # fmt: skip
    add("meshes/inverted_box.obj", _obj(v, f[:, ::-1]), "valid: faces wound inward",
        MESH_GOOD)  # fmt: skip
    pin = _obj(v, f[1:])
    add("meshes/box_missing_face.obj", pin, "valid: a box with one triangle missing (filled)",
        MESH_GOOD)  # fmt: skip
    quads = ["v " + " ".join(f"{c:g}" for c in row) for row in v]
    box_quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4],
                 [1, 5, 7, 3]]  # fmt: skip
    quads += ["f " + " ".join(f"{i - 8}" for i in q) for q in box_quads]
    add("meshes/quads_negative_indices.obj", ("\n".join(quads) + "\n").encode(),
        "valid: quads with relative (negative) indices", MESH_GOOD)  # fmt: skip
    add("meshes/box_cm.ply", _ply_ascii(v * 100.0, f), "valid: a box in centimetres",
        MESH_GOOD)  # fmt: skip


BUILDERS: tuple[Callable[[], None], ...] = (
    keypoint_arrays, keypoint_skeletons, keypoint_npy_files, keypoint_json_files,
    keypoint_text_files, keypoint_other_files, points_files, meshes,
)  # fmt: skip


def build() -> dict[str, bytes]:
    """Every corpus file (relative path -> bytes), ``manifest.json`` and ``README.md``."""
    ENTRIES.clear()
    FILES.clear()
    for builder in BUILDERS:
        builder()
    files = dict(FILES)
    files["manifest.json"] = (json.dumps(ENTRIES, indent=1) + "\n").encode()
    files["README.md"] = readme().encode()
    return files


def readme() -> str:
    lines = [
        "# Fuzz corpus",
        "",
        "Bad and odd inputs for the command line, written by `scripts/make_corpus.py`",
        "(do not edit by hand: change the script and rerun it). `tests/test_corpus.py` runs",
        "every file through its commands: keypoints through `reconstruct`, `occupancy` and",
        "`check`; query points through `occupancy`; meshes through `grasp MESH` and",
        "`grasp evaluate --objects MESH`.",
        "",
        "Expected: `2` is one `error:` line on stderr, exit status 2, no traceback, no",
        "numpy warning and no output; `0` is a valid (if odd) input the command runs on,",
        "with `warning:` lines where it is implausible. A folder entry (`folder.npy/`,",
        "`folder.stl/`) is itself the input.",
        "",
        "| file | purpose | expected | error mentions |",
        "|---|---|---|---|",
    ]
    for e in ENTRIES:
        codes = ", ".join(f"{k} {v}" for k, v in e["expect"].items()) or "2 (the folder)"
        match = f"`{e['match']}`" if e.get("match") else ""
        lines.append(f"| `{e['file']}` | {e['purpose']} | {codes} | {match} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args()
    files = build()
    if args.check:
        changed = [n for n, data in files.items() if (CORPUS / n).read_bytes() != data]
        for name in changed:
            print(f"differs: {name}")
        return 1 if changed else 0
    for name, data in files.items():
        path = CORPUS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    size = sum(len(d) for d in files.values())
    print(f"wrote {len(files)} files ({size / 1024:.0f} KB) to {CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
