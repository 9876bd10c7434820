"""Modules the export inserts: a channel index and a grouped linear layer."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ChannelIndex(nn.Module):
    """``x[:, index]``: reorders channels (dim 1) where a permutation could not be folded."""

    index: torch.Tensor

    def __init__(self, index: Any) -> None:
        super().__init__()
        self.register_buffer("index", torch.as_tensor(index, dtype=torch.long).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)

    def extra_repr(self) -> str:
        return f"channels={int(self.index.numel())}"


class GroupedLinear(nn.Module):
    """A block-diagonal linear layer: ``G`` independent ``(in/G → out/G)`` linears side by side.

    Input features ``[g·in/G, (g+1)·in/G)`` feed outputs ``[g·out/G, (g+1)·out/G)``.
    """

    def __init__(self, in_features: int, out_features: int, groups: int, bias: bool = True):
        super().__init__()
        if in_features % groups or out_features % groups:
            raise ValueError(f"groups={groups} must divide in_features={in_features} and out_features={out_features}")
        self.in_features, self.out_features, self.groups = in_features, out_features, groups
        self.weight = nn.Parameter(torch.empty(groups, out_features // groups, in_features // groups))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.kaiming_uniform_(self.weight.view(out_features, -1), a=5 ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        xg = x.reshape(-1, self.groups, self.in_features // self.groups)
        y = torch.einsum("ngc,gfc->ngf", xg, self.weight).reshape(*lead, self.out_features)
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, groups={self.groups}, " \
               f"bias={self.bias is not None}"
