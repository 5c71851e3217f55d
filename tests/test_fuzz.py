"""Fuzzing the public API and the command line (hypothesis, derandomized, bounded).

Every generated input must end in either a valid result (finite mesh, watertight unless the
model predicts no surface, outputs complete) or a documented error: ``HalohandInputError`` /
``ValueError`` with a one-line message from the API; from the CLI exactly one ``error: ...``
line on stderr, exit status 2, no traceback and no file left in the output folder. Each
example runs under a time limit (no hangs). The real shipped weights are used at a low
resolution; the table of inputs and outcomes is in ``docs/reliability.md``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from halo_fakes import hand_keypoints
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from halohand.apps import cli
from halohand.apps.keypoint_io import load_keypoints
from halohand.core.errors import HalohandInputError
from halohand.inference.halo import HALO
from halohand.skeleton import mirror

RES = 16  # extraction lattice for fuzzed meshes: cheap, still a closed surface
EXAMPLE_LIMIT_S = 60


def fuzz_settings(n: int) -> settings:
    return settings(
        max_examples=n, derandomize=True, deadline=None, database=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                               HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )  # fmt: skip


@contextlib.contextmanager
def time_limit(seconds: float = EXAMPLE_LIMIT_S) -> Iterator[None]:
    """Fail (instead of hanging) when the block runs longer than ``seconds``."""

    def _raise(signum: int, frame: object) -> None:
        raise TimeoutError(f"example ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


KP = hand_keypoints("spread")


@pytest.fixture(scope="module")
def model(shipped_halo: HALO) -> HALO:
    return shipped_halo


# ---------------------------------------------------------------- outcome checks


def assert_one_line_error(exc: BaseException) -> None:
    assert isinstance(exc, ValueError), type(exc)
    msg = str(exc)
    assert msg.strip() and "\n" not in msg.strip(), repr(msg)


def assert_valid_mesh(mesh: trimesh.Trimesh) -> None:
    v = np.asarray(mesh.vertices)
    assert np.isfinite(v).all()
    if len(mesh.faces):  # an empty mesh is the documented "no surface predicted" result
        assert mesh.is_watertight
        assert np.asarray(mesh.faces).max() < len(v)


def api_outcome(fn, check) -> str:
    """Run ``fn``; a result goes through ``check``, bad input must be a one-line error."""
    with time_limit():
        try:
            result = fn()
        except HalohandInputError as exc:
            assert_one_line_error(exc)
            return "error"
    check(result)
    return "ok"


def run_cli(*args: object) -> tuple[int, str, str]:
    """``halohand *args`` in-process through the real entry point: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["halohand", *map(str, args)]
    code = 0
    try:
        with time_limit(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def assert_cli_error(code: int, err: str, out_dir: Path | None = None) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    if out_dir is not None:
        assert [n for n in files_in(out_dir) if not n.endswith(".npy")] == [], files_in(out_dir)
    return lines[0]


# ---------------------------------------------------------------- strategies

SCALES = st.floats(-6, 6).map(lambda e: 10.0**e)  # 1e-6 .. 1e6, log-uniform
UNITS = st.sampled_from(["auto", "m", "cm", "mm"])
SIDES = st.sampled_from(["right", "left"])


@st.composite
def rotations(draw: st.DrawFn) -> np.ndarray:
    q = np.array(draw(st.lists(st.floats(-1, 1), min_size=4, max_size=4)))
    if np.linalg.norm(q) < 1e-3:
        return np.eye(3)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


DEGENERATE = ["none", "all_equal", "zero_bone", "collinear", "planar", "nan", "inf", "swap"]


@st.composite
def hands(draw: st.DrawFn) -> tuple[np.ndarray, str]:
    """A real hand, rigidly moved, scaled 1e-6..1e6, maybe mirrored, maybe made degenerate."""
    kp = KP.copy()
    side = "right"
    if draw(st.booleans()):
        kp, side = mirror(kp), "left"
        if draw(st.booleans()):  # a mirrored hand declared with the wrong side
            side = "right"
    kp = kp @ draw(rotations()).T
    kp = kp * draw(SCALES) + np.array(draw(st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3)))
    kind = draw(st.sampled_from(DEGENERATE))
    i, j = draw(st.integers(0, 20)), draw(st.integers(0, 20))
    if kind == "all_equal":
        kp[:] = kp[i]
    elif kind == "zero_bone":
        kp[i] = kp[j]
    elif kind == "collinear":
        kp = kp[0] + np.linspace(0, 1, 21)[:, None] * (kp[12] - kp[0])
    elif kind == "planar":
        kp[:, 2] = kp[0, 2]
    elif kind in ("nan", "inf"):
        kp[i, j % 3] = np.nan if kind == "nan" else -np.inf
    elif kind == "swap":
        kp[[i, j]] = kp[[j, i]]
    noise = draw(st.sampled_from([0.0, 1e-3, 0.05]))
    if noise:
        # The spread of the finite values: with a NaN or inf in it, np.std is NaN, and the
        # noise would turn every coordinate into NaN instead of keeping the one bad value.
        spread = np.std(kp[np.isfinite(kp)])
        kp = kp + noise * spread * np.random.default_rng(i).normal(size=kp.shape)
    return kp, side


