"""The trade-off of pruned mass against a resource: the Pareto front of configurations.

For one additive resource (params or MACs) the front is computed by merging the layers' options
one layer at a time and keeping only non-dominated partial sums (a multi-objective knapsack
dynamic programme); partial sums are kept on a grid of ``resolution`` × the dense total, so
every point returned is a real configuration and the front is within ``layers × resolution`` of
the exact one in that resource (0.05% of dense per 50 layers by default). Several resources,
or measured latency, use Optuna's NSGA-II (approximate: on ResNet-56 300 trials stopped at a
pruned mass of 6.59 where the exact knapsack reaches 3.69 at the same budget).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..limits import positive_number
from .config import ConfigProblem

#: Grid step of the exact front's partial sums, as a fraction of the dense model's resource.
FRONT_RESOLUTION = 1e-5


def pareto_front(problem: ConfigProblem, *, resources: tuple[str, ...] = ("params",), method: str = "auto",
                 n_trials: int = 300, seed: int | None = 0, storage: str | None = None,
                 study_name: str | None = None, resolution: float = FRONT_RESOLUTION) -> list[dict]:
    """Non-dominated configurations of pruned mass against ``resources`` (``params``, ``macs``,
    ``latency`` when the space has measured latencies), sorted by the first resource.

    ``method``: ``"exact"`` (one of params/MACs: the dynamic programme above), ``"nsga2"``
    (Optuna, ``n_trials``, ``seed``, ``storage``, ``study_name``) or ``"auto"`` (exact where it
    applies). Each point: ``config`` (G per layer), ``objective`` and every resource. The
    budget of ``problem`` is not enforced here: the front shows the whole trade-off.
    """
    known = problem.RESOURCES if problem.space.fixed_latency is not None else problem.RESOURCES[:2]
    bad = set(resources) - set(known)
    if not resources or bad:
        raise ValueError(f"resources must name some of {', '.join(known)}, got {resources!r}")
    exact_ok = len(resources) == 1 and resources[0] in ("params", "macs")
    if method not in ("auto", "exact", "nsga2"):
        raise ValueError(f"method must be 'auto', 'exact' or 'nsga2', got {method!r}")
    if method == "exact" and not exact_ok:
        raise ValueError(f"method='exact' takes one resource, params or macs; got {resources!r} (use 'nsga2')")
    if method != "nsga2" and exact_ok:
        choices = _exact_choices(problem, resources[0], resolution)
    else:
        from .optuna_search import nsga2_front

        choices = nsga2_front(problem, resources, n_trials, seed, storage, study_name)
    points = [_point(problem, choice, known) for choice in choices]
    unique = {tuple(sorted(pt["config"].items())): pt for pt in points}
    return sorted(unique.values(), key=lambda pt: (pt[resources[0]], pt["objective"]))


def _point(problem: ConfigProblem, choice: list[int], known: tuple[str, ...]) -> dict[str, Any]:
    obj, use = problem.totals(choice)
    point: dict[str, Any] = {"config": {L.name: L.candidates[j] for L, j in zip(problem.space.layers, choice)},
                             "objective": obj}
    point.update({r: int(u) if r != "latency" else float(u) for r, u in zip(problem.RESOURCES, use) if r in known})
    return point


def _exact_choices(problem: ConfigProblem, resource: str, resolution: float) -> list[list[int]]:
    """Choices on the front of (summed objective, summed ``resource``), merged layer by layer."""
    resolution = positive_number("resolution", resolution)
    problem.evaluate_all()
    r = problem.RESOURCES.index(resource)
    dense = problem.space.dense_params if resource == "params" else problem.space.dense_macs
    step = max(resolution * dense, 1e-12)
    use, obj = np.zeros(1), np.zeros(1)
    parents: list[tuple[np.ndarray, np.ndarray]] = []  # per layer: (front index before it, option)
    for i, k in enumerate(problem.n_choices):
        cand_use = (use[:, None] + problem.use[r, i, :k][None, :]).ravel()
        cand_obj = (obj[:, None] + problem.obj[i, :k][None, :]).ravel()
        keep = _non_dominated(cand_use, cand_obj, step)
        parents.append((keep // k, keep % k))
        use, obj = cand_use[keep], cand_obj[keep]
    choices = []
    for end in range(len(use)):
        choice, at = [], end
        for before, option in reversed(parents):
            choice.append(int(option[at]))
            at = int(before[at])
        choices.append(choice[::-1])
    return choices


def _non_dominated(use: np.ndarray, obj: np.ndarray, step: float) -> np.ndarray:
    """Indices of the points no other point beats in both ``use`` and ``obj`` (lower is better),
    at most one per grid cell of ``use`` (the one with the least ``obj``)."""
    order = np.lexsort((obj, use))
    best_before = np.minimum.accumulate(obj[order])
    first = np.r_[True, obj[order][1:] < best_before[:-1]]  # strictly better than every cheaper point
    kept = order[first]
    cell = np.floor(use[kept] / step)
    last_in_cell = np.r_[cell[1:] != cell[:-1], True]  # within a cell the last is the least obj
    return kept[last_in_cell]
