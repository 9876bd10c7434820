"""Heuristics past the paper, for large layers.

* ``alternating``: fix rows → optimal columns (transportation), fix columns → optimal rows,
  until no gain. Monotone, so seeded from GRPS it never ends below GRPS.
* ``local``: iterated local search: kick the alternating fixed point with random swaps,
  re-run alternating, keep improvements.
* ``anneal``: simulated annealing on row/column swaps with O(1) delta evaluation, then
  alternating polish.
* ``soft``: deterministic annealing of soft balanced assignments (Sinkhorn plans at a
  falling temperature), rounded by transportation, then alternating.
* ``best``: the default inside ``auto``, the cost model and every exact warm start:
  GRPS, ``soft``, alternating, then ``effort``-many rounds of kicks.

Every one stops on work counts (sweeps, steps, kicks), so the same inputs and seed give
the same labels on any load; ``time_limit`` is an optional cap that breaks this when it bites.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..limits import Deadline, positive_number, validate_count
from ..problem import GroupingProblem, one_hot
from ..solution import Solution
from .paper import grps
from .registry import register
from .run import resolve_start, stopped_result
from .transport import assign_balanced, best_col_groups, best_row_groups

Groups = tuple[np.ndarray, np.ndarray]
#: What a heuristic returns: its groups, or a ``time_limit`` Solution when the clock cut it short.
Result = Groups | Solution
#: A sweep must gain more than this fraction of the total mass to count as progress.
_GAIN_RTOL = 1e-12


def alternate(problem: GroupingProblem, r: np.ndarray, c: np.ndarray | None = None, sweep_limit: int = 100,
              deadline: Deadline | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Alternating transportation from rows ``r``: at most ``sweep_limit`` sweeps, until no gain; (r, c, kept).

    A sweep computes the best columns for the rows, then the best rows for those columns
    (each transport also returns the kept mass, so nothing is recounted, and starts warm from
    the previous groups: exact cycle cancelling, see :mod:`permopt.solvers.transport`). The result keeps
    at least as much as ``(r, c)`` for any ``c``; ``c`` only sets the baseline of the first sweep.
    """
    S, G = problem.scores, problem.groups
    kept = -np.inf if c is None else problem.kept(r, c)
    if c is None:
        c = best_col_groups(S, r, G)[0]  # cold once; then each transport starts from the last groups
    for _ in range(sweep_limit):
        c2, _ = best_col_groups(S, r, G, start=c)
        r2, new = best_row_groups(S, c2, G, start=r)
        if new <= kept + _GAIN_RTOL * problem.total:
            break
        r, c, kept = r2, c2, new
        if deadline is not None and deadline.passed():
            break
    return r, c, kept


@register("alternating")
def alternating(problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
                start: Any = "grps", restarts: int = 0, sweep_limit: int = 100) -> Result:
    """Alternating transportation to a fixed point, from ``start`` plus ``restarts`` random starts."""
    restarts, sweep_limit = validate_count("restarts", restarts), validate_count("sweep_limit", sweep_limit, 1)
    rng = np.random.default_rng(seed)
    deadline = Deadline(time_limit)
    best_ = alternate(problem, *resolve_start(problem, start, seed, deadline), sweep_limit, deadline)
    for _ in range(restarts):
        if deadline.passed():
            break
        cand = alternate(problem, *resolve_start(problem, "random", int(rng.integers(2**32))), sweep_limit, deadline)
        if cand[2] > best_[2]:
            best_ = cand
    return stopped_result(problem, best_[0], best_[1], deadline, "alternating")


