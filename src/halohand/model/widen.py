"""Function-preserving widening of the part MLPs (Net2Net-style), to warm-start a wider model.

Every hidden unit ``j`` of the new width ``H'`` copies an old unit ``g(j)`` (the first ``H``
units copy themselves, the others a random old unit). A copy gets its source's incoming
weights and bias; the outgoing weights of an old unit are split among its copies with
random positive fractions that sum to one. The widened network computes the same function:

* LeakyReLU acts per unit, so a copy's activation equals its source's;
* the next layer sums the copies' contributions, ``sum_c a_c h_g w = h_g w``;
* the residual skips (``h' = act(L h + h)``) connect unit ``j`` to unit ``j``, and one map
  ``g`` serves every hidden layer, so a copy's skip carries its source's value.

Uneven splits make the copies' gradients differ, so training separates them (even halves
would keep twins identical forever).
"""

from __future__ import annotations

import dataclasses

import torch

from halohand.model.occupancy import OccupancyNetwork


def widen_network(
    source: OccupancyNetwork, width: int, generator: torch.Generator | None = None
) -> OccupancyNetwork:
    """A copy of ``source`` whose part MLPs have ``width`` units in every hidden layer.

    Args:
        source: a network whose hidden layers all have one width ``H <= width``.
        width: new hidden width ``H'``.
        generator: random source of the copy map and the outgoing splits.

    Returns:
        A new :class:`OccupancyNetwork` (config ``hidden = (width,) * depth``) computing the
        same occupancy as ``source`` up to float rounding.
    """
    hidden = source.config.hidden
    old = hidden[0]
    if any(h != old for h in hidden):
        raise ValueError(f"widening needs equal hidden widths, got {hidden}")
    if width < old:
        raise ValueError(f"cannot widen {old} units to {width}")
    config = dataclasses.replace(source.config, hidden=(width,) * len(hidden))
    target = OccupancyNetwork(config)
    target.load_state_dict(
        {k: v for k, v in source.state_dict().items() if not k.startswith("mlp.")}, strict=False
    )
    extra = torch.randint(0, old, (width - old,), generator=generator)
    copy_of = torch.cat([torch.arange(old), extra])  # g: new unit -> old unit
    share = torch.rand(width, generator=generator) + 0.5  # in [0.5, 1.5)
    totals = torch.zeros(old).index_add_(0, copy_of, share)
    fraction = share / totals[copy_of]  # the copies of one old unit sum to 1
    layers = source.mlp.layers
    with torch.no_grad():
        for i, (src, dst) in enumerate(zip(layers, target.mlp.layers, strict=True)):
            w, b = src.weight, src.bias  # [K, in, out], [K, out]
            if i > 0:  # inputs are hidden units: rows copied, scaled by the split
                w = w[:, copy_of] * fraction[None, :, None].to(w.dtype)
            if i < len(layers) - 1:  # outputs are hidden units: columns copied
                w, b = w[:, :, copy_of], b[:, copy_of]
            dst.weight.copy_(w)
            dst.bias.copy_(b)
    return target
