"""``auto``: exact branch and bound where it is cheap and bounded, else the ``best`` heuristic.

The exact attempt is limited by a node count, not by time, so ``auto`` is reproducible and
its cost is bounded on every layer; where it stops early it still returns the best solution
found and a certified bound (status ``work_limit``).
"""
from __future__ import annotations

import math

from ..problem import GroupingProblem
from ..solution import Solution
from .exact_common import log_partitions
from .registry import register
from .run import run

#: Layers whose smaller side has at most this many equal partitions get the exact attempt
#: (12×12 G=3 has 5,775; 16×16 G=4 has 2.6e6; 24×24 G=4 has 1e11).
AUTO_EXACT_PARTITIONS = 1e7
#: Branch-and-bound work ``auto`` spends per layer at most, in nodes × larger side (each node
#: solves a transportation problem over the larger side): 2,000 nodes on 16×16, about 0.1 s.
AUTO_NODE_WORK = 32_000


@register("auto")
def auto(problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
         node_limit: int | None = None) -> Solution:
    """Exact (``enumerate``, ``node_limit`` nodes, by default ``AUTO_NODE_WORK`` / larger side) on small
    layers, else ``best``; always with a bound."""
    if log_partitions(min(problem.F, problem.C), problem.groups) <= math.log(AUTO_EXACT_PARTITIONS):
        nodes = node_limit if node_limit is not None else max(64, AUTO_NODE_WORK // max(problem.F, problem.C))
        sol = run(problem, "enumerate", time_limit=time_limit, seed=seed, node_limit=nodes)
    else:
        sol = run(problem, "best", time_limit=time_limit, seed=seed)
    sol.info["delegate"] = sol.solver
    return sol