ODD_SHAPES = [(21, 3), (1, 21, 3), (2, 21, 3), (20, 3), (21, 2), (21, 4), (63,), (0, 21, 3),
              (3,), (), (1, 1, 21, 3), (25, 3), (42, 3)]  # fmt: skip
NUMERIC_DTYPES = st.sampled_from(
    [np.float64, np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_, np.complex128]
)


@st.composite
def odd_arrays(draw: st.DrawFn) -> object:
    """Random arrays: wrong shapes and dtypes, NaN / inf, huge and tiny values, non-arrays."""
    kind = draw(st.sampled_from(["numeric", "numeric", "object", "str", "ragged", "scalar"]))
    if kind == "object":
        return np.array([{"x": 1}] * 21, dtype=object)
    if kind == "str":
        return np.full(draw(st.sampled_from(ODD_SHAPES)), "1.0")
    if kind == "ragged":
        return [[0.0, 1.0, 2.0]] * 20 + [[1.0, 2.0]]
    if kind == "scalar":
        return draw(st.sampled_from([None, 3.0, "hand", {"keypoints": []}]))
    dtype = draw(NUMERIC_DTYPES)
    shape = draw(st.sampled_from(ODD_SHAPES))
    if np.dtype(dtype).kind in "fc":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=16 if dtype == np.float16
                             else 32 if dtype == np.float32 else 64)  # fmt: skip
        if dtype == np.complex128:
            elements = st.complex_numbers(max_magnitude=1e6)
    else:
        elements = None
    return draw(hnp.arrays(dtype, shape, elements=elements))


# ---------------------------------------------------------------- API


@fuzz_settings(30)
@given(hand=hands(), units=UNITS)
def test_reconstruct_transformed_and_degenerate_hands(model: HALO, hand, units) -> None:
    kp, side = hand

    def check(mesh: trimesh.Trimesh) -> None:
        assert_valid_mesh(mesh)
        assert mesh.metadata["side"] == side
        assert mesh.metadata["units"] in ("m", "cm", "mm")

    api_outcome(lambda: model.reconstruct(kp, side=side, units=units, resolution=RES), check)


@fuzz_settings(60)
@given(arr=odd_arrays())
def test_reconstruct_odd_arrays(model: HALO, arr) -> None:
    def check(mesh: trimesh.Trimesh | list[trimesh.Trimesh]) -> None:
        for m in mesh if isinstance(mesh, list) else [mesh]:
            assert_valid_mesh(m)

    api_outcome(lambda: model.reconstruct(arr, units="auto", resolution=RES), check)


