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

    Objective terms come lazily from the cost model, kept in ``obj[i, j]``; the resources
    (:data:`RESOURCES`: params, MACs, measured latency) from the space, kept in
    ``use[r, i, j]``; ``inf`` where layer ``i`` has no ``j``-th candidate. ``limits[r]`` and
    ``fixed[r]`` are each resource's budget and the unsearched rest of the model.
    """

    RESOURCES = Budget.RESOURCES

    def __init__(self, space: SearchSpace, cost_model: CostModel, budget: Budget):
        if not isinstance(cost_model, CostModel):
            raise TypeError("cost_model must have an evaluate(layer, groups) -> LayerCost method")
        self.space, self.cost_model, self.budget = space, cost_model, Budget.parse(budget)
        self.limits = np.array(self.budget.limits(space.dense_params, space.dense_macs, space.dense_latency))
        self.fixed = np.array([space.fixed_params, space.fixed_macs, space.fixed_latency or 0.0], dtype=float)
        n, J = len(space), max(len(L.candidates) for L in space.layers)
        self.n_choices = np.array([len(L.candidates) for L in space.layers])
        self.obj = np.full((n, J), np.inf)
        self.use = np.full((len(self.RESOURCES), n, J), np.inf)
        for i, L in enumerate(space.layers):
            for j, g in enumerate(L.candidates):
                self.use[:, i, j] = L.params_at(g), L.macs_at(g), L.latency_at(g)
        self._known = np.zeros((n, J), dtype=bool)
        self.evaluations = 0

    def cost(self, i: int, j: int) -> float:
        """Objective term of layer ``i`` at candidate ``j`` (from the cost model, once)."""
        if not self._known[i, j]:
            L = self.space.layers[i]
            self.obj[i, j] = self.cost_model.evaluate(L, L.candidates[j]).pruned
            self._known[i, j] = True
            self.evaluations += 1
        return float(self.obj[i, j])

    def evaluate_all(self) -> None:
        """Fill ``obj`` for every (layer, candidate)."""
        if hasattr(self.cost_model, "precompute"):
            self.cost_model.precompute(self.space)
        for i, k in enumerate(self.n_choices):
            for j in range(k):
                self.cost(i, j)

    def totals(self, choice: Any) -> tuple[float, np.ndarray]:
        """(objective, resource use ``[params, MACs, latency]``) of a full choice, fixed parts included."""
        for i, j in enumerate(choice):
            self.cost(i, int(j))
        idx, ch = np.arange(len(choice)), np.asarray(choice, dtype=int)
        return float(self.obj[idx, ch].sum()), self.fixed + self.use[:, idx, ch].sum(axis=1)

    def feasible(self, use: np.ndarray) -> bool:
        """Whether a resource-use vector fits the budget."""
        return bool(np.all(within(use, self.limits)))

    def excess(self, use: np.ndarray) -> float:
        """Budget violation summed over resources, each normalised by its limit (0 when feasible)."""
        finite = np.isfinite(self.limits)
        return float((np.maximum(0.0, use[finite] - self.limits[finite]) / self.limits[finite]).sum())

    def weights(self) -> np.ndarray:
        """Per-resource weights (1 / limit; 0 where unlimited) turning resources into one for ratio rules."""
        return np.where(np.isfinite(self.limits), 1.0 / np.where(np.isfinite(self.limits), self.limits, 1.0), 0.0)

    def combined_use(self) -> np.ndarray:
        """``(n, J)``: the limited resources of each (layer, candidate) in one number (weighted by
        :meth:`weights`; 0 where a layer has no such candidate)."""
        return np.tensordot(self.weights(), np.nan_to_num(self.use, posinf=0.0), axes=1)

    def cheapest(self) -> list[int]:
        """Each layer's candidate using the least combined resources: the largest ``G``, unless a
        latency limit makes a smaller, faster ``G`` cheaper (ties go to the larger ``G``)."""
        combined = self.combined_use()
        return [int(k - 1 - np.argmin(combined[i, :k][::-1])) for i, k in enumerate(self.n_choices)]

    def result(self, choice: list[int], strategy: str, t0: float, status: Status | str | None = None,
               history: list | None = None, gap: float | None = None, message: str = "") -> SearchResult:
        """Package a choice as a :class:`SearchResult`; a choice over budget is ``infeasible`` whatever ``status`` says."""
        obj, use = self.totals(choice)
        status = Status.FEASIBLE if status is None else Status.parse(status)
        if not self.feasible(use):
            status = Status.INFEASIBLE
        config = {L.name: L.candidates[j] for L, j in zip(self.space.layers, choice)}
        latency = float(use[2]) if self.space.fixed_latency is not None else None
        return SearchResult(config, obj, int(use[0]), int(use[1]), status, strategy, time.perf_counter() - t0,
                            self.evaluations, list(history or []), gap, message, latency)
