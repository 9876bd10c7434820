"""The solver registry: one name → one permutation solver, built in or user written.

A solver is either a function ``fn(problem, *, time_limit=None, seed=None, **options)``
or a :class:`Solver` subclass; it returns a :class:`~permopt.solution.Solution` or a pair
``(row_groups, col_groups)``. :func:`permopt.solvers.run` validates whatever comes back,
recomputes the kept mass and attaches a certified bound, so a solver cannot report wrong
numbers. The built-in solvers register when :mod:`permopt.solvers` is imported.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from ..registry import Registry

if TYPE_CHECKING:
    from ..problem import GroupingProblem
    from ..solution import Solution


class Solver(ABC):
    """Base class for class-style solvers. Set ``name``; ``exact = True`` if it can prove optimality."""

    name: str = ""
    exact: bool = False

    @abstractmethod
    def solve(self, problem: "GroupingProblem", *, time_limit: float | None = None,
              seed: int | None = None) -> "Solution | tuple[np.ndarray, np.ndarray]":
        """Solve ``problem``; see the module docstring for what to return. Add your own options as
        keyword-only parameters with defaults (unknown ones are refused with the accepted list)."""


SOLVERS = Registry("solver", Solver, "solve")
register, unregister, get, available = SOLVERS.register, SOLVERS.unregister, SOLVERS.get, SOLVERS.available
