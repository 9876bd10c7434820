"""Running a registered solver: option checks, the call, and an honest, re-checked Solution."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..limits import Deadline, single_threaded_blas, validate_seed, validate_time_limit
from ..problem import GroupingProblem
from ..solution import InvalidBoundError, Solution
from ..status import Status
from .registry import SOLVERS, get


def run(problem: GroupingProblem, solver: str = "auto", *, time_limit: float | None = None,
        seed: int | None = 0, **options: Any) -> Solution:
    """Run a registered solver on a problem and return a checked :class:`Solution` (the engine
    under :func:`permopt.solve`, which solvers also use for their sub-runs and warm starts).

    ``time_limit`` is an optional wall-clock cap (it breaks reproducibility when it bites);
    ``seed`` makes randomised solvers repeatable; other keywords are the solver's options.
    """
    entry = get(solver)
    time_limit, seed = validate_time_limit(time_limit), validate_seed(seed)
    SOLVERS.check_options(solver, options)
    t0 = time.perf_counter()
    with single_threaded_blas():  # the same labels and numbers whatever the machine's core count or load
        try:
            out = entry.fn(problem, time_limit=time_limit, seed=seed, **options)
        except InvalidBoundError as e:
            if e.solver:
                raise
            raise InvalidBoundError(solver, e.bound, e.kept) from None  # built inside the solver without its name
        elapsed = time.perf_counter() - t0
        sol = _checked(problem, solver, out)
    sol.time_s = elapsed
    return sol


def _checked(problem: GroupingProblem, solver: str, out: Any) -> Solution:
    """A Solution rebuilt from what the solver returned: kept recomputed, bound re-certified."""
    if isinstance(out, Solution):
        return Solution.from_groups(problem, out.row_groups, out.col_groups, solver=solver, status=out.status,
                                    upper_bound=out.upper_bound, message=out.message, info=out.info)
    try:
        r, c = out
    except (TypeError, ValueError):
        raise TypeError(f"solver {solver!r} must return a Solution or (row_groups, col_groups), "
                        f"got {type(out).__name__}") from None
    return Solution.from_groups(problem, r, c, solver=solver)


def with_bound(problem: GroupingProblem, sol: Solution, b: Any) -> Solution:
    """``sol`` with its certified bound tightened by the :class:`~permopt.bounds.Bound` ``b`` where
    that is smaller (status re-derived, ``b``'s time recorded in ``info["bound_time_s"]``)."""
    if b.value >= sol.upper_bound:
        sol.info["bound_time_s"] = b.time_s
        return sol
    return Solution.from_groups(problem, sol.row_groups, sol.col_groups, solver=sol.solver, status=sol.status,
                                upper_bound=b.value, message=sol.message, bound_by=b.method, time_s=sol.time_s,
                                info={**sol.info, "bound_time_s": b.time_s})


def stopped_result(problem: GroupingProblem, row_groups: np.ndarray, col_groups: np.ndarray, deadline: Deadline,
                   solver: str) -> "Solution | tuple[np.ndarray, np.ndarray]":
    """A heuristic's groups as returned to :func:`run`: a ``time_limit`` Solution if ``deadline`` cut
    its work short (the result then depends on the machine and its load), else the plain pair."""
    if not deadline.hit:
        return row_groups, col_groups
    return Solution.from_groups(problem, row_groups, col_groups, solver=solver, status=Status.TIME_LIMIT,
                                message="time limit hit before the work counts ran out: the result depends "
                                        "on the machine's speed and load")


def solve_layer(scores: Any, groups: int, name: str | None, solver: str, time_limit: float | None,
                seed: int | None) -> Solution:
    """One solve from plain arguments: a module-level function, so process pools and clusters can run it."""
    return run(GroupingProblem(scores, groups, name=name), solver, time_limit=time_limit, seed=seed)


def solve_groups(scores: Any, groups: Sequence[int], name: str | None, solver: str, time_limit: float | None,
                 seed: int | None) -> list[Solution]:
    """One layer at several ``G``: one job per layer, so its scores travel to a worker once."""
    return [solve_layer(scores, g, name, solver, time_limit, seed) for g in groups]


def resolve_start(problem: GroupingProblem, start: Any, seed: int | None = None,
                  deadline: Deadline | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(row_groups, col_groups)`` from a solver name (run now, within what is left of
    ``deadline``), ``"random"``, a Solution, or a pair."""
    if isinstance(start, str):
        if start == "random":
            rng = np.random.default_rng(seed)
            return (rng.permutation(np.arange(problem.F) // problem.rows_per_group),
                    rng.permutation(np.arange(problem.C) // problem.cols_per_group))
        sol = run(problem, start, seed=seed, time_limit=None if deadline is None else deadline.remaining(floor=1e-3))
        return sol.row_groups, sol.col_groups
    return problem.check_pair(start, "start", also="a solver name, 'random', ")


__all__ = ["run", "resolve_start", "with_bound", "stopped_result", "solve_layer", "solve_groups"]
