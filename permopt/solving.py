"""``permopt.solve``: one layer's permutation problem, solved and certified (the front door
above the solvers and the bounds)."""
from __future__ import annotations

from typing import Any

from .bounds import METHODS, bound as compute_bound
from .limits import single_threaded_blas
from .problem import GroupingProblem
from .solution import Solution
from .solvers.run import run, with_bound


def solve(scores: Any, groups: int | None = None, solver: str = "auto", *, time_limit: float | None = None,
          seed: int | None = 0, bound: str | None = None, **options: Any) -> Solution:
    """Solve the permutation problem for a score matrix (or a :class:`GroupingProblem`).

    ``solver`` defaults to ``auto``: exact branch and bound where that is cheap and bounded,
    else the ``best`` heuristic; every result carries a certified bound. ``time_limit`` is an
    optional wall-clock cap (it breaks reproducibility when it bites); ``seed`` makes
    randomised solvers repeatable; ``bound`` (``"sdp"``, ``"best"`` …, see :func:`permopt.bound`)
    tightens the certified bound beyond the default top-k and spectral ones; other keywords
    are the solver's options.

    >>> import numpy as np, permopt
    >>> sol = permopt.solve(np.eye(4) + 0.1, groups=2)
    >>> sol.status
    <Status.OPTIMAL: 'optimal'>
    """
    if bound is not None and bound not in METHODS:
        raise ValueError(f"bound must be one of {METHODS} or None, got {bound!r}")
    problem = GroupingProblem.coerce(scores, groups)
    sol = run(problem, solver, time_limit=time_limit, seed=seed, **options)
    if bound is None:
        return sol
    with single_threaded_blas():  # as the solve itself: the same bound whatever the core count
        return with_bound(problem, sol, compute_bound(problem, method=bound, start=(sol.row_groups, sol.col_groups)))
