"""permopt: turn dense convolutions into group convolutions by optimal channel permutation.

Quick start::

    import numpy as np, permopt
    S = np.abs(np.random.default_rng(0).standard_normal((64, 64)))
    sol = permopt.solve(S, groups=4, solver="grps")
    sol.kept_ratio, sol.upper_bound, sol.gap, sol.status
"""
from .compare import Comparison, compare
from .criteria import available_criteria, register_criterion, scores_from_weight
from .pipeline import PruneResult, Report, apply_plan, prune
from .plan import LayerPlan, Plan
from .problem import GroupingProblem
from .solution import STATUSES, Solution
from .solvers import available as available_solvers
from .solvers import mbm, register as register_solver, solve

__version__ = "0.1.0"
__all__ = ["prune", "apply_plan", "PruneResult", "Report", "Plan", "LayerPlan", "compare", "Comparison", "GroupingProblem", "Solution", "STATUSES", "solve", "mbm", "available_solvers", "register_solver",
           "register_criterion", "available_criteria", "scores_from_weight"]
