"""Grasps: objects, HALO-VAE (object-conditioned grasp generation), its training data engine,
refinement and HALO's grasp metrics. See ``docs/grasp.md``.

>>> from halohand.grasp import GraspGenerator
>>> grasps = GraspGenerator.pretrained().generate("mug.obj", n=20, refine=True)
"""

from halohand.grasp.generate import GraspGenerator, GraspSet
from halohand.objects.registry import GraspObject, load_object, object_from_mesh

__all__ = ["GraspGenerator", "GraspObject", "GraspSet", "load_object", "object_from_mesh"]
