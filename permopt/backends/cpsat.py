"""OR-Tools CP-SAT set-up shared by the ``cpsat`` solver and the ``exact`` knapsack strategy."""
from __future__ import annotations

import os
from typing import Any


def cp_model() -> Any:
    """``ortools.sat.python.cp_model`` with a clear message when missing."""
    try:
        from ortools.sat.python import cp_model as module
    except ImportError as e:  # pragma: no cover - ortools is a runtime dependency
        raise ImportError("this needs OR-Tools: pip install ortools") from e
    return module


def workers() -> int:
    """CP-SAT workers: at least 8, even on fewer cores (they time-slice). With 2 workers CP-SAT's
    portfolio lacks its LP-based workers: a 165-layer knapsack then stalls at a 40% gap for 20 s,
    while 8 workers prove it in 0.1 s on 2 cores (and tighten the 12×12 G=3 bound from 63.5 to 58.5)."""
    return max(8, os.cpu_count() or 1)


def configure(solver: Any, *, time_limit: float | None, seed: int | None, threads: int | None = None,
              log: bool = False) -> None:
    """Set a ``CpSolver``'s limits, seed and workers.

    ``interleave_search`` makes the parallel portfolio deterministic: the same model and
    seed give the same answer whatever the machine's load (unless ``time_limit`` bites).
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    p = solver.parameters
    if time_limit is not None:
        p.max_time_in_seconds = float(time_limit)
    p.num_workers = threads or workers()
    p.interleave_search = True
    p.random_seed = 0 if seed is None else int(seed) % 2**31  # CP-SAT takes a signed 32-bit seed
    p.log_search_progress = bool(log)
