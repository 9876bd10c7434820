"""Side-by-side comparison of solvers on one layer problem."""
from __future__ import annotations

import json
from dataclasses import dataclass
from concurrent.futures import Executor
from typing import Any

from .problem import GroupingProblem
from .solution import Solution
from .bounds import bound as compute_bound
from .parallel import map_jobs
from .solvers import get as get_solver
from .solvers.run import solve_layer, with_bound


@dataclass
class Comparison:
    """Solutions of several solvers on one problem, with each one's ratio to the best kept value."""

    problem: GroupingProblem
    solutions: dict[str, Solution]

    @property
    def reference(self) -> tuple[float, bool]:
        """Best kept value (a proven optimum when any solver proved one) and whether it is proven."""
        proven = [s.kept for s in self.solutions.values() if s.status == "optimal"]
        if proven:
            return max(proven), True
        return max(s.kept for s in self.solutions.values()), False

    @property
    def best_bound(self) -> float:
        """Tightest certified upper bound over all solvers."""
        return min(s.upper_bound for s in self.solutions.values())

    def rows(self) -> list[dict]:
        """One dict per solver: kept, kept_ratio, bound, gap, status, time, ratio to the reference."""
        ref, _ = self.reference
        best = self.best_bound
        return [{"solver": name, "kept": s.kept, "kept_ratio": s.kept_ratio, "upper_bound": s.upper_bound,
                 "gap": s.gap, "certified_by": s.info.get("bound_method", ""), "status": str(s.status),
                 "time_s": s.time_s, "ratio_to_best": s.kept / ref if ref > 0 else 1.0,
                 "gap_to_best_bound": (best - s.kept) / best if best > 0 else 0.0}
                for name, s in self.solutions.items()]

    def table(self) -> str:
        """A plain-text table."""
        ref, proven = self.reference
        head = (f"{'solver':<12} {'kept':>12} {'ratio':>8} {'bound':>12} {'gap':>8} {'by':>10} {'status':>10} "
                f"{'time_s':>8} {'vs best':>8} {'vs bound':>8}")
        lines = [f"{self.problem!r}: total {self.problem.total:.6g}, best {'proven' if proven else 'found'} "
                 f"{ref:.6g}, best bound {self.best_bound:.6g}", head, "-" * len(head)]
        for r in self.rows():
            lines.append(f"{r['solver']:<12} {r['kept']:>12.6g} {r['kept_ratio']:>8.4f} {r['upper_bound']:>12.6g} "
                         f"{r['gap']:>8.4f} {r['certified_by'][:10]:>10} {r['status']:>10} {r['time_s']:>8.3f} "
                         f"{r['ratio_to_best']:>8.4f} {r['gap_to_best_bound']:>8.4f}")
        return "\n".join(lines)

    def to_json(self, **kw: Any) -> str:
        """JSON of the rows plus the problem's shape and the reference value."""
        ref, proven = self.reference
        return json.dumps({"F": self.problem.F, "C": self.problem.C, "groups": self.problem.groups,
                           "total": self.problem.total, "reference": ref, "reference_proven": proven,
                           "best_bound": self.best_bound, "rows": self.rows()}, **kw)


DEFAULT_COMPARE = ("same", "sort", "grps", "alternating", "best", "auto")


def compare(scores: Any, groups: int | None = None, solvers: Any = DEFAULT_COMPARE, *,
            time_limit: float | None = None, seed: int | None = 0, bound: str | None = None,
            executor: Executor | None = None, n_jobs: int | None = None) -> Comparison:
    """Run several solvers on the same problem; ``print(permopt.compare(S, 4).table())``.

    ``bound`` (e.g. ``"sdp"``) computes one stronger certified bound and applies it to every
    solution, so each gap (and ``gap_to_best_bound``) says how far from optimal it can be.
    ``executor`` / ``n_jobs`` run the solvers side by side (results do not depend on it; timings
    then share the machine).
    """
    problem = GroupingProblem.coerce(scores, groups)
    if isinstance(solvers, str):  # "grps,best" or one name
        solvers = [s.strip() for s in solvers.split(",") if s.strip()]
    if solvers is None or not hasattr(solvers, "__iter__"):
        raise TypeError(f"solvers must be names (a list, or one string such as 'grps,best'), got {solvers!r}")
    solvers = list(solvers)
    if not solvers:
        raise ValueError("compare needs at least one solver name")
    for name in solvers:
        get_solver(name)  # unknown names fail before any work
    jobs = [(problem.scores, problem.groups, problem.name, name, time_limit, seed) for name in solvers]
    solutions = dict(zip(solvers, map_jobs(solve_layer, jobs, executor, n_jobs)))
    if bound is not None:
        b = compute_bound(problem, method=bound)  # once, for every solution
        solutions = {name: with_bound(problem, s, b) for name, s in solutions.items()}
    return Comparison(problem, solutions)
