"""permopt: turn dense convolutions into group convolutions by optimal channel permutation.

Quick start::

    import numpy as np, permopt
    S = np.abs(np.random.default_rng(0).standard_normal((64, 64)))
    sol = permopt.solve(S, groups=4)
    sol.kept_ratio, sol.upper_bound, sol.gap, sol.status

Solving, comparing and searching on matrices never imports torch; the model pipeline
(``prune``, ``apply_plan``, ``permopt.nn``, ``permopt.models``) imports it on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

from .bounds import Bound, bound
from .compare import Comparison, compare
from .criteria import available_criteria, register_criterion, scores_from_weight
from .plan import LayerPlan, Plan
from .problem import GroupingProblem
from .solution import Solution
from .solvers import available as available_solvers
from .solvers import mbm, register as register_solver
from .solving import solve
from .status import Status

__version__ = "0.4.0"

#: Names served from torch-dependent modules, imported on first access.
_LAZY = {"prune": "pruning", "apply_plan": "pruning", "load_pruned": "pruning", "PruneResult": "pruning",
         "PruneConfig": "pruning", "PruneOptions": "pruning", "Report": "pruning", "PruningSession": "pruning",
         "LatencySetup": "nn.latency"}


#: Subpackages reachable as attributes after a plain ``import permopt`` (``permopt.nn.count``),
#: imported on first access so that ``import permopt`` stays free of torch.
_SUBMODULES = ("nn", "models", "search", "solvers", "plot", "coupling", "pruning", "bench", "io", "datasets")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'permopt' has no attribute {name!r}")


__all__ = ["prune", "apply_plan", "load_pruned", "PruningSession", "PruneConfig", "PruneOptions", "PruneResult", "Report", "Plan", "LayerPlan", "compare", "Comparison",
           "GroupingProblem", "Solution", "Status", "solve", "mbm", "available_solvers", "register_solver",
           "register_criterion", "available_criteria", "scores_from_weight", "bound", "Bound", "LatencySetup"]
