"""Group configuration search: choose ``G`` per layer under a parameter/MAC budget.

    import permopt
    from permopt.search import search
    space = permopt.nn.search_space(model, x)       # or SearchSpace(layers) from matrices
    result = search(space, budget={"params": 0.5}, strategy="exact")

Strategies: ``paper`` (the authors' greedy, made correct), ``exact`` (multiple-choice
knapsack, CP-SAT or PuLP), ``descent``, ``annealing``, ``genetic``, ``random``, ``optuna``
(Optuna's TPE, shareable studies), and any you register with :func:`register_strategy`;
:func:`pareto_front` gives the trade-off of pruned mass against params / MACs. Importing this package registers the built-ins.
"""
from __future__ import annotations

import time
from typing import Any

from .budget import Budget
from .cost import CostModel, LayerCost, SolverCostModel
from .config import ConfigProblem
from .result import SearchResult
from .space import LayerSpec, SearchSpace
from .strategies import (STRATEGIES, Strategy, available_strategies, get_strategy, register_strategy, repair,
                         unregister_strategy)
from . import exact, optuna_search  # noqa: E402,F401  (register "exact" and "optuna")
from .pareto import pareto_front
from ..limits import validate_seed, validate_time_limit


def search(space: SearchSpace, budget: Any, strategy: str = "exact", *, cost_model: CostModel | None = None,
           solver: str = "auto", time_limit: float | None = None, seed: int | None = 0,
           **options: Any) -> SearchResult:
    """Run a registered strategy on ``space`` under ``budget`` (a Budget, dict or "params=0.5" string).

    ``cost_model`` defaults to a :class:`SolverCostModel` using ``solver``; pass the same cost
    model to several searches to reuse its cache and compare strategies fairly. ``time_limit``
    is an optional wall-clock cap on the strategy (it breaks reproducibility when it bites).
    """
    entry = get_strategy(strategy)
    STRATEGIES.check_options(strategy, options)
    time_limit, seed = validate_time_limit(time_limit), validate_seed(seed)
    problem = ConfigProblem(space, cost_model or SolverCostModel(solver, seed=seed), Budget.parse(budget))
    t0 = time.perf_counter()
    out = entry.fn(problem, time_limit=time_limit, seed=seed, **options)
    if isinstance(out, SearchResult):
        out.strategy = strategy
        return out
    try:
        choice = [int(j) for j in out]
    except TypeError:
        raise TypeError(f"strategy {strategy!r} must return a choice list or a SearchResult, "
                        f"got {type(out).__name__}") from None
    if len(choice) != len(space) or any(not 0 <= j < k for j, k in zip(choice, problem.n_choices)):
        raise ValueError(f"strategy {strategy!r} returned an invalid choice {choice}")
    return problem.result(choice, strategy, t0)


__all__ = ["search", "SearchSpace", "LayerSpec", "Budget", "CostModel", "LayerCost", "SolverCostModel",
           "ConfigProblem", "SearchResult", "Strategy", "register_strategy", "unregister_strategy",
           "available_strategies", "get_strategy", "repair", "STRATEGIES", "pareto_front"]
