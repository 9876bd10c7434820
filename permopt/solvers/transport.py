"""Exact one-sided moves: with one side's groups fixed, the other side is a transportation problem.

Items (columns, say) go to ``G`` groups of capacity ``n/G`` with profit ``A[i, g]``; the
capacity-expanded ``n × n`` assignment (each group repeated ``n/G`` times) solves it exactly.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..problem import one_hot


#: Above this many items, solve by OR-Tools min-cost flow (``n·G`` arcs) instead of the
#: ``n × n`` assignment: measured 1.5× faster at 128 items, 4× at 256, 15× at 2048 (and
#: slower below about 96).
FLOW_MIN_ITEMS = 96
_FLOW_SCALE = 2.0 ** 40  # integer cost resolution: relative rounding error below 1e-12 per entry


def _assign_by_flow(profit: np.ndarray) -> np.ndarray:
    from ortools.graph.python import min_cost_flow

    n, G = profit.shape
    cost = -np.rint(profit * (_FLOW_SCALE / max(float(profit.max()), 1e-300))).astype(np.int64)
    flow = min_cost_flow.SimpleMinCostFlow()
    arcs = flow.add_arcs_with_capacity_and_unit_cost(
        np.repeat(np.arange(n), G), n + np.tile(np.arange(G), n), np.ones(n * G, dtype=np.int64), cost.ravel())
    flow.set_nodes_supplies(np.arange(n + G), np.concatenate([np.ones(n, np.int64), np.full(G, -(n // G))]))
    if flow.solve() != flow.OPTIMAL:
        raise RuntimeError("min-cost flow failed on a balanced transportation problem")
    return flow.flows(arcs).reshape(n, G).argmax(axis=1).astype(np.int64)


def assign_balanced(profit: np.ndarray, exact: bool = False) -> tuple[np.ndarray, float]:
    """Best assignment of ``n`` items to ``G`` groups, ``n/G`` each; returns (labels, profit).

    Small or ``exact`` instances use scipy's assignment on floats; large ones a min-cost flow
    on integer-scaled profits (optimal up to a relative rounding below 1e-12 per entry).
    """
    n, G = profit.shape
    cap = n // G
    if G == 1:
        labels = np.zeros(n, dtype=np.int64)
    elif n > FLOW_MIN_ITEMS and not exact:
        labels = _assign_by_flow(profit)
    else:
        rows, cols = linear_sum_assignment(np.repeat(profit, cap, axis=1), maximize=True)
        labels = np.empty(n, dtype=np.int64)
        labels[rows] = cols // cap
    return labels, float(profit[np.arange(n), labels].sum())


def best_col_groups(S: np.ndarray, row_groups: np.ndarray, G: int, exact: bool = False) -> tuple[np.ndarray, float]:
    """Optimal column groups for fixed row groups, and the mass they keep (``exact``: float
    assignment, no flow rounding)."""
    return assign_balanced(S.T @ one_hot(row_groups, G), exact=exact)


def best_row_groups(S: np.ndarray, col_groups: np.ndarray, G: int) -> tuple[np.ndarray, float]:
    """Optimal row groups for fixed column groups, and the mass they keep."""
    return assign_balanced(S @ one_hot(col_groups, G))