@fuzz_settings(60)
@given(
    points=st.one_of(odd_arrays(), hnp.arrays(np.float64, st.sampled_from([(7, 3), (1, 7, 3)]),
                                              elements=st.floats(-1e6, 1e6))),
    hand=st.one_of(hands(), odd_arrays().map(lambda a: (a, "right"))),
    units=UNITS,
)  # fmt: skip
def test_occupancy_random_points_and_hands(model: HALO, points, hand, units) -> None:
    kp, side = hand

    def check(occ: torch.Tensor) -> None:
        assert torch.isfinite(occ).all() and occ.min() >= 0 and occ.max() <= 1
        assert occ.shape[-1] == np.asarray(points).shape[-2]

    api_outcome(lambda: model.occupancy(points, kp, side=side, units=units), check)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"resolution": None}, "resolution must be an integer"),
        ({"resolution": "64"}, "resolution must be an integer"),
        ({"resolution": float("nan")}, "resolution must be an integer"),
        ({"resolution": float("inf")}, "resolution must be an integer"),
        ({"resolution": 7}, "resolution must be an integer"),
        ({"side": None}, "side must be"),
        ({"units": "inch"}, "unknown units"),
        ({"fmt": "kinect"}, "unknown keypoint format"),
    ],
)
def test_reconstruct_bad_arguments_regression(model: HALO, kwargs, fragment) -> None:
    with pytest.raises(HalohandInputError, match=fragment) as info:
        model.reconstruct(KP, **kwargs)
    assert_one_line_error(info.value)


@pytest.mark.parametrize(
    ("points", "keypoints", "fragment"),
    [
        (np.full((4, 3), np.nan), KP, "points contain NaN or inf"),
        (np.full((4, 3), np.inf), KP, "points contain NaN or inf"),
        (np.zeros((4, 3), bool), KP, "points must be an array of real numbers, got bool"),
        (np.zeros((4, 3), complex), KP, "real numbers, got complex128"),
        (torch.zeros(4, 3, dtype=torch.complex64), KP, "real numbers, got torch.complex64"),
        (np.full((4, 3), "1"), KP, "points must be an array of real numbers"),
        (None, KP, "points must be an array of real numbers, got object"),
        ([[1.0, 2.0, 3.0], [1.0]], KP, "points must be an array of real numbers"),
        (np.zeros((4, 3)), KP.astype(complex), "keypoints must be an array of real numbers"),
        (np.zeros((4, 3)), KP > 0, "keypoints must be an array of real numbers, got bool"),
        (np.zeros((4, 3)), "hand", "keypoints must be an array of real numbers"),
    ],
)
def test_occupancy_bad_input_regression(model: HALO, points, keypoints, fragment) -> None:
    """Once TypeErrors, silent NaN output or silently dropped imaginary parts."""
    with pytest.raises(HalohandInputError, match=fragment) as info:
        model.occupancy(points, keypoints)
    assert_one_line_error(info.value)


# ---------------------------------------------------------------- keypoint files


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=arr.dtype == object)
    return buf.getvalue()


def _good_bytes(suffix: str, kp: np.ndarray) -> bytes:
    if suffix == ".npy":
        return _npy_bytes(kp)
    if suffix == ".json":
        return json.dumps({"keypoints": kp.tolist(), "units": "m"}).encode()
    return "\n".join(" ".join(f"{v:.9g}" for v in row) for row in kp.reshape(-1, 3)).encode()


