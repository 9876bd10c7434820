"""The Lagrangian spectral bound: a certificate whose cost grows like a few Gram
eigen-decompositions of the layer, not like an SDP in ``(F + C)²`` (a leaf: it imports no solver).

Every balanced grouping's same-group matrix ``Q = X Yᵀ`` (``Q[f, c] = 1`` when row ``f`` and column
``c`` share a group) is non-negative, so for *any* ``N ≥ 0`` of the scores' shape

    kept = ⟨S, Q⟩ ≤ ⟨S + N, Q⟩ ≤ spectral(S + N) = Σ(S + N)/G + (√(FC)/G) Σ_{i<G} σ_i(P_F (S + N) P_C)

(the spectral bound of :mod:`permopt.certify` applied to ``S + N``). ``N = 0`` is the spectral bound
itself; the right-hand side is convex in ``N`` (a sum of top singular values plus a linear term), and
minimising it is the Lagrangian dual of the spectral relaxation with the constraint ``U Vᵀ ≥ 0``, the
``Q_FC ≥ 0`` part of the SDP, whose multipliers are ``N``. The spectral relaxation lets the relaxed
``U Vᵀ`` go negative where a grouping cannot; ``N`` charges for it.

Where ``F + C`` is small enough (:func:`uses_symmetric`), the *symmetric* form adds the rest of
the SDP's multipliers: with ``Z = [U; V]/√2`` (``U = X/√(F/G)``, ``V = Y/√(C/G)``), ``kept = (√(FC)/G)
tr(Zᵀ W Z)`` for ``W = [[0, S], [Sᵀ, 0]]``; ``tr(Zᵀ N Z) ≥ 0`` for every ``N ≥ 0`` of size ``F + C``
(``Q_FF, Q_CC ≥ 0`` too), and ``tr(Zᵀ diag(d) Z)`` is the same constant for every grouping (each row of
``Z`` has the squared norm ``G/(2F)`` or ``G/(2C)``). ``Z`` holds ``e = [1/√F; 1/√C]/√2`` and is orthogonal
to ``[1/√F; −1/√C]``, so for ``M = W + N + diag(d)``

    kept ≤ (√(FC)/G) [eᵀ(W + N)e + Σ_{i<G} λ_i(M restricted to x ⊥ 1_F, y ⊥ 1_C) − (G − 1) eᵀ diag(d) e],

which is the spectral bound at ``N = 0, d = 0`` and contains the bipartite family above (measured on
ResNet-50 at G=8, 600 evaluations: 128×512 13.3% against 14.8%); its evaluations are
eigen-decompositions of size ``F + C``, so larger layers use the bipartite form.

Both are minimised by L-BFGS over ``N ≥ 0`` (kept positive by a smooth map, not by bounds); each evaluation is one exact LAPACK
eigen-decomposition (bipartite: of the smaller Gram matrix of ``P(S + N)P``, ``F·C·min(F, C)``
multiply-adds), and **every evaluated point is a certificate**: its value is recomputed with float-error padding, and
the smallest is returned. The trajectory depends only on the inputs (BLAS on one thread, scores on a
fixed grid relative to their maximum), so the same layer gives the same bound on any machine, at any
scale of the scores, and more ``evaluations`` never give a larger bound (the run is a prefix of the
longer one). Measured on every ResNet-50 and MobileNetV2 layer at G=4 and 8 (random weights,
``benchmarks/bench_bounds.py --models``), ``bound(method="best")`` certifies a median gap of 7.1%
and at most 14.8% (the spectral bound alone: 11.3% and 25.6%); ResNet-50's 2048×512 at G=8: 10.1%
(spectral 12.6%; times in ``docs/benchmarks.md``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .certify import on_grid
from .limits import Deadline, single_threaded_blas, validate_count
from .problem import GroupingProblem

#: Most evaluations by default, and the work the default spends at most, in the units of
#: :func:`evaluation_cost` (1.2e12: about 40 s on one core of the machine measured; 2048×512 gets
#: ~500 evaluations, 1000×2048 ~175, anything up to 1024×256 all 600).
MAX_EVALUATIONS, WORK_BUDGET = 600, 1.2e12
#: The symmetric form is used where its default evaluations reach this many (F + C up to ~990):
#: measured on ResNet-50 at G=8 it is tighter at equal evaluations (128×512: 13.3% against 14.8%;
#: 512×256: 11.6% against 12.4%, where 2,000 bipartite evaluations reach only 12.4%).
SYMMETRIC_MIN_EVALUATIONS = 300
#: Smoothness of the map that keeps the multipliers positive, relative to the mean score (chosen on
#: ResNet-50's 1024×256 at G=8: 0.5% of the mean 12.4% gap, 0.05% 12.5%, 0.005% 12.7%).
SMOOTH_EPS = 5e-3
#: Float padding: eigenvalues of a matrix computed in float64 are within a few ``n·eps·‖·‖_F`` of
#: the exact ones (formation and LAPACK's backward error together).
_PAD = 8 * np.finfo(np.float64).eps


class _Stop(Exception):
    """Raised inside the objective when the work count or the time cap is spent."""


def evaluation_cost(F: int, C: int, symmetric: bool) -> float:
    """Work of one evaluation: multiply-adds of its eigen-decomposition (and Gram matrix) plus 1,600
    per multiplier for the optimiser's own steps (fitted to times measured from 256×64 to 1000×2048,
    within 30%: one unit is about 33 ps on one core here)."""
    if symmetric:
        n = float(F + C)
        return 2.5 * n ** 3 + 1600 * (n * n + n)
    small, large = min(F, C), max(F, C)
    return float(large) * small * small + 1.5 * float(small) ** 3 + 1600.0 * F * C


def default_evaluations(F: int, C: int, symmetric: bool | None = None) -> int:
    """``evaluations`` when none is given: :data:`MAX_EVALUATIONS`, fewer where they would cost more
    than :data:`WORK_BUDGET` (at least 10; it depends on the shape only, never on the clock)."""
    symmetric = uses_symmetric(F, C) if symmetric is None else symmetric
    return int(max(10, min(MAX_EVALUATIONS, WORK_BUDGET // evaluation_cost(F, C, symmetric))))


def uses_symmetric(F: int, C: int) -> bool:
    """Whether the bound takes the symmetric form for an ``F × C`` layer (see the module docstring)."""
    return default_evaluations(F, C, True) >= SYMMETRIC_MIN_EVALUATIONS


FORMS = ("symmetric", "bipartite")


def lagrangian_bound(problem: GroupingProblem, *, evaluations: int | None = None,
                     time_limit: float | None = None, form: str | None = None) -> tuple[float, dict[str, Any]]:
    """Certified Lagrangian spectral bound (see the module docstring) and its record: the number of
    ``evaluations`` made, the spectral value it started from (``start``), the ``form`` (symmetric or
    bipartite), whether ``time_limit`` bit.

    ``evaluations`` (default :func:`default_evaluations`) is the work count; ``time_limit`` is an
    optional cap on top (it breaks reproducibility when it bites); ``form`` (``symmetric`` or
    ``bipartite``) overrides the choice by size (:func:`uses_symmetric`).
    """
    F, C, G = problem.F, problem.C, problem.groups
    if form is not None and form not in FORMS:
        raise ValueError(f"form must be one of {FORMS} or None, got {form!r}")
    symmetric = uses_symmetric(F, C) if form is None else form == "symmetric"
    evaluations = default_evaluations(F, C, symmetric) if evaluations is None \
        else validate_count("evaluations", evaluations, 1)
    if G == 1 or problem.total == 0:
        return problem.total, {"evaluations": 0, "time_limit_hit": False}
    Sn, unit, rounding = on_grid(problem)
    evaluate, size, free = (_symmetric, F + C + (F + C) ** 2, F + C) if symmetric else (_bipartite, F * C, 0)
    eps = SMOOTH_EPS * float(Sn.mean())
    deadline = Deadline(time_limit)
    record: dict[str, Any] = {"best": np.inf, "evaluations": 0}

    def certified(x: np.ndarray) -> tuple[float, np.ndarray]:
        if record["evaluations"] >= evaluations or (record["evaluations"] > 0 and deadline.passed()):
            raise _Stop
        value, grad = evaluate(Sn, x, G)
        record["evaluations"] += 1
        record.setdefault("start", value)
        record["best"] = min(record["best"], value)
        return value, grad

    def objective(y: np.ndarray) -> tuple[float, np.ndarray]:
        x, slope = _positive(y, free, eps)
        value, grad = certified(x)
        return value, grad * slope

    import scipy.optimize  # here, not at the top: scipy costs 0.4 s of `import permopt`

    with single_threaded_blas():
        try:
            certified(np.zeros(size))  # N = 0: the spectral bound, the first certificate
            scipy.optimize.minimize(objective, np.zeros(size), jac=True, method="L-BFGS-B",
                                    options={"maxiter": 10 * evaluations, "maxfun": 10 * evaluations,
                                             "ftol": 0.0, "gtol": 0.0})
        except _Stop:
            pass
    value = min((record["best"] + rounding) * unit, problem.total)
    return float(value), {"evaluations": record["evaluations"], "start": (record["start"] + rounding) * unit,
                          "form": "symmetric" if symmetric else "bipartite", "time_limit_hit": deadline.hit}


def _positive(y: np.ndarray, free: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers from unconstrained variables: the first ``free`` (diagonal shifts) as they are,
    the rest through the smooth map ``N = (y + √(y² + ε²))/2 > 0``; and the map's slope.

    The map keeps every iterate a valid certificate (``N ≥ 0``) without bounds in the optimiser:
    L-BFGS-B's bound handling costs ~0.1 s per step on a 1024×256 layer, 10× the evaluation
    (measured: the same 300 evaluations in half the time, gap 12.6% → 12.4%)."""
    x, slope = y.copy(), np.ones_like(y)
    root = np.sqrt(y[free:] * y[free:] + eps * eps)
    x[free:] = 0.5 * (y[free:] + root)
    slope[free:] = 0.5 * (1.0 + y[free:] / root)
    return x, slope


