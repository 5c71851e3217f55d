"""HALO-VAE: an object-conditioned variational auto-encoder over grasping hands (spec section 9).

Everything inside the network is in **centimetres** in the object frame (the object's
bounding-box centre at the origin): keypoints ``[B, 21, 3]`` in the project order, object
surface points ``[B, P, 3]``.

- :class:`ResnetPointNet`: object encoder, 5 fully connected residual blocks with max-pool
  concatenation, hidden 256, code 256.
- :class:`PosteriorEncoder`: ``[63 keypoint values, object code]`` -> Linear 256 -> 3 residual
  Linear layers (LeakyReLU 0.2) -> mean and log standard deviation of ``z`` (32).
- :class:`Decoder`: ``[z, object code]`` -> Linear 256 -> 2 residual Linear layers (LeakyReLU
  0.1) -> the hand. Three output layers:

  - ``"keypoints"``: 63 keypoint values in the object frame (the paper's decoder);
  - ``"hand_frame"``: 63 keypoint values in the hand's own frame (the canonicalization
    layer's normalized keypoints: wrist at the origin, palm axes fixed), a 6-D rotation and
    a translation (cm) that place them in the object frame; still 21 free keypoints, but
    the hand's heading lives in a rotation, so averaging latent codes cannot shrink the
    hand (with ``"keypoints"``, ``z = 0`` decodes to the mean over headings: a hand 1 cm
    long on rotationally symmetric objects);
  - ``"pose"``: the hand model's pose parameters (the comparison of the paper's appendix
    A.1) that :class:`~halohand.handmodel.torch_model.TorchHandModel` turns into keypoints.

The prior is ``N(0, I)``. :meth:`GraspVAE.sample` draws grasps for one object.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.rotations import rotation_6d_to_matrix
from halohand.core.weights_file import read_weights, write_weights
from halohand.handmodel.prior import IdentityPrior
from halohand.handmodel.torch_model import TorchHandModel

__all__ = [
    "Decoder",
    "GraspVAE",
    "PosteriorEncoder",
    "ResnetPointNet",
    "VAEConfig",
    "kl_divergence",
    "load_vae",
    "rotation_6d_to_matrix",
    "save_vae",
]

#: Pose-parameter layout of ``output="pose"``: 15 x 3 joint angles (rad), a 6-D rotation,
#: a translation (cm), 16 bone-length factors, palm width and log hand length (offsets from
#: the identity prior's mean).
OUTPUTS = ("keypoints", "hand_frame", "pose")

POSE_SIZES = {"angles": 45, "rot6d": 6, "translation": 3, "length": 16, "palm": 1, "scale": 1}


@dataclass
class VAEConfig:
    """Network sizes. Defaults are the paper's (``object_dim`` 256, width 256, ``z`` 32)."""

    object_dim: int = 256
    object_hidden: int = 256
    object_blocks: int = 5
    width: int = 256
    latent: int = 32
    encoder_blocks: int = 3
    decoder_blocks: int = 2
    output: str = "keypoints"

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise HalohandInputError(
                f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}"
            )
        for name in ("object_dim", "object_hidden", "object_blocks", "width", "latent"):
            if int(getattr(self, name)) < 1:
                raise HalohandInputError(f"{name} must be >= 1")

    @property
    def output_size(self) -> int:
        return {"keypoints": 63, "hand_frame": 72}.get(self.output, sum(POSE_SIZES.values()))


