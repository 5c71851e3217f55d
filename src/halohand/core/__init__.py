"""Foundations used by every other package: units, rotations, skinning, devices, errors,
atomic files and restricted unpickling. Nothing here imports another halohand package."""
