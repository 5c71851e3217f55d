"""A shallower copy of a trained network (``halohand.training.shrink``)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from halohand.fields.occupancy import OccupancyConfig, OccupancyNetwork
from halohand.training.shrink import drop_hidden_layer


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
