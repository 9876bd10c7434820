"""``sdp``: solve the semidefinite relaxation, round its solution, polish — with its own certificate.

The relaxation's optimal ``Q`` (see :mod:`permopt.bounds`) is, for an integral grouping,
``[X; Y][X; Y]ᵀ`` with one-hot ``X`` (rows) and ``Y`` (columns): its top ``G`` eigenvectors,
scaled by the square roots of their eigenvalues, put the channels of one group on one point.
Rounding is balanced k-means in that embedding (centres from farthest points, assignment by
exact transportation, a fixed number of rounds), rows and columns together; then
alternating transportation and a few kick rounds polish it. The better of that and the
``best`` heuristic is returned with the SDP's dual bound, so the gap it reports is certified.
"""
from __future__ import annotations

import numpy as np

from ..certify import sdp_bound
from ..limits import Deadline
from ..status import Status
from ..problem import GroupingProblem
from ..solution import Solution
from .heuristics import alternate, best, kick_search
from .registry import register
from .transport import assign_balanced

#: Balanced k-means rounds in the eigen-embedding; few are needed from farthest-point centres.
KMEANS_ROUNDS = 10
#: Kick rounds after rounding (each one alternating run; measured +0.1–0.2% kept at 24–64 channels).
ROUNDING_KICKS = 20


def embed(Q: np.ndarray, groups: int) -> np.ndarray:
    """``(n, G)`` points: top ``G`` eigenvectors of ``Q`` scaled by ``√eigenvalue``."""
    lam, vec = np.linalg.eigh((Q + Q.T) / 2)
    top = np.argsort(lam)[::-1][:groups]
    return vec[:, top] * np.sqrt(np.clip(lam[top], 0.0, None))


def balanced_kmeans(points: np.ndarray, sizes: list[int], groups: int, rounds: int = KMEANS_ROUNDS) -> list[np.ndarray]:
    """Labels of consecutive blocks of ``points`` (sizes ``sizes``), each block balanced over ``groups``
    clusters that all blocks share (rows and columns of one group sit on one point)."""
    centres = [points[int(np.argmax(np.linalg.norm(points, axis=1)))]]
    while len(centres) < groups:  # farthest point from the chosen centres
        d = np.min([np.linalg.norm(points - c, axis=1) for c in centres], axis=0)
        centres.append(points[int(np.argmax(d))])
    mu = np.array(centres)
    bounds = np.cumsum([0] + sizes)
    labels = [np.zeros(n, dtype=np.int64) for n in sizes]
    for _ in range(rounds):
        for k in range(len(sizes)):
            block = points[bounds[k]:bounds[k + 1]]
            labels[k] = assign_balanced(-((block[:, None, :] - mu[None]) ** 2).sum(-1))[0]
        everything = np.concatenate(labels)
        mu = np.array([points[everything == g].mean(axis=0) for g in range(groups)])
    return labels


def round_sdp(problem: GroupingProblem, Q: np.ndarray,
              deadline: Deadline | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Groups from a relaxation solution ``Q``: balanced k-means in its embedding, then alternating."""
    r, c = balanced_kmeans(embed(Q, problem.groups), [problem.F, problem.C], problem.groups)
    r2, c2, kept = alternate(problem, r, c, deadline=deadline)
    return (r2, c2, kept) if kept >= problem.kept(r, c) else (r, c, problem.kept(r, c))


@register("sdp")
def sdp(problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
        cut_rounds: int = 0) -> Solution:
    """SDP relaxation (cvxpy + SCS; ``cut_rounds`` rounds of triangle cuts), rounded and polished;
    the better of that and ``best``, with the SDP's certified dual bound. Seconds at 128×128;
    meant for layers up to a few hundred channels."""
    deadline = Deadline(time_limit)
    r, c = best(problem, seed=seed)  # first: a time limit then still returns its groups
    kept = problem.kept(r, c)
    value, info = sdp_bound(problem, time_limit=deadline.remaining(floor=1e-3), cut_rounds=cut_rounds)
    Q = info.pop("sdp_matrix", None)
    info["sdp_bound"] = value
    if Q is not None and np.all(np.isfinite(Q)) and not deadline.passed():
        r2, c2, k2 = round_sdp(problem, np.asarray(Q), deadline)
        r2, c2, k2 = kick_search(problem, r2, c2, k2, ROUNDING_KICKS, 0.05, np.random.default_rng(seed), deadline)
        if k2 > kept:
            r, c, kept = r2, c2, k2
            info["rounded_from_sdp"] = True
    stopped = deadline.passed() or bool(info.get("time_limit_hit"))
    return Solution.from_groups(problem, r, c, solver="sdp", upper_bound=value, bound_by="sdp", info=info,
                                status=Status.TIME_LIMIT if stopped else Status.FEASIBLE,
                                message="time limit hit: the SDP or its rounding was cut short" if stopped else "")
