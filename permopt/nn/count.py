"""Count parameters and multiply-accumulates (MACs) from the real modules of a model."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .hooks import forward_with_hooks
from .kinds import counted_kind, layer_macs


@dataclass
class Counts:
    """Per-layer ``{name: {"params", "macs", "groups"}}`` for conv/linear layers, and model totals.

    ``params`` counts every parameter of the model (BatchNorm included); ``macs`` sums the
    conv and linear layers, per sample.
    """

    layers: dict[str, dict]
    params: int
    macs: int

    @classmethod
    def of(cls, model: nn.Module, layers: dict[str, dict]) -> "Counts":
        """Totals of ``model`` with the per-layer counts ``layers`` (from :func:`counter`)."""
        return cls(layers, sum(p.numel() for p in model.parameters()), sum(v["macs"] for v in layers.values()))


def is_counted(m: nn.Module) -> bool:
    """Whether :func:`count` reports module ``m`` (convolutions and linear layers, grouped or not)."""
    return counted_kind(m) is not None


def counter() -> tuple[dict[str, dict], Callable[[str, nn.Module, tuple, Any], None]]:
    """An empty per-layer table and the hook record filling it (the last call of a module wins)."""
    layers: dict[str, dict] = {}

    def record(name: str, mod: nn.Module, inputs: tuple, out: Any) -> None:
        layers[name] = {"params": sum(p.numel() for p in mod.parameters(recurse=False)),
                        "macs": layer_macs(mod, out.shape), "groups": getattr(mod, "groups", 1)}
    return layers, record


def count(model: nn.Module, example_inputs: Any) -> Counts:
    """Run one forward pass (eval, no grad) and count params and per-sample MACs."""
    layers, record = counter()
    forward_with_hooks(model, example_inputs, is_counted, record)
    return Counts.of(model, layers)
