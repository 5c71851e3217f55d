"""The two shipped TFLite models (``weights/mediapipe/``) and their runtime.

The runtime is ``ai-edge-litert`` (TFLite's interpreter on PyPI). Each model is loaded once
per process and kept: a photo then costs only the two forward passes. The interpreter is
not safe to call from two threads at once, so every call holds the model's lock.
"""

from __future__ import annotations

import importlib.resources
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

from halohand.core.errors import HalohandInputError

#: Package-relative folder of the vendored models (``scripts/vendor_mediapipe.py``).
WEIGHTS_FOLDER = "weights/mediapipe"
PALM_MODEL = "palm_detection_full.tflite"
LANDMARK_MODEL = "hand_landmark_full.tflite"
#: Interpreter threads: two keep a photo fast without taking a busy machine's every core.
NUM_THREADS = 2


def model_path(name: str) -> Path:
    """Path of a shipped model file."""
    res = importlib.resources.files("halohand").joinpath(f"{WEIGHTS_FOLDER}/{name}")
    if not res.is_file():  # pragma: no cover - a broken install
        raise FileNotFoundError(f"{name} is missing from this install of halohand ({res})")
    return Path(str(res))


class TFLiteModel:
    """One TFLite model: ``model(x)`` runs it on one float32 input and returns its outputs
    in the model's output order."""

    def __init__(self, path: Path, num_threads: int = NUM_THREADS) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - a platform without its wheels
            raise HalohandInputError(
                "the photo path needs the TFLite runtime: pip install ai-edge-litert"
            ) from None
        self.path = path
        with _native_stderr_silenced():
            # the runtime announces its CPU delegate on the process's stderr
            self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._outputs = [d["index"] for d in self._interpreter.get_output_details()]
        self._lock = threading.Lock()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self._input["shape"])

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape != self.input_shape:
            raise ValueError(f"{self.path.name} takes {list(self.input_shape)}, got {x.shape}")
        with self._lock:
            self._interpreter.set_tensor(self._input["index"], x)
            self._interpreter.invoke()
            return [self._interpreter.get_tensor(i).copy() for i in self._outputs]


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 pointed at the null device for the block: native code's own
    messages (not Python's) are dropped; Python's ``sys.stderr`` is flushed first."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters)
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


@cache
def palm_model() -> TFLiteModel:
    """The palm detector: ``[1, 192, 192, 3]`` RGB in ``[0, 1]`` -> box and keypoint
    regressors ``[1, 2016, 18]`` and score logits ``[1, 2016, 1]``."""
    return TFLiteModel(model_path(PALM_MODEL))


@cache
def landmark_model() -> TFLiteModel:
    """The hand landmark model: ``[1, 224, 224, 3]`` RGB in ``[0, 1]`` -> crop landmarks
    ``[1, 63]`` (pixels of the crop), presence ``[1, 1]``, handedness ``[1, 1]``, world
    landmarks ``[1, 63]`` (metres)."""
    return TFLiteModel(model_path(LANDMARK_MODEL))
