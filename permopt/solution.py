"""One result type for every permutation solver."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .certify import cheap_bounds
from .problem import GroupingProblem
from .status import Status

#: Relative tolerance (of the bound) under which kept == upper_bound counts as a proof of
#: optimality: "optimal" means proven within this fraction, as solvers' own gap tolerances do.
OPT_TOL = 1e-6
#: Relative tolerance (of the total mass) for float noise between a bound and the kept mass.
NOISE_RTOL = 1e-9


class InvalidBoundError(RuntimeError):
    """A solver claimed a bound below the kept mass of its own solution: a bug in that solver
    (``solver``: its name, "" where the Solution was built without one)."""

    def __init__(self, solver: str, bound: float, kept: float):
        super().__init__(f"solver {solver or '(unnamed)'!r} returned an invalid bound {bound!r} below its "
                         f"kept mass {kept!r}")
        self.solver, self.bound, self.kept = solver, bound, kept


class GroupedChannels:
    """Permutations and mask derived from ``row_groups`` / ``col_groups`` (shared by solutions and plans)."""

    row_groups: np.ndarray
    col_groups: np.ndarray

    @property
    def row_perm(self) -> np.ndarray:
        """Kept rows (output channels) in group order, group 0 first: the grouped layer's output
        order (rows labelled :data:`REMOVED` are left out)."""
        return _kept_in_group_order(self.row_groups)

    @property
    def col_perm(self) -> np.ndarray:
        """Kept columns (input channels) in group order, group 0 first: the grouped layer's input order."""
        return _kept_in_group_order(self.col_groups)

    def mask(self) -> np.ndarray:
        """``(F, C)`` boolean mask of the kept entries."""
        return (self.row_groups[:, None] == self.col_groups[None, :]) & (self.row_groups[:, None] != REMOVED)


#: The group label of a channel removed altogether (channel pruning): it belongs to no block.
REMOVED = -1


def _kept_in_group_order(labels: np.ndarray) -> np.ndarray:
    order = np.argsort(labels, kind="stable")
    return order[int(np.count_nonzero(labels == REMOVED)):]  # REMOVED sorts first


@dataclass
class Solution(GroupedChannels):
    """A grouping of rows and columns with its certified quality.

    ``kept`` is always recomputed from the groups (never taken from a solver), and
    ``upper_bound`` is a certified bound on the optimum, so ``gap`` is honest.
    """

    row_groups: np.ndarray
    col_groups: np.ndarray
    groups: int
    kept: float
    total: float
    upper_bound: float
    status: Status = Status.FEASIBLE
    solver: str = ""
    time_s: float = 0.0
    message: str = ""
    info: dict = field(default_factory=dict)

    @classmethod
    def from_groups(cls, problem: GroupingProblem, row_groups: Any, col_groups: Any, *, solver: str = "",
                    status: Status | str = Status.FEASIBLE, upper_bound: float | None = None, time_s: float = 0.0,
                    message: str = "", info: dict | None = None, bound_by: str = "") -> "Solution":
        """Validate the groups, recompute ``kept`` and attach the best certified bound.

        Every tolerance is relative (to the bound or the total mass), so statuses do not
        change when all scores are scaled by any positive factor. ``info["bound_method"]`` names
        what certified the bound: ``topk``, ``spectral``, or ``bound_by`` (default: the solver).
        """
        status = Status.parse(status)
        r, c = problem.check(row_groups, col_groups)
        kept = problem.kept(r, c)
        bounds = dict(cheap_bounds(problem))
        if upper_bound is not None:
            bounds[bound_by or solver or "solver"] = float(upper_bound)
        certified_by = min(bounds, key=lambda k: bounds[k])
        ub = bounds[certified_by]
        info = {**(info or {}), "bound_method": certified_by}
        if ub < kept:  # a bound under the kept mass only by rounding noise
            if ub < kept - NOISE_RTOL * problem.total:
                raise InvalidBoundError(solver, ub, kept)
            ub = kept
        if status is not Status.OPTIMAL and ub - kept <= OPT_TOL * ub:
            status, message = Status.OPTIMAL, (message + "; " if message else "") + "kept meets the certified bound"
        return cls(r, c, problem.groups, kept, problem.total, ub, status, solver, time_s, message, info)

    @property
    def kept_ratio(self) -> float:
        """``kept / total`` (1.0 for an all-zero matrix)."""
        return self.kept / self.total if self.total > 0 else 1.0

    @property
    def gap(self) -> float:
        """Relative optimality gap ``(upper_bound - kept) / upper_bound``, 0 when proven."""
        if self.status is Status.OPTIMAL:
            return 0.0
        return (self.upper_bound - self.kept) / self.upper_bound if self.upper_bound > 0 else 0.0

    def validate(self, problem: GroupingProblem, rtol: float = 1e-9) -> None:
        """Raise ValueError unless this is a valid solution of ``problem`` with honest numbers."""
        r, c = problem.check(self.row_groups, self.col_groups)
        kept = float((problem.scores * (r[:, None] == c[None, :])).sum())
        tol = rtol * problem.total
        if abs(kept - self.kept) > tol:
            raise ValueError(f"kept {self.kept!r} differs from the recomputed {kept!r}")
        if self.kept > self.upper_bound + tol:
            raise ValueError(f"kept {self.kept!r} exceeds upper_bound {self.upper_bound!r}")

    def to_dict(self) -> dict:
        """Plain-JSON representation (lists and numbers)."""
        return {"row_groups": self.row_groups.tolist(), "col_groups": self.col_groups.tolist(),
                "groups": self.groups, "kept": self.kept, "total": self.total,
                "upper_bound": self.upper_bound, "kept_ratio": self.kept_ratio, "gap": self.gap,
                "status": self.status, "solver": self.solver, "time_s": self.time_s,
                "message": self.message, "info": self.info}

    @classmethod
    def from_dict(cls, d: dict) -> "Solution":
        """Inverse of :meth:`to_dict` (derived fields are recomputed, not read)."""
        if not isinstance(d, dict):
            raise ValueError(f"a Solution is read from a dict (to_dict's output), got {type(d).__name__}")
        missing = [k for k in ("row_groups", "col_groups", "groups", "kept", "total", "upper_bound") if k not in d]
        if missing:
            raise ValueError(f"not a saved Solution: missing {missing} (to_dict/to_json write them)")
        return cls(np.asarray(d["row_groups"], dtype=np.int64), np.asarray(d["col_groups"], dtype=np.int64),
                   int(d["groups"]), float(d["kept"]), float(d["total"]), float(d["upper_bound"]),
                   Status.parse(d.get("status", "feasible")), d.get("solver", ""), float(d.get("time_s", 0.0)),
                   d.get("message", ""), dict(d.get("info", {})))

    def to_json(self, **kw: Any) -> str:
        """JSON string of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_json(cls, s: str) -> "Solution":
        """Inverse of :meth:`to_json`."""
        try:
            d = json.loads(s)
        except json.JSONDecodeError as e:
            raise ValueError(f"not a saved Solution: invalid JSON ({e})") from None
        return cls.from_dict(d)

    def __repr__(self) -> str:
        return (f"Solution(solver={self.solver!r}, status='{self.status}', G={self.groups}, "
                f"kept_ratio={self.kept_ratio:.4f}, gap={self.gap:.4f}, time_s={self.time_s:.3f})")
