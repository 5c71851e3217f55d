"""Import paths from before the package restructure, kept working with a warning.

``import halohand.api`` or ``from halohand.model.occupancy import OccupancyNetwork`` still
work: a finder on ``sys.meta_path`` answers each old name with a proxy module that emits a
:class:`DeprecationWarning` and forwards attribute access to the module's new home. The
proxies are built at import time through :mod:`importlib` only, so the layering contract
(``lint-imports``) sees no arrow from here, and nothing in halohand itself uses them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

#: Old module path -> new module path.
MOVED: dict[str, str] = {
    "halohand.api": "halohand.inference.halo",
    "halohand.atomic": "halohand.core.atomic",
    "halohand.errors": "halohand.core.errors",
    "halohand.compat": "halohand.inference.original",
    "halohand.cli": "halohand.apps.cli",
    "halohand.check_cli": "halohand.apps.cli.check",
    "halohand.reconstruct_cli": "halohand.apps.cli.reconstruct",
    "halohand.demo": "halohand.apps.demo",
    "halohand.render": "halohand.apps.render",
    "halohand.export": "halohand.apps.export",
    "halohand.io_keypoints": "halohand.apps.keypoint_io",
    "halohand.viewer": "halohand.apps.viewer",
    "halohand.viewer.server": "halohand.apps.viewer.server",
    "halohand.model": "halohand.fields",
    "halohand.model.occupancy": "halohand.fields.occupancy",
    "halohand.model.parts": "halohand.fields.parts",
    "halohand.model.skipping": "halohand.fields.skipping",
    "halohand.model.io": "halohand.fields.io",
    "halohand.model.inference": "halohand.inference.query",
    "halohand.model.widen": "halohand.training.widen",
    "halohand.meshing": "halohand.inference",
    "halohand.meshing.extract": "halohand.inference.extract",
    "halohand.meshing.inside": "halohand.objects.inside",
    "halohand.canonical.rotations": "halohand.core.rotations",
    "halohand.handmodel.lbs": "halohand.core.skinning",
    "halohand.skeleton.plausibility": "halohand.canonical.plausibility",
    "halohand.training.evaluate": "halohand.evaluation.evaluate",
    "halohand.training.calibrate": "halohand.evaluation.calibrate",
    "halohand.training.checkpoint": "halohand.core.checkpoint",
    "halohand.training.conditioning": "halohand.fields.inputs",
    "halohand.training.cli": "halohand.apps.cli.train",
    "halohand.data.cli": "halohand.apps.cli.data",
    "halohand.grasp.cli": "halohand.apps.cli.grasp",
    "halohand.grasp.objects": "halohand.objects.registry",
    "halohand.grasp.vae_train": "halohand.training.grasp_vae",
    "halohand.fitting.torch_model": "halohand.handmodel.torch_model",
    "halohand.data.toy": "halohand.handmodel.toy",
}

#: Names that moved to another module than their old module's new home.
MOVED_NAMES: dict[tuple[str, str], str] = {
    ("halohand.model.inference", "HALO_UNIT_M"): "halohand.core.units",
    ("halohand.model.inference", "HandConditioning"): "halohand.fields.conditioning",
    ("halohand.model.inference", "hand_conditioning"): "halohand.fields.conditioning",
    ("halohand.model", "occupancy_from_keypoints"): "halohand.inference.query",
    ("halohand.meshing", "contains"): "halohand.objects.inside",
    ("halohand.meshing", "winding_number"): "halohand.objects.inside",
    ("halohand.api", "hand_box"): "halohand.evaluation.evaluate",
    ("halohand.training.evaluate", "load_any_model"): "halohand.fields.io",
    ("halohand.training.checkpoint", "model_from_checkpoint"): "halohand.fields.io",
    ("halohand.io_keypoints", "check_format"): "halohand.skeleton.validation",
    ("halohand.io_keypoints", "check_keypoints"): "halohand.skeleton.validation",
    ("halohand.export", "part_vertex_colors"): "halohand.skeleton.colors",
    ("halohand.render", "PART_COLORS"): "halohand.skeleton.colors",
    ("halohand.handmodel.lbs", "rot_x"): "halohand.core.rotations",
    ("halohand.handmodel.lbs", "rot_y"): "halohand.core.rotations",
    ("halohand.handmodel.lbs", "rot_z"): "halohand.core.rotations",
    ("halohand.fitting.torch_model", "axis_angle_to_matrix"): "halohand.core.rotations",
}


class _MovedModule(types.ModuleType):
    """Stands in for a moved module: warns once, then forwards attribute access."""

    def __init__(self, old: str, new: str) -> None:
        super().__init__(old, f"Moved to {new}.")
        self.__dict__["_new"] = new
        self.__dict__["__path__"] = []  # old packages keep importable submodules

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        old, new = self.__name__, self.__dict__["_new"]
        target = MOVED_NAMES.get((old, name), new)
        try:
            value = getattr(importlib.import_module(target), name)
        except AttributeError:
            msg = f"module {old!r} (now {new!r}) has no attribute {name!r}"
            raise AttributeError(msg) from None
        return value


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname in MOVED:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; the old path will be removed in a future release",
            DeprecationWarning,
            stacklevel=2,
        )
        return _MovedModule(spec.name, new)

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
