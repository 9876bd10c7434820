"""Solving a PuLP model with a time limit and reading back a certified bound.

Shared by the ``mip`` permutation solver and the ``exact`` knapsack strategy. With CBC
(bundled with PuLP 3.x) the best bound of a stopped run is read from CBC's log.
"""
from __future__ import annotations

import os
import re
import tempfile
import warnings

#: Safety margin on a bound read from a solver's floating-point log.
BOUND_RTOL = 1e-7
CBC = "PULP_CBC_CMD"


def pulp_module():
    """``import pulp`` with a clear message when missing."""
    try:
        import pulp
    except ImportError as e:  # pragma: no cover - pulp is a runtime dependency
        raise ImportError("this needs PuLP: pip install 'pulp<4'") from e
    return pulp


def solve_pulp(prob, *, backend: str = CBC, time_limit: float | None = None, threads: int | None = None,
               seed: int | None = None, msg: bool = False, warm_start: bool = False):
    """Solve ``prob``; return ``(proven_optimal, has_solution, bound)`` where ``bound`` is the
    solver's certified bound on the objective (in the model's sense, padded by BOUND_RTOL) or None."""
    pulp = pulp_module()
    opts = {"msg": msg, "timeLimit": time_limit}
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "cbc.log")
        if backend == CBC:
            opts.update(threads=threads or max(1, os.cpu_count() or 1), logPath=log, warmStart=warm_start)
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
        text = open(log).read() if backend == CBC and os.path.exists(log) else ""
    optimal = prob.sol_status == pulp.LpSolutionOptimal
    has_solution = prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    maximize = prob.sense == pulp.LpMaximize
    found = re.findall(r"^(?:Upper|Lower) bound:\s*([-+0-9.eE]+)", text, flags=re.M)
    bound = None
    if optimal and has_solution:
        bound = pulp.value(prob.objective)
    elif found:
        bound = float(found[-1])
    if bound is not None:
        bound += (1 if maximize else -1) * BOUND_RTOL * max(1.0, abs(bound))
    return optimal, has_solution, bound
