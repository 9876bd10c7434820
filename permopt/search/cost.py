"""The cost model: what a layer costs at a given ``G``. One interface for every strategy.

Write your own by satisfying :class:`CostModel` (e.g. measured latency, a validation-loss
probe); :class:`SolverCostModel` is the default: the pruned mass from a permutation solver,
cached in memory and optionally on disk.
"""
from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..problem import GroupingProblem
from ..solvers import get as get_solver
from ..solvers import run
from ..status import Status
from .space import LayerSpec, SearchSpace


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
    workers : threads for :meth:`precompute` (numpy and the solvers release the GIL in places).
    """

    def __init__(self, solver: str = "auto", *, time_limit: float | None = None, seed: int | None = 0,
                 cache_dir: str | Path | None = None, workers: int | None = None) -> None:
        get_solver(solver)  # fail early on unknown names
        self.solver, self.time_limit, self.seed = solver, time_limit, seed
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.workers = workers or max(1, os.cpu_count() or 1)
        self._memo: dict[tuple, LayerCost] = {}
        self._lock = threading.Lock()  # precompute() evaluates from several threads
        self.solutions: dict[tuple[str, int], object] = {}
        self.evaluations = 0  # solver calls actually made (cache misses)

    def _key(self, layer: LayerSpec, groups: int) -> tuple:
        return (layer.key, groups, self.solver, self.seed)

    def evaluate(self, layer: LayerSpec, groups: int) -> LayerCost:
        """Cost of ``layer`` at ``groups``, from the cache when possible."""
        key = self._key(layer, groups)
        if key in self._memo:
            return self._memo[key]
        path = self.cache_dir / ("_".join(map(str, key)) + ".json") if self.cache_dir else None
        if path is not None and path.exists():
            d = json.loads(path.read_text())
            cost = LayerCost(**{**d, "status": Status.parse(d.get("status", "feasible"))})
        else:
            if groups == 1:
                cost = LayerCost(0.0, 1.0, layer.params_at(1), layer.macs_at(1), Status.OPTIMAL)
            else:
                sol = run(GroupingProblem(layer.scores, groups, name=layer.name), self.solver,
                          time_limit=self.time_limit, seed=self.seed)
                with self._lock:
                    self.solutions[(layer.name, groups)] = sol
                    self.evaluations += 1
                cost = LayerCost(1.0 - sol.kept_ratio, sol.kept_ratio, layer.params_at(groups), layer.macs_at(groups),
                                 sol.status)
            if path is not None:
                path.write_text(json.dumps(asdict(cost)))
        self._memo[key] = cost
        return cost

    def precompute(self, space: SearchSpace, progress: bool = False) -> None:
        """Evaluate every (layer, candidate) pair, in parallel, largest layers first."""
        jobs = sorted(((L, g) for L in space.layers for g in L.candidates),
                      key=lambda t: -t[0].scores.size)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(jobs), desc=f"cost model ({self.solver})", unit="eval")
        with ThreadPoolExecutor(self.workers) as pool:
            for _ in pool.map(lambda job: self.evaluate(*job), jobs):
                if bar:
                    bar.update()
        if bar:
            bar.close()
