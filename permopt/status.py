"""One status vocabulary for solutions, searches, cost-model entries and plans.

Like scipy's ``OptimizeResult.status`` and Optuna's ``TrialState``: a short word with a
documented promise and a ``success`` property. ``Status`` is a ``str`` enum, so
``sol.status == "optimal"`` works and JSON holds the plain word.
"""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """What a result promises."""

    #: Proven optimal (within a relative 1e-6): the value meets a certified bound.
    OPTIMAL = "optimal"
    #: A valid result with no optimality proof (see its bound and gap where it has one).
    FEASIBLE = "feasible"
    #: A method stopped at its wall-clock limit: best result found, certified bound and gap.
    TIME_LIMIT = "time_limit"
    #: A method stopped at its work limit (nodes): best result found, certified bound and gap.
    #: Unlike ``time_limit`` it is reproducible: the same inputs stop at the same place.
    WORK_LIMIT = "work_limit"
    #: No valid result exists (a budget that cannot be met), or none was found.
    INFEASIBLE = "infeasible"

    @property
    def success(self) -> bool:
        """Whether the result can be used (everything but ``infeasible``)."""
        return self is not Status.INFEASIBLE

    @classmethod
    def parse(cls, value: "Status | str") -> "Status":
        """``value`` as a Status, or a ValueError listing the known words."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown status {value!r}; known: {[s.value for s in cls]}") from None

