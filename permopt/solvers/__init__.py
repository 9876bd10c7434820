"""Permutation solvers: the paper's heuristics, better heuristics, exact solvers, and a registry."""
from .registry import Solver, SolverEntry, available, get, register, run, solve, unregister
from .paper import mbm

__all__ = ["Solver", "SolverEntry", "available", "get", "register", "run", "solve", "unregister", "mbm"]