def _kick(r: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Swap a fraction of random row pairs (group sizes stay equal). Columns need no kick:
    alternating recomputes them from the rows first."""
    labels = r.copy()
    k = max(1, int(strength * labels.shape[0]))
    i, j = rng.integers(0, labels.shape[0], size=(2, k))
    for a, b in zip(i, j):
        labels[a], labels[b] = labels[b], labels[a]
    return labels


def kick_search(problem: GroupingProblem, r: np.ndarray, c: np.ndarray, kept: float, iterations: int,
                strength: float, rng: np.random.Generator, deadline: Deadline | None = None,
                sweep_limit: int = 100) -> tuple[np.ndarray, np.ndarray, float]:
    """Iterated local search: kick ``(r, c)``, re-run alternating, keep gains; returns (r, c, kept).

    More ``iterations`` with the same ``rng`` continue the same sequence, so the result never
    gets worse as the count grows.
    """
    for _ in range(iterations):
        if deadline is not None and deadline.passed():
            break
        r2, c2, k2 = alternate(problem, _kick(r, strength, rng), None, sweep_limit, deadline)
        if k2 > kept:
            r, c, kept = r2, c2, k2
    return r, c, kept


@register("local")
def local(problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
          start: Any = "grps", iterations: int = 50, strength: float = 0.1) -> Result:
    """Iterated local search: kick the alternating fixed point, re-run alternating, keep gains."""
    iterations = validate_count("iterations", iterations)
    strength = positive_number("strength", strength, "the fraction of rows swapped per kick", maximum=1.0)
    rng = np.random.default_rng(seed)
    deadline = Deadline(time_limit)
    r, c, kept = alternate(problem, *resolve_start(problem, start, seed, deadline), deadline=deadline)
    r, c, _ = kick_search(problem, r, c, kept, iterations, strength, rng, deadline)
    return stopped_result(problem, r, c, deadline, "local")


class _SwapState:
    """Row/column labels with the masses ``M[f, g]`` (row f in column group g) and
    ``N[c, g]`` (column c in row group g) that make a swap's delta O(1)."""

    def __init__(self, problem: GroupingProblem, r: np.ndarray, c: np.ndarray):
        self.S, G = problem.scores, problem.groups
        self.r, self.c = r.copy(), c.copy()
        self.M, self.N = self.S @ one_hot(self.c, G), self.S.T @ one_hot(self.r, G)
        self.kept = problem.kept(self.r, self.c)

    def delta(self, rows: bool, i: int, j: int) -> float:
        labels, D = (self.r, self.M) if rows else (self.c, self.N)
        a, b = labels[i], labels[j]
        return float("nan") if a == b else D[i, b] - D[i, a] + D[j, a] - D[j, b]  # nan: no move

    def swap(self, rows: bool, i: int, j: int, delta: float) -> None:
        labels, other = (self.r, self.N) if rows else (self.c, self.M)
        a, b = labels[i], labels[j]
        labels[i], labels[j] = b, a
        diff = self.S[j] - self.S[i] if rows else self.S[:, j] - self.S[:, i]
        other[:, a] += diff  # the other side's masses per group of this side change
        other[:, b] -= diff
        self.kept += delta


_ANNEAL_CHUNK = 4096


@register("anneal")
def anneal(problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
           start: Any = "grps", steps: int | None = None, t0: float = 0.5, t1: float = 0.005) -> Result:
    """Simulated annealing on single row/column swaps (O(1) deltas), then alternating polish.

    ``t0``/``t1`` are start/end temperatures relative to the mean |delta| of random swaps at
    the start; ``steps`` defaults to ``200 * (F + C)``.
    """
    F, C = problem.F, problem.C
    steps = 200 * (F + C) if steps is None else validate_count("steps", steps)
    t0, t1 = positive_number("t0", t0), positive_number("t1", t1)
    rng = np.random.default_rng(seed)
    deadline = Deadline(time_limit)
    st = _SwapState(problem, *alternate(problem, *resolve_start(problem, start, seed, deadline), deadline=deadline)[:2])
    best_ = (st.r.copy(), st.c.copy(), st.kept)
    i, j = rng.integers(0, F, size=(2, 256))
    scale = np.nan_to_num(np.abs([st.delta(True, a, b) for a, b in zip(i, j)])).mean() + 1e-300
    for start in range(0, steps, _ANNEAL_CHUNK):  # random draws in chunks: memory stays small
        if deadline.passed():
            break
        t = np.arange(start, min(steps, start + _ANNEAL_CHUNK))
        temps = scale * t0 * (t1 / t0) ** (t / max(1, steps - 1))
        side, pick, logu = rng.random(t.size) < F / (F + C), rng.random((t.size, 2)), np.log(rng.random(t.size))
        for k in range(t.size):
            n = F if side[k] else C
            a, b = int(pick[k, 0] * n), int(pick[k, 1] * n)
            delta = st.delta(bool(side[k]), a, b)
            if delta >= 0 or delta > temps[k] * logu[k]:  # False for nan (same group)
                st.swap(bool(side[k]), a, b, delta)
                if st.kept > best_[2]:
                    best_ = (st.r.copy(), st.c.copy(), st.kept)
    polished = [alternate(problem, *cand, deadline=deadline) for cand in ((st.r, st.c), best_[:2])]
    r, c, _ = max(polished, key=lambda t: t[2])
    return stopped_result(problem, r, c, deadline, "anneal")


#: ``best``'s fixed work: soft-annealing steps, alternating sweeps, and kick rounds per unit of
#: effort. Chosen on benchmarks/bench_heuristics.py: 16 steps match the quality of the previous
#: time-budgeted ``best`` on its benchmark set; more sweeps or kicks gain little per unit of time.
BEST_SOFT_STEPS, BEST_SWEEPS, BEST_KICKS = 16, 3, 4
#: Largest ``effort``: about a thousand ``best`` runs (more is better bought from an exact solver).
MAX_EFFORT = 1000.0


@register("best")
def best(problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
         effort: float = 0.0) -> Result:
    """Default heuristic: GRPS, soft annealing, alternating, then ``round(4 · effort)`` kick rounds.

    A fixed amount of work, so the answer depends only on the inputs and ``seed``. Never keeps
    less than GRPS; more ``effort`` never keeps less (the kick rounds continue one sequence),
    and each unit of effort costs about one more ``best`` run.
    """
    effort = positive_number("effort", effort, "each unit costs about one more best run", maximum=MAX_EFFORT,
                             allow_zero=True)
    rng = np.random.default_rng(seed)
    deadline = Deadline(time_limit)
    r0, c0 = grps(problem)
    r, c, kept = alternate(problem, soft_groups(problem, r0, steps=BEST_SOFT_STEPS, deadline=deadline), None, BEST_SWEEPS, deadline)
    r, c, kept = kick_search(problem, r, c, kept, round(BEST_KICKS * effort), 0.05, rng, deadline, BEST_SWEEPS)
    if kept < problem.kept(r0, c0):
        r, c = r0, c0
    return stopped_result(problem, r, c, deadline, "best")


def _sinkhorn(logits: np.ndarray, cap: float, v: np.ndarray, iters: int) -> tuple[np.ndarray, np.ndarray]:
    """Soft balanced assignment: rows of ``exp(logits)`` scaled to sum 1, columns to ``cap``."""
    K = np.exp(logits - logits.max(axis=1, keepdims=True)) + np.finfo(logits.dtype).tiny
    for _ in range(iters):
        u = 1.0 / (K @ v)
        v = cap / (K.T @ u)
    return (u[:, None] * K) * v[None, :], v


def soft_groups(problem: GroupingProblem, r: np.ndarray, steps: int = 20, t0: float = 1.0, t1: float = 0.02,
                sinkhorn_iters: int = 4, deadline: Deadline | None = None) -> np.ndarray:
    """Deterministic annealing of soft balanced row/column assignments, from row groups ``r``.

    At temperature ``T`` the column assignment is the entropic transport plan of
    ``S^T P_rows / T`` and vice versa; ``T`` falls geometrically from ``t0`` to ``t1`` times
    the score scale, so the soft groups harden into a good basin (``deadline`` stops the annealing
    early, at its last plan); rounding is exact
    transportation of the rows (the columns follow in :func:`alternate`).
    """
    S, G = problem.scores, problem.groups
    F, C = S.shape
    # the soft plans only steer the rounding, so float32 products suffice (1.1x faster overall at
    # 2048x512 G=32, same kept mass on the heuristics benchmark); scaled to max 1 so that any score
    # scale fits float32's range, with the transpose contiguous for the column products
    Sf = (S / max(float(S.max()), np.finfo(float).tiny)).astype(np.float32)
    SfT = np.ascontiguousarray(Sf.T)
    Pr = (0.5 * one_hot(r, G) + 0.5 / G).astype(np.float32)
    scale = float(Sf.std()) * np.sqrt(F / G) + 1e-30
    vr, vc = np.ones(G, np.float32), np.ones(G, np.float32)
    plan = None  # the last finite column plan
    with np.errstate(all="ignore"):
        for T in (np.geomspace(t0, t1, steps) * scale).astype(np.float32):
            Pc, vc = _sinkhorn((SfT @ Pr) / T, C / G, vc, sinkhorn_iters)
            Pr, vr = _sinkhorn((Sf @ Pc) / T, F / G, vr, sinkhorn_iters)
            if not (np.isfinite(Pc).all() and np.isfinite(Pr).all()):
                # float32 scalings overflow on degenerate scores (constant, rank 1: nearly equal logits
                # at a tiny temperature); the plans so far are still good steering
                break
            plan = Pc
            if deadline is not None and deadline.passed():  # the plans so far steer the rounding
                break
    if plan is None:
        return r
    return assign_balanced(S @ plan.astype(np.float64))[0]


@register("soft")
def soft(problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
         start: Any = "grps", steps: int = 20, t0: float = 1.0, t1: float = 0.02) -> Result:
    """Deterministic annealing of soft (Sinkhorn) assignments from ``start``, then alternating."""
    steps, t0, t1 = validate_count("steps", steps, 1), positive_number("t0", t0), positive_number("t1", t1)
    deadline = Deadline(time_limit)
    r0, c0 = resolve_start(problem, start, seed, deadline)
    r, c, kept = alternate(problem, soft_groups(problem, r0, steps, t0, t1, deadline=deadline), deadline=deadline)
    if kept < problem.kept(r0, c0):
        r, c = r0, c0
    return stopped_result(problem, r, c, deadline, "soft")
