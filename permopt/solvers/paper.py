"""The paper's heuristics (Zhao & Luk 2019): SAME, SORT, GRPS and the MBM re-pairing.

These are the baselines; they follow DESIGN §1 exactly.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..problem import GroupingProblem
from .registry import register


def contiguous_groups(order: np.ndarray, G: int) -> np.ndarray:
    """Labels that put ``order[i]`` into group ``i // (n/G)``."""
    n = order.shape[0]
    labels = np.empty(n, dtype=np.int64)
    labels[order] = np.arange(n) // (n // G)
    return labels


def mbm(problem: GroupingProblem, row_groups: np.ndarray, col_groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Re-pair row groups with column groups by a max-weight matching of the block sums.

    Never lowers ``kept``: the current pairing is one of the matchings considered.
    """
    B = problem.block_sums(row_groups, col_groups)
    rows, cols = linear_sum_assignment(B, maximize=True)
    relabel = np.empty(problem.groups, dtype=np.int64)
    relabel[cols] = rows  # column group cols[i] now pairs with row group rows[i]
    return row_groups, relabel[col_groups]


@register("same")
def same(problem: GroupingProblem, *, time_limit=None, seed=None):
    """SAME: identity permutations (a plain group convolution)."""
    return (np.arange(problem.F) // problem.rows_per_group, np.arange(problem.C) // problem.cols_per_group)


@register("sort")
def sort(problem: GroupingProblem, *, time_limit=None, seed=None):
    """SORT: rows by row sums and columns by column sums (ascending), grouped contiguously."""
    S, G = problem.scores, problem.groups
    return (contiguous_groups(np.argsort(S.sum(1), kind="stable"), G),
            contiguous_groups(np.argsort(S.sum(0), kind="stable"), G))


def grps_perms(S: np.ndarray, G: int, n_iter: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """GRPS row and column orders: fix the last diagonal block, then recurse on the leading part."""
    F, C = S.shape
    fg, cg = F // G, C // G
    rperm, cperm = np.arange(F), np.arange(C)
    for g in range(G - 1, -1, -1):
        nr, nc = (g + 1) * fg, (g + 1) * cg
        for _ in range(n_iter):
            band = S[rperm[nr - fg:nr]][:, cperm[:nc]].sum(axis=0)  # column sums over group g's rows
            cperm[:nc] = cperm[:nc][np.argsort(band, kind="stable")]
            slot = S[rperm[:nr]][:, cperm[nc - cg:nc]].sum(axis=1)  # row sums over group g's columns
            rperm[:nr] = rperm[:nr][np.argsort(slot, kind="stable")]
    return rperm, cperm


@register("grps")
def grps(problem: GroupingProblem, *, time_limit=None, seed=None, n_iter: int = 10, repair: bool = True):
    """GRPS: the paper's group sort (``n_iter`` passes per block), followed by MBM re-pairing."""
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive int, got {n_iter!r}")
    G = problem.groups
    rperm, cperm = grps_perms(problem.scores, G, int(n_iter))
    r, c = contiguous_groups(rperm, G), contiguous_groups(cperm, G)
    return mbm(problem, r, c) if repair else (r, c)
