"""HiGHS (``highspy``) back end: the warm-started restricted master LP of column generation
(:mod:`permopt.solvers.colgen`), imported lazily like the CP-SAT and PuLP back ends."""
from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np


def quiet_highs() -> Any:
    """A silent ``highspy.Highs``. HiGHS prints its banner from C++ on the first instance of a
    process, before any option can be set, so standard output is pointed at /dev/null meanwhile."""
    import highspy

    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
    return h


class MasterLP:
    """The restricted master LP in one HiGHS model: ``minimise −Σ value·x + penalty·Σ artificials``
    subject to every row and column covered once. Blocks join as columns and a node's unusable
    blocks get an upper bound of 0, so each solve starts from the last basis (warm) instead of
    from scratch: 64×64 G=8's 270 solves took 26 s cold."""

    def __init__(self, F: int, C: int):
        import highspy

        n = F + C
        self.h, self.n, self.inf = quiet_highs(), n, highspy.kHighsInf
        self.h.setOptionValue("presolve", "off")  # presolve would discard the warm basis
        self.h.addRows(n, np.ones(n), np.ones(n), 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
        penalty = float(F * C)  # more than any grouping keeps: artificials only when nothing else covers
        self.h.addCols(n, np.full(n, penalty), np.zeros(n), np.full(n, self.inf), n, np.arange(n, dtype=np.int32),
                       np.arange(n, dtype=np.int32), np.ones(n))
        self.blocks = 0
        self.closed = np.zeros(0, dtype=bool)  # blocks held at 0 (the first len(closed); later ones are open)

    def add(self, rows: np.ndarray, value: float) -> None:
        """A block covering master ``rows`` (its rows, then ``F +`` its columns) with ``value``."""
        self.h.addCol(-value, 0.0, self.inf, rows.size, rows.astype(np.int32), np.ones(rows.size))
        self.blocks += 1

    def solve(self, usable: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """The LP over the ``usable`` blocks (always feasible through the penalised artificials):
        (duals, value, weights of the usable blocks and then the artificials)."""
        closed = np.ones(self.blocks, dtype=bool)
        closed[usable] = False
        before = np.zeros(self.blocks, dtype=bool)
        before[:self.closed.size] = self.closed
        changed = np.flatnonzero(closed != before)
        if changed.size:
            upper = np.where(closed[changed], 0.0, self.inf)
            self.h.changeColsBounds(changed.size, (self.n + changed).astype(np.int32), np.zeros(changed.size), upper)
        self.closed = closed
        self.h.run()
        status = self.h.getModelStatus()
        if status != type(status).kOptimal:  # always feasible and bounded, so only a solver failure lands here
            raise RuntimeError(f"the master LP failed: {self.h.modelStatusToString(status)}")
        sol = self.h.getSolution()
        x = np.asarray(sol.col_value)
        return -np.asarray(sol.row_dual), -float(self.h.getInfo().objective_function_value), \
            np.concatenate([x[self.n + usable], x[:self.n]])
