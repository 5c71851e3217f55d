"""Function-preserving changes of a trained network, to warm-start a different model.

:func:`adapt_network` turns a trained network into one of another configuration that
computes the same occupancy, when the two differ only in the part MLPs' width (widening,
below), in ``point_scale`` (the first layer's point weights divided by the change), in
the rank of the pose input (:func:`grow_pose_input`), in Fourier features of the points
and points in bone lengths added with zero weights (:func:`add_point_inputs`) and in the
knuckle spread added with zero weights (:func:`add_knuckle_spread`).

Widening (Net2Net-style):

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
import math

import torch

from halohand.fields.occupancy import OccupancyConfig, OccupancyNetwork


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


def rescale_points(source: OccupancyNetwork, point_scale: float) -> OccupancyNetwork:
    """A copy of ``source`` with ``point_scale`` and the same function.

    The first layer sees ``s x``; dividing its point weights by ``s' / s`` keeps every
    pre-activation unchanged.
    """
    config = dataclasses.replace(source.config, point_scale=float(point_scale))
    target = OccupancyNetwork(config)
    target.load_state_dict(source.state_dict())
    with torch.no_grad():
        target.mlp.layers[0].weight[:, :3] *= source.config.point_scale / config.point_scale
    return target


def grow_pose_input(source: OccupancyNetwork, pose_projection_size: int) -> OccupancyNetwork:
    """A copy of ``source`` with a wider pose input and the same function.

    The pose code reaches the first layer through the per-part projection
    ``P_k(theta) = theta A_k + c_k`` (``A_k``: 3K x P), so the first layer sees it through
    ``A_k W_k`` (3K x H, rank <= P). A larger ``P'`` keeps the old ``P`` outputs, adds
    freshly initialised ones with zero first-layer weights; ``P' = 0`` (the raw 3K values
    to every part) takes ``A_k W_k`` itself as the weights and ``c_k W_k`` into the bias.
    Either way the occupancy is unchanged and the pose dependence gains rank.
    """
    old = source.config.pose_projection_size
    if not source.config.use_pose_code or old == 0:
        raise ValueError("the source has no pose projection to grow")
    if source.config.knuckle_spread:
        raise ValueError("grow the pose projection before adding the knuckle spread")
    if 0 < pose_projection_size <= old:
        raise ValueError(f"cannot grow the pose projection from {old} to {pose_projection_size}")
    config = dataclasses.replace(source.config, pose_projection_size=pose_projection_size)
    target = OccupancyNetwork(config)
    state = source.state_dict()
    first_w, first_b = state.pop("mlp.layers.0.weight"), state.pop("mlp.layers.0.bias")
    proj_w, proj_b = state.pop("pose_projection.weight"), state.pop("pose_projection.bias")
    target.load_state_dict(state, strict=False)
    start = first_w.shape[1] - old  # the pose columns are the last ones
    with torch.no_grad():
        layer = target.mlp.layers[0]
        layer.weight.zero_()
        layer.weight[:, :start] = first_w[:, :start]
        layer.bias.copy_(first_b)
        w_pose = first_w[:, start:]  # [K, P, H]
        if pose_projection_size == 0:
            layer.weight[:, start:] = torch.bmm(proj_w, w_pose)  # [K, 3K, H]
            layer.bias += torch.bmm(proj_b.unsqueeze(1), w_pose).squeeze(1)
        else:
            layer.weight[:, start : start + old] = w_pose
            assert target.pose_projection is not None
            target.pose_projection.weight[:, :, :old] = proj_w
            target.pose_projection.bias[:, :old] = proj_b
    return target


def _grid_fields(config: OccupancyConfig) -> dict[str, object]:
    """The ``grid_*`` fields of a config, by name."""
    names = [f.name for f in dataclasses.fields(config) if f.name.startswith("grid_")]
    return {name: getattr(config, name) for name in names}


def add_point_inputs(
    source: OccupancyNetwork,
    point_frequencies: tuple[float, ...] = (),
    point_bone_scale: bool = False,
    *,
    grids: OccupancyConfig | None = None,
    generator: torch.Generator | None = None,
) -> OccupancyNetwork:
    """A copy of ``source`` (plain points: no Fourier features, no points in bone lengths,
    no grids) that also sees its points in bone lengths (``point_bone_scale``), their
    Fourier features at ``point_frequencies`` and, with ``grids`` (a config whose
    ``grid_*`` fields are taken), per-part grid features: the same function, and the new
    parameters get gradients from the first step. The new point inputs' first-layer
    weights start at zero; the grids start at zero instead, with first-layer weights drawn
    from ``generator`` as a fresh layer's (uniform within 1 / sqrt(inputs)), so that cells
    no training point reaches stay zero and add nothing to hands unlike the training
    data."""
    if source.config.point_features != 3:
        raise ValueError("the source already has more point inputs than the coordinates")
    grid_fields = _grid_fields(grids) if grids is not None and grids.grid_resolution else {}
    config = dataclasses.replace(
        source.config,
        point_frequencies=tuple(point_frequencies),
        point_bone_scale=bool(point_bone_scale),
        **grid_fields,
    )
    target = OccupancyNetwork(config)
    state = source.state_dict()
    first_w = state.pop("mlp.layers.0.weight")
    target.load_state_dict(state, strict=False)
    width = config.point_features
    with torch.no_grad():
        layer = target.mlp.layers[0]
        layer.weight.zero_()
        layer.weight[:, :3] = first_w[:, :3]
        layer.weight[:, width:] = first_w[:, 3:]
    if target.grids is not None:
        target.grids.reset_parameters(0.0)
        bound = 1.0 / math.sqrt(config.in_features)
        with torch.no_grad():
            shape = layer.weight[:, config.grid_start : width].shape
            draw = torch.rand(shape, generator=generator) * (2 * bound) - bound
            layer.weight[:, config.grid_start : width] = draw
    return target


def add_knuckle_spread(source: OccupancyNetwork) -> OccupancyNetwork:
    """A copy of ``source`` that also reads the hands' knuckle spread (the config's
    ``knuckle_spread``), its first-layer weights zero: the same function, and the new
    weights get gradients from the first step (the other inputs are not zero)."""
    if source.config.knuckle_spread:
        raise ValueError("the source already reads the knuckle spread")
    config = dataclasses.replace(source.config, knuckle_spread=True)
    target = OccupancyNetwork(config).to(next(source.parameters()).device)
    state = source.state_dict()
    first_w = state.pop("mlp.layers.0.weight")
    target.load_state_dict(state, strict=False)
    with torch.no_grad():
        layer = target.mlp.layers[0]
        layer.weight.zero_()
        layer.weight[:, : first_w.shape[1]] = first_w  # the spread is the last column
    return target


def adapt_network(
    source: OccupancyNetwork,
    config: OccupancyConfig,
    generator: torch.Generator | None = None,
) -> OccupancyNetwork:
    """``source`` as a network of ``config`` computing the same function.

    Args:
        source: a trained network.
        config: the wanted architecture; it may differ from ``source.config`` in the hidden
            width (wider, same depth, one width throughout), in ``point_scale`` and in a
            larger (or raw, 0) ``pose_projection_size``, and in ``point_frequencies`` and
            ``point_bone_scale`` given to a source with plain points, and in
            ``knuckle_spread`` given to a source without it; the data-side
            ``keypoint_conventions`` and ``iso_level`` may differ too (no weight reads them).
        generator: random source of widening (see :func:`widen_network`).

    Raises:
        ValueError: when the configs differ in anything else.
    """
    same_rest = dataclasses.replace(
        source.config,
        hidden=config.hidden,
        point_scale=config.point_scale,
        pose_projection_size=config.pose_projection_size,
        point_frequencies=config.point_frequencies,
        point_bone_scale=config.point_bone_scale,
        knuckle_spread=config.knuckle_spread,
        keypoint_conventions=config.keypoint_conventions,
        skin_tip_fingers=config.skin_tip_fingers,
        iso_level=config.iso_level,
        **_grid_fields(config),
    )
    if same_rest != config:
        raise ValueError(
            "only the hidden width, point_scale, pose projection, point inputs and knuckle "
            "spread can differ"
        )

    def point_inputs(c: OccupancyConfig) -> tuple:
        grid = _grid_fields(c) if c.grid_resolution else None
        return c.point_frequencies, c.point_bone_scale, grid

    if point_inputs(source.config) != point_inputs(config):
        source = add_point_inputs(
            source, config.point_frequencies, config.point_bone_scale, grids=config,
            generator=generator,
        )  # fmt: skip
    if source.config.pose_projection_size != config.pose_projection_size:
        source = grow_pose_input(source, config.pose_projection_size)
    if source.config.hidden != config.hidden:
        if len(config.hidden) != len(source.config.hidden) or len(set(config.hidden)) != 1:
            raise ValueError(
                f"cannot widen {source.config.hidden} to {config.hidden}: "
                "same depth and one width needed"
            )
        source = widen_network(source, config.hidden[0], generator)
    if source.config.point_scale != config.point_scale:
        source = rescale_points(source, config.point_scale)
    if config.knuckle_spread and not source.config.knuckle_spread:
        source = add_knuckle_spread(source)
    elif source.config.knuckle_spread and not config.knuckle_spread:
        raise ValueError("cannot drop the knuckle spread from a network that reads it")
    if source.config != config:  # data-side fields only: the same weights
        net = OccupancyNetwork(config).to(next(source.parameters()).device)
        net.load_state_dict(source.state_dict())
        source = net
    return source
