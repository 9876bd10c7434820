"""Grouped ridge regressions: one grouped layer's normal equations, accumulated per group and per
random half of the samples, and their fits toward the masked weights (``../shared/DESIGN.md`` §7).

With the groups fixed, each output channel's kept weights are an ordinary least-squares problem
on its group's inputs. A layer's groups are balanced (``C/G`` inputs and ``F/G`` outputs each),
so all of them are held as one batch — ``AᵀA`` is ``(G, n, n)`` with ``n = C/G·k`` — and every
product, factorisation and solve below runs on the whole batch at once: ``1/G`` of the work of
the full ``(C·k)²`` equations, in torch ops that use every core.

The fit is ``min ||A w + c − b||² + λ ||w − w₀||²`` with an unpenalised per-output offset ``c``
(the intercept, when the layer has somewhere to put it), solved by eliminating ``c`` (centring)
and one eigendecomposition of each group's centred ``AᵀA``, shared by every ``λ`` of the ridge
grid: ``w(λ) = V (Vᵀ B + λ Vᵀ w₀) / (s + λ)``.

Precision: each batch's products are formed in float32 (the activations' own precision, about
half the time of float64) and summed over batches in float64. :meth:`GroupEquations.add` measures
the relative rounding ``ε`` that adds on the first batch (its product formed in both precisions).
What a fit is for is a small output error, and a perturbation ``δA`` of the equations (``||δA|| ≤
ε ||A||``) raises the true error of the fit by ``(δA w)ᵀ (A + λ)⁻¹ (δA w)``: at most about
``ε² · cond(A + λ)`` of the output energy. Where that could pass :data:`FLOAT32_TOLERANCE`
(:func:`needs_float64`) the caller accumulates the layer again in float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: Ridge strengths tried, relative to the mean diagonal of each group's normal equations.
RIDGE_GRID = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: The ridge "keep the masked weights" (no refit).
KEEP = float("inf")
#: Largest share of the output energy float32 rounding may add to a fit's error (rounding² ×
#: condition number) before the layer is accumulated again in float64.
FLOAT32_TOLERANCE = 1e-6


@dataclass
class Equations:
    """The sums of one half of the samples, per group (float64): ``AtA (G, n, n)``,
    ``AtB (G, n, F_g)``, ``BtB (G, F_g)``, the column sums ``sa (G, n)`` and ``sb (G, F_g)``
    (the intercept's rows) and the number of rows."""

    AtA: torch.Tensor
    AtB: torch.Tensor
    BtB: torch.Tensor
    sa: torch.Tensor
    sb: torch.Tensor
    rows: int = 0

    @classmethod
    def zeros(cls, G: int, n: int, f: int) -> "Equations":
        z = torch.zeros
        return cls(z(G, n, n, dtype=torch.float64), z(G, n, f, dtype=torch.float64), z(G, f, dtype=torch.float64),
                   z(G, n, dtype=torch.float64), z(G, f, dtype=torch.float64))

    def __add__(self, other: "Equations") -> "Equations":
        return Equations(self.AtA + other.AtA, self.AtB + other.AtB, self.BtB + other.BtB, self.sa + other.sa,
                         self.sb + other.sb, self.rows + other.rows)


class GroupEquations:
    """Accumulates a grouped layer's normal equations per group and per half of the samples.

    ``channels (G, C_g)``: each group's input channels; ``outputs (G, F_g)``: each group's output
    channels; ``kernel``: patch offsets per channel; ``dtype``: the precision of each batch's
    products (float32 or float64)."""

    def __init__(self, channels: torch.Tensor, outputs: torch.Tensor, kernel: int,
                 dtype: torch.dtype = torch.float32) -> None:
        self.channels, self.outputs, self.dtype = channels, outputs, dtype
        G, n = channels.shape[0], channels.shape[1] * kernel
        self.folds = [Equations.zeros(G, n, outputs.shape[1]) for _ in range(2)]
        self.rounding = 0.0 if dtype == torch.float64 else None  # measured on the first batch

    def add(self, x: torch.Tensor, y: torch.Tensor, fold: int) -> None:
        """Add rows to half ``fold`` (0 or 1): inputs ``x (G, R, n)`` and targets ``y (G, R, F_g)``
        (bias removed), each group's columns only (:meth:`~permopt.nn.capture.LayerCall.grouped_rows`)."""
        x, y = x.to(self.dtype), y.to(self.dtype)
        eq = self.folds[fold]
        xtx = x.mT @ x
        if self.rounding is None:
            self.rounding = _rounding(x)
        eq.AtA += xtx
        eq.AtB += x.mT @ y
        eq.BtB += (y * y).sum(1, dtype=torch.float64)
        eq.sa += x.sum(1, dtype=torch.float64)
        eq.sb += y.sum(1, dtype=torch.float64)
        eq.rows += x.shape[1]


#: Rows and columns per group the rounding of float32 products is measured on (the measure is
#: scaled to a batch's rows).
ROUNDING_ROWS, ROUNDING_COLUMNS = 1024, 256


def _rounding(x: torch.Tensor) -> float:
    """The relative rounding of the float32 products ``xtx = xᵀx``: measured against float64 on
    the first :data:`ROUNDING_ROWS` rows and :data:`ROUNDING_COLUMNS` columns, scaled by the square
    root of the rows' ratio (rounding errors of a sum grow with the square root of its length)."""
    r = min(x.shape[1], ROUNDING_ROWS)
    part = x[:, :r, :ROUNDING_COLUMNS]
    exact = part.double()
    exact_p = exact.mT @ exact
    measured = float(((part.mT @ part).double() - exact_p).norm() / exact_p.norm().clamp_min(1e-300))
    return measured * (x.shape[1] / r) ** 0.5


def _centred(eq: Equations, intercept: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``AᵀA`` and ``AᵀB`` with the intercept eliminated (centred), or as they are."""
    if not intercept or eq.rows == 0:
        return eq.AtA, eq.AtB
    n = eq.rows
    return (eq.AtA - eq.sa[:, :, None] * eq.sa[:, None, :] / n,
            eq.AtB - eq.sa[:, :, None] * eq.sb[:, None, :] / n)


@dataclass
class Fitter:
    """The fits of one half (or all) of the samples for any ridge: one eigendecomposition per
    group, shared by every ``λ``."""

    eq: Equations
    w0: torch.Tensor  # (G, n, F_g), the masked dense weights
    intercept: bool

    def __post_init__(self) -> None:
        A, B = _centred(self.eq, self.intercept)
        s, self.V = torch.linalg.eigh(A)
        self.s = s.clamp_min(0.0)
        self.VB, self.Vw0 = self.V.mT @ B, self.V.mT @ self.w0
        self.scale = torch.diagonal(self.eq.AtA, dim1=1, dim2=2).mean(1)  # (G,) mean diagonal

    def lam(self, rel: float) -> torch.Tensor:
        """``λ`` per group (``(G, 1)``) for relative strength ``rel``."""
        return (rel * self.scale).clamp_min(1e-300)[:, None]

    def fit(self, rel: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w (G, n, F_g), c (G, F_g))`` for ridge ``rel`` (:data:`KEEP`: ``w₀`` and no offset)."""
        if rel == KEEP or self.eq.rows == 0:
            return Fitter.keep(self.w0)
        lam = self.lam(rel)
        w = self.V @ ((self.VB + lam[:, :, None] * self.Vw0) / (self.s + lam)[:, :, None])
        if not self.intercept:
            return w, torch.zeros_like(self.eq.sb)
        return w, (self.eq.sb - (self.eq.sa[:, None, :] @ w)[:, 0]) / self.eq.rows

    @staticmethod
    def keep(w0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The masked weights and no offset."""
        return w0, torch.zeros(w0.shape[0], w0.shape[2], dtype=w0.dtype)


def error(w: torch.Tensor, c: torch.Tensor, eq: Equations) -> float:
    """``||A w + c − b||²`` on the sums ``eq``, summed over groups and outputs."""
    Aw = eq.AtA @ w
    return float((w * Aw).sum() + 2 * (c * (eq.sa[:, None, :] @ w)[:, 0]).sum() + eq.rows * (c * c).sum()
                 - 2 * (w * eq.AtB).sum() - 2 * (c * eq.sb).sum() + eq.BtB.sum())


def choose_ridge(folds: list[Equations], w0: torch.Tensor, intercept: bool) -> tuple[float, list[Fitter]]:
    """The relative ridge (or :data:`KEEP`) with the least held-out error, each half's fit scored
    on the other half (ties go to the stronger pull toward ``w₀``), and the halves' fitters."""
    fitters = [Fitter(eq, w0, intercept) for eq in folds]
    scores = {rel: sum(error(*fitters[on].fit(rel), folds[1 - on]) for on in (0, 1)) for rel in (*RIDGE_GRID, KEEP)}
    return min(scores, key=lambda r: (scores[r], -r)), fitters


def fit_all(eq: Equations, w0: torch.Tensor, rel: float, intercept: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The fit for one ridge on all the samples: a Cholesky solve (an eigendecomposition where the
    system is not numerically positive definite)."""
    if rel == KEEP or eq.rows == 0:
        return Fitter.keep(w0)
    A, B = _centred(eq, intercept)
    lam = (rel * torch.diagonal(eq.AtA, dim1=1, dim2=2).mean(1)).clamp_min(1e-300)[:, None, None]
    L, info = torch.linalg.cholesky_ex(A + lam * torch.eye(A.shape[-1], dtype=A.dtype))
    if bool(info.any()):
        return Fitter(eq, w0, intercept).fit(rel)
    w = torch.cholesky_solve(B + lam * w0, L)
    c = (eq.sb - (eq.sa[:, None, :] @ w)[:, 0]) / eq.rows if intercept else torch.zeros_like(eq.sb)
    return w, c


def needs_float64(folds: list[Fitter], rel: float, rounding: float | None) -> bool:
    """Whether float32 rounding (``rounding``, relative, as measured) could add more than
    :data:`FLOAT32_TOLERANCE` of the output energy to the error of the fit on all the samples for
    ``rel`` (``rounding² × cond``); the condition number is bounded by the halves' eigenvalues
    (the sum's extreme eigenvalues lie within their sums)."""
    if rel == KEEP or not rounding:
        return False
    lam = sum(f.lam(rel) for f in folds)
    top = sum(f.s.max(1, keepdim=True).values for f in folds) + lam
    bottom = sum(f.s.min(1, keepdim=True).values for f in folds) + lam
    return rounding ** 2 * float((top / bottom).max()) > FLOAT32_TOLERANCE


def group_indices(row_groups: np.ndarray, col_groups: np.ndarray,
                  groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(channels (G, C/G), outputs (G, F/G))``: each group's input and output channels, for
    balanced labels."""
    chans = np.stack([np.flatnonzero(col_groups == g) for g in range(groups)])
    outs = np.stack([np.flatnonzero(row_groups == g) for g in range(groups)])
    return torch.as_tensor(chans), torch.as_tensor(outs)