class ResnetBlockFC(nn.Module):
    """``x + fc1(relu(fc0(relu(x))))`` with a linear shortcut when the sizes differ."""

    def __init__(self, size_in: int, size_out: int, size_h: int | None = None) -> None:
        super().__init__()
        size_h = size_h or min(size_in, size_out)
        self.fc_0 = nn.Linear(size_in, size_h)
        self.fc_1 = nn.Linear(size_h, size_out)
        nn.init.zeros_(self.fc_1.weight)
        self.shortcut = None if size_in == size_out else nn.Linear(size_in, size_out, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        dx = self.fc_1(torch.relu(self.fc_0(torch.relu(x))))
        return (x if self.shortcut is None else self.shortcut(x)) + dx


class ResnetPointNet(nn.Module):
    """PointNet with residual blocks: ``[B, P, 3]`` points (cm) -> ``[B, out]`` code.

    After every block but the last, the per-point features are concatenated with their
    max over the points, so each point sees the whole cloud.
    """

    def __init__(self, out: int = 256, hidden: int = 256, blocks: int = 5) -> None:
        super().__init__()
        self.fc_pos = nn.Linear(3, 2 * hidden)
        self.blocks = nn.ModuleList([ResnetBlockFC(2 * hidden, hidden) for _ in range(blocks)])
        self.fc_out = nn.Linear(hidden, out)

    def forward(self, points: Tensor) -> Tensor:
        net = self.blocks[0](self.fc_pos(points))
        for block in self.blocks[1:]:
            pooled = net.max(dim=1, keepdim=True).values.expand_as(net)
            net = block(torch.cat([net, pooled], dim=-1))
        return self.fc_out(torch.relu(net.max(dim=1).values))


class _ResidualMLP(nn.Module):
    """Linear to ``width``, then ``blocks`` layers ``x + act(Linear(x))``."""

    def __init__(self, size_in: int, width: int, blocks: int, slope: float) -> None:
        super().__init__()
        self.fc_in = nn.Linear(size_in, width)
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(blocks)])
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.fc_in(x))
        for layer in self.layers:
            h = h + self.act(layer(h))
        return h


class PosteriorEncoder(nn.Module):
    """``q(z | keypoints, object)``: ``[B, 63]``, ``[B, C]`` -> mean, log std ``[B, latent]``."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.body = _ResidualMLP(63 + config.object_dim, config.width, config.encoder_blocks, 0.2)
        self.mean = nn.Linear(config.width, config.latent)
        self.log_std = nn.Linear(config.width, config.latent)

    def forward(self, keypoints_flat: Tensor, code: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(torch.cat([keypoints_flat, code], dim=-1))
        return self.mean(h), self.log_std(h).clamp(-10.0, 4.0)


class Decoder(nn.Module):
    """``p(hand | z, object)``: ``[B, latent]``, ``[B, C]`` -> ``[B, output_size]``."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.body = _ResidualMLP(
            config.latent + config.object_dim, config.width, config.decoder_blocks, 0.1
        )
        self.out = nn.Linear(config.width, config.output_size)

    def forward(self, z: Tensor, code: Tensor) -> Tensor:
        return self.out(self.body(torch.cat([z, code], dim=-1)))


def _output_rotation(d6: Tensor) -> Tensor:
    """A decoder's 6-D rotation output, offset so that a zero output is the identity."""
    return rotation_6d_to_matrix(d6 + d6.new_tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))


class _PoseToKeypoints(nn.Module):
    """Decoder output of ``output="pose"`` -> keypoints (cm) through the rigged hand model."""

    def __init__(self) -> None:
        super().__init__()

        self.hand = TorchHandModel()
        lo, hi = IdentityPrior().hand_length_range
        self.register_buffer("mean_length", torch.tensor(0.5 * (lo + hi)), persistent=False)

    def forward(self, params: Tensor) -> Tensor:
        sizes = list(POSE_SIZES.values())
        angles, rot6d, trans, length, palm, scale = torch.split(params, sizes, dim=-1)
        rot = _output_rotation(rot6d)
        hand_length = self.mean_length * torch.exp(0.1 * scale[:, 0])
        factors = 1.0 + 0.1 * length
        palm_width = 1.0 + 0.1 * palm[:, 0]
        out = self.hand(
            angles.reshape(-1, 15, 3),
            factors,
            palm_width,
            self.hand.scale_for_hand_length(hand_length, factors, palm_width),
            global_rot=rot,
            translation=trans / 100.0,
        )
        return (out.keypoints * 100.0).to(params.dtype)