def _top_eigen(H: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` largest eigenvalues (descending) and eigenvectors of symmetric ``H``."""
    import scipy.linalg

    m = H.shape[0]
    lam, V = scipy.linalg.eigh(H, subset_by_index=[m - count, m - 1], driver="evr")
    return lam[::-1], V[:, ::-1]


def _bipartite(S: np.ndarray, x: np.ndarray, G: int) -> tuple[float, np.ndarray]:
    """``spectral(S + N)`` padded upwards for float error, and its (sub)gradient in ``N``."""
    F, C = S.shape
    T = S + x.reshape(F, C)
    A = T - T.mean(axis=0) - T.mean(axis=1, keepdims=True) + T.mean()
    left = F <= C
    lam, V = _top_eigen(A @ A.T if left else A.T @ A, G - 1)
    pad = _PAD * (F + C) * max(float(np.square(A).sum()), 1e-300)  # trace of the Gram matrix
    sig = np.sqrt(np.clip(lam, 0.0, None) + pad)
    # the centring rounds each entry by at most ~3·log2(F·C)·eps·max|T| (pairwise means): padded by
    # 64·eps·max|T| per entry, at most √(FC) times that on each σ_i. T itself is fl(S + N) ≥ S, a
    # valid multiplier in its own right, so the certificate is exact for it.
    sig_err = 64 * np.finfo(np.float64).eps * float(np.abs(T).max()) * np.sqrt(F * C)
    k = np.sqrt(F * C) / G
    value = (float(T.sum()) / G + k * float(sig.sum() + (G - 1) * sig_err)) * (1 + 1e-12)
    other = (A.T @ V if left else A @ V) / np.maximum(sig, 1e-300)
    U, R = (V, other) if left else (other, V)
    return value, (1.0 / G + k * (U @ R.T)).ravel()


def _symmetric(S: np.ndarray, x: np.ndarray, G: int) -> tuple[float, np.ndarray]:
    """The symmetric form's value at ``x = [d, N]`` padded upwards for float error, and its gradient."""
    F, C = S.shape
    n = F + C
    d, N = x[:n], x[n:].reshape(n, n)
    M = (N + N.T) / 2
    M[:F, F:] += S
    M[F:, :F] += S.T
    e = np.r_[np.full(F, 1 / np.sqrt(2 * F)), np.full(C, 1 / np.sqrt(2 * C))]
    e_WN_e = float(e @ (M @ e))
    M[np.diag_indices(n)] += d
    # restrict to x ⊥ 1_F, y ⊥ 1_C: centre each block, and push the two removed directions below
    # every eigenvalue of M (shift c > ‖M‖) so the top G − 1 are the restricted ones
    c = float(np.linalg.norm(M)) + 1.0
    for side, size in ((slice(0, F), F), (slice(F, n), C)):  # the other side's centring never reads this diagonal block
        M[side] -= M[side].mean(axis=0)
        M[:, side] -= M[:, side].mean(axis=1, keepdims=True)
        M[side, side] -= c / size
    M = (M + M.T) / 2
    lam, V = _top_eigen(M, G - 1)
    pad = _PAD * n * float(np.linalg.norm(M))  # per eigenvalue: formation and LAPACK's backward error
    k = np.sqrt(F * C) / G
    e2 = e * e
    value = k * (e_WN_e + float(lam.sum()) + (G - 1) * pad - (G - 1) * float(e2 @ d)) * (1 + 1e-12)
    Pi = V @ V.T
    return value, k * np.r_[np.diag(Pi) - (G - 1) * e2, (np.outer(e, e) + Pi).ravel()]
