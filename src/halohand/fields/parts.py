"""K independent MLPs evaluated as one batched operation.

HALO has one small MLP per hand part. Running 16 ``nn.Linear`` stacks in a Python loop
costs 16x the kernel launches and interpreter overhead; stacking the weights as
``[K, in, out]`` and using ``bmm`` runs all parts in one call per layer. Activations are
kept in a part-major layout ``[K, M, C]`` (M = points) between layers so no transposes are
needed inside the stack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

Residual = Literal["before", "after", "none"]


class PartLinear(nn.Module):
    """K independent affine maps ``y_k = x_k W_k + b_k``.

    Parameters:
        weight: ``[K, in, out]`` (note: transposed with respect to ``nn.Linear.weight``).
        bias: ``[K, out]``.
    """

    def __init__(self, num_parts: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.num_parts = num_parts
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(num_parts, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(num_parts, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same distribution as nn.Linear's default (kaiming_uniform with a=sqrt(5) reduces to
        # U(-1/sqrt(in), 1/sqrt(in)) for weight and bias), so training behaves like K Linears.
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, part_index: Tensor | None = None) -> Tensor:
        """``[K, M, in] -> [K, M, out]``.

        With ``part_index`` (``[G]`` long), ``x`` is ``[G, M, in]`` and row block g uses the
        weights of part ``part_index[g]`` (block-packed sparse evaluation).
        """
        w, b = self.weight, self.bias
        if part_index is not None:
            w, b = w[part_index], b[part_index]
        return torch.baddbmm(b.unsqueeze(1), x, w)

    def extra_repr(self) -> str:
        return f"parts={self.num_parts}, in={self.in_features}, out={self.out_features}"


class PartMLP(nn.Module):
    """K independent MLPs ``in -> hidden[0] -> ... -> hidden[-1] -> out``, batched over parts.

    Hidden layer ``k >= 1`` with equal in/out width gets a residual connection. With
    ``residual="before"`` (HALO's ``piece_deform``) the skip is added before the activation,
    ``h = act(L h + h)``; ``"after"`` (NASA's ``piece_rigid``) gives ``h = act(L h) + h``.
    The first and last layers never have a residual.

    Set ``negative_slope=0`` for plain ReLU (NASA).
    """

    def __init__(
        self,
        num_parts: int,
        in_features: int,
        hidden: Sequence[int],
        out_features: int = 1,
        negative_slope: float = 0.1,
        residual: Residual = "before",
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("PartMLP needs at least one hidden layer")
        if residual not in ("before", "after", "none"):
            raise ValueError(f"residual must be 'before', 'after' or 'none', got {residual!r}")
        dims = [in_features, *hidden, out_features]
        self.layers = nn.ModuleList(
            PartLinear(num_parts, dims[i], dims[i + 1]) for i in range(len(dims) - 1)
        )
        self.num_parts = num_parts
        self.negative_slope = negative_slope
        self.residual: Residual = residual

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        group_size: int = 1,
        part_index: Tensor | None = None,
    ) -> Tensor:
        """Run all parts.

        Args:
            x: ``[K, M, in_x]`` per-row inputs, part-major. ``in_x`` may be smaller than the
                first layer's input width when ``context`` supplies the rest.
            context: optional ``[K, G, in - in_x]`` inputs shared by groups of ``group_size``
                consecutive rows (``M = G * group_size``), e.g. per-hand codes shared by all
                query points of that hand. They are the *last* input columns. Their
                contribution to the first layer is computed once per group instead of once
                per row, which is exact and saves most of the first layer's cost.
            part_index: optional ``[G']`` part of each leading block; then ``x`` is
                ``[G', M, in_x]`` and block g runs part ``part_index[g]``'s weights.

        Returns:
            ``[K, M, out]`` outputs of the last (linear) layer.
        """
        first = self.layers[0]
        in_x = x.shape[-1]
        if context is None:
            if in_x != first.in_features:
                raise ValueError(f"expected {first.in_features} input features, got {in_x}")
            h = first(x, part_index)
        else:
            if in_x + context.shape[-1] != first.in_features:
                raise ValueError(
                    f"inputs ({in_x}) + context ({context.shape[-1]}) != {first.in_features}"
                )
            k, m, _ = x.shape
            groups = context.shape[1]
            if groups * group_size != m:
                raise ValueError(f"{groups} groups x {group_size} rows != {m} rows")
            w, b = first.weight, first.bias
            if part_index is not None:
                w, b = w[part_index], b[part_index]
            # Per-group term (context and bias) once per group, then broadcast over rows.
            ctx = torch.baddbmm(b.unsqueeze(1), context, w[:, in_x:])  # [K, G, H]
            h = torch.bmm(x, w[:, :in_x]).view(k, groups, group_size, -1)
            h = h.add_(ctx.unsqueeze(2)).view(k, m, -1)
        # In-place activations and the residual folded into the GEMM (beta = 1) cut the
        # number of passes over the [K, M, H] activations, which dominate on CPU.
        h = F.leaky_relu_(h, self.negative_slope)
        for layer in self.layers[1:-1]:
            same = layer.in_features == layer.out_features
            w, b = layer.weight, layer.bias
            if part_index is not None:
                w, b = w[part_index], b[part_index]
            if self.residual == "before" and same:
                y = (h + b.unsqueeze(1)).baddbmm_(h, w)
                h = F.leaky_relu_(y, self.negative_slope)
            elif self.residual == "after" and same:
                y = F.leaky_relu_(torch.baddbmm(b.unsqueeze(1), h, w), self.negative_slope)
                h = y + h
            else:
                h = F.leaky_relu_(torch.baddbmm(b.unsqueeze(1), h, w), self.negative_slope)
        return self.layers[-1](h, part_index)
