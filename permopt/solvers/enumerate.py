"""Exact branch and bound over the equal partitions of the smaller side.

Rows (the smaller side) are assigned one at a time, with group-label symmetry broken
(a row may only open the lowest unused group). With the rows fixed, the columns are a
transportation problem, so a node's bound is the transportation value of

    B[c, g] = P[c, g] + (sum of the cap_g largest scores of column c among unassigned rows)

(``P`` the mass of assigned rows, ``cap_g`` group ``g``'s free places): any completion's
column profit is at most ``B``, so the bound is certified; at a leaf it is the exact value.
The top-k sums are precomputed per depth because the row order is fixed.

Work is bounded by ``node_limit`` (reproducible) and optionally by ``time_limit``; at either
limit the best solution and the largest open bound are returned.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..limits import Deadline, validate_count
from ..problem import GroupingProblem
from ..solution import Solution
from ..status import Status
from .exact_common import branching_side, log_partitions, refuse_unbounded, warm_start
from .registry import Solver, register
from .transport import EXACT_MAX_ITEMS, assign_balanced, best_col_groups

#: Nodes whose bound is within this fraction of the total mass above the incumbent are pruned.
PRUNE_RTOL = 1e-12


def depth_topk(Ss: np.ndarray, k: int) -> list[np.ndarray]:
    """``top[d][j, c]``: sum of the ``j`` largest scores of column ``c`` among rows ``d:``, ``j = 0..k``."""
    n, m = Ss.shape
    top = []
    for d in range(n + 1):
        srt = -np.sort(-Ss[d:], axis=0)[:k]
        cum = np.zeros((k + 1, m))
        cum[1:srt.shape[0] + 1] = np.cumsum(srt, axis=0)
        cum[srt.shape[0] + 1:] = cum[srt.shape[0]]
        top.append(cum)
    return top


@dataclass
class _Search:
    """Depth-first branch and bound state on row-ordered scores ``Ss`` (heaviest rows first)."""

    Ss: np.ndarray
    G: int
    best_val: float
    best_labels: np.ndarray
    tol: float
    nodes: int = 0
    stack: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.k = self.Ss.shape[0] // self.G
        self.top = depth_topk(self.Ss, self.k)

    def bound(self, d: int, P: np.ndarray, counts: np.ndarray) -> float:
        return assign_balanced(P + self.top[d][self.k - counts].T, exact=True)[1]

    def run(self, node_limit: int | None, deadline: Deadline) -> bool:
        """Search until done (True) or a limit (False; the open nodes stay on the stack)."""
        n, m = self.Ss.shape
        root_P, root_counts = np.zeros((m, self.G)), np.zeros(self.G, dtype=np.int64)
        self.stack = [(self.bound(0, root_P, root_counts), 0, np.full(n, -1, dtype=np.int64), root_P, root_counts)]
        while self.stack:
            b, d, labels, P, counts = self.stack[-1]
            if b <= self.best_val + self.tol:
                self.stack.pop()
                continue
            if (node_limit is not None and self.nodes >= node_limit) or (self.nodes % 64 == 0 and deadline.passed()):
                return False
            self.stack.pop()
            self.nodes += 1
            if d == n:  # leaf: the bound is the exact value
                self.best_val, self.best_labels = b, labels
                continue
            self.stack.extend(self._children(d, labels, P, counts))
        return True

    def _children(self, d: int, labels: np.ndarray, P: np.ndarray, counts: np.ndarray) -> list:
        used = int((counts > 0).sum())
        children = []
        for g in range(min(used + 1, self.G)):  # symmetry: open at most the next unused group
            if counts[g] == self.k:
                continue
            P2 = P.copy()
            P2[:, g] += self.Ss[d]
            c2 = counts.copy()
            c2[g] += 1
            l2 = labels.copy()
            l2[d] = g
            b2 = self.bound(d + 1, P2, c2)
            if b2 > self.best_val + self.tol:
                children.append((b2, d + 1, l2, P2, c2))
        children.sort(key=lambda t: t[0])
        return children  # pushed in order: the best child is popped first

    def open_bound(self) -> float:
        return max([self.best_val] + [t[0] for t in self.stack])


@register("enumerate")
class Enumerate(Solver):
    """Exact branch and bound over partitions of the smaller side, transportation for the other."""

    name = "enumerate"
    exact = True

    def solve(self, problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
              start: Any = None, node_limit: int | None = None) -> Solution:
        if node_limit is not None:
            node_limit = validate_count("node_limit", node_limit, minimum=1)
        refuse_unbounded(problem, "enumerate", time_limit is not None or node_limit is not None,
                         "node_limit= (reproducible) or time_limit=")
        S, transposed = branching_side(problem)
        n, G = S.shape[0], problem.groups
        if G > 2 and S.shape[1] > EXACT_MAX_ITEMS:
            raise ValueError(f"enumerate: each node solves an exact {S.shape[1]}×{S.shape[1]} assignment over the "
                             f"larger side ({S.shape[1]} > {EXACT_MAX_ITEMS} channels); use solver='best' or 'auto'")
        log_parts = log_partitions(n, G)
        deadline = Deadline(time_limit)  # the warm start counts against the limit
        r0, c0 = warm_start(problem, start, seed, deadline)
        order = np.argsort(-S.sum(axis=1), kind="stable")  # heavy rows first: bounds tighten early
        rows0 = c0 if transposed else r0
        search = _Search(S[order], G, problem.kept(r0, c0), rows0[order], PRUNE_RTOL * problem.total)
        done = search.run(node_limit, deadline)
        rows = np.empty(n, dtype=np.int64)
        rows[order] = search.best_labels
        cols = best_col_groups(S, rows, G, exact=True)[0]
        r, c = (cols, rows) if transposed else (rows, cols)
        info = {"nodes": search.nodes, "log10_partitions": log_parts / np.log(10)}
        if done:
            return Solution.from_groups(problem, r, c, status=Status.OPTIMAL, upper_bound=problem.kept(r, c),
                                        info=info, message=f"proven optimal by branch and bound ({search.nodes} nodes)")
        status = Status.TIME_LIMIT if deadline.hit else Status.WORK_LIMIT
        return Solution.from_groups(problem, r, c, status=status, upper_bound=search.open_bound(), info=info,
                                    message=f"{status.value.replace('_', ' ')} hit after {search.nodes} nodes")