class GraspVAE(nn.Module):
    """Conditional VAE over grasping keypoints; see the module docstring for frames and units."""

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or VAEConfig()
        c = self.config
        self.object_encoder = ResnetPointNet(c.object_dim, c.object_hidden, c.object_blocks)
        self.encoder = PosteriorEncoder(c)
        self.decoder = Decoder(c)
        self.pose_layer = _PoseToKeypoints() if c.output == "pose" else None

    def encode_object(self, object_points_cm: Tensor) -> Tensor:
        """``[G, P, 3]`` surface points (cm) -> ``[G, object_dim]`` codes."""
        return self.object_encoder(object_points_cm)

    def decode(self, z: Tensor, code: Tensor) -> Tensor:
        """``[B, latent]``, ``[B, object_dim]`` -> keypoints ``[B, 21, 3]`` (cm)."""
        return self.decode_parts(z, code)[0]

    def decode_parts(self, z: Tensor, code: Tensor) -> tuple[Tensor, Tensor | None]:
        """Keypoints ``[B, 21, 3]`` (cm, object frame) and, for ``"hand_frame"``, the
        hand-frame keypoints ``[B, 21, 3]`` (cm) before the rigid placement."""
        out = self.decoder(z, code)
        if self.pose_layer is not None:
            return self.pose_layer(out), None
        if self.config.output == "hand_frame":
            local = out[:, :63].reshape(-1, 21, 3)
            rot = _output_rotation(out[:, 63:69])
            return local @ rot.transpose(1, 2) + out[:, None, 69:72], local
        return out.reshape(-1, 21, 3), None

    def forward(
        self, keypoints_cm: Tensor, code: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Reconstruct ``[B, 21, 3]`` keypoints (cm) given ``[B, C]`` object codes.

        Returns the reconstruction ``[B, 21, 3]`` (cm), the posterior's mean and log std,
        and the hand-frame keypoints of ``"hand_frame"`` (else ``None``).
        """
        mean, log_std = self.encoder(keypoints_cm.reshape(len(keypoints_cm), 63), code)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        z = mean + eps.to(mean.device) * log_std.exp()
        keypoints, local = self.decode_parts(z, code)
        return keypoints, mean, log_std, local

    @torch.no_grad()
    def sample(
        self, object_points_cm: Tensor, n: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n`` grasps for one object: ``[P, 3]`` surface points (cm) -> ``[n, 21, 3]`` cm."""
        code = self.encode_object(object_points_cm[None].float()).expand(n, -1)
        z = torch.randn((n, self.config.latent), generator=generator)
        return self.decode(z.to(code.device), code)


def kl_divergence(mean: Tensor, log_std: Tensor) -> Tensor:
    """``KL(N(mean, std^2) || N(0, I))`` summed over the latent, ``[B]``."""
    return 0.5 * (mean.pow(2) + (2 * log_std).exp() - 1.0 - 2 * log_std).sum(-1)


def save_vae(path: str | os.PathLike[str], model: GraspVAE, meta: dict[str, Any]) -> Path:
    """Write the weights as safetensors with the config and ``meta`` in the header (atomic)."""
    header = {
        "format": "halohand-grasp-vae-1",
        "config": json.dumps(asdict(model.config)),
        "meta": json.dumps(meta),
    }
    return write_weights(path, model.state_dict(), header)


def load_vae(path: str | os.PathLike[str]) -> tuple[GraspVAE, dict[str, Any]]:
    """Read a file of :func:`save_vae`; returns the model (eval mode) and its ``meta``."""
    path = Path(path)
    if not path.is_file():
        raise HalohandInputError(f"no such grasp model file: {path}")
    state, header = read_weights(path, "grasp model")
    if header.get("format") != "halohand-grasp-vae-1":
        raise CorruptFileError(f"{path} is not a halohand grasp model")
    model = GraspVAE(VAEConfig(**json.loads(header["config"])))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CorruptFileError(f"{path}: weights do not fit the stored config") from exc
    return model.eval(), json.loads(header.get("meta", "{}"))
