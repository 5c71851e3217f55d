"""Grasps of procedural objects: objects, grasp metrics and an optimisation-based grasp data
engine (groundwork of HALO-VAE). See ``docs/grasp.md``."""
