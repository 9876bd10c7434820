"""The paper's heuristics (Zhao & Luk 2019): SAME, SORT, GRPS and the MBM re-pairing.

These are the baselines and follow the paper's Algorithms 1 and 2 (and the authors' code)
exactly; GRPS is also the yardstick of speed, so it is written to be as fast as numpy allows.
"""
from __future__ import annotations

import numpy as np

from ..problem import GroupingProblem
from ..limits import validate_count
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
    from scipy.optimize import linear_sum_assignment  # here: `import permopt` stays fast

    rows, cols = linear_sum_assignment(B, maximize=True)
    relabel = np.empty(problem.groups, dtype=np.int64)
    relabel[cols] = rows  # column group cols[i] now pairs with row group rows[i]
    return row_groups, relabel[col_groups]


@register("same")
def same(problem: GroupingProblem, *, time_limit: float | None = None,
         seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """SAME: identity permutations (a plain group convolution)."""
    return (np.arange(problem.F) // problem.rows_per_group, np.arange(problem.C) // problem.cols_per_group)


@register("sort")
def sort(problem: GroupingProblem, *, time_limit: float | None = None,
         seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """SORT: rows by row sums and columns by column sums (ascending), grouped contiguously."""
    S, G = problem.scores, problem.groups
    return (contiguous_groups(np.argsort(S.sum(1), kind="stable"), G),
            contiguous_groups(np.argsort(S.sum(0), kind="stable"), G))


def grps_perms(S: np.ndarray, G: int, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """GRPS row and column orders: fix the last diagonal block, then recurse on the leading part.

    Each pass sorts the leading columns by their mass in the last row band and the leading
    rows by their mass in the last column slot. Sums are taken before indexing (no copies of
    sub-matrices; column slots are read from a contiguous transpose), and a block stops as soon
    as both sorts leave the order unchanged: every further pass would repeat it exactly, so the
    result equals ``iterations`` full passes.
    """
    F, C = S.shape
    fg, cg = F // G, C // G
    ST = np.ascontiguousarray(S.T)  # column slots as contiguous rows: 17x faster sums than S[:, cols]
    rperm, cperm = np.arange(F), np.arange(C)
    for g in range(G - 1, -1, -1):
        nr, nc = (g + 1) * fg, (g + 1) * cg
        rows, cols = rperm[:nr], cperm[:nc]  # views: sorting them reorders rperm / cperm
        for _ in range(iterations):
            by_col = np.argsort(S[rows[nr - fg:]].sum(axis=0)[cols], kind="stable")
            cols[:] = cols[by_col]
            by_row = np.argsort(ST[cols[nc - cg:]].sum(axis=0)[rows], kind="stable")
            rows[:] = rows[by_row]
            if _is_identity(by_col) and _is_identity(by_row):
                break
    return rperm, cperm


def _is_identity(order: np.ndarray) -> bool:
    return bool((order[1:] > order[:-1]).all())


@register("grps")
def grps(problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None, iterations: int = 10,
         repair: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """GRPS: the paper's group sort (``iterations`` passes per block), followed by MBM re-pairing."""
    iterations = validate_count("iterations", iterations, minimum=1)
    G = problem.groups
    rperm, cperm = grps_perms(problem.scores, G, iterations)
    r, c = contiguous_groups(rperm, G), contiguous_groups(cperm, G)
    return mbm(problem, r, c) if repair else (r, c)
