"""Independent reference computations for the tests (no permopt code inside)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest


def kept_of(S, r, c) -> float:
    """Kept mass recomputed entry by entry."""
    return float(sum(S[f, k] for f in range(S.shape[0]) for k in range(S.shape[1]) if r[f] == c[k]))


def labelings(n: int, G: int):
    """All balanced labelings of n items into G labelled groups (as tuples)."""
    size = n // G

    def fill(free: tuple, g: int):
        if g == G:
            yield {}
            return
        for members in itertools.combinations(free, size):
            rest = tuple(i for i in free if i not in members)
            for tail in fill(rest, g + 1):
                yield {**tail, **{i: g for i in members}}
    return {tuple(lab[i] for i in range(n)) for lab in fill(tuple(range(n)), 0)}


def brute_force(S, G) -> float:
    """Optimum by trying every balanced row labeling and column labeling (for each row
    labeling, every column labeling at once: the kept mass is the sum over columns of the row
    groups' column sums at each column's label)."""
    cols = np.array(sorted(labelings(S.shape[1], G)))  # (L, C)
    onehot = cols[:, None, :] == np.arange(G)[None, :, None]  # (L, G, C)
    best = -1.0
    for r in labelings(S.shape[0], G):
        sums = np.stack([S[np.array(r) == g].sum(0) for g in range(G)])  # (G, C)
        best = max(best, float((onehot * sums[None]).sum(axis=(1, 2)).max()))
    return best


def planted(n: int, G: int, seed: int, noise: float = 0.0, m: int | None = None):
    """A block-diagonal 0/1 matrix (plus |noise|), rows and columns shuffled; returns (S, planted mask)."""
    m = m or n
    rng = np.random.default_rng(seed)
    P = np.kron(np.eye(G), np.ones((n // G, m // G)))
    S = P + noise * np.abs(rng.standard_normal((n, m)))
    rp, cp = rng.permutation(n), rng.permutation(m)
    return S[rp][:, cp], P[rp][:, cp].astype(bool)


def check_solution(S, G, sol) -> None:
    """Validity: balanced groups, permutations consistent with groups, honest kept and bound."""
    F, C = S.shape
    assert np.bincount(sol.row_groups, minlength=G).tolist() == [F // G] * G
    assert np.bincount(sol.col_groups, minlength=G).tolist() == [C // G] * G
    assert sorted(sol.row_perm.tolist()) == list(range(F))
    assert sorted(sol.col_perm.tolist()) == list(range(C))
    assert (np.diff(sol.row_groups[sol.row_perm]) >= 0).all()
    assert (np.diff(sol.col_groups[sol.col_perm]) >= 0).all()
    kept = float((S * (sol.row_groups[:, None] == sol.col_groups[None, :])).sum())
    assert abs(kept - sol.kept) <= 1e-9 * max(1.0, S.sum())
    assert sol.kept <= sol.upper_bound * (1 + 1e-9) + 1e-12
    # block-diagonal after permutation: the mask of the permuted matrix is G blocks
    M = sol.mask()[sol.row_perm][:, sol.col_perm]
    assert np.array_equal(M, np.kron(np.eye(G, dtype=bool), np.ones((F // G, C // G), dtype=bool)))


def slow_params(values, slow) -> list:
    """``values`` for ``parametrize``, those in ``slow`` marked slow (out of the quick subset)."""
    return [pytest.param(v, marks=pytest.mark.slow) if v in slow else v for v in values]
