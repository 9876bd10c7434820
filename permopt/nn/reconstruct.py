"""Layer-wise reconstruction: with the groups fixed, each output channel's kept weights are an
ordinary ridge regression on its group's inputs (``../shared/DESIGN.md`` §7; ThiNet, OBC).

Layers are refitted in forward order on calibration data: the inputs come from the masked
model with every earlier layer already refitted, the targets are the dense layer's outputs on
the dense model's inputs, so each layer also corrects what the layers before it lost. Only the
kept (in-block) weights change; the biases stay. Cost: two forward passes of the calibration
data per grouped layer (dense and masked model), and one ``(C/G·k) × (C/G·k)`` solve per group.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import nn

from ..plan import LayerPlan, Plan
from .calibration import batches
from .hooks import evaluating, recording

#: Ridge strength relative to the mean diagonal of the normal equations (scale-free).
RIDGE = 1e-4
#: Output positions sampled per image of a convolution (all of them for linear layers).
POSITIONS = 64


def reconstruct(dense: nn.Module, masked: nn.Module, plan: Plan, calibration: torch.Tensor | Iterable[Any], *,
                ridge: float = RIDGE, positions: int = POSITIONS, seed: int = 0,
                batch_size: int = 128) -> dict[str, dict[str, float]]:
    """Refit the kept weights of every grouped layer of ``masked`` (a masked copy of ``dense``
    under ``plan``, changed in place) to reproduce ``dense``'s layer outputs on ``calibration``.

    Returns, per layer, the relative output error of the masked weights and of the refitted
    ones on that data (``before`` / ``after``; the refit minimises the ridge objective, so
    ``after`` is not above ``before`` beyond the small ridge term)."""
    data = list(batches(calibration, batch_size))
    report = {}
    for name, lp in plan.pruned().items():
        stats = _normal_equations(dense, masked, name, lp, data, positions, seed)
        report[name] = _refit(masked.get_submodule(name), lp, stats, ridge)
    return report


def _columns(m: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator,
             positions: int) -> tuple[torch.Tensor, ...]:
    """Rows of the regression for one batch: ``(inputs (M, C·k), targets (M, F))``."""
    if isinstance(m, nn.Conv2d):
        if isinstance(m.padding, str) or m.padding_mode != "zeros":
            raise ValueError(f"reconstruction needs a Conv2d with numeric zero padding, got padding={m.padding!r}, "
                             f"padding_mode={m.padding_mode!r}")
        cols = Fn.unfold(x, m.kernel_size, m.dilation, m.padding, m.stride)  # (N, C·kh·kw, P)
        P = cols.shape[-1]
        take = torch.as_tensor(np.sort(rng.choice(P, min(P, positions), replace=False)))
        a = cols[:, :, take].transpose(1, 2).reshape(-1, cols.shape[1])
        b = y.flatten(2)[:, :, take].transpose(1, 2).reshape(-1, y.shape[1])
        return a, b
    if not isinstance(m, nn.Linear):
        raise ValueError(f"reconstruction supports Conv2d and Linear layers, not {type(m).__name__}")
    return x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])


def _normal_equations(dense: nn.Module, masked: nn.Module, name: str, lp: LayerPlan, data: list[torch.Tensor],
                      positions: int, seed: int) -> dict[str, Any]:
    """``AᵀA``, ``AᵀB`` and ``BᵀB`` over the calibration data for layer ``name``: inputs from the
    masked model, targets (minus the bias) from the dense one, at the same sampled positions."""
    rng = np.random.default_rng(seed)
    seen: dict[str, torch.Tensor] = {}
    d_mod, m_mod = dense.get_submodule(name), masked.get_submodule(name)
    stats: dict[str, Any] = {"AtA": 0, "AtB": 0, "BtB": 0}
    bias = getattr(d_mod, "bias", None)

    def grab(key: str) -> Callable[[str, nn.Module, tuple, Any], None]:
        def record(_: str, module: nn.Module, inputs: tuple, output: Any) -> None:
            seen[key] = inputs[0] if key == "x" else output
        return record
    with recording(dense, lambda m: m is d_mod, grab("y")), recording(masked, lambda m: m is m_mod, grab("x")), \
            evaluating(dense), evaluating(masked):
        for x in data:
            dense(x)
            masked(x)
            y = seen["y"] - (bias.view(1, -1, *([1] * (seen["y"].dim() - 2))) if bias is not None else 0)
            a, b = (t.double() for t in _columns(d_mod, seen["x"], y, rng, positions))
            stats["AtA"] = stats["AtA"] + a.T @ a
            stats["AtB"] = stats["AtB"] + a.T @ b
            stats["BtB"] = stats["BtB"] + (b * b).sum(0)
    return stats


def _refit(m: Any, lp: LayerPlan, stats: dict[str, Any], ridge: float) -> dict[str, float]:
    """Solve each group's ridge regression and write the kept weights into the mask's original."""
    original = m.parametrizations["weight"].original
    W = original.detach().double().clone()
    k = int(np.prod(W.shape[2:])) if W.dim() > 2 else 1
    AtA, AtB, BtB = stats["AtA"], stats["AtB"], stats["BtB"]
    before = after = 0.0
    for g in range(lp.groups):
        rows = torch.as_tensor(np.flatnonzero(lp.row_groups == g))
        chans = np.flatnonzero(lp.col_groups == g)
        idx = torch.as_tensor((chans[:, None] * k + np.arange(k)[None, :]).reshape(-1))
        A, B = AtA[idx][:, idx], AtB[idx][:, rows]
        w_old = W[rows][:, torch.as_tensor(chans)].reshape(len(rows), -1).T  # (C_g·k, F_g)
        lam = ridge * float(torch.diagonal(A).mean()) if A.numel() else 0.0
        w_new = torch.linalg.solve(A + lam * torch.eye(A.shape[0], dtype=A.dtype), B)
        before += float((w_old * (A @ w_old)).sum() - 2 * (w_old * B).sum() + BtB[rows].sum())
        after += float((w_new * (A @ w_new)).sum() - 2 * (w_new * B).sum() + BtB[rows].sum())
        block = w_new.T.reshape(len(rows), len(chans), *W.shape[2:])
        W[rows[:, None], torch.as_tensor(chans)[None, :]] = block
    with torch.no_grad():
        original.copy_(W.to(original.dtype))
    total = float(BtB.sum()) or 1.0
    return {"before": float(np.sqrt(max(before, 0.0) / total)), "after": float(np.sqrt(max(after, 0.0) / total))}
