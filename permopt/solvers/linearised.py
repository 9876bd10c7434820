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

from collections.abc import Iterator
from typing import Any

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


class LinearisedModel:
    """The index structure of the model, independent of the back end (CP-SAT or PuLP).

    Each back end creates its own variables keyed as ``x[(f, g)]``, ``y[(c, g)]``,
    ``z[(f, c)]`` (``z`` may leave out zero scores) and adds the constraints these
    generators describe; only the linking of ``z`` is written per back end.
    """

    def __init__(self, n: int, m: int, G: int):
        self.n, self.m, self.G = n, m, G
        allowed = symmetry_allowed(n, G)
        self.x_keys = [(f, g) for f in range(n) for g in range(G) if allowed[f, g]]
        self.y_keys = [(c, g) for c in range(m) for g in range(G)]
        self.z_keys = [(f, c) for f in range(n) for c in range(m)]

    def exactly_one(self, x: dict, y: dict) -> Iterator[list]:
        """Each row and each column in exactly one group: lists of variables."""
        for f in range(self.n):
            yield [x[f, g] for g in range(self.G) if (f, g) in x]
        for c in range(self.m):
            yield [y[c, g] for g in range(self.G)]

    def cardinalities(self, x: dict, y: dict) -> Iterator[tuple[list, int]]:
        """``(terms, size)``: each group holds ``n/G`` rows and ``m/G`` columns."""
        for g in range(self.G):
            yield [x[f, g] for f in range(self.n) if (f, g) in x], self.n // self.G
            yield [y[c, g] for c in range(self.m)], self.m // self.G

    def symmetry(self, x: dict) -> Iterator[tuple[Any, list]]:
        """``(x[f, g], earlier)``: group ``g`` takes row ``f`` only once group ``g-1`` holds an earlier row."""
        for g in range(1, self.G):
            for f in range(g, self.n):
                yield x[f, g], [x[e, g - 1] for e in range(f) if (e, g - 1) in x]

    def aggregated(self, z: dict) -> Iterator[tuple[list, int]]:
        """``(terms, cap)``: at most ``m/G`` kept entries per row and ``n/G`` per column (only where binding)."""
        for f in range(self.n):
            row = [z[f, c] for c in range(self.m) if (f, c) in z]
            if len(row) > self.m // self.G:
                yield row, self.m // self.G
        for c in range(self.m):
            col = [z[f, c] for f in range(self.n) if (f, c) in z]
            if len(col) > self.n // self.G:
                yield col, self.n // self.G
