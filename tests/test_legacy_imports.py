"""Import paths from before the restructure keep working, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import sys

import pytest

from halohand import _legacy


def _fresh(name: str) -> None:
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


@pytest.mark.parametrize(("old", "new"), sorted(_legacy.MOVED.items()))
def test_every_old_module_forwards_to_its_new_home(old: str, new: str) -> None:
    _fresh(old)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        proxy = importlib.import_module(old)
    target = importlib.import_module(new)
    public = [n for n in getattr(target, "__all__", dir(target)) if not n.startswith("_")]
    assert public, new
    for name in public[:5]:
        assert getattr(proxy, name) is getattr(target, name)


def test_names_that_moved_elsewhere_are_found() -> None:
    for (old, name), new in _legacy.MOVED_NAMES.items():
        _fresh(old)
        with pytest.warns(DeprecationWarning):
            proxy = importlib.import_module(old)
        assert getattr(proxy, name) is getattr(importlib.import_module(new), name), (old, name)


def test_old_from_imports_still_work() -> None:
    _fresh("halohand.api")
    _fresh("halohand.model")
    with pytest.warns(DeprecationWarning):
        from halohand.api import HALO
        from halohand.model.occupancy import OccupancyNetwork
    from halohand.fields.occupancy import OccupancyNetwork as New
    from halohand.inference.halo import HALO as NewHALO

    assert HALO is NewHALO and OccupancyNetwork is New


def test_unknown_names_fail_clearly() -> None:
    _fresh("halohand.api")
    with pytest.warns(DeprecationWarning):
        proxy = importlib.import_module("halohand.api")
    with pytest.raises(AttributeError, match="now 'halohand.inference.halo'"):
        _ = proxy.no_such_name
