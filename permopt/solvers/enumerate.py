"""Exact branch and bound over the equal partitions of the smaller side.

Rows (the smaller side) are assigned one at a time, with group-label symmetry broken
(a row may only open the lowest unused group). With the rows fixed, the columns are a
transportation problem, so a node's bound is the transportation value of

    B[c, g] = P[c, g] + (sum of the cap_g largest scores of column c among unassigned rows)

(``P`` the mass of assigned rows, ``cap_g`` group ``g``'s free places): any completion's
column profit is at most ``B``, so the bound is certified; at a leaf it is the exact value.
The top-k sums are precomputed per depth because the row order is fixed.
"""
from __future__ import annotations

import time

import numpy as np

from ..problem import GroupingProblem
from ..solution import Solution
from ..transport import assign_balanced, best_col_groups
from .exact_common import branching_side, count_partitions, warm_start
from .registry import Solver, register

#: Without a time limit, refuse instances with more partitions than this (they would not finish).
MAX_PARTITIONS_WITHOUT_LIMIT = 1e9


@register("enumerate")
class Enumerate(Solver):
    """Exact branch and bound over partitions of the smaller side, transportation for the other."""

    name = "enumerate"
    exact = True

    def solve(self, problem: GroupingProblem, *, time_limit=None, seed=None, start=None):
        S, transposed = branching_side(problem)
        n, m = S.shape
        G = problem.groups
        parts = count_partitions(n, G)
        if time_limit is None and parts > MAX_PARTITIONS_WITHOUT_LIMIT:
            raise ValueError(f"enumerate: {parts:.3g} partitions of {n} items into {G} groups is too many to "
                             f"finish without a time limit; pass time_limit= (it then returns the best "
                             f"solution and a certified bound) or use solver='cpsat'/'best'")
        deadline = None if time_limit is None else time.perf_counter() + time_limit  # warm start included
        r0, c0 = warm_start(problem, start, seed)
        rows0 = c0 if transposed else r0
        best_val, best_rows = problem.kept(r0, c0), rows0.copy()

        k = n // G
        order = np.argsort(-S.sum(axis=1), kind="stable")  # heavy rows first: bounds tighten early
        Ss = S[order]
        # top[d][j, c]: sum of the j largest scores of column c among rows order[d:], j = 0..k
        top = []
        for d in range(n + 1):
            srt = -np.sort(-Ss[d:], axis=0)[:k]
            cum = np.zeros((k + 1, m))
            cum[1:srt.shape[0] + 1] = np.cumsum(srt, axis=0)
            cum[srt.shape[0] + 1:] = cum[srt.shape[0]]
            top.append(cum)

        def bound(d, P, counts):
            return assign_balanced(P + top[d][k - counts].T, exact=True)[1]

        tol = 1e-12 * max(1.0, problem.total)
        labels = np.full(n, -1, dtype=np.int64)
        root_P, root_counts = np.zeros((m, G)), np.zeros(G, dtype=np.int64)
        stack = [(bound(0, root_P, root_counts), 0, labels, root_P, root_counts)]
        nodes, timed_out = 0, False
        while stack:
            b, d, labels, P, counts = stack.pop()
            if b <= best_val + tol:
                continue
            if deadline is not None and nodes % 64 == 0 and time.perf_counter() > deadline:
                stack.append((b, d, labels, P, counts))
                timed_out = True
                break
            nodes += 1
            if d == n:  # leaf: the bound is the exact value
                best_val = b
                best_rows = np.empty(n, dtype=np.int64)
                best_rows[order] = labels
                continue
            used = int((counts > 0).sum())
            children = []
            for g in range(min(used + 1, G)):  # symmetry: open at most the next unused group
                if counts[g] == k:
                    continue
                P2 = P.copy()
                P2[:, g] += Ss[d]
                c2 = counts.copy()
                c2[g] += 1
                l2 = labels.copy()
                l2[d] = g
                b2 = bound(d + 1, P2, c2)
                if b2 > best_val + tol:
                    children.append((b2, d + 1, l2, P2, c2))
            children.sort(key=lambda t: t[0])
            stack.extend(children)  # best child popped first

        ub = max([best_val] + [t[0] for t in stack]) if timed_out else best_val
        cols = best_col_groups(S, best_rows, G, exact=True)
        r, c = (cols, best_rows) if transposed else (best_rows, cols)
        info = {"nodes": nodes, "partitions": parts}
        if timed_out:
            return Solution.from_groups(problem, r, c, status="time_limit", upper_bound=ub, info=info,
                                        message=f"time limit hit after {nodes} nodes")
        return Solution.from_groups(problem, r, c, status="optimal", upper_bound=max(ub, problem.kept(r, c)),
                                    info=info, message=f"proven optimal by branch and bound ({nodes} nodes)")
