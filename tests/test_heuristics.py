"""Heuristics past the paper: never below GRPS, never above a proven optimum, often optimal."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import permopt

BETTER = ["alternating", "local", "anneal", "best"]


@pytest.mark.parametrize("shape", [(32, 32, 8), (64, 64, 4), (48, 96, 6), (128, 64, 8)])
@pytest.mark.parametrize("dist", ["normal", "lognormal"])
def test_never_below_grps(shape, dist):
    F, C, G = shape
    rng = np.random.default_rng(sum(shape))
    S = np.abs(rng.standard_normal((F, C))) if dist == "normal" else rng.lognormal(0, 1.5, (F, C))
    grps = permopt.solve(S, groups=G, solver="grps").kept
    for h in BETTER:
        assert permopt.solve(S, groups=G, solver=h, seed=0).kept >= grps - 1e-9, h


def test_alternating_gains_on_random_matrices():
    rng = np.random.default_rng(0)
    gains = []
    for _ in range(5):
        S = np.abs(rng.standard_normal((32, 32)))
        gains.append(permopt.solve(S, 8, "alternating").kept / permopt.solve(S, 8, "grps").kept - 1)
    assert np.mean(gains) > 0.03


def test_local_reaches_the_optimum_often_on_small_instances():
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(10):
        S = np.abs(rng.standard_normal((8, 8)))
        opt = permopt.solve(S, 2, "enumerate").kept
        got = permopt.solve(S, 2, "local", seed=0).kept
        assert got <= opt * (1 + 1e-12)
        hits += got >= opt * (1 - 1e-9)
    assert hits >= 7, hits


def test_starts_and_seeds():
    S = np.abs(np.random.default_rng(1).standard_normal((24, 24)))
    a = permopt.solve(S, 4, "anneal", seed=3)
    b = permopt.solve(S, 4, "anneal", seed=3)
    assert np.array_equal(a.row_groups, b.row_groups)  # seeded runs repeat
    one = permopt.solve(S, 4, "alternating", start="random", seed=0)
    more = permopt.solve(S, 4, "alternating", start="random", restarts=3, seed=0)
    assert more.kept >= one.kept  # restarts only add candidates to the same first start
    assert one.kept < permopt.solve(S, 4, "alternating", seed=0).kept * 1.2
    with pytest.raises(ValueError, match="unknown solver 'magic'"):
        permopt.solve(S, 4, "alternating", start="magic")
    with pytest.raises(ValueError, match="effort"):
        permopt.solve(S, 4, "best", effort=-1)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), n_per=st.integers(1, 12), G=st.integers(2, 9),
       scale=st.sampled_from([1e-12, 1.0, 1e12]), ties=st.booleans())
def test_warm_transport_is_exact_from_any_balanced_start(seed, n_per, G, scale, ties):
    """Cycle cancelling from a random balanced start reaches the assignment optimum (scipy, floats)."""
    from scipy.optimize import linear_sum_assignment

    from permopt.solvers.transport import assign_balanced

    rng = np.random.default_rng(seed)
    n = n_per * G
    A = (rng.integers(0, 3, (n, G)).astype(float) if ties else rng.random((n, G))) * scale
    rows, cols = linear_sum_assignment(np.repeat(A, n_per, axis=1), maximize=True)
    optimum = A[rows, cols // n_per].sum()
    start = rng.permutation(np.arange(n) % G)
    labels, value = assign_balanced(A, start=start, max_cycles=10**6)
    assert np.bincount(labels, minlength=G).tolist() == [n_per] * G
    assert value == pytest.approx(A[np.arange(n), labels].sum(), rel=1e-12)
    assert value >= optimum * (1 - 1e-9) - 1e-300


def test_warm_transport_falls_back_when_the_start_is_far():
    from permopt.solvers.transport import assign_balanced

    rng = np.random.default_rng(0)
    A = rng.random((256, 8))
    cold, best = assign_balanced(A)
    labels, value = assign_balanced(A, start=np.arange(256) % 8, max_cycles=1)  # one cycle cannot fix it
    assert value == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("shift", [-1e6, -1.0, 0.0, 1e-9])
def test_flow_transport_accepts_profits_of_any_sign(shift):
    """The min-cost-flow path (above 96 items) once scaled by the largest profit, which broke on
    negative profits (balanced k-means uses negative distances)."""
    from scipy.optimize import linear_sum_assignment

    from permopt.solvers.transport import assign_balanced

    A = np.random.default_rng(0).random((128, 4)) + shift
    labels, value = assign_balanced(A)
    rows, cols = linear_sum_assignment(np.repeat(A, 32, axis=1), maximize=True)
    assert value == pytest.approx(A[rows, cols // 32].sum(), rel=1e-9, abs=1e-6)
    assert np.bincount(labels).tolist() == [32] * 4
