"""The mathematics of certified upper bounds on the kept mass of a layer problem (a leaf:
it imports no solver). :func:`permopt.bound` (in :mod:`permopt.bounds`) chooses among them.

Every bound here is *certified*: it is at least the optimum for every balanced grouping,
whatever the numerical accuracy of the tools that produced it (small float errors are
padded, relative to the scale of the scores).

* ``topk``: each row keeps at most its ``C/G`` largest scores (and each column its ``F/G``
  largest); the smaller of the two sums.
* ``spectral`` (Donath–Hoffman type): with the group indicators scaled to orthonormal
  ``U``, ``V`` that share the all-ones direction, ``kept ≤ total/G + (√(FC)/G) Σ_{i<G}
  σ_i(P_F S P_C)`` where ``P`` centres rows and columns. One eigen-decomposition of the
  smaller Gram matrix; cached per score matrix, since it does not depend on ``G``.
* ``sdp``: the semidefinite relaxation of the balanced partition (``Q = [X;Y][X;Y]ᵀ``:
  ``G·Q − J ⪰ 0``, ``diag Q = 1``, ``Q ≥ 0``, block row sums ``F/G``, ``C/G``), solved with
  cvxpy + SCS. The bound is *not* the solver's value: it is rebuilt from its dual point
  ``(y, N)``, with ``N`` clipped to ``≥ 0``; because ``trace(G·Q − J) = (G−1)(F+C)`` is
  fixed, ``⟨W, Q⟩ ≤ yᵀb + Σ(C')/G + λ_max(C')·(G−1)(F+C)/G`` for ``C' = W − A*(y) + N``
  holds for *any* such point, so solver inaccuracy only loosens it.
* ``colgen``: the set-partitioning LP over all blocks, by column generation (a Lagrangian
  certificate valid for any duals; see :mod:`permopt.solvers.colgen`): exact pricing by
  enumeration for small groups (24×24 G=4, 32×32 G=8), a pricing tree within a 2% tolerance up
  to 1e10 group subsets (32×32 G=4, 64×64 G=8, 128×64 G=8). Tighter than the SDP on every layer
  measured where it applies.
* ``best``: the smallest of the bounds that apply (``colgen`` or ``sdp`` only when asked for or small).
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from collections import OrderedDict
from typing import Any

import numpy as np

from .problem import GroupingProblem
from .digest import digest
from .limits import Deadline, validate_count

#: Relative padding for float error in eigenvalues.
_EIG_PAD = 1e-12
#: The SDP solver's input grid (scores scaled to max 1): scale-independent input bits.
_GRID = 2.0 ** 40


@dataclass
class Bound:
    """A certified upper bound on the kept mass: its value, the method that gave it, and its cost."""

    value: float
    method: str
    time_s: float
    info: dict = field(default_factory=dict, repr=False)


def topk_bound(problem: GroupingProblem) -> float:
    """Row and column top-k bound (see the module docstring)."""
    S, G = problem.scores, problem.groups
    k_c, k_f = problem.C // G, problem.F // G
    rows = np.partition(S, problem.C - k_c, axis=1)[:, problem.C - k_c:].sum()
    cols = np.partition(S, problem.F - k_f, axis=0)[problem.F - k_f:, :].sum()
    return float(min(rows, cols, problem.total))


#: Spectra by content hash of the scores (they do not depend on G), most recent last.
_SPECTRA: OrderedDict[str, np.ndarray] = OrderedDict()
_SPECTRA_MAX = 64


def _centred_spectrum(S: np.ndarray) -> np.ndarray:
    """Singular values (descending, padded upwards) of ``P_F S P_C`` for ``S`` scaled to max 1,
    cached by a hash of ``S`` (the key holds only the hash, never the matrix)."""
    key = digest(S)
    if key in _SPECTRA:
        _SPECTRA.move_to_end(key)
        return _SPECTRA[key]
    _SPECTRA[key] = sig = _compute_spectrum(S)
    if len(_SPECTRA) > _SPECTRA_MAX:
        _SPECTRA.popitem(last=False)
    return sig


def _compute_spectrum(S: np.ndarray) -> np.ndarray:
    S = S / S.max() if S.max() > 0 else S
    P = S - S.mean(axis=0, keepdims=True) - S.mean(axis=1, keepdims=True) + S.mean()
    A = P if P.shape[0] <= P.shape[1] else P.T
    gram = A @ A.T
    lam = np.linalg.eigvalsh(gram)[::-1]
    pad = _EIG_PAD * max(float(np.trace(gram)), 1e-300)  # eigenvalue error is at most ~n·eps·‖gram‖
    return np.sqrt(np.clip(lam + pad, 0.0, None))


def spectral_bound(problem: GroupingProblem) -> float:
    """Spectral bound (see the module docstring); ``total`` for ``G = 1``."""
    S, G = problem.scores, problem.groups
    if G == 1 or problem.total == 0:
        return problem.total
    sig = _centred_spectrum(S)
    unit = float(S.max())
    value = problem.total / G + np.sqrt(problem.F * problem.C) / G * float(sig[:G - 1].sum()) * unit
    return float(min(value * (1 + 1e-12), problem.total))


def on_grid(problem: GroupingProblem) -> tuple[np.ndarray, float, float]:
    """``(Sn, unit, rounding)``: the scores over their maximum ``unit``, rounded to a fixed 2^-40 grid.

    A solver fed ``Sn`` sees the same input bits (and takes the same iterations) for a matrix
    scaled by any factor; a bound on ``Sn`` plus ``rounding`` (the summed rounding error), times
    ``unit``, bounds the original scores.
    """
    unit = float(problem.scores.max())
    exact = problem.scores / unit
    Sn = np.round(exact * _GRID) / _GRID
    return Sn, unit, float(np.abs(exact - Sn).sum())


def sdp_bound(problem: GroupingProblem, *, max_iters: int = 20_000, eps: float = 1e-6,
              time_limit: float | None = None, solver: str = "SCS", cut_rounds: int = 0,
              cuts_per_round: int = 400) -> tuple[float, dict]:
    """Certified SDP bound from the dual point of cvxpy's solution (see the module docstring).

    ``cut_rounds`` > 0 adds, per round, the ``cuts_per_round`` most violated triangle
    inequalities ``Q_ij + Q_jk − Q_ik ≤ 1`` (true for every partition) and solves again; their
    multipliers enter the certified bound (24×24 G=4: gap 4.2% → 2.2% in 3 rounds).
    """
    try:
        import cvxpy as cp
    except ImportError as e:  # pragma: no cover - cvxpy is a runtime dependency
        raise ImportError("the 'sdp' bound needs cvxpy: pip install cvxpy") from e

    cut_rounds, cuts_per_round = validate_count("cut_rounds", cut_rounds), validate_count("cuts_per_round", cuts_per_round, 1)
    F, C, G = problem.F, problem.C, problem.groups
    if G == 1 or problem.total == 0:
        return problem.total, {}
    Sn, unit, rounding = on_grid(problem)
    n = F + C
    Q = cp.Variable((n, n), symmetric=True)
    ones = np.ones((n, n))
    cons = [G * Q - ones >> 0, cp.diag(Q) == 1, Q >= 0,
            cp.sum(Q[:F, :F], axis=1) == F / G, cp.sum(Q[:F, F:], axis=1) == C / G,
            cp.sum(Q[F:, :F], axis=1) == F / G, cp.sum(Q[F:, F:], axis=1) == C / G]
    objective = cp.Maximize(cp.sum(cp.multiply(Sn, Q[:F, F:])))
    deadline = Deadline(time_limit)
    triples: list[tuple[int, int, int]] = []
    for rnd in range(cut_rounds + 1):
        cuts = [Q[i, j] + Q[j, k] - Q[i, k] <= 1 for i, j, k in triples]
        prob = cp.Problem(objective, cons + cuts)
        opts: dict[str, Any] = {"max_iters": max_iters, "eps_abs": eps, "eps_rel": eps} if solver == "SCS" else {}
        if not _solve_within(prob, solver, opts, deadline):
            if rnd == 0:
                return problem.total, {"sdp_status": "skipped: its set-up alone would overrun time_limit",
                                       "time_limit_hit": True}
            break
        if rnd == cut_rounds or Q.value is None or deadline.passed():
            break
        new = _violated_triangles(np.asarray(Q.value), cuts_per_round, set(triples))
        if not new:
            break
        triples += new
    duals = [c.dual_value for c in cons[1:]]
    if any(d is None for d in duals):
        return problem.total, {"sdp_status": prob.status}
    mu = np.array([float(np.asarray(c.dual_value).reshape(-1)[0]) if c.dual_value is not None else 0.0
                   for c in cuts])
    value = min(_dual_bound(Sn, G, duals, sign, triples, mu) for sign in (1.0, -1.0)) + rounding
    return float(min(value * unit, problem.total)), {"sdp_status": prob.status, "sdp_primal": prob.value * unit,
                                                     "sdp_matrix": Q.value, "triangle_cuts": len(triples),
                                                     "time_limit_hit": deadline.hit}


#: SCS's own set-up (the factorisation its time limit does not cover) measured at 2-3× cvxpy's
#: canonicalisation time (0.05 s → 0.9 s from 128 to 512 rows + columns): reserved before a limit.
_SCS_SETUP_PER_CANON = 3.0


def _solve_within(prob: Any, solver: str, opts: dict, deadline: Deadline) -> bool:
    """``prob.solve`` with SCS's time limit set to what is left of ``deadline`` after its set-up;
    False (nothing solved, ``deadline.hit`` set) where the set-up alone would not fit."""
    if deadline.end is None or solver != "SCS":
        prob.solve(solver=solver, **opts)
        return True
    t0 = time.perf_counter()
    data, chain, inverse = prob.get_problem_data(solver)  # cvxpy's canonicalisation, timed
    left = float(deadline.remaining() or 0.0) - _SCS_SETUP_PER_CANON * (time.perf_counter() - t0)
    if left <= 0:
        deadline.hit = True
        return False
    solution = chain.solve_via_data(prob, data, False, False, {**opts, "time_limit_secs": left})
    prob.unpack_results(solution, chain, inverse)
    if prob.status != "optimal":  # SCS stopped on its clock (or max_iters): the result depends on the machine
        deadline.hit = True
    return True


def _violated_triangles(X: np.ndarray, count: int, known: set) -> list[tuple[int, int, int]]:
    """The ``count`` triples ``(i, j, k)`` of distinct indices with the largest ``X_ij + X_jk − X_ik − 1 > 1e-4``."""
    V = X[:, :, None] + X[None, :, :] - X[:, None, :] - 1.0  # V[i, j, k]
    n = X.shape[0]
    r = np.arange(n)
    V[r, r, :] = V[:, r, r] = V[r, :, r] = -np.inf  # distinct indices only
    flat = np.argsort(-V, axis=None)[:count + len(known)]
    out: list[tuple[int, int, int]] = []
    for f in flat:
        a, b, c = (int(v) for v in np.unravel_index(f, V.shape))
        t = (a, b, c)
        if V[t] <= 1e-4 or len(out) == count:
            break
        if t not in known:
            out.append(t)
    return out


def _dual_bound(Sn: np.ndarray, G: int, duals: list, sign: float, triples: list | None = None,
                mu: np.ndarray | None = None) -> float:
    """``yᵀb + Σμ + Σ(C')/G + λ_max(C')·(G−1)(F+C)/G`` at the dual point, ``C' = W − A*(y) − Σμ_t T_t + N``
    (``sign`` picks the solver's convention for equality multipliers; both are valid bounds, the
    smaller is kept; triangle multipliers ``μ`` are clipped to ``≥ 0``, which keeps any point valid)."""
    F, C = Sn.shape
    n = F + C
    y_diag, N, r1, r2, r3, r4 = (np.asarray(d, dtype=np.float64) for d in duals)
    y_diag, r1, r2, r3, r4 = (sign * v.reshape(-1) for v in (y_diag, r1, r2, r3, r4))
    N = np.clip((N + N.T) / 2, 0.0, None)
    M = np.zeros((n, n))
    M[:F, :F] += r1[:, None]
    M[:F, F:] += r2[:, None]
    M[F:, :F] += r3[:, None]
    M[F:, F:] += r4[:, None]
    A_adj = np.diag(y_diag) + (M + M.T) / 2
    cut = np.zeros((n, n))
    mu_sum = 0.0
    if triples:
        mu = np.clip(np.asarray(mu, dtype=np.float64), 0.0, None)
        i, j, k = (np.array(v) for v in zip(*triples))
        for a, b, w in ((i, j, 0.5), (j, i, 0.5), (j, k, 0.5), (k, j, 0.5), (i, k, -0.5), (k, i, -0.5)):
            np.add.at(cut, (a, b), w * mu)
        mu_sum = float(mu.sum())
    W = np.zeros((n, n))
    W[:F, F:] = Sn / 2
    W[F:, :F] = Sn.T / 2
    Cp = W - A_adj - cut + N
    yb = y_diag.sum() + (F / G) * (r1.sum() + r3.sum()) + (C / G) * (r2.sum() + r4.sum()) + mu_sum
    lam = float(np.linalg.eigvalsh(Cp)[-1])
    lam += _EIG_PAD * np.linalg.norm(Cp) * n  # eigenvalue float error, padded upwards
    return yb + Cp.sum() / G + lam * (G - 1) * n / G



#: Each problem's cheap bounds, computed once (problems are immutable; the cache dies with them).
_CHEAP: "weakref.WeakKeyDictionary[GroupingProblem, dict[str, float]]" = weakref.WeakKeyDictionary()


def cheap_bounds(problem: GroupingProblem) -> dict[str, float]:
    """The certified bounds every solution gets: ``{"topk": …, "spectral": …}``."""
    if problem not in _CHEAP:
        _CHEAP[problem] = {"topk": topk_bound(problem), "spectral": spectral_bound(problem)}
    return _CHEAP[problem]
