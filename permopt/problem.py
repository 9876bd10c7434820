"""The layer problem: keep the most score mass inside ``G`` diagonal blocks.

:class:`GroupingProblem` holds a validated score matrix ``S (F, C)`` and a group count
``G``; everything a solver needs (objective, one-hot helpers, certified bound) lives here.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import numpy as np

from .criteria import Criterion, scores_from_weight


def validate_scores(scores: Any) -> np.ndarray:
    """Return ``scores`` as a read-only float64 (F, C) copy, or raise a clear error.

    A copy, because problems cache their total and bounds: a caller reusing one buffer for
    every layer would otherwise get kept mass from new scores and totals from old ones."""
    if hasattr(scores, "detach"):  # a torch tensor, without importing torch here
        if getattr(scores, "is_meta", False):
            raise ValueError("scores is a tensor on the meta device (no values); materialise the model first")
        if getattr(scores, "layout", None) is not None and "strided" not in str(scores.layout):
            scores = scores.to_dense()
        scores = scores.detach().cpu()
        scores = (scores.double() if scores.is_floating_point() else scores).numpy()  # bfloat16 has no numpy twin
    try:
        raw = np.asarray(scores)
    except (TypeError, ValueError) as e:
        raise _not_numeric(scores, e) from None
    if np.iscomplexobj(raw):  # before the float conversion, which would drop the imaginary parts
        raise TypeError("scores must be real; got complex values (take np.abs or the real part yourself)")
    try:
        S = raw.astype(np.float64)  # always a copy: never the caller's buffer (nor a tensor's memory)
    except (TypeError, ValueError) as e:
        raise _not_numeric(scores, e) from None
    if S.ndim != 2:
        raise ValueError(
            f"scores must be a 2-D (F, C) matrix, got shape {S.shape}; "
            "for a weight tensor use GroupingProblem.from_weight (2-D or 4-D)")
    if S.size == 0:
        raise ValueError(f"scores must not be empty, got shape {S.shape}")
    if not np.isfinite(S).all():
        raise ValueError(f"scores contain {int((~np.isfinite(S)).sum())} NaN/inf entries; all must be finite")
    if (S < 0).any():
        raise ValueError(f"scores must be non-negative (min is {S.min():g}); use a criterion such as 'l2' or 'l1'")
    with np.errstate(over="ignore"):
        total = S.sum()
    if not np.isfinite(total):
        raise ValueError(f"scores sum past the float range (largest {S.max():g}); divide them by a constant "
                         "first (groupings and ratios do not change)")
    S.flags.writeable = False
    return S


def _not_numeric(scores: Any, e: Exception) -> TypeError:
    """The error for scores numpy cannot read as numbers (naming a ragged list as such)."""
    ragged = " (rows of different lengths?)" if "inhomogeneous" in str(e) else ""
    return TypeError(f"scores must be a numeric 2-D array, got {type(scores).__name__}{ragged}: {e}")


@contextmanager
def about_layer(name: str | None) -> Iterator[None]:
    """Prefix a TypeError/ValueError raised inside with ``layer 'name': `` (nothing when ``name`` is None)."""
    try:
        yield
    except (TypeError, ValueError) as e:
        if name is None:
            raise
        raise type(e)(f"layer {name!r}: {e}") from None


def validate_groups(groups: object, F: int, C: int) -> int:
    """Return ``groups`` as an int that divides both ``F`` and ``C``, or raise."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"groups must be an int, got {type(groups).__name__}")
    G = int(groups)
    if G < 1:
        raise ValueError(f"groups must be >= 1, got {G}")
    if F % G or C % G:
        divisors = [d for d in range(1, min(F, C) + 1) if F % d == 0 and C % d == 0]
        raise ValueError(f"groups={G} must divide both F={F} and C={C}; allowed: {divisors}")
    return G


