"""A shallower copy of a trained network: the start of a cheaper student.

Unlike :mod:`halohand.training.widen`, removing a hidden layer does not keep the function:
with the residual skips ``h' = act(L h + h)``, the removed layer's ``L h`` and its second
activation are gone. What is kept is everything else (encoders, grids, the first layer,
the other hidden layers and the output layer, unchanged), so training starts near the
source instead of from scratch. Each part MLP's cost is mostly its hidden ``64 x 64``
GEMMs, so one layer fewer is about a third less of that work per (point, part) pair.
"""

from __future__ import annotations

import dataclasses

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
    config = dataclasses.replace(source.config, hidden=hidden[:index] + hidden[index + 1 :])
    target = OccupancyNetwork(config).to(next(source.parameters()).device)
    state = {}
    prefix = "mlp.layers."
    for key, value in source.state_dict().items():
        if not key.startswith(prefix):
            state[key] = value
            continue
        layer, rest = key[len(prefix) :].split(".", 1)
        i = int(layer)
        if i == index:
            continue
        state[f"{prefix}{i - 1 if i > index else i}.{rest}"] = value
    target.load_state_dict(state)
    return target
