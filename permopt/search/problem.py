"""A configuration problem: a space, a cost model and a budget, as arrays strategies can use."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..limits import within
from ..status import Status
from .budget import Budget
from .cost import CostModel
from .result import SearchResult
from .space import SearchSpace


class ConfigProblem:
    """Choose one candidate index per layer (``choice[i]`` into ``space.layers[i].candidates``,
    ascending ``G``) minimising the summed cost under the budget.

    Costs are looked up lazily through the cost model and kept in dense arrays:
    ``obj[i, j]``, ``params[i, j]``, ``macs[i, j]`` (``inf`` where layer ``i`` has no ``j``-th candidate).
    """

    def __init__(self, space: SearchSpace, cost_model: CostModel, budget: Budget):
        if not isinstance(cost_model, CostModel):
            raise TypeError("cost_model must have an evaluate(layer, groups) -> LayerCost method")
        self.space, self.cost_model, self.budget = space, cost_model, Budget.parse(budget)
        self.max_params, self.max_macs = self.budget.limits(space.dense_params, space.dense_macs)
        n, J = len(space), max(len(L.candidates) for L in space.layers)
        self.n_choices = np.array([len(L.candidates) for L in space.layers])
        self.obj = np.full((n, J), np.inf)
        self.params = np.full((n, J), np.inf)
        self.macs = np.full((n, J), np.inf)
        self._known = np.zeros((n, J), dtype=bool)
        self.evaluations = 0

    def cost(self, i: int, j: int) -> tuple[float, float, float]:
        """(objective, params, MACs) of layer ``i`` at candidate ``j``."""
        if not self._known[i, j]:
            L = self.space.layers[i]
            c = self.cost_model.evaluate(L, L.candidates[j])
            self.obj[i, j], self.params[i, j], self.macs[i, j] = c.pruned, c.params, c.macs
            self._known[i, j] = True
            self.evaluations += 1
        return self.obj[i, j], self.params[i, j], self.macs[i, j]

    def evaluate_all(self) -> None:
        """Fill the arrays for every (layer, candidate)."""
        if hasattr(self.cost_model, "precompute"):
            self.cost_model.precompute(self.space)
        for i, k in enumerate(self.n_choices):
            for j in range(k):
                self.cost(i, j)

    def totals(self, choice: Any) -> tuple[float, float, float]:
        """(objective, params, MACs) of a full choice, fixed parts included."""
        idx = np.arange(len(choice))
        for i, j in enumerate(choice):
            self.cost(i, int(j))
        ch = np.asarray(choice)
        return (float(self.obj[idx, ch].sum()), float(self.space.fixed_params + self.params[idx, ch].sum()),
                float(self.space.fixed_macs + self.macs[idx, ch].sum()))

    def feasible(self, params: float, macs: float) -> bool:
        """Whether totals fit the budget."""
        return bool(within(params, self.max_params) and within(macs, self.max_macs))

    def excess(self, params: float, macs: float) -> float:
        """Budget violation, normalised by the limits (0 when feasible)."""
        e = 0.0
        if np.isfinite(self.max_params):
            e += max(0.0, params - self.max_params) / self.max_params
        if np.isfinite(self.max_macs):
            e += max(0.0, macs - self.max_macs) / self.max_macs
        return e

    def saving_weights(self) -> tuple[float, float]:
        """Weights turning (params, MACs) into one normalised resource for ratio rules."""
        wp = 1.0 / self.max_params if np.isfinite(self.max_params) else 0.0
        wm = 1.0 / self.max_macs if np.isfinite(self.max_macs) else 0.0
        return wp, wm

    def cheapest(self) -> list[int]:
        """The largest ``G`` everywhere."""
        return [int(k) - 1 for k in self.n_choices]

    def result(self, choice: list[int], strategy: str, t0: float, status: Status | str | None = None,
               history: list | None = None, gap: float | None = None, message: str = "") -> SearchResult:
        """Package a choice as a :class:`SearchResult`; a choice over budget is ``infeasible`` whatever ``status`` says."""
        obj, p, m = self.totals(choice)
        status = Status.FEASIBLE if status is None else Status.parse(status)
        if not self.feasible(p, m):
            status = Status.INFEASIBLE
        config = {L.name: L.candidates[j] for L, j in zip(self.space.layers, choice)}
        return SearchResult(config, obj, int(p), int(m), status, strategy, time.perf_counter() - t0,
                            self.evaluations, list(history or []), gap, message)
