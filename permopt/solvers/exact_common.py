"""Helpers shared by the exact solvers: orientation, warm starts, instance size."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..limits import Deadline
from ..problem import GroupingProblem
from .run import resolve_start


def log_partitions(n: int, G: int) -> float:
    """Natural log of the number of ways to split ``n`` items into ``G`` unlabelled groups of ``n/G``,
    ``n!/((n/G)!^G G!)``; in log space because the count overflows a float from a few hundred items."""
    k = n // G
    return math.lgamma(n + 1) - G * math.lgamma(k + 1) - math.lgamma(G + 1)


#: With no limit at all, exact solvers refuse instances whose smaller side has more equal
#: partitions than this (about 1e9): they would not finish (16×16 G=4, with 2.6e6, runs for
#: minutes in CP-SAT; 24×24 G=4 has 1e11).
MAX_LOG_PARTITIONS_WITHOUT_LIMIT = math.log(1e9)


def refuse_unbounded(problem: GroupingProblem, solver: str, limited: bool, how: str = "time_limit=") -> None:
    """Raise a clear error when ``solver`` would run on ``problem`` with no limit it could finish in."""
    n, G = min(problem.F, problem.C), problem.groups
    log_parts = log_partitions(n, G)
    if not limited and log_parts > MAX_LOG_PARTITIONS_WITHOUT_LIMIT:
        raise ValueError(f"{solver}: about 10^{log_parts / math.log(10):.1f} partitions of {n} items into {G} "
                         f"groups are too many to finish without a limit; pass {how} (it then returns the best "
                         f"solution and a certified bound), or use solver='best' or 'auto'")


def branching_side(problem: GroupingProblem) -> tuple[np.ndarray, bool]:
    """The score matrix oriented so that rows are the smaller side (fewer partitions); and whether transposed."""
    transposed = problem.C < problem.F
    return (problem.scores.T if transposed else problem.scores), transposed


def warm_start(problem: GroupingProblem, start: Any, seed: int | None,
               deadline: Deadline | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Initial incumbent: a solver name, a Solution, or a (rows, cols) pair; by default the
    better of ``best`` and ``local`` (both cheap on the sizes exact solvers can handle), each
    within what is left of ``deadline`` (the warm start counts against the solver's limit)."""
    if start is not None:
        return resolve_start(problem, start, seed, deadline)
    return max((resolve_start(problem, name, seed, deadline) for name in ("best", "local")),
               key=lambda rc: problem.kept(*rc))


def prepare(problem: GroupingProblem, start: Any, seed: int | None,
            deadline: Deadline | None = None) -> tuple[np.ndarray, bool, tuple[np.ndarray, np.ndarray], np.ndarray,
                                                       np.ndarray]:
    """Common set-up of the model-based exact solvers: the oriented scores, whether transposed,
    the warm start ``(r0, c0)`` in the problem's orientation, and canonical hint rows/columns."""
    from .linearised import canonical

    S, transposed = branching_side(problem)
    r0, c0 = warm_start(problem, start, seed, deadline)
    hint_rows, hint_cols = canonical(*((c0, r0) if transposed else (r0, c0)), problem.groups)
    return S, transposed, (r0, c0), hint_rows, hint_cols


def unorient(problem: GroupingProblem, rows: np.ndarray, cols: np.ndarray, transposed: bool,
             start: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Groups back in the problem's orientation; the warm start if the solver found worse."""
    r, c = (cols, rows) if transposed else (rows, cols)
    return (r, c) if problem.kept(r, c) >= problem.kept(*start) else start
