"""``auto``: exact branch and bound when the instance is small enough to prove, else the best heuristic."""
from __future__ import annotations

from ..problem import GroupingProblem
from .exact_common import count_partitions
from .registry import run

#: Instances whose smaller side has at most this many equal partitions go to ``enumerate``
#: (16×16 G=4 has 2.6e6 and proves in about a second; 24×24 G=4 has 1e11 and does not in 60 s).
AUTO_EXACT_PARTITIONS = 1e8
#: Time limit ``auto`` gives the exact solver when the caller sets none.
AUTO_DEFAULT_TIME = 10.0


def auto(problem: GroupingProblem, *, time_limit=None, seed=None):
    """Exact (``enumerate``) when provable in the time limit, else ``best``; always with a bound."""
    n = min(problem.F, problem.C)
    if count_partitions(n, problem.groups) <= AUTO_EXACT_PARTITIONS:
        sol = run(problem, "enumerate", time_limit=time_limit or AUTO_DEFAULT_TIME, seed=seed)
    else:
        sol = run(problem, "best", time_limit=time_limit, seed=seed)
    sol.info["delegate"] = sol.solver
    return sol


from .registry import register  # noqa: E402

register("auto", auto)
