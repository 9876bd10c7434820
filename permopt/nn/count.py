"""Count parameters and multiply-accumulates (MACs) from the real modules of a model."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .inspect import _macs, as_tuple
from .modules import GroupedLinear

_COUNTED = (nn.Conv2d, nn.Linear, GroupedLinear)


@dataclass
class Counts:
    """Per-layer ``{name: {"params", "macs", "groups"}}`` for conv/linear layers, and model totals.

    ``params`` counts every parameter of the model (BatchNorm included); ``macs`` sums the
    conv and linear layers, per sample.
    """

    layers: dict[str, dict]
    params: int
    macs: int


def count(model: nn.Module, example_inputs) -> Counts:
    """Run one forward pass (eval, no grad) and count params and per-sample MACs."""
    layers, handles = {}, []
    for name, m in model.named_modules():
        if isinstance(m, _COUNTED):
            def hook(mod, inp, out, name=name):
                layers[name] = {"params": sum(p.numel() for p in mod.parameters(recurse=False)),
                                "macs": _macs(mod, out.shape), "groups": getattr(mod, "groups", 1)}
            handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*as_tuple(example_inputs))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return Counts(layers, sum(p.numel() for p in model.parameters()), sum(v["macs"] for v in layers.values()))
