"""Reading foreign mesh files without noise on stderr."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


@contextmanager
def quiet_mesh_reader() -> Iterator[None]:
    """trimesh's readers log what they recover from (an STL's garbled normal: a warning with
    a traceback) and let numpy warn on NaN or huge coordinates; the file is judged here
    instead, in one message, so neither reaches stderr."""
    log = logging.getLogger("trimesh")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        log.setLevel(level)
