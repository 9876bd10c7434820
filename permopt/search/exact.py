"""``exact``: the configuration problem is a multiple-choice knapsack; solve it with CP-SAT or PuLP.

Binary ``x[i, j]`` picks candidate ``j`` for layer ``i``; one per layer; summed params and
MACs within the budget; minimise the summed normalised pruned mass. CP-SAT needs integer
objective coefficients (scaled by ``resolution``): the reported gap includes the rounding.
Candidates no optimum can use are dropped first (:mod:`permopt.search.fixing`: reduced-cost
fixing against a feasible configuration, checked with CP-SAT's own rounded constraints).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
import time

import numpy as np

from .result import SearchResult

from ..backends.cpsat import configure, cp_model
from ..backends.pulp import pulp_module, solve_pulp
from ..limits import BUDGET_RTOL
from ..status import Status
from .config import ConfigProblem
from .fixing import fixable
from .strategies import Strategy, register_strategy, repair


#: CP-SAT's default work limit in deterministic seconds: ResNet-50 and PreResNet-164 budgets prove in
#: under 5; a latency budget near resnet56's depthwise floor ran over 10 minutes unlimited.
DETERMINISTIC_LIMIT = 30.0


@register_strategy("exact")
class Exact(Strategy):
    """Exact multiple-choice knapsack (CP-SAT by default: proven optimal; ``backend="pulp"``: CBC, whose
    "optimal" is reported as ``feasible`` with its uncertified claim in the message)."""

    exact = True

    def search(self, problem: ConfigProblem, *, time_limit: float | None = None, seed: int | None = None,
               backend: str = "cpsat", resolution: int = 10**6, threads: int | None = None,
               work_limit: float = DETERMINISTIC_LIMIT) -> "SearchResult":
        """``work_limit``: CP-SAT's deterministic time (reproducible, unlike ``time_limit``); when it
        bites, the best configuration found is returned with status ``work_limit`` and its gap."""
        t0 = time.perf_counter()
        problem.evaluate_all()
        if backend == "cpsat":
            choice, status, bound, slack = self._cpsat(problem, time_limit, seed, resolution, threads, work_limit)
        elif backend == "pulp":
            choice, status, bound, slack = self._pulp(problem, time_limit, threads)
        else:
            raise ValueError(f"backend must be 'cpsat' or 'pulp', got {backend!r}")
        if choice is None:
            choice = repair(problem, problem.cheapest())
            return problem.result(choice, "exact", t0, status=status, message=f"{backend}: {status.value}")
        obj = problem.totals(choice)[0]
        if backend == "pulp":  # CBC's bound is floating-point and uncertified (backends/pulp.py): no gap
            claim = "reports optimal (uncertified)" if status is Status.OPTIMAL else status.value
            return problem.result(choice, "exact", t0, status=Status.FEASIBLE if status is Status.OPTIMAL else status,
                                  message=f"pulp: CBC {claim}; its bound {bound!r} is not a certificate")
        gap = 0.0 if status is Status.OPTIMAL else (1.0 if bound is None else max(0.0, obj - bound) / max(obj, 1e-30))
        return problem.result(choice, "exact", t0, status=status, gap=gap,
                              message=f"{backend}: {status.value}; objective rounding at most {slack:.2g}")

    @staticmethod
    def _cpsat(problem, time_limit, seed, resolution, threads, work_limit):
        cp = cp_model()
        model = cp.CpModel()
        n, ks = len(problem.space), problem.n_choices
        valid = np.arange(problem.obj.shape[1])[None, :] < ks[:, None]
        uses = _integer_resources(problem, valid)
        rows = np.arange(n)

        def fits(choice: np.ndarray) -> bool:  # CP-SAT's own rounded constraints, not the float ones
            return all(int(w[rows, choice].sum()) <= cap for w, cap in uses)
        keep, _ = fixable(np.where(valid, problem.obj, np.inf), [(w.astype(float), float(cap)) for w, cap in uses],
                          valid, fits)
        x = [{j: model.new_bool_var(f"x{i}_{j}") for j in range(ks[i]) if keep[i, j]} for i in range(n)]
        coef = np.rint(np.nan_to_num(problem.obj, posinf=0) * resolution).astype(np.int64)
        for i in range(n):
            model.add_exactly_one(x[i].values())
        for w, cap in uses:  # costs rounded up, the limit down: every CP-SAT-feasible choice is feasible in floats
            model.add(sum(int(w[i, j]) * v for i in range(n) for j, v in x[i].items()) <= cap)
        model.minimize(sum(int(coef[i, j]) * v for i in range(n) for j, v in x[i].items()))
        solver = cp.CpSolver()
        configure(solver, time_limit=time_limit, seed=seed, threads=threads)
        solver.parameters.max_deterministic_time = float(work_limit)
        st = solver.solve(model)
        slack = 0.5 * n / resolution  # |rounding| per layer ≤ 0.5/resolution
        if st == cp.INFEASIBLE:
            return None, Status.INFEASIBLE, None, slack
        # which limit stopped an unproven search: the wall clock only if it ran out
        limit = Status.TIME_LIMIT if time_limit is not None and solver.wall_time >= time_limit else Status.WORK_LIMIT
        if st not in (cp.OPTIMAL, cp.FEASIBLE):
            return None, limit, None, slack
        choice = [next(j for j, v in x[i].items() if solver.value(v)) for i in range(n)]
        bound = solver.best_objective_bound / resolution - slack
        return choice, Status.OPTIMAL if st == cp.OPTIMAL else limit, bound, slack

    @staticmethod
    def _pulp(problem, time_limit, threads):
        pulp = pulp_module()
        n, ks = len(problem.space), problem.n_choices
        prob = pulp.LpProblem("permopt_config", pulp.LpMinimize)
        x = {(i, j): prob.add_variable(f"x_{i}_{j}", 0, 1, cat="Binary") for i in range(n) for j in range(ks[i])}
        for i in range(n):
            prob += pulp.lpSum(x[i, j] for j in range(ks[i])) == 1
        for arr, limit, fixed in _resources(problem):
            prob += pulp.lpSum(float(arr[i, j]) * v for (i, j), v in x.items()) <= limit * (1 + BUDGET_RTOL) - fixed
        prob += pulp.lpSum(float(problem.obj[i, j]) * v for (i, j), v in x.items())
        optimal, has_solution, bound = solve_pulp(prob, time_limit=time_limit, threads=threads)
        if prob.status == pulp.LpStatusInfeasible:
            return None, Status.INFEASIBLE, None, 0.0
        if not has_solution:
            return None, Status.TIME_LIMIT, None, 0.0
        choice = [max(range(ks[i]), key=lambda j: x[i, j].value() or 0) for i in range(n)]
        return choice, Status.OPTIMAL if optimal else Status.TIME_LIMIT, bound, 0.0


#: CP-SAT needs integers: measured latencies (seconds) count in units of 10 ns.
_TIME_SCALE = 1e8


def _integer_resources(problem: ConfigProblem, valid: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Each limited resource as CP-SAT sees it: integer uses (rounded up; 0 where a layer has no
    such candidate) and the integer capacity (rounded down, the fixed part taken off)."""
    out = []
    for arr, limit, fixed in _resources(problem):
        scale = 1.0 if np.all(arr[valid] == np.rint(arr[valid])) else _TIME_SCALE
        w = np.where(valid, np.ceil(np.where(valid, arr, 0.0) * scale), 0).astype(np.int64)
        out.append((w, int(math.floor((limit * (1 + BUDGET_RTOL) - fixed) * scale))))
    return out


def _resources(problem: ConfigProblem) -> Iterator[tuple[np.ndarray, float, float]]:
    """``(cost array, limit, fixed part)`` for each limited resource (params, MACs, latency)."""
    for arr, limit, fixed in zip(problem.use, problem.limits, problem.fixed):
        if math.isfinite(limit):
            yield arr, float(limit), float(fixed)
