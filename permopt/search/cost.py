"""The cost model: what a layer costs at a given ``G``. One interface for every strategy.

Write your own by satisfying :class:`CostModel` (e.g. measured latency, a validation-loss
probe); :class:`SolverCostModel` is the default: the pruned mass from a permutation solver,
cached in memory and optionally on disk.
"""
from __future__ import annotations

import json
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..solvers import get as get_solver
from ..solvers.run import solve_groups, solve_layer
from ..parallel import map_jobs, validate_parallel
from ..progress import progress_bar
from ..status import Status
from .space import LayerSpec, SearchSpace


#: What a budget search can minimise per (layer, G): pruned weight mass (:class:`SolverCostModel`)
#: or output error on calibration data (:class:`permopt.search.data_cost.DataCostModel`).
COSTS = ("mass", "data")


@dataclass(frozen=True)
class LayerCost:
    """A layer at one ``G``: the objective term (normalised pruned mass), kept ratio, params, MACs.

    Frozen because cost models cache and share these; derive new ones with ``dataclasses.replace``."""

    pruned: float
    kept_ratio: float
    params: int
    macs: int
    status: Status = Status.FEASIBLE


@runtime_checkable
class CostModel(Protocol):
    """What strategies need: the cost of ``layer`` with ``groups`` groups (lower ``pruned`` is better)."""

    def evaluate(self, layer: LayerSpec, groups: int) -> LayerCost:
        ...


class SolverCostModel:
    """Pruned mass ``1 - kept_ratio`` from a permutation solver, cached by (scores hash, G, solver).

    Parameters
    ----------
    solver : a registered solver name (default ``"auto"``).
    time_limit, seed : passed to the solver.
    cache_dir : optional folder for an on-disk JSON cache shared across runs.
    executor, n_jobs : where :meth:`precompute` solves: any ``concurrent.futures.Executor``
        (a process pool, ``distributed.Client(...).get_executor()``), or ``n_jobs`` local
        processes; serial by default. Results do not depend on it.
    """

    def __init__(self, solver: str = "auto", *, time_limit: float | None = None, seed: int | None = 0,
                 cache_dir: str | Path | None = None, executor: Executor | None = None,
                 n_jobs: int | None = None) -> None:
        get_solver(solver)  # fail early on unknown names
        validate_parallel(executor, n_jobs)
        self.solver, self.time_limit, self.seed = solver, time_limit, seed
        self.executor, self.n_jobs = executor, n_jobs
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._memo: dict[tuple, LayerCost] = {}
        self.solutions: dict[tuple[str, int], Any] = {}
        self.evaluations = 0  # solver calls actually made (cache misses)

    def _key(self, layer: LayerSpec, groups: int) -> tuple:
        return (layer.key, groups, self.solver, self.seed)

    def _path(self, key: tuple) -> Path | None:
        return self.cache_dir / ("_".join(map(str, key)) + ".json") if self.cache_dir else None

    def _cached(self, layer: LayerSpec, groups: int) -> LayerCost | None:
        key = self._key(layer, groups)
        if key in self._memo:
            return self._memo[key]
        path = self._path(key)
        if groups == 1:
            cost = LayerCost(0.0, 1.0, layer.params_at(1), layer.macs_at(1), Status.OPTIMAL)
        elif path is not None and path.exists():
            d = json.loads(path.read_text())
            cost = LayerCost(**{**d, "status": Status.parse(d.get("status", "feasible"))})
        else:
            return None
        self._memo[key] = cost
        return cost

    def _store(self, layer: LayerSpec, groups: int, sol: Any) -> LayerCost:
        self.solutions[(layer.name, groups)] = sol
        self.evaluations += 1
        cost = LayerCost(1.0 - sol.kept_ratio, sol.kept_ratio, layer.params_at(groups), layer.macs_at(groups),
                         sol.status)
        key = self._key(layer, groups)
        path = self._path(key)
        if path is not None:
            path.write_text(json.dumps(asdict(cost)))
        self._memo[key] = cost
        return cost

    def evaluate(self, layer: LayerSpec, groups: int) -> LayerCost:
        """Cost of ``layer`` at ``groups``, from the cache when possible."""
        cost = self._cached(layer, groups)
        if cost is None:
            sol = solve_layer(layer.scores, groups, layer.name, self.solver, self.time_limit, self.seed)
            cost = self._store(layer, groups, sol)
        return cost

    def precompute(self, space: SearchSpace, progress: bool = False) -> None:
        """Evaluate every (layer, candidate) pair not cached yet on the executor: one job per layer
        (its scores are sent once), largest layers first."""
        todo = [(L, [g for g in L.candidates if self._cached(L, g) is None]) for L in space.layers]
        todo = sorted(((L, gs) for L, gs in todo if gs), key=lambda t: -t[0].scores.size)
        bar = progress_bar(len(todo), f"cost model ({self.solver})", "layer", progress)
        jobs = [(L.scores, gs, L.name, self.solver, self.time_limit, self.seed) for L, gs in todo]
        for (L, gs), sols in zip(todo, map_jobs(solve_groups, jobs, self.executor, self.n_jobs, bar)):
            for g, sol in zip(gs, sols):
                self._store(L, g, sol)
        if bar:
            bar.close()
