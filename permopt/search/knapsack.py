"""``exact``: the configuration problem is a multiple-choice knapsack; solve it with CP-SAT or PuLP.

Binary ``x[i, j]`` picks candidate ``j`` for layer ``i``; one per layer; summed params and
MACs within the budget; minimise the summed normalised pruned mass. CP-SAT needs integer
objective coefficients (scaled by ``resolution``): the reported gap includes the rounding.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..pulp_run import pulp_module, solve_pulp
from ..solvers.exact_common import cpsat_workers
from .problem import ConfigProblem
from .strategies import Strategy, register_strategy


@register_strategy("exact")
class Exact(Strategy):
    """Exact multiple-choice knapsack (CP-SAT by default, ``backend="pulp"`` for CBC); proven optimal."""

    exact = True

    def search(self, problem: ConfigProblem, *, time_limit=None, seed=None, backend: str = "cpsat",
               resolution: int = 10**6, threads: int | None = None):
        t0 = time.perf_counter()
        problem.evaluate_all()
        if backend == "cpsat":
            choice, status, bound, slack = self._cpsat(problem, time_limit, seed, resolution, threads)
        elif backend == "pulp":
            choice, status, bound, slack = self._pulp(problem, time_limit, threads)
        else:
            raise ValueError(f"backend must be 'cpsat' or 'pulp', got {backend!r}")
        if choice is None:
            from .strategies import repair
            choice = repair(problem, problem.cheapest())
            res = problem.result(choice, "exact", t0, status="infeasible" if status == "infeasible" else "time_limit",
                                 message=f"{backend}: {status}")
            return res
        obj = problem.totals(choice)[0]
        gap = 0.0 if status == "optimal" else (1.0 if bound is None else max(0.0, obj - bound) / max(obj, 1e-30))
        return problem.result(choice, "exact", t0, status=status, gap=gap,
                              message=f"{backend}: {status}; objective rounding at most {slack:.2g}")

    @staticmethod
    def _cpsat(problem, time_limit, seed, resolution, threads):
        from ortools.sat.python import cp_model

        model = cp_model.CpModel()
        n, ks = len(problem.space), problem.n_choices
        x = [[model.NewBoolVar(f"x{i}_{j}") for j in range(ks[i])] for i in range(n)]
        coef = np.rint(np.nan_to_num(problem.obj, posinf=0) * resolution).astype(np.int64)
        for i in range(n):
            model.AddExactlyOne(x[i])
        for arr, limit, fixed in ((problem.params, problem.max_params, problem.space.fixed_params),
                                  (problem.macs, problem.max_macs, problem.space.fixed_macs)):
            if math.isfinite(limit):
                model.Add(sum(int(arr[i, j]) * x[i][j] for i in range(n) for j in range(ks[i]))
                          <= int(math.floor(limit * (1 + 1e-9))) - int(fixed))
        model.Minimize(sum(int(coef[i, j]) * x[i][j] for i in range(n) for j in range(ks[i])))
        solver = cp_model.CpSolver()
        if time_limit is not None:
            solver.parameters.max_time_in_seconds = float(time_limit)
        solver.parameters.num_workers = threads or cpsat_workers()
        solver.parameters.random_seed = 0 if seed is None else int(seed)
        st = solver.Solve(model)
        slack = 0.5 * n / resolution  # |rounding| per layer ≤ 0.5/resolution
        if st == cp_model.INFEASIBLE:
            return None, "infeasible", None, slack
        if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None, "time_limit", None, slack
        choice = [next(j for j in range(ks[i]) if solver.Value(x[i][j])) for i in range(n)]
        bound = solver.BestObjectiveBound() / resolution - slack
        return choice, "optimal" if st == cp_model.OPTIMAL else "time_limit", bound, slack

    @staticmethod
    def _pulp(problem, time_limit, threads):
        pulp = pulp_module()
        n, ks = len(problem.space), problem.n_choices
        prob = pulp.LpProblem("permopt_config", pulp.LpMinimize)
        x = {(i, j): prob.add_variable(f"x_{i}_{j}", 0, 1, cat="Binary") for i in range(n) for j in range(ks[i])}
        for i in range(n):
            prob += pulp.lpSum(x[i, j] for j in range(ks[i])) == 1
        for arr, limit, fixed in ((problem.params, problem.max_params, problem.space.fixed_params),
                                  (problem.macs, problem.max_macs, problem.space.fixed_macs)):
            if math.isfinite(limit):
                prob += pulp.lpSum(float(arr[i, j]) * v for (i, j), v in x.items()) <= limit * (1 + 1e-9) - fixed
        prob += pulp.lpSum(float(problem.obj[i, j]) * v for (i, j), v in x.items())
        optimal, has_solution, bound = solve_pulp(prob, time_limit=time_limit, threads=threads)
        if prob.status == pulp.LpStatusInfeasible:
            return None, "infeasible", None, 0.0
        if not has_solution:
            return None, "time_limit", None, 0.0
        choice = [max(range(ks[i]), key=lambda j: x[i, j].value() or 0) for i in range(n)]
        return choice, "optimal" if optimal else "time_limit", bound, 0.0
