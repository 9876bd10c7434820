"""Count parameters and multiply-accumulates (MACs) from the real modules of a model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from .inspect import forward_with_hooks, layer_macs
from .kinds import counted_kind


@dataclass
class Counts:
    """Per-layer ``{name: {"params", "macs", "groups"}}`` for conv/linear layers, and model totals.

    ``params`` counts every parameter of the model (BatchNorm included); ``macs`` sums the
    conv and linear layers, per sample.
    """

    layers: dict[str, dict]
    params: int
    macs: int


def count(model: nn.Module, example_inputs: Any) -> Counts:
    """Run one forward pass (eval, no grad) and count params and per-sample MACs."""
    layers = {}

    def record(name, mod, inputs, out):
        layers[name] = {"params": sum(p.numel() for p in mod.parameters(recurse=False)),
                        "macs": layer_macs(mod, out.shape), "groups": getattr(mod, "groups", 1)}

    forward_with_hooks(model, example_inputs, lambda m: counted_kind(m) is not None, record)
    return Counts(layers, sum(p.numel() for p in model.parameters()), sum(v["macs"] for v in layers.values()))
