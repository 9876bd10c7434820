"""MIP search through PuLP (CBC bundled; any PuLP solver by name) on the linearised model.

CBC's "optimal" and its best bound come from a floating-point tree search with absolute
tolerances, so they are **not certificates**: on heavy-tailed scores (``exponential ** 8``, 8×8
G=2) CBC declared optimal at a value 8e-6 relative below the true optimum. So ``mip`` reports
CBC's claim and bound in ``info`` (``solver_claims_optimal``, ``solver_bound``, uncertified) and
certifies only through permopt's own bounds; for a proof use ``enumerate``, ``cpsat`` (integer
arithmetic) or ``colgen``.

Only the row variables (smaller side) are integer: with them fixed, the rest is a
transportation LP, which is integral (see :mod:`.linearised`). So only the linking
``z ≤ 1 - x + y`` is kept (its twin ``z ≤ 1 + x - y`` is redundant here): half the rows,
and CBC's root processing on 64×64 G=8 takes a third of the time. CBC runs on one thread by
default: with several, two runs of the same call gave different labelings.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..limits import Deadline, OutOfTime, validate_count
from ..problem import GroupingProblem
from ..solution import Solution
from ..status import Status
from ..backends.pulp import pulp_module, solve_pulp
from .exact_common import prepare, refuse_unbounded, unorient
from .linearised import LinearisedModel
from .registry import Solver, register
from .transport import best_col_groups


def build_model(S: np.ndarray, G: int, deadline: Deadline | None = None) -> tuple[Any, dict, dict, dict]:
    """The PuLP model and its variables ``x``, ``y``, ``z`` for an oriented score matrix.

    Rows are binary; columns and kept entries continuous (integral once the rows are).
    Raises :class:`~permopt.limits.OutOfTime` when ``deadline`` passes while building.
    """
    pulp = pulp_module()
    n, m = S.shape
    lin = LinearisedModel(n, m, G)
    prob = pulp.LpProblem("permopt_grouping", pulp.LpMaximize)
    var = prob.add_variable
    deadline = deadline or Deadline(None)
    x = {k: var(f"x_{k[0]}_{k[1]}", 0, 1, cat="Binary") for k in deadline.every(lin.x_keys)}
    y = {k: var(f"y_{k[0]}_{k[1]}", 0, 1) for k in deadline.every(lin.y_keys)}
    # the variables are most of the building time at 256x256 (0.45 of 0.56 s): checked as well
    z = {k: var(f"z_{k[0]}_{k[1]}", 0, 1) for k in deadline.every(lin.z_keys) if S[k] > 0}
    for group in deadline.every(lin.exactly_one(x, y)):
        prob += pulp.lpSum(group) == 1
    for terms, rhs in deadline.every(lin.cardinalities(x, y)):
        prob += pulp.lpSum(terms) == rhs
    for later, earlier in deadline.every(lin.symmetry(x)):
        prob += later <= pulp.lpSum(earlier)
    for (f, c), v in deadline.every(z.items()):
        for g in range(G):  # with rows integral this half of the linking alone gives the transportation LP
            prob += v <= 1 - x.get((f, g), 0) + y[c, g]
    for terms, cap in deadline.every(lin.aggregated(z)):
        prob += pulp.lpSum(terms) <= cap
    deadline.check()
    prob += pulp.lpSum(float(S[k]) * v for k, v in z.items())
    return prob, x, y, z


#: CBC's branch-and-bound nodes per solve by default: a work limit, so every run ends (16x16 G=4
#: did not close its gap in 100 s without one, nor in 20,000 nodes); ``node_limit=None`` lifts it
#: (a time limit or the partition count must then bound the run).
NODE_LIMIT = 1_000


@register("mip")
class MIP(Solver):
    """MIP search through PuLP (CBC by default); CBC's optimality claim and bound are reported, not certified."""

    name = "mip"
    exact = False  # it searches exhaustively, but its proof is CBC's floating-point one (module docstring)

    def solve(self, problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
              start: Any = None, backend: str = "PULP_CBC_CMD", threads: int | None = None,
              msg: bool = False, node_limit: int | None = NODE_LIMIT) -> Solution:
        pulp = pulp_module()
        threads = 1 if threads is None else validate_count("threads", threads, minimum=1)
        if node_limit is not None:
            validate_count("node_limit", node_limit, minimum=1)
        deadline = Deadline(time_limit)  # warm start and model building count against the limit
        bounded = time_limit is not None or node_limit is not None and backend == "PULP_CBC_CMD"
        refuse_unbounded(problem, "mip", bounded, how="time_limit= or node_limit=")
        S, transposed, start0, hint_rows, hint_cols = prepare(problem, start, seed, deadline)
        n, m = S.shape
        G = problem.groups
        unit = float(S.max()) if S.max() > 0 else 1.0  # the MIP sees scores <= 1: its absolute tolerances
        try:
            prob, x, y, z = build_model(S / unit, G, deadline)  # then mean the same at every score scale
        except OutOfTime:
            return Solution.from_groups(problem, *start0, status=Status.TIME_LIMIT, solver="mip",
                                        message="time limit hit while building the model; warm start returned")
        for (f, g), v in x.items():
            v.setInitialValue(int(hint_rows[f] == g))
        for (c, g), v in y.items():
            v.setInitialValue(int(hint_cols[c] == g))
        for (f, c), v in z.items():
            v.setInitialValue(int(hint_rows[f] == hint_cols[c]))
        optimal, has_solution, bound = solve_pulp(prob, backend=backend, time_limit=deadline.remaining(floor=0.05),
                                                  threads=threads, seed=seed, msg=msg, warm_start=True,
                                                  max_nodes=node_limit)
        if prob.status == pulp.LpStatusInfeasible:
            raise RuntimeError(f"{backend} reported an infeasible model, which cannot be (a solution was hinted)")
        info = {"backend": backend, "pulp_status": pulp.LpStatus[prob.status], "sol_status": prob.sol_status}
        rows = hint_rows
        if has_solution:
            sol_rows = np.array([max(range(G), key=lambda g: (x[f, g].value() or 0) if (f, g) in x else -1)
                                 for f in range(n)])
            if np.bincount(sol_rows, minlength=G).max() == n // G:  # a clean integer point
                rows = sol_rows
        cols = best_col_groups(S, rows, G, exact=True)[0]
        r, c = unorient(problem, rows, cols, transposed, start0)
        info["solver_claims_optimal"] = bool(optimal)
        info["solver_bound"] = None if bound is None else bound * unit  # CBC's, uncertified (module docstring)
        if optimal:
            return Solution.from_groups(problem, r, c, status=Status.FEASIBLE, info=info, solver="mip",
                                        message=f"{backend} reports optimal (uncertified: its tree search uses "
                                                "floating-point tolerances; enumerate, cpsat or colgen prove)")
        out_of_time = deadline.passed()
        return Solution.from_groups(problem, r, c, status=Status.TIME_LIMIT if out_of_time else Status.WORK_LIMIT,
                                    info=info, solver="mip",
                                    message=f"{backend} stopped ({pulp.LpStatus[prob.status]}"
                                            f"{'' if out_of_time else f', node limit {node_limit}'})")
