"""Heuristics past the paper, for large layers.

* ``alternating``: fix rows → optimal columns (transportation), fix columns → optimal rows,
  until no gain. Monotone, so seeded from GRPS it never ends below GRPS.
* ``local``: iterated local search: kick the alternating fixed point with random swaps,
  re-run alternating, keep improvements.
* ``anneal``: simulated annealing on row/column swaps with O(1) delta evaluation, then
  alternating polish.
* ``soft``: deterministic annealing of soft balanced assignments (Sinkhorn plans at a
  falling temperature), rounded by transportation, then alternating.
* ``best``: the default used by ``auto`` and the model pipeline: GRPS, ``soft``, then
  alternating and kicks within a time budget proportional to GRPS's own time.
"""
from __future__ import annotations

import time

import numpy as np

from ..problem import GroupingProblem, one_hot
from ..transport import assign_balanced, best_col_groups, best_row_groups
from .paper import grps
from .registry import register, resolve_start

_STARTS = ("grps", "sort", "same", "random")


def _start(problem: GroupingProblem, start, rng: np.random.Generator):
    """Initial groups: a solver name, 'random', or a (row_groups, col_groups) pair / Solution."""
    if isinstance(start, str):
        if start == "random":
            return (rng.permutation(np.arange(problem.F) // problem.rows_per_group),
                    rng.permutation(np.arange(problem.C) // problem.cols_per_group))
        if start not in _STARTS:
            raise ValueError(f"start must be one of {_STARTS} or a (row_groups, col_groups) pair, got {start!r}")
    return resolve_start(problem, start)


def alternate(problem: GroupingProblem, r: np.ndarray, c: np.ndarray, max_iter: int = 100,
              deadline: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Alternating transportation from ``(r, c)`` to a fixed point; returns (r, c, kept)."""
    S, G = problem.scores, problem.groups
    kept = problem.kept(r, c)
    for _ in range(max_iter):
        c2 = best_col_groups(S, r, G)
        r2 = best_row_groups(S, c2, G)
        new = problem.kept(r2, c2)
        if new <= kept * (1 + 1e-12) + 1e-15:
            break
        r, c, kept = r2, c2, new
        if deadline is not None and time.perf_counter() > deadline:
            break
    return r, c, kept


def _deadline(time_limit):
    return None if time_limit is None else time.perf_counter() + time_limit


@register("alternating")
def alternating(problem: GroupingProblem, *, time_limit=None, seed=None, start="grps", restarts: int = 0,
                max_iter: int = 100):
    """Alternating transportation to a fixed point, from ``start`` plus ``restarts`` random starts."""
    rng = np.random.default_rng(seed)
    deadline = _deadline(time_limit)
    best = alternate(problem, *_start(problem, start, rng), max_iter, deadline)
    for _ in range(restarts):
        if deadline is not None and time.perf_counter() > deadline:
            break
        cand = alternate(problem, *_start(problem, "random", rng), max_iter, deadline)
        if cand[2] > best[2]:
            best = cand
    return best[0], best[1]


def _kick(r: np.ndarray, c: np.ndarray, strength: float, rng: np.random.Generator):
    """Swap a fraction of random row pairs and column pairs (group sizes stay equal)."""
    out = []
    for labels in (r, c):
        labels = labels.copy()
        k = max(1, int(strength * labels.shape[0]))
        i, j = rng.integers(0, labels.shape[0], size=(2, k))
        for a, b in zip(i, j):
            labels[a], labels[b] = labels[b], labels[a]
        out.append(labels)
    return out


def kick_search(problem: GroupingProblem, r, c, kept: float, iterations: int, strength: float,
                rng: np.random.Generator, deadline: float | None):
    """Iterated local search: kick ``(r, c)``, re-run alternating, keep gains; returns (r, c, kept)."""
    for _ in range(iterations):
        if deadline is not None and time.perf_counter() > deadline:
            break
        r2, c2, k2 = alternate(problem, *_kick(r, c, strength, rng), deadline=deadline)
        if k2 > kept:
            r, c, kept = r2, c2, k2
    return r, c, kept


@register("local")
def local(problem: GroupingProblem, *, time_limit=None, seed=None, start="grps", iterations: int = 50,
          strength: float = 0.1):
    """Iterated local search: kick the alternating fixed point, re-run alternating, keep gains."""
    rng = np.random.default_rng(seed)
    deadline = _deadline(time_limit)
    r, c, kept = alternate(problem, *_start(problem, start, rng), deadline=deadline)
    return kick_search(problem, r, c, kept, iterations, strength, rng, deadline)[:2]


@register("anneal")
def anneal(problem: GroupingProblem, *, time_limit=None, seed=None, start="grps", steps: int | None = None,
           t0: float = 0.5, t1: float = 0.005):
    """Simulated annealing on single row/column swaps (O(1) deltas), then alternating polish.

    ``t0``/``t1`` are start/end temperatures relative to the mean |delta| of random swaps at
    the start; ``steps`` defaults to ``200 * (F + C)``.
    """
    rng = np.random.default_rng(seed)
    deadline = _deadline(time_limit)
    S, G = problem.scores, problem.groups
    F, C = S.shape
    r, c, _ = alternate(problem, *_start(problem, start, rng), deadline=deadline)
    best = (r.copy(), c.copy(), problem.kept(r, c))
    M = S @ one_hot(c, G)     # M[f, g]: row f's mass in column group g
    N = S.T @ one_hot(r, G)   # N[c, g]: column c's mass in row group g
    kept = best[2]
    steps = 200 * (F + C) if steps is None else int(steps)
    i, j = rng.integers(0, F, size=(2, 256))
    scale = np.abs(M[i, r[j]] - M[i, r[i]] + M[j, r[i]] - M[j, r[j]]).mean() + 1e-300
    temps = scale * t0 * (t1 / t0) ** (np.arange(steps) / max(1, steps - 1))
    side = rng.random(steps) < F / (F + C)
    pick = rng.random((steps, 2))
    logu = np.log(rng.random(steps))
    for t in range(steps):
        if deadline is not None and t % 512 == 0 and time.perf_counter() > deadline:
            break
        if side[t]:  # swap two rows (D[i, g]: item i's mass in the other side's group g)
            labels, D, n = r, M, F
        else:
            labels, D, n = c, N, C
        i, j = int(pick[t, 0] * n), int(pick[t, 1] * n)
        a, b = labels[i], labels[j]
        if a == b:
            continue
        delta = D[i, b] - D[i, a] + D[j, a] - D[j, b]
        if delta >= 0 or delta > temps[t] * logu[t]:
            labels[i], labels[j] = b, a
            kept += delta
            if side[t]:  # rows i, j swapped: columns' masses per row group change
                diff = S[j] - S[i]
                N[:, a] += diff
                N[:, b] -= diff
            else:
                diff = S[:, j] - S[:, i]
                M[:, a] += diff
                M[:, b] -= diff
            if kept > best[2]:
                best = (r.copy(), c.copy(), kept)
    polished = [alternate(problem, *cand, deadline=deadline) for cand in ((r, c), best[:2])]
    return max(polished, key=lambda t: t[2])[:2]


@register("best")
def best(problem: GroupingProblem, *, time_limit=None, seed=None, effort: float = 1.0):
    """Default heuristic: GRPS, soft annealing, then alternating and kicks until ``(1 + effort)`` × GRPS's time.

    Never keeps less than GRPS. The time budget follows GRPS's own time on this machine (at
    least 3 ms of improvement), so results can vary with machine speed; ``soft``,
    ``alternating`` and ``local`` do a fixed amount of work.
    """
    if not effort >= 0:
        raise ValueError(f"effort must be >= 0, got {effort!r}")
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    r0, c0 = grps(problem)
    spent = time.perf_counter() - t0
    deadline = t0 + spent + max(effort * spent, 0.003)
    if time_limit is not None:
        deadline = min(deadline, t0 + time_limit)
    r, c, kept = alternate(problem, *soft_groups(problem, r0, steps=15), deadline=deadline)
    r, c, kept = kick_search(problem, r, c, kept, 8, 0.05, rng, deadline)
    return (r, c) if kept >= problem.kept(r0, c0) else (r0, c0)


def _sinkhorn(logits: np.ndarray, cap: float, v: np.ndarray, iters: int) -> tuple[np.ndarray, np.ndarray]:
    """Soft balanced assignment: rows of ``exp(logits)`` scaled to sum 1, columns to ``cap``."""
    K = np.exp(logits - logits.max(axis=1, keepdims=True)) + 1e-300
    for _ in range(iters):
        u = 1.0 / (K @ v)
        v = cap / (K.T @ u)
    return (u[:, None] * K) * v[None, :], v


def soft_groups(problem: GroupingProblem, r: np.ndarray, steps: int = 20, t0: float = 1.0, t1: float = 0.02,
                sinkhorn_iters: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic annealing of soft balanced row/column assignments, from row groups ``r``.

    At temperature ``T`` the column assignment is the entropic transport plan of
    ``S^T P_rows / T`` and vice versa; ``T`` falls geometrically from ``t0`` to ``t1`` times
    the score scale, so the soft groups harden into a good basin; rounding is exact
    transportation.
    """
    S, G = problem.scores, problem.groups
    F, C = S.shape
    Pr = 0.5 * one_hot(r, G) + 0.5 / G
    scale = S.std() * np.sqrt(F / G) + 1e-300
    vr, vc = np.ones(G), np.ones(G)
    for T in np.geomspace(t0, t1, steps) * scale:
        Pc, vc = _sinkhorn((S.T @ Pr) / T, C / G, vc, sinkhorn_iters)
        Pr, vr = _sinkhorn((S @ Pc) / T, F / G, vr, sinkhorn_iters)
    rows = assign_balanced(S @ Pc)[0]
    return rows, best_col_groups(S, rows, G)


@register("soft")
def soft(problem: GroupingProblem, *, time_limit=None, seed=None, start="grps", steps: int = 20,
         t0: float = 1.0, t1: float = 0.02):
    """Deterministic annealing of soft (Sinkhorn) assignments from ``start``, then alternating."""
    rng = np.random.default_rng(seed)
    r0, c0 = _start(problem, start, rng)
    r, c = soft_groups(problem, r0, steps, t0, t1)
    r, c, kept = alternate(problem, r, c, deadline=_deadline(time_limit))
    return (r, c) if kept >= problem.kept(r0, c0) else (r0, c0)