@st.composite
def keypoint_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file name, bytes): valid files, truncated / garbled / empty ones, wrong extensions."""
    suffix = draw(st.sampled_from([".npy", ".json", ".txt", ".csv", ".NPY", ".bin", ""]))
    good_kp = KP if draw(st.booleans()) else np.stack([KP, KP + 0.01])
    base_suffix = suffix.lower() if suffix.lower() in (".npy", ".json", ".txt", ".csv") else ".npy"
    data = _good_bytes(base_suffix, good_kp)
    kind = draw(st.sampled_from(
        ["valid", "truncate", "flip", "garbage", "empty", "other_format", "odd_array", "deep"]
    ))  # fmt: skip
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "flip":
        pos = draw(st.integers(0, len(data) - 1))
        data = data[:pos] + bytes([data[pos] ^ draw(st.integers(1, 255))]) + data[pos + 1 :]
    elif kind == "garbage":
        data = draw(st.binary(min_size=1, max_size=300))
    elif kind == "empty":
        data = b""
    elif kind == "other_format":
        other = draw(st.sampled_from([".npy", ".json", ".txt"]))
        data = _good_bytes(other, good_kp)
    elif kind == "odd_array":
        arr = draw(odd_arrays())
        if base_suffix == ".npy" and isinstance(arr, np.ndarray):
            data = _npy_bytes(arr)
        else:
            data = json.dumps(np.asarray(arr, dtype=object).tolist(), default=str).encode()
    elif kind == "deep":
        data = b"[" * 50_000
    return f"kp{suffix}", data


@fuzz_settings(150)
@given(file=keypoint_files())
def test_load_keypoints_files(file) -> None:
    name, data = file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)

        def check(kf) -> None:
            assert kf.keypoints.ndim == 3 and kf.keypoints.shape[1:] == (21, 3)
            assert kf.keypoints.dtype == np.float64 and np.isfinite(kf.keypoints).all()

        with time_limit():
            try:
                check(load_keypoints(path))
            except HalohandInputError as exc:
                assert_one_line_error(exc)
                assert str(path) in str(exc)


# ---------------------------------------------------------------- CLI: reconstruct, occupancy

BAD_OPTION_VALUES = {
    "--units": st.sampled_from(["auto", "m", "cm", "mm", "inch", "", "M"]),
    "--side": st.sampled_from(["right", "left", "both", "LEFT", ""]),
    "--format": st.sampled_from(["openpose", "mediapipe", "mano", "webxr", "kinect", ""]),
    "--ext": st.sampled_from(["ply", "obj", "glb", "stl", "PLY"]),
    "--resolution": st.sampled_from(["16", "8", "7", "0", "-3", "1025", "abc", "1e3", "16.5"]),
    "--bogus": st.just("1"),
    "--device": st.sampled_from(["cpu", "auto", "gpu0", "cuda:x"]),
}


@pytest.mark.slow
@fuzz_settings(45)
@given(
    files=st.lists(keypoint_files(), min_size=1, max_size=2),
    options=st.dictionaries(st.sampled_from(sorted(BAD_OPTION_VALUES)), st.just(None), max_size=3),
    data=st.data(),
)
def test_cli_reconstruct(files, options, data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        inputs = []
        for i, (name, blob) in enumerate(files):
            (tmp_path / str(i)).mkdir()
            path = tmp_path / str(i) / name
            path.write_bytes(blob)
            inputs.append(path)
        args: list[object] = ["reconstruct", *inputs, "--out-dir", tmp_path / "out"]
        for opt in options:
            args += [opt, data.draw(BAD_OPTION_VALUES[opt], label=opt)]
        if "--resolution" not in options:
            args += ["--resolution", RES]
        code, stdout, err = run_cli(*args)
        if code != 0:
            assert_cli_error(code, err, tmp_path / "out")
            return
        written = files_in(tmp_path / "out")
        assert written and not [n for n in written if n.startswith(".")], written
        assert f"wrote {len(written)} mesh" in stdout
        for name in written:
            mesh = trimesh.load(tmp_path / "out" / name, force="mesh", process=False)
            assert_valid_mesh(mesh)


@fuzz_settings(30)
@given(kp_file=keypoint_files(), points=odd_arrays(), pts_suffix=st.sampled_from([".npy", ".txt"]))
def test_cli_occupancy(kp_file, points, pts_suffix) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / kp_file[0]).write_bytes(kp_file[1])
        pts = tmp_path / f"pts{pts_suffix}"
        if isinstance(points, np.ndarray) and points.dtype != object:
            pts.write_bytes(_npy_bytes(points))
        else:
            pts.write_bytes(json.dumps(str(points)).encode())
        out = tmp_path / "res" / "occ.npy"
        code, stdout, err = run_cli("occupancy", tmp_path / kp_file[0], pts, "--out", out)
        if code != 0:
            assert_cli_error(code, err)
            assert not out.parent.exists() or files_in(out.parent) == []
            return
        occ = np.load(out)
        assert occ.dtype == np.float32 and np.isfinite(occ).all()
        assert ((occ >= 0) & (occ <= 1)).all()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["reconstruct", "{kp}", "--out-dir", "{tmp}/o", "--bogus"], "No such option: --bogus"),
        (["reconstruct", "{kp}", "--out-dir", "{tmp}/o", "--resolution", "abc"], "--resolution"),
        (["reconstruct", "{kp}"], "Missing option '--out-dir'"),
        (["reconstruct", "--out-dir", "{tmp}/o"], "Missing argument"),
        (["reconstruct", "{kp}", "--out-dir", "{tmp}/file/sub"], "is a file, not a folder"),
        (["reconstruct", "{kp}", "--out-dir", "{tmp}/o", "--device", "gpu0"], "unknown device"),
        (["reconstruct", "{tmp}/deep.json", "--out-dir", "{tmp}/o"], "nested too deeply"),
        (["reconstruct", "{tmp}/npz.npy", "--out-dir", "{tmp}/o"], "is a .npz archive"),
        (["reconstruct", "{tmp}/text.npy", "--out-dir", "{tmp}/o"], "not a .npy file"),
        (["reconstruct", "{tmp}/huge.npy", "--out-dir", "{tmp}/o"], "corrupt .npy header"),
        (["occupancy", "{kp}", "{tmp}/npz.npy", "--out", "{tmp}/o/occ.npy"], "is a .npz archive"),
        (["occupancy", "{kp}", "{kp}", "--out", "{tmp}/file/occ.npy"], "is a file, not a folder"),
        (["bogus"], "No such command 'bogus'"),
        (["data", "generate", "--out", "{tmp}/o", "--n-train", "x"], "--n-train"),
        (["data", "generate", "--out", "{tmp}/o", "--n-train", "10000000000"],
         "--n-train must be at most"),
        (["data", "generate", "--out", "{tmp}/file/d", "--n-train", "1", "--source", "toy"],
         "Not a directory"),
        (["train", "--config", "{tmp}/c.toml", "--stop-after", "0"], "--stop-after must be >= 1"),
        (["train", "--config", "{tmp}/c.toml", "--out", "{tmp}/file"], "is a file"),
        (["train", "--config", "{tmp}/c.toml", "--frobnicate"], "No such option"),
        (["evaluate", "--checkpoint", "{tmp}/m.pt", "--data", "{tmp}", "--json", "{tmp}/e.json",
          "--surface-samples", "0"], "--surface-samples must be >= 1"),
        (["evaluate", "--checkpoint", "{tmp}/m.pt", "--data", "{tmp}", "--json", "{tmp}/e.json",
          "--padding", "nan"], "--padding must be"),
        (["evaluate", "--checkpoint", "{tmp}/m.pt", "--data", "{tmp}", "--json", "{tmp}/e.json",
          "--device", "tpu"], "unknown device"),
    ],
)  # fmt: skip
def test_cli_bad_usage_is_one_line_regression(tmp_path: Path, args, fragment) -> None:
    """Each of these once printed a usage block, a traceback, or succeeded silently."""
    np.save(tmp_path / "kp.npy", KP)
    (tmp_path / "file").write_text("x")
    (tmp_path / "deep.json").write_text("[" * 100_000)
    np.savez(tmp_path / "npz.npz", a=KP)
    (tmp_path / "npz.npz").rename(tmp_path / "npz.npy")
    (tmp_path / "text.npy").write_text(json.dumps(KP.tolist()))
    (tmp_path / "huge.npy").write_bytes(_npy_bytes(KP).replace(b"(21, 3)", b"(99999999999999, 3)"))
    (tmp_path / "c.toml").write_text(f'data = "{tmp_path}"\n')
    args = [a.format(kp=tmp_path / "kp.npy", tmp=tmp_path) for a in args]
    code, _, err = run_cli(*args)
    line = assert_cli_error(code, err)
    assert fragment in line, line
    assert not (tmp_path / "o").exists()


def test_warning_does_not_precede_an_error_regression(tmp_path: Path) -> None:
    """A plausibility warning for a good file, then an error in the next: one line only."""
    odd = KP.copy()
    odd[8] = odd[7] + 3 * (odd[7] - odd[6])  # an over-long index fingertip: a warning
    np.save(tmp_path / "a.npy", odd)
    np.save(tmp_path / "b.npy", np.zeros((21, 3)))
    code, _, err = run_cli(
        "reconstruct", tmp_path / "a.npy", tmp_path / "b.npy", "--out-dir", tmp_path / "o"
    )
    assert "b.npy" in assert_cli_error(code, err, tmp_path / "o")


@pytest.mark.slow
def test_entry_point_subprocess_garbage_and_usage(tmp_path: Path) -> None:
    """The installed entry point, end to end: no traceback, one line, exit 2."""
    (tmp_path / "g.npy").write_bytes(np.random.default_rng(0).bytes(256))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["reconstruct", str(tmp_path / "g.npy"), "--out-dir", str(tmp_path / "o"), "--x", "1"]
    for cut in (len(args) - 2, len(args)):  # garbage file; then also an unknown option
        proc = subprocess.run(
            [sys.executable, "-m", "halohand.apps.cli", *args[:cut]],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert_cli_error(proc.returncode, proc.stderr, tmp_path / "o")


# ---------------------------------------------------------------- CLI: data, train, evaluate


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 4-hand toy data folder, a tiny model file and a valid tiny training config."""
    from halohand.data.engine import generate
    from halohand.fields import OccupancyConfig, OccupancyNetwork, save_model
    from halohand.handmodel.toy import ToyHandSource

    root = tmp_path_factory.mktemp("fuzz_tiny")
    generate(root / "data", {"train": 2, "val": 1, "test": 1}, seed=3, source=ToyHandSource(),
             workers=1, progress=False)  # fmt: skip
    torch.manual_seed(0)
    model = save_model(root / "m.safetensors", OccupancyNetwork(OccupancyConfig(hidden=(8,))))
    return {"root": root, "data": root / "data", "model": model}


