"""``auto``: exact search where it is cheap and bounded, else the ``best`` heuristic.

Two exact attempts, each limited by a node count, not by time, so ``auto`` is reproducible and
its cost is bounded on every layer: ``enumerate`` first where the smaller side has fewer
partitions than its node budget; else branch and price (``colgen``) where its pricing table is
small (small groups: 16×16 G=4, 32×32 G=16, where ``enumerate`` stops with a 15% gap and
``best`` keeps up to 2.8% less than the optimum), then — if that did not prove —
``enumerate`` where the smaller side has few partitions. Where both stop early, the best
solution found and a certified bound are returned (status ``work_limit``). Layers with more than
``AUTO_EXACT_MAX_SIDE`` channels on their larger side go to ``best`` directly: each exact node
solves a transportation problem over that side (on a 2×8000 layer ``enumerate`` took hundreds of
times as long as ``best`` for the same solution). A ``time_limit`` is one deadline shared by every
sub-run.
"""
from __future__ import annotations

import math
from dataclasses import replace

from ..certify import Bound
from ..limits import Deadline
from ..problem import GroupingProblem
from ..solution import Solution
from ..status import Status
from .colgen import pricing_entries
from .exact_common import log_partitions
from .registry import register
from .run import run, with_bound

#: Layers whose smaller side has at most this many equal partitions get the exact attempt
#: (12×12 G=3 has 5,775; 16×16 G=4 has 2.6e6; 24×24 G=4 has 1e11).
AUTO_EXACT_PARTITIONS = 1e7
#: Branch-and-bound work ``auto`` spends per layer at most, in nodes × larger side (each node
#: solves a transportation problem over the larger side): 2,000 nodes on 16×16, about 0.1 s.
AUTO_NODE_WORK = 32_000
#: ``colgen`` runs where its pricing table has at most this many entries (16×16 G=4: 29,120;
#: 32×32 G=16: 15,872; 0.1–0.8 s each measured), with at most ``AUTO_COLGEN_NODES`` nodes.
AUTO_COLGEN_ENTRIES = 32_000
AUTO_COLGEN_NODES = 20
#: Largest larger side for the exact attempts: where ``AUTO_NODE_WORK`` affords 64 nodes.
AUTO_EXACT_MAX_SIDE = AUTO_NODE_WORK // 64


@register("auto")
def auto(problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
         node_limit: int | None = None) -> Solution:
    """Exact on small layers (``enumerate`` with ``node_limit`` nodes, by default ``AUTO_NODE_WORK`` /
    larger side, and ``colgen`` with ``AUTO_COLGEN_NODES`` nodes where its pricing table is small,
    in the order above), else ``best``; always with a bound."""
    deadline = Deadline(time_limit)
    small = max(problem.F, problem.C) <= AUTO_EXACT_MAX_SIDE
    nodes = node_limit if node_limit is not None else max(64, AUTO_NODE_WORK // max(problem.F, problem.C))
    parts = log_partitions(min(problem.F, problem.C), problem.groups)
    # fewer partitions than nodes: enumerating is the quick proof; more: branch and price proves where it
    # applies (resnet56's 16×16 G=4 layers: colgen proved each in 0.10–0.26 s, 2,000 enumerate nodes none)
    attempts = [("enumerate", parts <= math.log(nodes)),
                ("colgen", pricing_entries(problem) <= AUTO_COLGEN_ENTRIES),
                ("enumerate", parts <= math.log(AUTO_EXACT_PARTITIONS))]
    sol, tried = None, set()
    for solver, applies in attempts if small else []:
        if not applies or solver in tried or deadline.passed() or (sol is not None and sol.status is Status.OPTIMAL):
            continue
        tried.add(solver)
        found = run(problem, solver, time_limit=_left(deadline), seed=seed,
                    node_limit=nodes if solver == "enumerate" else AUTO_COLGEN_NODES)
        sol = found if sol is None else _better_of(problem, sol, found)
    if sol is None:
        sol = run(problem, "best", time_limit=_left(deadline), seed=seed)
    if deadline.hit and sol.status is Status.WORK_LIMIT:  # the clock, not the node count, ended the search
        sol = replace(sol, status=Status.TIME_LIMIT, message=f"time limit hit ({sol.message})")
    sol.info["delegate"] = sol.solver
    return sol


def _left(deadline: Deadline) -> float | None:
    """What is left of ``auto``'s deadline for the next sub-run (a millisecond at least)."""
    return deadline.remaining(floor=1e-3)


def _better_of(problem: GroupingProblem, a: Solution, b: Solution) -> Solution:
    """The one that keeps more, with the smaller of the two certified bounds."""
    top, other = (a, b) if a.kept >= b.kept else (b, a)
    return with_bound(problem, top, Bound(other.upper_bound, other.info.get("bound_method", other.solver), other.time_s))
