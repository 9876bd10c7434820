"""Exact solver through PuLP (CBC bundled; any PuLP solver by name) on the linearised model.

Only the row variables (smaller side) are integer: with them fixed, the rest is a
transportation LP, which is integral (see :mod:`.linearised`). With CBC, the bound at a
time limit is read from CBC's log, so a stopped run still reports a certified gap.
"""
from __future__ import annotations

import os
import re
import tempfile
import warnings

import numpy as np

from ..problem import GroupingProblem
from ..solution import Solution
from ..transport import assign_balanced
from .exact_common import branching_side, default_threads, warm_start
from .linearised import canonical, symmetry_allowed
from .registry import Solver, register

#: Safety margin on a bound read from a solver's floating-point log.
_BOUND_RTOL = 1e-7


def _pulp():
    try:
        import pulp
    except ImportError as e:  # pragma: no cover - pulp is a runtime dependency
        raise ImportError("solver 'mip' needs PuLP: pip install pulp") from e
    return pulp


def build_model(S: np.ndarray, G: int):
    """The PuLP model and its row variables ``x[(f, g)]`` for an oriented score matrix."""
    pulp = _pulp()
    n, m = S.shape
    prob = pulp.LpProblem("permopt_grouping", pulp.LpMaximize)

    # --- variables: rows binary, columns and kept entries continuous (integral once rows are)
    allowed = symmetry_allowed(n, G)
    var = prob.add_variable
    x = {(f, g): var(f"x_{f}_{g}", 0, 1, cat="Binary") for f in range(n) for g in range(G) if allowed[f, g]}
    y = {(c, g): var(f"y_{c}_{g}", 0, 1) for c in range(m) for g in range(G)}
    z = {(f, c): var(f"z_{f}_{c}", 0, 1) for f, c in np.argwhere(S > 0)}

    # --- assignment and cardinality
    for f in range(n):
        prob += pulp.lpSum(x[f, g] for g in range(G) if (f, g) in x) == 1
    for c in range(m):
        prob += pulp.lpSum(y[c, g] for g in range(G)) == 1
    for g in range(G):
        prob += pulp.lpSum(x[f, g] for f in range(n) if (f, g) in x) == n // G
        prob += pulp.lpSum(y[c, g] for c in range(m)) == m // G

    # --- symmetry breaking
    for g in range(1, G):
        for f in range(g, n):
            prob += x[f, g] <= pulp.lpSum(x[e, g - 1] for e in range(f) if (e, g - 1) in x)

    # --- linking and aggregated cardinalities
    for (f, c), v in z.items():
        for g in range(G):
            xf = x.get((f, g), 0)
            prob += v <= 1 - xf + y[c, g]
            prob += v <= 1 + xf - y[c, g]
    for f in range(n):
        prob += pulp.lpSum(z[f, c] for c in range(m) if (f, c) in z) <= m // G
    for c in range(m):
        prob += pulp.lpSum(z[f, c] for f in range(n) if (f, c) in z) <= n // G

    prob += pulp.lpSum(float(S[f, c]) * v for (f, c), v in z.items())
    return prob, x, y, z


def _cbc_bound(log_path: str) -> float | None:
    try:
        text = open(log_path).read()
    except OSError:
        return None
    found = re.findall(r"^Upper bound:\s*([-+0-9.eE]+)", text, flags=re.M)
    return float(found[-1]) if found else None


@register("mip")
class MIP(Solver):
    """Exact: mixed-integer program through PuLP (CBC by default); proven optimum or certified gap."""

    name = "mip"
    exact = True

    def solve(self, problem: GroupingProblem, *, time_limit=None, seed=None, start=None,
              backend: str = "PULP_CBC_CMD", threads: int | None = None, msg: bool = False):
        pulp = _pulp()
        S, transposed = branching_side(problem)
        n, m = S.shape
        G = problem.groups
        r0, c0 = warm_start(problem, start, seed)
        hint_rows, hint_cols = canonical(*((c0, r0) if transposed else (r0, c0)), G)
        prob, x, y, z = build_model(S, G)
        for (f, g), v in x.items():
            v.setInitialValue(int(hint_rows[f] == g))
        for (c, g), v in y.items():
            v.setInitialValue(int(hint_cols[c] == g))
        for (f, c), v in z.items():
            v.setInitialValue(int(hint_rows[f] == hint_cols[c]))

        is_cbc = backend == "PULP_CBC_CMD"
        opts = {"msg": msg, "timeLimit": time_limit}
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "cbc.log")
            if is_cbc:
                opts.update(warmStart=True, threads=threads or default_threads(), logPath=log)
                if seed is not None:
                    opts["options"] = [f"randomSeed {int(seed) % 2**31}", f"randomCbcSeed {int(seed) % 2**31}"]
            try:
                with warnings.catch_warnings():  # PuLP 3.x flags its bundled CBC as deprecated for 4.0
                    warnings.simplefilter("ignore", DeprecationWarning)
                    solver = pulp.getSolver(backend, **opts)
            except Exception as e:
                raise ValueError(f"PuLP backend {backend!r} is not usable here ({e}); "
                                 f"available: {pulp.listSolvers(onlyAvailable=True)}") from None
            prob.solve(solver)
            bound = _cbc_bound(log) if is_cbc else None

        info = {"backend": backend, "pulp_status": pulp.LpStatus[prob.status], "sol_status": prob.sol_status}
        if prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            rows = np.array([max(range(G), key=lambda g: (x[f, g].value() or 0) if (f, g) in x else -1)
                             for f in range(n)])
            if np.bincount(rows, minlength=G).max() != n // G:  # not a clean integer point
                rows = hint_rows
        else:
            rows = hint_rows
        cols = assign_balanced(S.T @ np.eye(G)[rows], exact=True)[0]
        r, c = (cols, rows) if transposed else (rows, cols)
        if problem.kept(r, c) < problem.kept(r0, c0):  # never return less than the warm start
            r, c = r0, c0
        if prob.sol_status == pulp.LpSolutionOptimal:
            return Solution.from_groups(problem, r, c, status="optimal", info=info,
                                        upper_bound=problem.kept(r, c) * (1 + _BOUND_RTOL),
                                        message=f"proven optimal by {backend}")
        if bound is not None:
            bound = bound * (1 + _BOUND_RTOL) + _BOUND_RTOL
        return Solution.from_groups(problem, r, c, status="time_limit", upper_bound=bound, info=info,
                                    message=f"{backend} stopped ({pulp.LpStatus[prob.status]}); "
                                            f"bound {'from the solver log' if bound else 'from top-k'}")
