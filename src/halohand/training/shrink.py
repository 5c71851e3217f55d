"""A shallower or narrower copy of a trained network: the start of a cheaper student.

Unlike :mod:`halohand.training.widen`, removing a hidden layer or hidden units does not
keep the function. Removing a layer:
with the residual skips ``h' = act(L h + h)``, the removed layer's ``L h`` and its second
activation are gone. What is kept is everything else (encoders, grids, the first layer,
the other hidden layers and the output layer, unchanged), so training starts near the
source instead of from scratch. Each part MLP's cost is mostly its hidden ``64 x 64``
GEMMs, so one layer fewer is about a third less of that work per (point, part) pair.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor

from halohand.fields.occupancy import OccupancyNetwork


def drop_hidden_layer(source: OccupancyNetwork, index: int) -> OccupancyNetwork:
    """A copy of ``source`` without hidden layer ``index``.

    Args:
        source: a network with at least two hidden layers.
        index: which hidden layer to remove, ``1 <= index < len(hidden)`` (layer 0 maps the
            inputs to the first hidden width and stays; with one width throughout, any
            later one can go).

    Returns:
        A new :class:`OccupancyNetwork` with config ``hidden`` one entry shorter and every
        other weight copied.

    Raises:
        ValueError: for an index out of range, or hidden widths that would not chain.
    """
    hidden = source.config.hidden
    if not 1 <= index < len(hidden):
        raise ValueError(f"hidden layer {index} cannot be dropped from {hidden}")
    if hidden[index] != hidden[index - 1]:
        raise ValueError(f"dropping layer {index} of {hidden} leaves widths that do not chain")

    def layer_param(i: int, name: str, value: Tensor) -> tuple[int, Tensor] | None:
        if i == index:
            return None
        return (i - 1 if i > index else i), value

    return _copy_with_layers(source, hidden[:index] + hidden[index + 1 :], layer_param)


def narrow_hidden(source: OccupancyNetwork, width: int) -> OccupancyNetwork:
    """A copy of ``source`` with ``width`` units in every hidden layer, each part keeping
    its own most important units.

    The residual skips (``h' = act(L h + h)``) carry unit ``j`` of one hidden layer into
    unit ``j`` of the next, so a unit is kept or removed in all hidden layers at once. A
    unit's importance in part ``k`` is the squared norm of every weight into and out of it
    (all layers of that part's MLP): units that read and write little are removed first.
    The first layer keeps all its inputs, and everything outside the part MLPs (encoders,
    grids) is copied. The removed units' contributions are gone, so the copy needs
    training; it starts near the source rather than from scratch.

    Args:
        source: a network whose hidden layers all have one width ``H``.
        width: the new width, ``1 <= width < H``.

    Returns:
        A new :class:`OccupancyNetwork` with config ``hidden = (width,) * len(hidden)``.

    Raises:
        ValueError: for unequal hidden widths or a width out of range.
    """
    hidden = source.config.hidden
    if len(set(hidden)) != 1:
        raise ValueError(f"hidden widths {hidden} differ: narrow needs one width throughout")
    if not 1 <= width < hidden[0]:
        raise ValueError(f"width must be in [1, {hidden[0]}), got {width}")
    layers = source.mlp.layers
    with torch.no_grad():
        importance = layers[0].weight.square().sum(1)  # [K, H]: weights into each unit
        for layer in layers[1:-1]:
            importance = importance + layer.weight.square().sum(2) + layer.weight.square().sum(1)
        importance = importance + layers[-1].weight.square().sum(2)  # weights out of it
        # each part's kept units, in their original order (a stable layout)
        keep = importance.topk(width, dim=1).indices.sort(dim=1).values  # [K, width]
    last = len(layers) - 1

    def layer_param(i: int, name: str, value: Tensor) -> tuple[int, Tensor]:
        if name == "bias":
            return i, value if i == last else value.gather(1, keep)
        if i > 0:  # [K, H, out]: only the kept units' rows
            value = value.gather(1, keep[:, :, None].expand(-1, -1, value.shape[2]))
        if i < last:  # [K, in, H]: only the kept units' columns
            value = value.gather(2, keep[:, None, :].expand(-1, value.shape[1], -1))
        return i, value.contiguous()

    return _copy_with_layers(source, (width,) * len(hidden), layer_param)


def _copy_with_layers(
    source: OccupancyNetwork,
    hidden: tuple[int, ...],
    layer_param: Callable[[int, str, Tensor], tuple[int, Tensor] | None],
) -> OccupancyNetwork:
    """A network like ``source`` with hidden widths ``hidden``: every weight outside the part
    MLPs copied, and each part-MLP parameter ``mlp.layers.{i}.{name}`` (``name`` is
    ``weight`` or ``bias``) written where ``layer_param(i, name, value)`` puts it, as
    ``(new layer index, new value)``, or left out for ``None``."""
    config = dataclasses.replace(source.config, hidden=hidden)
    target = OccupancyNetwork(config).to(next(source.parameters()).device)
    state = {}
    prefix = "mlp.layers."
    for key, value in source.state_dict().items():
        if not key.startswith(prefix):
            state[key] = value
            continue
        layer, name = key[len(prefix) :].split(".", 1)
        moved = layer_param(int(layer), name, value)
        if moved is not None:
            state[f"{prefix}{moved[0]}.{name}"] = moved[1]
    target.load_state_dict(state)
    return target
