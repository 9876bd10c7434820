"""The reversible mask stage: keep dense layers, zero the weights outside the kept blocks.

Like ``torch.nn.utils.prune``, the mask is a parametrization: the effective weight is
``original * mask``, so pruned weights stay zero through training (their gradients are
zero) and :func:`remove_masks` either bakes the zeros in or restores the dense weights.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..plan import Plan


class BlockMask(nn.Module):
    """Parametrization ``W ↦ W * mask`` with ``mask (F, C)`` broadcast over the kernel."""

    mask: torch.Tensor

    def __init__(self, mask: Any, weight_ndim: int) -> None:
        super().__init__()
        m = torch.as_tensor(mask, dtype=torch.float32)
        self.register_buffer("mask", m.reshape(*m.shape, *([1] * (weight_ndim - 2))))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask.to(weight.dtype)


def _module(model: nn.Module, name: str) -> Any:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise KeyError(f"the model has no module {name!r}") from None


def apply_masks(model: nn.Module, plan: Plan) -> nn.Module:
    """Mask every pruned layer of ``plan`` in place (dense modules stay); returns ``model``."""
    for name, lp in plan.pruned().items():
        m = _module(model, name)
        w = m.weight
        if tuple(w.shape[:2]) != (lp.row_groups.size, lp.col_groups.size):
            raise ValueError(f"layer {name!r}: weight {tuple(w.shape)} does not match the plan "
                             f"({lp.row_groups.size} out, {lp.col_groups.size} in channels)")
        if parametrize.is_parametrized(m, "weight"):
            raise ValueError(f"layer {name!r} is already masked; call remove_masks first")
        parametrize.register_parametrization(m, "weight", BlockMask(lp.mask(), w.ndim))
    return model


def _masked_modules(model: nn.Module) -> list[Any]:
    mods: list[Any] = list(model.modules())
    return [m for m in mods if parametrize.is_parametrized(m, "weight")
            and any(isinstance(p, BlockMask) for p in m.parametrizations["weight"])]


def remove_masks(model: nn.Module, bake: bool = True) -> nn.Module:
    """Remove every :class:`BlockMask` in place: ``bake=True`` keeps the zeros, ``False`` restores dense weights.

    Unlike ``parametrize.remove_parametrizations`` this never edits the parametrized class
    itself, which deep copies of the model share, so copies stay intact.
    """
    for m in _masked_modules(model):
        if len(m.parametrizations) != 1 or len(m.parametrizations["weight"]) != 1:
            raise ValueError("remove_masks handles modules whose only parametrization is permopt's mask")
        value = m.weight if bake else m.parametrizations["weight"].original
        value = nn.Parameter(value.detach().clone(), requires_grad=m.parametrizations["weight"].original.requires_grad)
        del m._modules["parametrizations"]
        m.__class__ = type(m).__bases__[0]  # parametrize subclasses the module's class once per module
        m.register_parameter("weight", value)
    return model


def is_masked(model: nn.Module) -> bool:
    """Whether any layer of ``model`` carries a :class:`BlockMask`."""
    return bool(_masked_modules(model))