def validate_labels(labels: object, n: int, G: int, what: str, removable: bool = False) -> np.ndarray:
    """Balanced group labels: ``n`` integers in ``[0, G)``, the same number in each group; as
    int64, or a ValueError naming ``what``. ``removable``: channels labelled ``-1`` (removed
    altogether, :data:`permopt.solution.REMOVED`) are allowed and the rest are balanced."""
    try:
        a = np.asarray(labels)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} must be an array of integers: {e}") from None
    if a.shape != (n,):
        raise ValueError(f"{what} must have shape ({n},), got {a.shape}")
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{what} must hold integers, got dtype {a.dtype}")
    if not np.issubdtype(a.dtype, np.integer) and not (np.isfinite(a).all() and np.array_equal(a, np.round(a))):
        raise ValueError(f"{what} must hold integers")
    low = -1 if removable else 0
    if a.min() < low or a.max() >= G:
        raise ValueError(f"{what} values must lie in [{low}, {G}), got [{a.min()}, {a.max()}]")
    a = a.astype(np.int64)
    kept = int(np.count_nonzero(a >= 0))
    counts = np.bincount(a[a >= 0], minlength=G)
    if kept == 0 or (counts != kept // G).any():
        raise ValueError(f"{what} must put exactly {max(kept // G, 1)} {'kept channels ' if removable else ''}per "
                         f"group (the same number in each of the {G} groups, at least one), got counts "
                         f"{counts.tolist()}")
    return a


def one_hot(labels: np.ndarray, G: int) -> np.ndarray:
    """``(n, G)`` float indicator matrix of integer ``labels``."""
    out = np.zeros((labels.shape[0], G))
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


class GroupingProblem:
    """Maximise the score kept inside ``G`` matched row/column groups of equal size.

    Parameters
    ----------
    scores : (F, C) array-like, non-negative and finite.
    groups : int, divides ``F`` and ``C``.
    name : optional label (e.g. the layer's qualified name).
    """

    def __init__(self, scores: Any, groups: int, name: str | None = None) -> None:
        with about_layer(name):
            self.scores = validate_scores(scores)
            self.F, self.C = self.scores.shape
            self.groups = validate_groups(groups, self.F, self.C)
        self.name = name

    @classmethod
    def coerce(cls, scores: Any, groups: int | None) -> "GroupingProblem":
        """``scores`` if it is a problem (``groups`` must then be None or agree), else a new problem."""
        if isinstance(scores, GroupingProblem):
            if groups is not None and groups != scores.groups:
                raise ValueError(f"groups={groups} differs from the problem's groups={scores.groups}")
            return scores
        if groups is None:
            raise ValueError("groups is required when scores is a matrix")
        return cls(scores, groups)

    @classmethod
    def from_weight(cls, weight: Any, groups: int, criterion: str | Criterion = "l2", grad: Any = None,
                    name: str | None = None) -> "GroupingProblem":
        """Build from a weight tensor ``(F, C)`` or ``(F, C, kh, kw)`` and a criterion."""
        return cls(scores_from_weight(weight, criterion, grad), groups, name=name)

    @property
    def rows_per_group(self) -> int:
        return self.F // self.groups

    @property
    def cols_per_group(self) -> int:
        return self.C // self.groups

    @cached_property
    def total(self) -> float:
        """Total score mass ``S.sum()``."""
        return float(self.scores.sum())

    def block_sums(self, row_groups: np.ndarray, col_groups: np.ndarray) -> np.ndarray:
        """``(G, G)`` matrix: mass between row group ``i`` and column group ``j``."""
        G = self.groups
        return one_hot(row_groups, G).T @ self.scores @ one_hot(col_groups, G)

    def kept(self, row_groups: np.ndarray, col_groups: np.ndarray) -> float:
        """Mass kept by a solution: the sum of ``S[f, c]`` with equal row and column group."""
        return float(np.trace(self.block_sums(row_groups, col_groups)))

    def check(self, row_groups: object, col_groups: object) -> tuple[np.ndarray, np.ndarray]:
        """Validate a candidate solution; return it as int arrays or raise ValueError."""
        return (validate_labels(row_groups, self.F, self.groups, "row_groups"),
                validate_labels(col_groups, self.C, self.groups, "col_groups"))

    def check_pair(self, groups: Any, what: str = "start", also: str = "") -> tuple[np.ndarray, np.ndarray]:
        """:meth:`check` of a Solution (anything with ``row_groups``/``col_groups``) or a
        ``(row_groups, col_groups)`` pair; anything else is a ValueError naming ``what`` (and the
        ``also`` accepted forms the caller handled itself)."""
        if hasattr(groups, "row_groups"):
            return self.check(groups.row_groups, groups.col_groups)
        if isinstance(groups, (str, bytes)) or not hasattr(groups, "__len__") or len(groups) != 2:
            raise ValueError(f"{what} must be {also}a Solution or a (row_groups, col_groups) pair, got {groups!r:.60}")
        return self.check(*groups)

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"GroupingProblem{label}(F={self.F}, C={self.C}, groups={self.groups})"
