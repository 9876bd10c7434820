"""The one table of groupable layer kinds: what inspect, export, count and latency need to know
about a layer type. Conv1d/Conv2d/Conv3d and Linear are built in; a user layer is one
:func:`register_layer_kind` call."""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

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


_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _grouped_conv(m: nn.Module, G: int, blocks: list[torch.Tensor]) -> nn.Module:
    base = next(t for t in _CONV_TYPES if isinstance(m, t))
    out, inp = G * blocks[0].shape[0], G * blocks[0].shape[1]  # fewer than m's where channels were removed
    if type(m) is not base:  # a subclass with its own forward (checked to honour groups): keep it, regroup it
        sub: Any = copy.deepcopy(m)
        sub.groups, sub.out_channels, sub.in_channels = G, out, inp
        sub.weight = nn.Parameter(torch.cat(blocks, 0).clone(), requires_grad=bool(m.weight.requires_grad))
        bias: Any = m.bias
        if bias is not None:
            sub.bias = nn.Parameter(bias.detach()[:out].clone())  # the right values are copied in by the caller
        return sub
    new = base(inp, out, m.kernel_size, m.stride, m.padding,  # type: ignore[arg-type]
               m.dilation, groups=G, bias=m.bias is not None, padding_mode=m.padding_mode)  # type: ignore[arg-type]
    new.weight.data.copy_(torch.cat(blocks, 0))
    return new


def _grouped_linear(m: nn.Module, G: int, blocks: list[torch.Tensor]) -> nn.Module:
    out, inp = G * blocks[0].shape[0], G * blocks[0].shape[1]
    if G == 1:  # only channels removed: a plain, thinner linear layer
        thin = nn.Linear(inp, out, bias=m.bias is not None)
        thin.weight.data.copy_(blocks[0])
        return thin
    new = GroupedLinear(inp, out, G, bias=m.bias is not None)
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
    """The groupable kind of module ``m``, or None. A subclass that keeps the registered type's
    ``forward`` counts as that type. A convolution subclass with its own ``forward`` (timm's
    ``Conv2dSame``, EfficientNet's ``Conv2dStaticSamePadding``: they pad, then call the
    convolution with ``self.groups``) counts as a convolution when :func:`honours_groups` finds,
    on a random input, that a regrouped copy computes the masked original; it is then grouped
    in place, its own forward (its padding) kept. Anything else needs its own kind
    (:func:`register_layer_kind`)."""
    kind = _registered_kind(m)
    if kind is None and isinstance(m, _CONV_TYPES) and honours_groups(m):
        base = next(t for t in _CONV_TYPES if isinstance(m, t))
        kind = next(k for k in KINDS if base in k.types)
    return kind


def _registered_kind(m: nn.Module) -> LayerKind | None:
    return next((k for k in KINDS if any(_keeps_forward(m, t) for t in k.types)), None)


#: Verdicts of :func:`honours_groups`, per subclass (its forward decides, not its weights).
_HONOURS: dict[type, bool] = {}


def honours_groups(m: nn.Module) -> bool:
    """Whether a convolution subclass with its own ``forward`` can be regrouped in place: a copy
    of ``m`` with 4 channels each way, ``groups=2`` and block weights must compute what the same
    copy computes with ``groups=1`` and the off-block weights zeroed, on a random input. The
    verdict is the class's (its forward decides), found once from whichever layer is asked first."""
    cls = type(m)
    if parametrize.is_parametrized(m):  # a masked layer's class is generated: judge the layer's own
        cls = cls.__bases__[0]
    if cls not in _HONOURS:
        _HONOURS[cls] = _probe_groups(m)
    return _HONOURS[cls]


def _probe_groups(m: Any) -> bool:
    probe = copy.deepcopy(m).float().eval()
    if parametrize.is_parametrized(probe):
        parametrize.remove_parametrizations(probe, "weight")
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(4, 4, *m.kernel_size, generator=gen)
    blocks = torch.arange(4) // 2
    mask = (blocks[:, None] == blocks[None, :]).view(4, 4, *([1] * len(m.kernel_size)))
    size = [max(8, 2 * (d * (k - 1) + 1) + s) for k, s, d in zip(m.kernel_size, m.stride, m.dilation)]
    x = torch.randn(1, 4, *size, generator=gen)
    try:
        with torch.no_grad():
            probe.in_channels, probe.out_channels, probe.groups = 4, 4, 1
            probe.weight = nn.Parameter(W * mask)
            if probe.bias is not None:
                probe.bias = nn.Parameter(torch.randn(4, generator=gen))
            want = probe(x)
            got = _grouped_conv(probe, 2, [W[:2, :2], W[2:, 2:]])(x)
    except Exception:  # noqa: BLE001  a forward that cannot take groups is a "no"
        return False
    return bool(got.shape == want.shape and torch.allclose(got, want, rtol=1e-4, atol=1e-5))


def _keeps_forward(m: nn.Module, t: type) -> bool:
    return isinstance(m, t) and getattr(type(m), "forward") is getattr(t, "forward")


def own_forward(m: nn.Module) -> type | None:
    """The registered type ``m`` subclasses while overriding its ``forward``, or None."""
    return next((t for k in KINDS for t in k.types if isinstance(m, t) and not _keeps_forward(m, t)), None)


def counted_kind(m: nn.Module) -> LayerKind | None:
    """The kind whose parameters and MACs :func:`permopt.nn.count` reports (groupable or not)."""
    # no probe here (it runs a forward, and this is asked while torch.fx traces)
    return _registered_kind(m) or next((k for k in KINDS + [COUNTED_ONLY] if isinstance(m, k.types)), None)


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
