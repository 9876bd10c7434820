"""Permutation solvers: the paper's heuristics, better heuristics, exact solvers, and a registry.

Importing this package registers every built-in solver, in one place (``BUILTIN_MODULES``).
"""
from .registry import SOLVERS, Solver, SolverEntry, available, get, register, unregister
from .run import resolve_start, run, solve
from . import paper, heuristics, enumerate, cpsat, mip, auto  # noqa: E402,F401  (register the built-ins)
from .paper import mbm

BUILTIN_MODULES = ("paper", "heuristics", "enumerate", "cpsat", "mip", "auto")

__all__ = ["Solver", "SolverEntry", "SOLVERS", "available", "get", "register", "run", "solve", "unregister", "mbm",
           "resolve_start"]
