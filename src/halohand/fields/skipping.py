"""Part skipping: do not evaluate a part MLP at points far from that part.

Every part matrix is rigid, so the distance of a canonical point to the part's canonical
bone equals the distance of the posed point to the posed bone. A part is therefore
evaluated only where the query point lies within ``radius_k`` of the part's skeleton
segments (a capsule test in the keypoints' own frame). Pairs outside count as probability
0, which leaves the max over parts unchanged wherever the skipped parts are far below it.

The default radii were fitted on the released HALO model (``fit_skip_radii``): for each
part, the largest distance at which its probability still reached 0.01 on 85 real poses,
plus a margin. A newly trained model should be re-fitted the same way (its parts may
"reach" further), and the fit should be checked with ``skip_agreement``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from halohand.core.errors import HalohandInputError
from halohand.skeleton import PART_BONES

# The palm region is the fan wrist -> MCPs / thumb CMC plus the knuckle line; each finger
# part is its own phalanx (project joint order).
_PALM_SEGMENTS = [(0, 1), (0, 5), (0, 9), (0, 13), (0, 17), (1, 5), (5, 9), (9, 13), (13, 17)]


def _part_segments() -> tuple[np.ndarray, np.ndarray]:
    segs: list[tuple[int, int]] = []
    owner: list[int] = []
    for a, b in _PALM_SEGMENTS:
        segs.append((a, b))
        owner.append(0)
    for k in range(1, 16):
        segs.append((int(PART_BONES[k, 0]), int(PART_BONES[k, 1])))
        owner.append(k)
    return np.array(segs), np.array(owner)


#: ``[S, 2]`` joint pairs (project order) and ``[S]`` owning part of each segment.
PART_SEGMENTS, SEGMENT_PART = _part_segments()
_N_PALM = len(_PALM_SEGMENTS)
assert (SEGMENT_PART[:_N_PALM] == 0).all() and (SEGMENT_PART[_N_PALM:] == np.arange(1, 16)).all()

#: Skip radii per part (metres), HALO part order; fitted on the released checkpoint.
#: Fit: ``fit_skip_radii(threshold=0.01, margin=0.01)`` over 85 real poses x 12k points
#: (uniform in the padded keypoint box, near the bones, and the full +-22 cm box), rounded
#: up to mm. Proximal finger parts reach 4-7 cm because MANO's segmentation gives them the
#: knuckle region of the palm.
DEFAULT_SKIP_RADII_M: tuple[float, ...] = (
    0.045,                  # palm
    0.039, 0.027, 0.024,    # index 1-3
    0.050, 0.026, 0.025,    # middle 1-3
    0.067, 0.025, 0.024,    # pinky 1-3
    0.049, 0.025, 0.024,    # ring 1-3
    0.063, 0.047, 0.029,    # thumb 1-3
)  # fmt: skip


def part_distances(points: Tensor, keypoints: Tensor) -> Tensor:
    """Distance of each point to each part's skeleton segments.

    Args:
        points: ``[B, N, 3]`` query points, same frame and units as the keypoints.
        keypoints: ``[B, 21, 3]`` project order.

    Returns:
        ``[B, N, 16]`` distances (input units), HALO part order.
    """
    if points.ndim != 3 or keypoints.ndim != 3 or keypoints.shape[1:] != (21, 3):
        raise HalohandInputError("expected points [B, N, 3] and keypoints [B, 21, 3]")
    kp = keypoints.to(points.dtype)
    seg = torch.as_tensor(PART_SEGMENTS, device=points.device)
    a = kp[:, seg[:, 0]]  # [B, S, 3]
    ab = kp[:, seg[:, 1]] - a
    ap = points.unsqueeze(2) - a.unsqueeze(1)  # [B, N, S, 3]
    denom = (ab * ab).sum(-1).clamp_min(1e-12).unsqueeze(1)
    t = ((ap * ab.unsqueeze(1)).sum(-1) / denom).clamp(0.0, 1.0)
    d = torch.linalg.vector_norm(ap - t.unsqueeze(-1) * ab.unsqueeze(1), dim=-1)  # [B, N, S]
    owner = torch.as_tensor(SEGMENT_PART, device=points.device)
    out = d.new_full((*d.shape[:2], 16), float("inf"))
    return out.scatter_reduce(2, owner.expand_as(d), d, reduce="amin", include_self=True)


def skip_mask(
    points: Tensor, keypoints: Tensor, radii: Sequence[float] | Tensor | None = None
) -> Tensor:
    """Boolean ``[B, N, 16]``: which (point, part) pairs to evaluate (``True`` = evaluate).

    Args:
        points: ``[B, N, 3]`` metres, same frame as the keypoints.
        keypoints: ``[B, 21, 3]`` metres, project order.
        radii: per-part radii in metres (default ``DEFAULT_SKIP_RADII_M``).
    """
    if points.ndim != 3 or keypoints.ndim != 3 or keypoints.shape[1:] != (21, 3):
        raise HalohandInputError("expected points [B, N, 3] and keypoints [B, 21, 3]")
    r = torch.as_tensor(DEFAULT_SKIP_RADII_M if radii is None else radii, dtype=points.dtype)
    r = r.to(points.device)
    # Same test as part_distances(...) <= r, but with every [B, N, S] term from a matmul
    # (|p - a - t ab|^2 expanded) instead of [B, N, S, 3] temporaries: ~3x faster, which
    # matters because the mask is computed for every query point. Coordinates are taken
    # relative to the wrist so float32 keeps ~1e-9 m^2 accuracy far from the origin.
    kp = keypoints.to(points.dtype)
    origin = kp[:, :1]
    p = points - origin
    kp = kp - origin
    seg = torch.as_tensor(PART_SEGMENTS, device=points.device)
    a = kp[:, seg[:, 0]]  # [B, S, 3]
    ab = kp[:, seg[:, 1]] - a
    ab2 = (ab * ab).sum(-1).clamp_min(1e-12)[:, None]  # [B, 1, S]
    a_ab = (a * ab).sum(-1)[:, None]
    p_a = torch.bmm(p, a.transpose(1, 2))  # [B, N, S]
    p_ab = torch.bmm(p, ab.transpose(1, 2)) - a_ab  # (p - a) . ab
    t = (p_ab / ab2).clamp_(0.0, 1.0)
    pa2 = (p * p).sum(-1, keepdim=True) - 2.0 * p_a + (a * a).sum(-1)[:, None]  # |p - a|^2
    d2 = pa2 - t * (2.0 * p_ab - t * ab2)
    hit = d2 <= r[torch.as_tensor(SEGMENT_PART, device=points.device)].square()
    # Segments are ordered palm first, then one per finger part (see _part_segments).
    return torch.cat([hit[..., :_N_PALM].any(-1, keepdim=True), hit[..., _N_PALM:]], dim=-1)


def fit_skip_radii(
    distances: Tensor, part_probs: Tensor, threshold: float = 0.01, margin: float = 0.01
) -> Tensor:
    """Radii from data: largest distance at which a part reaches ``threshold``, + margin.

    Args:
        distances: ``[..., 16]`` point-to-part distances (metres), from ``part_distances``.
        part_probs: ``[..., 16]`` per-part probabilities of the model at the same points.
        threshold: probability that must never be skipped.
        margin: added safety distance (metres).

    Returns:
        ``[16]`` radii in metres.
    """
    d = distances.reshape(-1, distances.shape[-1])
    q = part_probs.reshape(-1, part_probs.shape[-1])
    reach = torch.where(q >= threshold, d, torch.zeros_like(d)).amax(0)
    return reach + margin


def skip_agreement(occ_full: Tensor, occ_skip: Tensor, level: float = 0.5) -> dict[str, float]:
    """How much skipping changed the result: decision agreement and errors near the level."""
    dec = ((occ_full >= level) == (occ_skip >= level)).float().mean().item()
    err = (occ_full - occ_skip).abs()
    near = occ_full >= 0.05
    return {
        "decision_agreement": dec,
        "max_abs_error": err.max().item() if err.numel() else 0.0,
        "max_abs_error_where_occ_ge_0.05": err[near].max().item() if near.any() else 0.0,
    }


def effective_radii(
    network: object, skip_radii: Sequence[float] | Tensor | bool | None = None
) -> Tensor | None:
    """Per-part radii (metres) to evaluate ``network`` with, or ``None`` for every part.

    A network trained with part supports (``config.part_radii_m``) is only defined inside
    them, so they always apply; optional skipping (``skip_radii``: ``True`` for
    :data:`DEFAULT_SKIP_RADII_M`, or ``[16]`` radii) can only shrink them further.

    Args:
        network: an occupancy network (its ``config.part_radii_m`` is read if present).
        skip_radii: ``None``/``False`` (no extra skipping), ``True`` or per-part radii.

    Returns:
        ``[16]`` float64 radii or ``None``.
    """
    own = tuple(getattr(getattr(network, "config", None), "part_radii_m", ()) or ())
    extra: Sequence[float] | Tensor | None
    if skip_radii is True:
        extra = DEFAULT_SKIP_RADII_M
    elif skip_radii is None or skip_radii is False:
        extra = None
    else:
        extra = skip_radii
    sources = (own or None, extra)
    radii = [torch.as_tensor(r, dtype=torch.float64).cpu() for r in sources if r is not None]
    if not radii:
        return None
    out = radii[0]
    for r in radii[1:]:
        out = torch.minimum(out, r)
    if out.shape != (16,):
        raise HalohandInputError(f"part radii must be 16 values, got shape {list(out.shape)}")
    return out


#: Order in which :meth:`PartSupports.contains` tests the palm's segments (indices into
#: ``_PALM_SEGMENTS``): wrist -> middle, ring, index, little knuckle, wrist -> thumb, then
#: the knuckle-to-knuckle segments, most hits first on hand lattices.
_PALM_TEST_ORDER = (2, 3, 1, 4, 0, 5, 7, 8, 6)


class PartSupports:
    """The part supports of one hand, tested on (point, part) pairs.

    :func:`skip_mask` tests every point against every part (``[N, 16]``); when only a few
    parts per point are in question (mesh extraction asks for the parts that were near the
    maximum one level before: ~1.4 per point), testing just those pairs is ~10x less work.
    The test is the same capsule test (distance to the part's skeleton segments at most its
    radius), computed as ``|q - a - t ab|^2`` directly rather than expanded, so it agrees
    with :func:`skip_mask` except within float32 rounding of the capsule's boundary.

    Args:
        keypoints: ``[21, 3]`` one hand, project order, metres, in the frame of the points
            that will be tested (e.g. relative to a lattice's centre, so float32 keeps
            sub-micrometre precision).
        radii: ``[16]`` support radius of each part, metres.
    """

    def __init__(self, keypoints: Tensor, radii: Sequence[float] | Tensor) -> None:
        if keypoints.shape != (21, 3):
            raise HalohandInputError(f"keypoints must be [21, 3], got {list(keypoints.shape)}")
        kp = keypoints.detach().to(torch.float32).cpu()
        r = torch.as_tensor(radii, dtype=torch.float64).cpu()
        if r.shape != (16,):
            raise HalohandInputError(f"radii must be 16 values, got shape {list(r.shape)}")
        seg = torch.as_tensor(PART_SEGMENTS)
        a = kp[seg[:, 0]]
        ab = kp[seg[:, 1]] - a
        # Coordinates as rows ([3, S]): the test runs on contiguous [P] vectors.
        self._palm_a = a[:_N_PALM].T.contiguous()[:, None]  # [3, 1, 9]
        self._palm_ab = ab[:_N_PALM].T.contiguous()[:, None]
        self._palm_ab2 = (ab[:_N_PALM] ** 2).sum(-1).clamp_min(1e-12)
        # Column k of the finger tables is part k's segment (column 0, the palm, unused).
        finger_a = torch.cat([a[:1], a[_N_PALM:]])
        finger_ab = torch.cat([ab[:1], ab[_N_PALM:]])
        self._a = finger_a.T.contiguous()  # [3, 16]
        self._ab = finger_ab.T.contiguous()
        self._ab2 = (finger_ab**2).sum(-1).clamp_min(1e-12)
        self._r2 = r.square().to(torch.float32)
        self.keypoints = kp
        self.radii = r

    def contains(self, points_t: Tensor, part: Tensor) -> Tensor:
        """``[P]`` bool: whether point ``i`` lies in the support of ``part[i]``.

        Args:
            points_t: ``[3, P]`` float32 coordinates as rows (metres, the keypoints'
                frame).
            part: ``[P]`` int64 part indices (HALO order).
        """
        a = self._a.index_select(1, part)
        ab = self._ab.index_select(1, part)
        ap = points_t - a
        dot = ap * ab
        t = ((dot[0] + dot[1] + dot[2]) / self._ab2.index_select(0, part)).clamp_(0.0, 1.0)
        off = ap.sub_(ab.mul_(t))
        off = off.mul_(off)
        inside = (off[0] + off[1] + off[2]) <= self._r2.index_select(0, part)
        palm = (part == 0).nonzero()[:, 0]
        if palm.numel():
            # The palm's support is the union of its segments' capsules: each segment is
            # tested only on the points no earlier one holds, the wrist -> middle knuckle
            # segment first (it holds ~96 % of the palm pairs of a lattice).
            coords = points_t.index_select(1, palm)
            found: Tensor | None = None
            left = torch.zeros(0, dtype=torch.int64)
            for s in _PALM_TEST_ORDER:
                p = coords if found is None else coords.index_select(1, left)
                ap = p - self._palm_a[:, 0, s : s + 1]
                ab = self._palm_ab[:, 0, s : s + 1]
                dot = ap * ab
                t = ((dot[0] + dot[1] + dot[2]) / self._palm_ab2[s]).clamp_(0.0, 1.0)
                off = ap.sub_(ab * t)
                off = off.mul_(off)
                hit = (off[0] + off[1] + off[2]) <= self._r2[0]
                if found is None:
                    found, left = hit, (~hit).nonzero()[:, 0]
                else:
                    found[left[hit]] = True
                    left = left[~hit]
                if not len(left):
                    break
            inside[palm] = found
        return inside
