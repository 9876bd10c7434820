"""The one table of groupable layer kinds: what inspect, export, count and latency need to know
about a layer type. Conv1d/Conv2d/Conv3d and Linear are built in; a user layer is one
:func:`register_layer_kind` call."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .modules import GroupedLinear


@dataclass(frozen=True)
class LayerKind:
    """How permopt reads and rewrites one type of layer.

    ``name`` goes into plan signatures and messages; ``types`` are the module classes (their
    subclasses count too); ``spatial`` says channels are dimension 1 of ``(N, C, *spatial)``
    inputs (convolutions) rather than the last one (linear layers); ``grouped(m, G, blocks)``
    builds the grouped replacement from the ``G`` weight blocks ``(F/G, C/G, *kernel)``;
    ``describe(m)`` is the layer's shape for latency cache keys.
    """

    name: str
    types: tuple[type, ...]
    spatial: bool
    grouped: Callable[[nn.Module, int, list[torch.Tensor]], nn.Module]
    describe: Callable[[nn.Module], str]

    def channels(self, m: Any) -> tuple[int, int]:
        """``(in, out)`` channels."""
        if self.spatial:
            return int(m.in_channels), int(m.out_channels)
        return int(m.in_features), int(m.out_features)

    def kernel(self, m: Any) -> tuple[int, ...]:
        """The kernel size (``()`` for linear layers)."""
        return tuple(m.kernel_size) if self.spatial else ()

    def macs_per_output(self, m: Any) -> int:
        """Multiply-accumulates per output element (each mixes ``C/groups`` inputs over the kernel)."""
        per = int(m.in_channels if self.spatial else m.in_features) // int(getattr(m, "groups", 1))
        for k in self.kernel(m):
            per *= int(k)
        return per


def _grouped_conv(m: nn.Module, G: int, blocks: list[torch.Tensor]) -> nn.Module:
    base = next(t for t in (nn.Conv1d, nn.Conv2d, nn.Conv3d) if isinstance(m, t))
    new = base(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,  # type: ignore[arg-type]
               m.dilation, groups=G, bias=m.bias is not None, padding_mode=m.padding_mode)  # type: ignore[arg-type]
    new.weight.data.copy_(torch.cat(blocks, 0))
    return new


def _grouped_linear(m: nn.Module, G: int, blocks: list[torch.Tensor]) -> nn.Module:
    new = GroupedLinear(m.in_features, m.out_features, G, bias=m.bias is not None)  # type: ignore[arg-type]
    new.weight.data.copy_(torch.stack(blocks, 0))
    return new


def _describe_conv(m: nn.Module) -> str:
    return f"conv{m.in_channels}x{m.out_channels}k{m.kernel_size}s{m.stride}p{m.padding}d{m.dilation}"


def _describe_linear(m: nn.Module) -> str:
    return f"linear{m.in_features}x{m.out_features}"


#: Registered kinds, most recently registered first (a user kind for a subclass wins).
KINDS: list[LayerKind] = [
    LayerKind("conv", (nn.Conv2d,), True, _grouped_conv, _describe_conv),
    LayerKind("conv1d", (nn.Conv1d,), True, _grouped_conv, _describe_conv),
    LayerKind("conv3d", (nn.Conv3d,), True, _grouped_conv, _describe_conv),
    LayerKind("linear", (nn.Linear,), False, _grouped_linear, _describe_linear),
]
#: Layers counted (parameters, MACs) but never grouped again: permopt's own grouped linear.
COUNTED_ONLY = LayerKind("grouped_linear", (GroupedLinear,), False, _grouped_linear, _describe_linear)


def register_layer_kind(kind: LayerKind, *, overwrite: bool = False) -> None:
    """Make a layer type groupable (checked before the built-ins, so a subclass of ``nn.Conv2d``
    with its own forward can get its own grouped replacement). A taken name is refused unless
    ``overwrite=True``."""
    taken = [k for k in KINDS if k.name == kind.name]
    if taken and not overwrite:
        raise ValueError(f"layer kind {kind.name!r} is registered already; pass overwrite=True to replace it")
    KINDS[:] = [kind] + [k for k in KINDS if k.name != kind.name]


def kind_of(m: nn.Module) -> LayerKind | None:
    """The groupable kind of module ``m``, or None. A subclass counts only if it keeps the
    registered type's ``forward``: one with its own (timm's ``Conv2dSame``, EfficientNet's
    ``Conv2dStaticSamePadding``) would be replaced by a plain layer that computes something
    else, so it needs its own kind (:func:`register_layer_kind`)."""
    return next((k for k in KINDS if any(_keeps_forward(m, t) for t in k.types)), None)


def _keeps_forward(m: nn.Module, t: type) -> bool:
    return isinstance(m, t) and getattr(type(m), "forward") is getattr(t, "forward")


def own_forward(m: nn.Module) -> type | None:
    """The registered type ``m`` subclasses while overriding its ``forward`` (so it is not
    groupable as that type), or None."""
    return next((t for k in KINDS for t in k.types if isinstance(m, t) and not _keeps_forward(m, t)), None)


def counted_kind(m: nn.Module) -> LayerKind | None:
    """The kind whose parameters and MACs :func:`permopt.nn.count` reports (groupable or not)."""
    return kind_of(m) or next((k for k in KINDS + [COUNTED_ONLY] if isinstance(m, k.types)), None)


def set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at dotted ``name`` (``"layer1.0.conv1"``) of ``root`` with ``module``."""
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, module)


def layer_macs(m: nn.Module, out_shape: Any) -> int:
    """Per-sample multiply-accumulates of a counted layer (see :mod:`permopt.nn.kinds`) from its
    output shape; 0 for anything else."""
    kind = counted_kind(m)
    if kind is None:
        return 0
    per_out = 1
    for s in out_shape[1:]:
        per_out *= int(s)
    return per_out * kind.macs_per_output(m)
