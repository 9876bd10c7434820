"""``permopt.bound``: the certified bound a user asks for, chosen among the methods of
:mod:`permopt.certify` (top-k, spectral, SDP), the Lagrangian spectral bound of
:mod:`permopt.lagrangian` and the set-partitioning LP of :mod:`permopt.solvers.colgen`. See
:mod:`permopt.certify` and :mod:`permopt.lagrangian` for the mathematics.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .certify import Bound, sdp_bound, spectral_bound, topk_bound
from .lagrangian import lagrangian_bound
from .limits import Deadline, validate_count, validate_time_limit
from .problem import GroupingProblem
from .solvers.colgen import colgen_bound, pricing_entries
from .solvers.run import run
from .status import Status

METHODS = ("topk", "spectral", "lagrangian", "sdp", "colgen", "best")
#: ``best`` includes the SDP bound up to this many rows + columns (measured: 1.2 s at 64×64,
#: 4 s at 96×96, 6.7 s at 128×128; it halves the spectral bound's gap there, 22–24% → 9–12%).
SDP_AUTO_MAX_SIZE = 256
#: ``best`` includes the column-generation bound up to this pricing table size (32×32 G=8:
#: 35,960 subsets × 32, about 1 s), instead of the SDP (which it beats on every layer measured).
COLGEN_AUTO_MAX_ENTRIES = 1_500_000


def bound(scores: Any, groups: int | None = None, method: str = "best", *,
          time_limit: float | None = None, cut_rounds: int = 0,
          start: tuple[np.ndarray, np.ndarray] | None = None, evaluations: int | None = None) -> Bound:
    """A certified upper bound on the kept mass of ``scores`` (a matrix or a GroupingProblem).

    ``method``: ``topk``, ``spectral``, ``lagrangian`` (the spectral bound with optimised
    non-negativity multipliers, see :mod:`permopt.lagrangian`: any width, under a minute at
    2048×512), ``sdp``, ``colgen`` (the set-partitioning LP, see :mod:`permopt.solvers.colgen`;
    groups of up to 1e10 subsets, seconds to minutes) or ``best`` (the smallest of top-k, spectral,
    Lagrangian and the column-generation bound where it prices at most ``COLGEN_AUTO_MAX_ENTRIES``
    entries, else the SDP bound for problems of at most ``SDP_AUTO_MAX_SIZE`` rows + columns; but
    first the ``auto`` solver, within its small work count: where it proves the optimum, that is the
    bound, method ``"optimum"``, and nothing else runs).
    ``time_limit`` caps the whole call (the SDP or column generation first, the Lagrangian bound
    with what is left, at least one evaluation; it then breaks reproducibility); ``evaluations``
    is the Lagrangian bound's work count (default
    :func:`permopt.lagrangian.default_evaluations`); ``cut_rounds`` adds rounds of
    triangle-inequality cuts to the SDP (tighter, a few times slower; see :func:`sdp_bound`).
    ``start`` (row and column groups, or a Solution) seeds the column generation with its blocks
    instead of a ``best`` run (``solve(..., bound=...)`` passes its solution).
    """
    problem = GroupingProblem.coerce(scores, groups)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    time_limit, cut_rounds = validate_time_limit(time_limit), validate_count("cut_rounds", cut_rounds)
    if start is not None:
        start = problem.check_pair(start, "start", also="None, ")
    if evaluations is not None:
        evaluations = validate_count("evaluations", evaluations, 1)
    t0 = time.perf_counter()
    deadline = Deadline(time_limit)
    values: dict[str, float] = {}
    info: dict = {}
    if method in ("topk", "best"):
        values["topk"] = topk_bound(problem)
    if method in ("spectral", "best"):
        values["spectral"] = spectral_bound(problem)
    if method == "best":  # solved exactly within a small work count: the proven optimum bounds it; done
        exact = run(problem, "auto", seed=0)
        if exact.status is Status.OPTIMAL:
            values["optimum"] = exact.upper_bound
            return Bound(values["optimum"], "optimum", time.perf_counter() - t0,
                         {"all": values, "skipped": {"the rest": f"auto proved the optimum ({exact.info.get('delegate', exact.solver)})"}})
        start = start if start is not None else (exact.row_groups, exact.col_groups)
    if method in ("colgen", "best"):
        if method == "colgen" or pricing_entries(problem) <= COLGEN_AUTO_MAX_ENTRIES:
            values["colgen"], info = colgen_bound(problem, time_limit=deadline.remaining(1e-3), start=start)
    if "colgen" not in values and (method == "sdp" or (method == "best" and problem.F + problem.C <= SDP_AUTO_MAX_SIZE)):
        values["sdp"], info = sdp_bound(problem, time_limit=deadline.remaining(1e-3), cut_rounds=cut_rounds)
    if method in ("lagrangian", "best"):
        values["lagrangian"], lagrange = lagrangian_bound(problem, evaluations=evaluations,
                                                          time_limit=deadline.remaining(1e-3))
        info = {**info, "lagrangian_evaluations": lagrange["evaluations"],
                "time_limit_hit": info.get("time_limit_hit", False) or lagrange["time_limit_hit"]}
    name = min(values, key=lambda k: values[k])
    skipped = _skipped(problem) if method == "best" else {}
    return Bound(values[name], name, time.perf_counter() - t0, {"all": values, **info, "skipped": skipped})


def _skipped(problem: GroupingProblem) -> dict[str, str]:
    """The methods ``best`` did not run on ``problem``, each with why and how to ask for it."""
    entries, size = pricing_entries(problem), problem.F + problem.C
    out = {}
    if entries > COLGEN_AUTO_MAX_ENTRIES:
        out["colgen"] = (f"pricing table of {entries:.3g} entries > COLGEN_AUTO_MAX_ENTRIES="
                         f"{COLGEN_AUTO_MAX_ENTRIES:.3g} (seconds to minutes, or refused, beyond); "
                         "ask for method='colgen'")
        if size > SDP_AUTO_MAX_SIZE:
            out["sdp"] = (f"{size} rows + columns > SDP_AUTO_MAX_SIZE={SDP_AUTO_MAX_SIZE} (tens of seconds and "
                          "more beyond); ask for method='sdp'")
    else:
        out["sdp"] = "the column-generation bound ran instead (tighter on every layer measured)"
    return out


__all__ = ["bound", "Bound", "METHODS", "topk_bound", "spectral_bound", "lagrangian_bound", "sdp_bound"]
