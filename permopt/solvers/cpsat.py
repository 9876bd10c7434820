"""Exact solver on OR-Tools CP-SAT over the linearised model (see :mod:`.linearised`).

CP-SAT needs integer objective coefficients: scores are scaled so the largest is
``resolution`` and rounded; the reported bound adds the largest possible rounding gain,
so it stays certified for the real-valued objective.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backends.cpsat import configure, cp_model
from ..limits import Deadline, OutOfTime, validate_count
from ..problem import GroupingProblem
from ..solution import Solution
from ..status import Status
from .exact_common import prepare, refuse_unbounded, unorient
from .linearised import LinearisedModel
from .registry import Solver, register


def rounding_slack(S: np.ndarray, coef: np.ndarray, scale: float, kept_entries: int) -> float:
    """Largest real-valued gain hidden by rounding: sum of the ``kept_entries`` largest positive residuals."""
    resid = np.clip(S - coef / scale, 0, None).ravel()
    k = min(kept_entries, resid.size)
    return float(np.partition(resid, resid.size - k)[resid.size - k:].sum()) if k else 0.0


#: Largest accepted ``resolution``: products of coefficients and counts must stay in int64.
MAX_RESOLUTION = 10**12


def _build(lin: LinearisedModel, coef: np.ndarray, hint_rows: np.ndarray, hint_cols: np.ndarray,
           deadline: Deadline | None = None) -> tuple[Any, dict, dict]:
    """The CP-SAT model of ``lin`` with integer objective ``coef`` and a warm-start hint
    (:class:`~permopt.limits.OutOfTime` when ``deadline`` passes while building)."""
    cp = cp_model()
    model = cp.CpModel()
    x = {k: model.new_bool_var(f"x{k[0]}_{k[1]}") for k in lin.x_keys}
    y = {k: model.new_bool_var(f"y{k[0]}_{k[1]}") for k in lin.y_keys}
    z = {k: model.new_bool_var(f"z{k[0]}_{k[1]}") for k in lin.z_keys if coef[k] > 0}
    deadline = deadline or Deadline(None)
    for group in deadline.every(lin.exactly_one(x, y)):
        model.add_exactly_one(group)
    for terms, rhs in deadline.every(lin.cardinalities(x, y)):
        model.add(sum(terms) == rhs)
    for later, earlier in deadline.every(lin.symmetry(x)):
        model.add(later <= sum(earlier))
    for (f, c), v in deadline.every(z.items()):  # z[f, c] only inside a matched block
        for g in range(lin.G):
            xf = x.get((f, g))
            if xf is None:  # row f is never in group g: kept needs y[c, g] false
                model.add_implication(v, y[c, g].Not())
            else:
                model.add_bool_or([v.Not(), xf.Not(), y[c, g]])
                model.add_bool_or([v.Not(), xf, y[c, g].Not()])
    for terms, cap in deadline.every(lin.aggregated(z)):
        model.add(sum(terms) <= cap)
    deadline.check()
    model.maximize(sum(int(coef[k]) * v for k, v in z.items()))
    for (f, g), v in x.items():
        model.add_hint(v, int(hint_rows[f] == g))
    for (c, g), v in y.items():
        model.add_hint(v, int(hint_cols[c] == g))
    for (f, c), v in z.items():
        model.add_hint(v, int(hint_rows[f] == hint_cols[c]))
    return model, x, y


@register("cpsat")
class CPSat(Solver):
    """Exact: OR-Tools CP-SAT on the linearised model; proven optimum or a certified gap."""

    name = "cpsat"
    exact = True

    def solve(self, problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
              start: Any = None, threads: int | None = None, resolution: int = 10**9,
              log: bool = False) -> Solution:
        resolution = validate_count("resolution", resolution, minimum=1)
        if resolution > MAX_RESOLUTION:
            raise ValueError(f"resolution must be at most {MAX_RESOLUTION:.0e}, got {resolution}")
        deadline = Deadline(time_limit)  # warm start and model building count against the limit
        refuse_unbounded(problem, "cpsat", time_limit is not None)
        S, transposed, start0, hint_rows, hint_cols = prepare(problem, start, seed, deadline)
        n, m = S.shape
        scale = resolution / float(S.max()) if S.max() > 0 else 1.0
        coef = np.rint(S * scale).astype(np.int64)
        try:
            model, x, y = _build(LinearisedModel(n, m, problem.groups), coef, hint_rows, hint_cols, deadline)
        except OutOfTime:
            return Solution.from_groups(problem, *start0, status=Status.TIME_LIMIT,
                                        message="time limit hit while building the model; warm start returned")
        solver = cp_model().CpSolver()
        configure(solver, time_limit=deadline.remaining(floor=0.5), seed=seed, threads=threads, log=log)
        status = solver.solve(model)
        return self._result(problem, solver, status, x, y, (n, m), transposed, start0, (hint_rows, hint_cols),
                            rounding_slack(S, coef, scale, n * m // problem.groups), scale, resolution)

    @staticmethod
    def _result(problem, solver, status, x, y, shape, transposed, start0, hints, slack, scale, resolution):
        cp = cp_model()
        n, m = shape
        G = problem.groups
        info = {"resolution": resolution, "rounding_slack": slack, "cpsat_status": solver.status_name(status),
                "wall_time": solver.wall_time}
        if status in (cp.INFEASIBLE, cp.MODEL_INVALID):
            raise RuntimeError(f"CP-SAT reported {solver.status_name(status)} on a feasible model")
        if status in (cp.OPTIMAL, cp.FEASIBLE):
            rows = np.array([next(g for g in range(G) if (f, g) in x and solver.value(x[f, g])) for f in range(n)])
            cols = np.array([next(g for g in range(G) if solver.value(y[c, g])) for c in range(m)])
        else:  # no solution within the limit: the warm start stands
            rows, cols = hints
        r, c = unorient(problem, rows, cols, transposed, start0)
        bound = solver.best_objective_bound / scale + slack if status != cp.UNKNOWN else None
        if status == cp.OPTIMAL:  # optimal for the rounded scores; proven for the real ones when the
            # rounding slack is within Solution's optimality tolerance, else a tiny certified gap remains
            return Solution.from_groups(problem, r, c, status=Status.FEASIBLE, upper_bound=bound, info=info,
                                        message=f"CP-SAT optimal for scores rounded to 1/{resolution} of the "
                                                f"largest; certified bound includes the rounding ({slack:.3g})")
        return Solution.from_groups(problem, r, c, status=Status.TIME_LIMIT, upper_bound=bound, info=info,
                                    message="time limit hit; certified bound from CP-SAT")
