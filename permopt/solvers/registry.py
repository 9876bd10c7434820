"""The solver registry: one name → one permutation solver, built in or user written.

A solver is either a function ``fn(problem, *, time_limit=None, seed=None, **options)``
or a :class:`Solver` subclass; it returns a :class:`~permopt.solution.Solution` or a pair
``(row_groups, col_groups)``. :func:`run` validates whatever comes back, recomputes the
kept mass and attaches a certified bound, so a solver cannot report wrong numbers.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod

import numpy as np

from ..problem import GroupingProblem
from ..registry import Entry, Registry
from ..solution import Solution


class Solver(ABC):
    """Base class for class-style solvers. Set ``name``; ``exact = True`` if it can prove optimality."""

    name: str = ""
    exact: bool = False

    @abstractmethod
    def solve(self, problem: GroupingProblem, *, time_limit: float | None = None,
              seed: int | None = None, **options) -> "Solution | tuple[np.ndarray, np.ndarray]":
        """Solve ``problem``; see the module docstring for what to return."""


def _builtins() -> None:
    from . import paper, heuristics, enumerate, cpsat, mip, auto  # noqa: F401  (registration side effect)


_REGISTRY = Registry("solver", Solver, "solve", _builtins)
SolverEntry = Entry
register, unregister, get, available = _REGISTRY.register, _REGISTRY.unregister, _REGISTRY.get, _REGISTRY.available


def _validate_options(time_limit, seed) -> None:
    if time_limit is not None:
        if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0:
            raise ValueError(f"time_limit must be a positive number of seconds or None, got {time_limit!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")


def run(problem: GroupingProblem, solver: str = "grps", *, time_limit: float | None = None,
        seed: int | None = None, **options) -> Solution:
    """Run a registered solver on a problem and return a checked :class:`Solution`."""
    entry = get(solver)
    _validate_options(time_limit, seed)
    t0 = time.perf_counter()
    out = entry.fn(problem, time_limit=time_limit, seed=seed, **options)
    elapsed = time.perf_counter() - t0
    if isinstance(out, Solution):
        sol = Solution.from_groups(problem, out.row_groups, out.col_groups, solver=solver, status=out.status,
                                   upper_bound=out.upper_bound, message=out.message, info=out.info)
    else:
        try:
            r, c = out
        except (TypeError, ValueError):
            raise TypeError(f"solver {solver!r} must return a Solution or (row_groups, col_groups), "
                            f"got {type(out).__name__}") from None
        sol = Solution.from_groups(problem, r, c, solver=solver)
    sol.time_s = elapsed
    return sol


def resolve_start(problem: GroupingProblem, start, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(row_groups, col_groups)`` from a solver name (run now), a Solution, or a pair."""
    if isinstance(start, str):
        sol = run(problem, start, seed=seed)
        return sol.row_groups, sol.col_groups
    r, c = (start.row_groups, start.col_groups) if hasattr(start, "row_groups") else start
    return problem.check(r, c)


def solve(scores, groups: int | None = None, solver: str = "grps", *, time_limit: float | None = None,
          seed: int | None = None, **options) -> Solution:
    """Solve the permutation problem for a score matrix (or a :class:`GroupingProblem`).

    >>> import numpy as np, permopt
    >>> sol = permopt.solve(np.eye(4) + 0.1, groups=2, solver="grps")
    >>> sol.kept_ratio > 0.5
    True
    """
    if isinstance(scores, GroupingProblem):
        problem = scores
        if groups is not None and groups != problem.groups:
            raise ValueError(f"groups={groups} differs from the problem's groups={problem.groups}")
    else:
        if groups is None:
            raise ValueError("groups is required when scores is a matrix")
        problem = GroupingProblem(scores, groups)
    return run(problem, solver, time_limit=time_limit, seed=seed, **options)
