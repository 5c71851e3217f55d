"""Training and evaluation of occupancy networks: ``halohand train`` / ``halohand evaluate``.

* :class:`TrainConfig` / :func:`load_config`: the TOML run configuration;
* :func:`train` / :class:`Trainer`: the loop (losses, skinning schedule, checkpoints, DDP);
* :func:`evaluate`: meshes by the project's extraction, then IoU / Chamfer / normals.
"""

from halohand.training.config import TrainConfig, load_config
from halohand.training.trainer import SkinningSchedule, StreamBatchSampler, Trainer, train

__all__ = [
    "SkinningSchedule", "StreamBatchSampler", "TrainConfig", "Trainer", "load_config", "train",
]  # fmt: skip
