"""Permutation solvers: the paper's heuristics, better heuristics, exact solvers, and a registry.

Importing this package registers every built-in solver, from one list (``BUILTIN_MODULES``),
before any user code can register its own: a clashing user name is refused at once.
"""
import importlib

from .registry import SOLVERS, Solver, available, get, register, unregister
from .run import resolve_start, run

#: The modules whose import registers the built-in solvers.
BUILTIN_MODULES = ("paper", "heuristics", "sdp", "colgen", "enumerate", "cpsat", "mip", "auto")
for _name in BUILTIN_MODULES:
    importlib.import_module(f".{_name}", __name__)

from .paper import mbm  # noqa: E402

__all__ = ["Solver", "SOLVERS", "available", "get", "register", "run", "unregister", "mbm",
           "resolve_start", "BUILTIN_MODULES"]
