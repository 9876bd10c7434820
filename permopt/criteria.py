"""Criteria: how a weight tensor becomes a non-negative score matrix ``S (F, C)``.

A criterion takes a weight of shape ``(F, C)`` or ``(F, C, kh, kw)`` (and, for
``taylor``, its gradient) and returns one score per (output, input) channel pair.
Users register their own with :func:`register_criterion`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .registry import Registry

Criterion = Callable[..., np.ndarray]
#: Criteria computed from calibration data, not from a weight alone: see :mod:`permopt.nn.calibration`.
DATA_CRITERIA = ("activation", "hessian")
CRITERIA = Registry("criterion")


def register_criterion(name: str, fn: Criterion | None = None, *, overwrite: bool = False) -> Any:
    """Register ``fn(weight, grad=None) -> (F, C) array`` under ``name`` (usable as a decorator).

    A name already taken is refused unless ``overwrite=True``.
    """
    return CRITERIA.register(name, fn, overwrite=overwrite)


def available_criteria() -> list[str]:
    """Names of the registered criteria."""
    return CRITERIA.available()


def _as_numpy(t: Any, what: str) -> np.ndarray:
    if hasattr(t, "detach"):  # torch tensor, without importing torch here
        t = t.detach().cpu().numpy()
    a = np.asarray(t, dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"{what} must be 2-D (F, C) or more (F, C, *kernel: 3-D for Conv1d, 4-D for Conv2d, 5-D "
                         f"for Conv3d), got shape {a.shape}")
    return a


def _kernel_axes(a: np.ndarray) -> tuple[int, ...]:
    return tuple(range(2, a.ndim))


@register_criterion("l2")
def l2(weight: Any, grad: Any = None) -> np.ndarray:
    """Per-kernel L2 norm ``||W[f, c]||_2`` (the paper's default)."""
    w = _as_numpy(weight, "weight")
    return np.sqrt((w * w).sum(axis=_kernel_axes(w))) if w.ndim > 2 else np.abs(w)


@register_criterion("l1")
def l1(weight: Any, grad: Any = None) -> np.ndarray:
    """Per-kernel L1 norm ``sum |W[f, c]|``."""
    w = np.abs(_as_numpy(weight, "weight"))
    return w.sum(axis=_kernel_axes(w)) if w.ndim > 2 else w


@register_criterion("taylor")
def taylor(weight: Any, grad: Any = None) -> np.ndarray:
    """First-order Taylor importance ``sum |W * dL/dW|`` over each kernel (needs ``grad``)."""
    if grad is None:
        raise ValueError("criterion 'taylor' needs the gradient: pass grad= (same shape as the weight)")
    w, g = _as_numpy(weight, "weight"), _as_numpy(grad, "grad")
    if w.shape != g.shape:
        raise ValueError(f"grad shape {g.shape} differs from weight shape {w.shape}")
    t = np.abs(w * g)
    return t.sum(axis=_kernel_axes(t)) if t.ndim > 2 else t


def scores_from_weight(weight: Any, criterion: str | Criterion = "l2", grad: Any = None) -> np.ndarray:
    """Apply a criterion (a registered name or a callable) to a weight tensor or array."""
    fn = criterion if callable(criterion) else CRITERIA.get(criterion).fn
    return fn(weight, grad=grad) if grad is not None else fn(weight)
