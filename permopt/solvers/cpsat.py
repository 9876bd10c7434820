"""Exact solver on OR-Tools CP-SAT over the linearised model (see :mod:`.linearised`).

CP-SAT needs integer objective coefficients: scores are scaled so the largest is
``resolution`` and rounded; the reported bound adds the largest possible rounding gain,
so it stays certified for the real-valued objective.
"""
from __future__ import annotations

import time

import numpy as np

from ..problem import GroupingProblem
from ..solution import Solution
from .exact_common import cpsat_workers, prepare, remaining, unorient
from .linearised import symmetry_allowed
from .registry import Solver, register


def _ortools():
    try:
        from ortools.sat.python import cp_model
    except ImportError as e:  # pragma: no cover - ortools is a runtime dependency
        raise ImportError("solver 'cpsat' needs OR-Tools: pip install ortools") from e
    return cp_model


def rounding_slack(S: np.ndarray, coef: np.ndarray, scale: float, kept_entries: int) -> float:
    """Largest real-valued gain hidden by rounding: sum of the ``kept_entries`` largest positive residuals."""
    resid = np.clip(S - coef / scale, 0, None).ravel()
    k = min(kept_entries, resid.size)
    return float(np.partition(resid, resid.size - k)[resid.size - k:].sum()) if k else 0.0


@register("cpsat")
class CPSat(Solver):
    """Exact: OR-Tools CP-SAT on the linearised model; proven optimum or a certified gap."""

    name = "cpsat"
    exact = True

    def solve(self, problem: GroupingProblem, *, time_limit=None, seed=None, start=None,
              threads: int | None = None, resolution: int = 10**6, log: bool = False):
        cp_model = _ortools()
        t0 = time.perf_counter()
        S, transposed, start0, hint_rows, hint_cols = prepare(problem, start, seed)
        n, m = S.shape
        G = problem.groups

        scale = resolution / max(float(S.max()), 1e-300)
        coef = np.rint(S * scale).astype(np.int64)
        model = cp_model.CpModel()

        # --- variables
        allowed = symmetry_allowed(n, G)
        x = [[model.NewBoolVar(f"x{f}_{g}") if allowed[f, g] else None for g in range(G)] for f in range(n)]
        y = [[model.NewBoolVar(f"y{c}_{g}") for g in range(G)] for c in range(m)]
        keep = np.argwhere(coef > 0)
        z = {(f, c): model.NewBoolVar(f"z{f}_{c}") for f, c in keep}

        # --- assignment and cardinality
        for f in range(n):
            model.AddExactlyOne(v for v in x[f] if v is not None)
        for c in range(m):
            model.AddExactlyOne(y[c])
        for g in range(G):
            model.Add(sum(x[f][g] for f in range(n) if x[f][g] is not None) == n // G)
            model.Add(sum(y[c][g] for c in range(m)) == m // G)

        # --- symmetry breaking: group g takes row f only after group g-1 took an earlier row
        for g in range(1, G):
            for f in range(g, n):
                model.Add(x[f][g] <= sum(x[e][g - 1] for e in range(f) if x[e][g - 1] is not None))

        # --- linking: z[f, c] only inside a matched block, aggregated cardinalities
        for (f, c), v in z.items():
            for g in range(G):
                xf = x[f][g]
                if xf is None:  # row f is never in group g: kept needs y[c, g] false
                    model.AddImplication(v, y[c][g].Not())
                else:
                    model.AddBoolOr([v.Not(), xf.Not(), y[c][g]])
                    model.AddBoolOr([v.Not(), xf, y[c][g].Not()])
        for f in range(n):
            row = [z[f, c] for c in range(m) if (f, c) in z]
            if len(row) > m // G:
                model.Add(sum(row) <= m // G)
        for c in range(m):
            col = [z[f, c] for f in range(n) if (f, c) in z]
            if len(col) > n // G:
                model.Add(sum(col) <= n // G)

        # --- objective and warm start
        model.Maximize(sum(int(coef[f, c]) * v for (f, c), v in z.items()))
        for f in range(n):
            for g in range(G):
                if x[f][g] is not None:
                    model.AddHint(x[f][g], int(hint_rows[f] == g))
        for c in range(m):
            for g in range(G):
                model.AddHint(y[c][g], int(hint_cols[c] == g))
        for (f, c), v in z.items():
            model.AddHint(v, int(hint_rows[f] == hint_cols[c]))

        solver = cp_model.CpSolver()
        if time_limit is not None:
            solver.parameters.max_time_in_seconds = remaining(time_limit, t0)
        solver.parameters.num_workers = threads or cpsat_workers()
        solver.parameters.random_seed = 0 if seed is None else int(seed)
        solver.parameters.log_search_progress = bool(log)
        status = solver.Solve(model)

        slack = rounding_slack(S, coef, scale, n * m // G)
        info = {"resolution": resolution, "rounding_slack": slack, "cpsat_status": solver.StatusName(status),
                "wall_time": solver.WallTime()}
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            rows = np.array([next(g for g in range(G) if x[f][g] is not None and solver.Value(x[f][g]))
                             for f in range(n)])
            cols = np.array([next(g for g in range(G) if solver.Value(y[c][g])) for c in range(m)])
        else:  # no solution within the limit: the warm start stands
            rows, cols = hint_rows, hint_cols
        r, c = unorient(problem, rows, cols, transposed, start0)
        if status == cp_model.INFEASIBLE or status == cp_model.MODEL_INVALID:
            raise RuntimeError(f"CP-SAT reported {solver.StatusName(status)} on a feasible model")
        bound = solver.BestObjectiveBound() / scale + slack if status != cp_model.UNKNOWN else None
        if status == cp_model.OPTIMAL:
            return Solution.from_groups(
                problem, r, c, status="optimal", upper_bound=bound, info=info,
                message=f"proven optimal for scores rounded to 1/{resolution} of the largest; "
                        f"the real optimum is at most {slack:.3g} above")
        return Solution.from_groups(problem, r, c, status="time_limit", upper_bound=bound, info=info,
                                    message="time limit hit; certified bound from CP-SAT")
