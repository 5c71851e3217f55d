"""Set-up shared by the test modules: one compute thread, the repository paths, the shipped HALO.

pytest puts ``tests/`` on ``sys.path`` while it loads this file, so test modules import
the helpers here (``from conftest import REPO, SHARED, requires_shared``) as they import
``halo_fakes`` and ``regression_cases``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Before torch loads OpenMP; command-line runs in subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

#: The repository root.
REPO = Path(__file__).resolve().parents[1]
#: Assets, specs and reference files kept beside the repository (``../shared``); tests that
#: need them skip when they are absent.
SHARED = REPO.parent / "shared"


def requires_shared(*paths: str | os.PathLike[str]) -> pytest.MarkDecorator:
    """Skip unless every path (relative to :data:`SHARED`, or absolute) exists."""
    full = [SHARED / p for p in paths]
    missing = [str(p) for p in full if not p.exists()]
    return pytest.mark.skipif(bool(missing), reason=f"not found: {', '.join(missing)}")


def pytest_configure(config: pytest.Config) -> None:
    # The test machines are shared: with busy cores, OpenMP worker threads mostly wait on
    # each other.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Every test starts on one thread (command-line tests run in-process may change it)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def shipped_halo():
    """The shipped default model, loaded once per test session (tests only query it)."""
    from halohand.inference.halo import HALO

    return HALO.pretrained()


@pytest.fixture(scope="session")
def mlp_halo():
    """A shipped model whose parts are plain MLPs (no grids, no point features): the grasp
    model's HALO, for tests that build other representations on top of such a network."""
    from halohand.grasp.generate import grasp_halo

    halo = grasp_halo()
    assert halo.network.grids is None and not halo.network.config.point_frequencies
    return halo
