"""A shallower copy of a trained network (``halohand.training.shrink``)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from halohand.fields.occupancy import OccupancyConfig, OccupancyNetwork
from halohand.training.shrink import drop_hidden_layer, narrow_hidden


def _network(hidden: tuple[int, ...]) -> OccupancyNetwork:
    torch.manual_seed(0)
    config = OccupancyConfig(
        hidden=hidden, grid_resolution=2, grid_channels=3, grid_bounds=(-1, -1, -1, 1, 1, 1) * 16
    )
    net = OccupancyNetwork(config)
    with torch.no_grad():  # a trained-looking table, so that the copy is seen
        net.grids.table.normal_()
    return net


@pytest.mark.parametrize("index", [1, 2])
def test_drop_keeps_every_other_weight(index: int) -> None:
    source = _network((8, 8, 8))
    student = drop_hidden_layer(source, index)
    assert student.config.hidden == (8, 8)
    assert student.config == dataclasses.replace(source.config, hidden=(8, 8))
    old, new = source.state_dict(), student.state_dict()
    kept = [i for i in range(len(source.mlp.layers)) if i != index]
    assert len(student.mlp.layers) == len(kept)
    for j, i in enumerate(kept):
        for name in ("weight", "bias"):
            torch.testing.assert_close(
                new[f"mlp.layers.{j}.{name}"], old[f"mlp.layers.{i}.{name}"], rtol=0, atol=0
            )
    for key, value in old.items():
        if not key.startswith("mlp.layers."):
            torch.testing.assert_close(new[key], value, rtol=0, atol=0)
    # a copy, not a view: training the student leaves the source alone
    with torch.no_grad():
        student.grids.table.add_(1.0)
    assert not torch.equal(student.grids.table, source.grids.table)


def test_drop_refuses_the_first_layer_out_of_range_and_unchained_widths() -> None:
    source = _network((8, 8))
    for index in (0, 2, -1):
        with pytest.raises(ValueError, match="cannot be dropped"):
            drop_hidden_layer(source, index)
    with pytest.raises(ValueError, match="do not chain"):
        drop_hidden_layer(_network((8, 16, 16)), 1)


def test_narrow_keeps_each_parts_strongest_units_through_every_layer() -> None:
    source = _network((6, 6, 6))
    with torch.no_grad():  # part 0's unit 4 and part 5's unit 1 read and write nothing
        for layer in source.mlp.layers:
            weight = layer.weight
            if weight.shape[2] == 6:
                weight[0, :, 4] = 0.0
                weight[5, :, 1] = 0.0
            if weight.shape[1] == 6:
                weight[0, 4, :] = 0.0
                weight[5, 1, :] = 0.0
    student = narrow_hidden(source, 5)
    assert student.config == dataclasses.replace(source.config, hidden=(5, 5, 5))
    kept = {0: [0, 1, 2, 3, 5], 5: [0, 2, 3, 4, 5]}
    old, new = source.state_dict(), student.state_dict()
    for part, units in kept.items():
        idx = torch.tensor(units)
        first = old["mlp.layers.0.weight"][part][:, idx]
        torch.testing.assert_close(new["mlp.layers.0.weight"][part], first, rtol=0, atol=0)
        for i in (1, 2):
            w = old[f"mlp.layers.{i}.weight"][part][idx][:, idx]
            torch.testing.assert_close(new[f"mlp.layers.{i}.weight"][part], w, rtol=0, atol=0)
            b = old[f"mlp.layers.{i}.bias"][part][idx]
            torch.testing.assert_close(new[f"mlp.layers.{i}.bias"][part], b, rtol=0, atol=0)
        w = old["mlp.layers.3.weight"][part][idx]
        torch.testing.assert_close(new["mlp.layers.3.weight"][part], w, rtol=0, atol=0)
    torch.testing.assert_close(new["mlp.layers.3.bias"], old["mlp.layers.3.bias"], rtol=0, atol=0)
    for key, value in old.items():
        if not key.startswith("mlp.layers."):
            torch.testing.assert_close(new[key], value, rtol=0, atol=0)


def test_narrow_keeps_the_function_when_the_removed_units_are_dead() -> None:
    source = _network((6, 6))
    with torch.no_grad():  # unit 2 of every part reads and writes nothing: removing it is exact
        for layer in source.mlp.layers:
            if layer.weight.shape[2] == 6:
                layer.weight[:, :, 2] = 0.0
                layer.bias[:, 2] = 0.0
            if layer.weight.shape[1] == 6:
                layer.weight[:, 2, :] = 0.0
    student = narrow_hidden(source, 5)
    x = torch.randn(16, 7, source.mlp.layers[0].in_features)
    torch.testing.assert_close(student.mlp(x), source.mlp(x), rtol=1e-6, atol=1e-6)


def test_narrow_refuses_unequal_widths_and_widths_out_of_range() -> None:
    with pytest.raises(ValueError, match="differ"):
        narrow_hidden(_network((8, 6)), 4)
    for width in (0, 8, 9):
        with pytest.raises(ValueError, match="width must be"):
            narrow_hidden(_network((8, 8)), width)
