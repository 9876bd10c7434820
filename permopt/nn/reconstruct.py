"""Layer-wise reconstruction: with the groups fixed, each output channel's kept weights are an
ordinary ridge regression on its group's inputs (``../shared/DESIGN.md`` §7; ThiNet, OBC).

Layers are refitted in forward order on calibration data: the inputs come from the masked
model with every earlier layer already refitted, the targets are the dense layer's outputs on
the dense model's inputs, so each layer also corrects what the layers before it lost. Only the
kept (in-block) weights change; the biases stay.

The ridge term pulls toward the masked dense weights ``w₀``, not toward zero:
``min ||A w − b||² + λ ||w − w₀||²``. So the refit never has a larger error on its own data
than the masked weights (``w₀`` is a candidate of the same objective), and a strong ``λ``
falls back to them where the data are too few to trust. ``λ`` is chosen per layer by held-out
error: the samples are split in two halves (even and odd), each half's fit is scored on the
other, over :data:`RIDGE_GRID` and "keep ``w₀``"; the winner is refitted on all of them.

Cost: two forward passes of the calibration data per grouped layer (dense and masked model),
and a few ``(C/G·k) × (C/G·k)`` solves per group.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..plan import LayerPlan, Plan
from ..progress import progress_bar
from .calibration import POSITIONS, batches, sampled_positions
from .capture import catching
from .hooks import evaluating

#: Ridge strengths tried, relative to the mean diagonal of each group's normal equations.
RIDGE_GRID = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def reconstruct(dense: nn.Module, masked: nn.Module, plan: Plan, calibration: torch.Tensor | Iterable[Any], *,
                ridge: float | None = None, positions: int = POSITIONS, seed: int = 0,
                batch_size: int = 128, progress: bool = False) -> dict[str, dict[str, float]]:
    """Refit the kept weights of every grouped layer of ``masked`` (a masked copy of ``dense``
    under ``plan``, changed in place) to reproduce ``dense``'s layer outputs on ``calibration``
    (read once per layer; ``positions`` output positions per sample of a convolution, drawn
    reproducibly from ``seed``). ``ridge`` fixes the relative ridge strength instead of
    choosing it by held-out error.

    Returns, per layer, the relative output error of the masked weights and of the refitted
    ones on that data (``before`` / ``after``, ``after <= before``), and the chosen ``ridge``
    (``inf``: the masked weights were kept)."""
    names = list(plan.pruned())
    report = {}
    bar = progress_bar(len(names), "reconstructing layers", "layer", progress)
    for i, name in enumerate(names):
        folds = _normal_equations(dense, masked, name, calibration, np.random.default_rng([seed, i]), positions,
                                  batch_size)
        report[name] = _refit(masked.get_submodule(name), plan.layers[name], folds, ridge)
        if bar:
            bar.update()
    if bar:
        bar.close()
    return report


def _normal_equations(dense: nn.Module, masked: nn.Module, name: str, data: Any, rng: np.random.Generator,
                      positions: int, batch_size: int) -> list[dict[str, Any]]:
    """``AᵀA``, ``AᵀB`` and ``BᵀB`` per half of the samples (even, odd) for layer ``name``:
    inputs from the masked model, targets (minus the bias) from the dense one, at the same
    sampled positions."""
    bias = getattr(dense.get_submodule(name), "bias", None)
    folds: list[dict[str, Any]] = [{"AtA": 0, "AtB": 0, "BtB": 0, "rows": 0} for _ in range(2)]
    seen = 0
    with catching(dense, [name]) as d_calls, catching(masked, [name]) as m_calls, evaluating(dense), \
            evaluating(masked):
        for x in batches(data, batch_size):
            dense(x)
            masked(x)
            if name not in d_calls or name not in m_calls:
                raise ValueError(f"layer {name!r} did not run on the calibration data")
            take = sampled_positions(d_calls[name], rng, positions)
            a, _ = m_calls[name].rows(take)
            _, b = d_calls[name].rows(take)
            a, b = a.double(), b.double() - (bias.detach().double() if bias is not None else 0)
            per = a.shape[0] // x.shape[0]
            sample_fold = (seen + torch.arange(x.shape[0])) % 2
            row_fold = sample_fold.repeat_interleave(per)
            for f in (0, 1):
                af, bf = a[row_fold == f], b[row_fold == f]
                folds[f]["AtA"] = folds[f]["AtA"] + af.T @ af
                folds[f]["AtB"] = folds[f]["AtB"] + af.T @ bf
                folds[f]["BtB"] = folds[f]["BtB"] + (bf * bf).sum(0)
                folds[f]["rows"] += af.shape[0]
            seen += x.shape[0]
    return folds


def _error(w: torch.Tensor, A: torch.Tensor, B: torch.Tensor, BtB: torch.Tensor) -> float:
    """``||A w − b||²`` from the normal equations (``w``: ``(C_g·k, F_g)``)."""
    return float((w * (A @ w)).sum() - 2 * (w * B).sum() + BtB.sum())


def _fit(A: torch.Tensor, B: torch.Tensor, w0: torch.Tensor, rel: float) -> torch.Tensor:
    lam = rel * float(torch.diagonal(A).mean()) if A.numel() else 0.0
    lam = max(lam, 1e-300)
    return torch.linalg.solve(A + lam * torch.eye(A.shape[0], dtype=A.dtype), B + lam * w0)


def _group_systems(W: torch.Tensor, lp: LayerPlan, folds: list[dict[str, Any]]) -> list[tuple]:
    """Per group: ``(rows, channels, index, w₀, [(A, B, BᵀB) per fold])``."""
    k = int(np.prod(W.shape[2:])) if W.dim() > 2 else 1
    out = []
    for g in range(lp.groups):
        rows = torch.as_tensor(np.flatnonzero(lp.row_groups == g))
        chans = np.flatnonzero(lp.col_groups == g)
        idx = torch.as_tensor((chans[:, None] * k + np.arange(k)[None, :]).reshape(-1))
        w0 = W[rows][:, torch.as_tensor(chans)].reshape(len(rows), -1).T  # (C_g·k, F_g)
        systems = [(f["AtA"][idx][:, idx], f["AtB"][idx][:, rows], f["BtB"][rows]) for f in folds]
        out.append((rows, chans, w0, systems))
    return out


def _choose_ridge(groups: list[tuple], folds: list[dict[str, Any]]) -> float:
    """The relative ridge (or ``inf``: keep ``w₀``) with the least held-out error, each half's fit
    scored on the other half."""
    if min(f["rows"] for f in folds) == 0:
        return RIDGE_GRID[1]  # one sample: nothing to hold out
    scores = {}
    for rel in (*RIDGE_GRID, float("inf")):
        total = 0.0
        for _, _, w0, systems in groups:
            for fit_on, score_on in ((0, 1), (1, 0)):
                w = w0 if rel == float("inf") else _fit(systems[fit_on][0], systems[fit_on][1], w0, rel)
                total += _error(w, *systems[score_on])
        scores[rel] = total
    return min(scores, key=lambda r: (scores[r], -r))  # ties: the stronger pull toward w₀


def _refit(m: Any, lp: LayerPlan, folds: list[dict[str, Any]], ridge: float | None) -> dict[str, float]:
    """Solve each group's ridge regression and write the kept weights into the mask's original."""
    original = m.parametrizations["weight"].original
    W = original.detach().double().clone()
    groups = _group_systems(W, lp, folds)
    rel = _choose_ridge(groups, folds) if ridge is None else float(ridge)
    before = after = total = 0.0
    for rows, chans, w0, systems in groups:
        A, B, BtB = (s0 + s1 for s0, s1 in zip(*systems))
        w = w0 if rel == float("inf") else _fit(A, B, w0, rel)
        before += _error(w0, A, B, BtB)
        after += _error(w, A, B, BtB)
        total += float(BtB.sum())
        W[rows[:, None], torch.as_tensor(chans)[None, :]] = w.T.reshape(len(rows), len(chans), *W.shape[2:])
    with torch.no_grad():
        original.copy_(W.to(original.dtype))
    total = total or 1.0
    return {"before": float(np.sqrt(max(before, 0.0) / total)), "after": float(np.sqrt(max(after, 0.0) / total)),
            "ridge": rel}
