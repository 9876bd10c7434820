"""The linearised integer model shared by the CP-SAT and PuLP solvers.

Variables (rows = the smaller side, so that branching happens there):

* ``x[f, g]``: row ``f`` in group ``g`` (exactly one per row, ``F/G`` per group);
* ``y[c, g]``: column ``c`` in group ``g`` (exactly one per column, ``C/G`` per group);
* ``z[f, c]``: entry ``(f, c)`` kept; ``z ≤ 1 - x[f, g] + y[c, g]`` and
  ``z ≤ 1 + x[f, g] - y[c, g]`` for every ``g`` (kept only inside a matched block).

Strengthening: aggregated cardinalities ``Σ_c z[f, c] ≤ C/G`` and ``Σ_f z[f, c] ≤ F/G``
(their LP alone is the b-matching bound, tighter than both top-k bounds), and symmetry
breaking (row 0 in group 0; group ``g`` may take row ``f`` only once group ``g-1`` holds
an earlier row). With the rows fixed the rest is a transportation LP, which is integral:
a MIP only needs ``x`` integer.
"""
from __future__ import annotations

import numpy as np


def symmetry_allowed(n: int, G: int) -> np.ndarray:
    """``allowed[f, g]``: row ``f`` may be in group ``g`` under symmetry breaking."""
    return np.arange(G)[None, :] <= np.arange(n)[:, None]


def canonical(rows: np.ndarray, cols: np.ndarray, G: int) -> tuple[np.ndarray, np.ndarray]:
    """Relabel groups by first appearance among the rows, so a hint obeys symmetry breaking."""
    _, first = np.unique(rows, return_index=True)
    relabel = np.empty(G, dtype=np.int64)
    relabel[rows[np.sort(first)]] = np.arange(G)
    return relabel[rows], relabel[cols]