GENERATE_OPTIONS = {
    "--n-train": st.sampled_from(["0", "1", "-1", "x", "99999999999"]),
    "--n-val": st.sampled_from(["0", "1", "-2"]),
    "--seed": st.sampled_from(["0", "7", "-1", str(2**63), "1.5"]),
    "--side": st.sampled_from(["right", "left", "both", "up"]),
    "--source": st.sampled_from(["toy", "toy", "nope", "mano"]),
    "--hands-per-shard": st.sampled_from(["1", "2", "0", "-4"]),
    "--workers": st.sampled_from(["1", "0", "-1", "many"]),
    "--mano-model": st.sampled_from(["{root}/m.safetensors", "{root}/none.pkl"]),
    "--frob": st.just("1"),
}


@pytest.mark.slow
@fuzz_settings(14)
@given(options=st.dictionaries(st.sampled_from(sorted(GENERATE_OPTIONS)), st.just(None),
                               min_size=1, max_size=4), data=st.data())  # fmt: skip
def test_cli_data_generate(tiny, options, data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "d"
        args: list[object] = ["data", "generate", "--out", out, "--no-progress"]
        for opt in options:
            args += [opt, data.draw(GENERATE_OPTIONS[opt], label=opt).format(root=tiny["root"])]
        if "--source" not in options:
            args += ["--source", "toy"]
        if "--workers" not in options:
            args += ["--workers", "1"]
        code, stdout, err = run_cli(*args)
        if code != 0:
            assert_cli_error(code, err)
            assert not out.exists() or not list(out.rglob("*.npz"))
            return
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["complete"] is True
        assert run_cli("data", "verify", out)[0] == 0


CONFIG_VALUES = {
    "batch_size": st.sampled_from(["1", "2", "0", "-1", "'two'", "2.5", "true"]),
    "lr": st.sampled_from(["1e-3", "0", "-1.0", "nan", "inf", "'fast'"]),
    "max_steps": st.sampled_from(["1", "2", "0", "-5"]),
    "points_per_hand": st.sampled_from(["64", "0", "-64"]),
    "val_hands": st.sampled_from(["0", "1", "-1"]),
    "variant": st.sampled_from(["'halo'", "'nasa'", "'bogus'"]),
    "checkpoint_minutes": st.sampled_from(["1.0", "0", "-1"]),
    "device": st.sampled_from(["'cpu'", "'tpu'"]),
    "typo_key": st.just("3"),
    "model": st.sampled_from(["{hidden = [8]}", "{hidden = [-1]}", "{hidden = 'x'}", "3"]),
}


@pytest.mark.slow
@fuzz_settings(10)
@given(
    keys=st.dictionaries(st.sampled_from(sorted(CONFIG_VALUES)), st.just(None), max_size=3),
    garbage=st.one_of(st.none(), st.binary(min_size=1, max_size=64)),
    data=st.data(),
)
def test_cli_train_configs(tiny, keys, garbage, data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "c.toml"
        lines = [f'data = "{tiny["data"]}"', "threads = 1", "progress = false",
                 "surface_per_hand = 16", "val_points = 500", "max_steps = 1"]  # fmt: skip
        for key in keys:
            lines = [ln for ln in lines if not ln.startswith(f"{key} =")]
            lines.append(f"{key} = {data.draw(CONFIG_VALUES[key], label=key)}")
        text = "\n".join(lines) + "\n"
        cfg.write_bytes(text.encode() if garbage is None else garbage + text.encode())
        out = Path(tmp) / "run"
        code, stdout, err = run_cli("train", "--config", cfg, "--out", out)
        if code != 0:
            assert_cli_error(code, err)
            assert not (out / "checkpoint.pt").exists()
            return
        assert "finished at step" in stdout
        for name in ("checkpoint.pt", "best.safetensors", "last.safetensors", "log.csv"):
            assert (out / name).is_file(), name


EVAL_OPTIONS = {
    "--split": st.sampled_from(["test", "val", "train", "bogus"]),
    "--limit": st.sampled_from(["1", "0", "-1", "99"]),
    "--resolution": st.sampled_from(["8", "16", "1", "abc"]),
    "--coarse-resolution": st.sampled_from(["8", "4", "3", "0"]),
    "--box": st.sampled_from(["keypoints", "data", "sphere"]),
    "--padding": st.sampled_from(["0.04", "0", "-1", "nan", "inf"]),
    "--surface-samples": st.sampled_from(["500", "0", "-5"]),
    "--device": st.sampled_from(["cpu", "gpu"]),
    "--checkpoint": st.sampled_from(["{model}", "{root}/none.pt", "{data}/manifest.json"]),
}


@pytest.mark.slow
@fuzz_settings(16)
@given(options=st.dictionaries(st.sampled_from(sorted(EVAL_OPTIONS)), st.just(None),
                               max_size=3), data=st.data())  # fmt: skip
def test_cli_evaluate(tiny, options, data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "eval" / "e.json"
        chosen = {"--checkpoint": str(tiny["model"]), "--resolution": "8",
                  "--coarse-resolution": "8", "--surface-samples": "500", "--limit": "1",
                  "--device": "cpu"}  # fmt: skip
        for opt in options:
            value = data.draw(EVAL_OPTIONS[opt], label=opt)
            chosen[opt] = value.format(model=tiny["model"], root=tiny["root"], data=tiny["data"])
        args: list[object] = ["evaluate", "--data", tiny["data"], "--json", out, "--no-progress"]
        for opt, value in chosen.items():
            args += [opt, value]
        code, stdout, err = run_cli(*args)
        if code != 0:
            assert_cli_error(code, err)
            assert not out.exists()
            return
        doc = json.loads(out.read_text())
        assert doc["hands"] >= 1 and out.with_suffix(".csv").is_file()
