"""Certificates at every scale: statuses, ratios and bounds do not change when every score is
multiplied by 1e-12 or 1e12, and every bound stays above the brute-force optimum."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from helpers import brute_force

import permopt

SOLVERS = ["same", "sort", "grps", "alternating", "soft", "local", "anneal", "best", "enumerate", "auto", "mip",
           "cpsat", "sdp", "colgen"]
SCALES = (1e-12, 1e12)


def run(S, G, solver):
    return permopt.solve(S, G, solver, seed=0, time_limit=30 if solver in ("mip", "cpsat") else None)


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10**6), shape=st.sampled_from([(4, 4, 2), (6, 6, 2), (6, 6, 3), (4, 8, 2), (8, 4, 2)]),
       dist=st.sampled_from(["normal", "lognormal"]))
def test_same_answer_and_honest_bounds_at_every_scale(seed, shape, dist):
    F, C, G = shape
    rng = np.random.default_rng(seed)
    S = np.abs(rng.standard_normal((F, C))) if dist == "normal" else rng.lognormal(0, 2, (F, C))
    opt = brute_force(S, G)
    for solver in SOLVERS:
        base = run(S, G, solver)
        assert base.upper_bound >= opt * (1 - 1e-9), solver
        for scale in SCALES:
            sol = run(S * scale, G, solver)
            assert sol.status == base.status, (solver, scale)
            assert sol.kept_ratio == pytest.approx(base.kept_ratio, rel=1e-9), (solver, scale)
            assert sol.upper_bound >= opt * scale * (1 - 1e-9), (solver, scale)
            assert sol.upper_bound / sol.total == pytest.approx(base.upper_bound / base.total, rel=1e-6), solver
            if sol.status == "optimal":
                assert sol.kept >= opt * scale * (1 - 1e-6), (solver, scale)


@pytest.mark.slow
def test_mip_small_scores_never_claim_a_wrong_optimum():
    S = np.random.default_rng(590959719).random((12, 16)) * 1e-6
    ref = permopt.solve(S, 2, "enumerate")
    sol = permopt.solve(S, 2, "mip", seed=0, time_limit=20)
    assert sol.upper_bound >= ref.kept * (1 - 1e-9)
    if sol.status == "optimal":
        assert sol.kept == pytest.approx(ref.kept, rel=1e-6)
    S2 = np.abs(np.random.default_rng(1).standard_normal((8, 8))) * 1e-6
    sol2 = permopt.solve(S2, 2, "mip", start="same", seed=0, time_limit=20)
    assert sol2.upper_bound >= brute_force(S2, 2) * (1 - 1e-9)


def test_enumerate_is_exact_at_tiny_scales():
    S = np.abs(np.random.default_rng(3).standard_normal((8, 8))) * 1e-12
    sol = permopt.solve(S, 2, "enumerate", start="same")
    assert sol.status == "optimal" and sol.kept == pytest.approx(brute_force(S, 2), rel=1e-9)


def test_no_optimality_claim_from_an_absolute_tolerance():
    S = np.abs(np.random.default_rng(3).standard_normal((8, 8))) * 1e-10
    sol = permopt.solve(S, 2, "grps")
    assert sol.upper_bound / sol.kept > 1.05 and sol.status == "feasible" and sol.gap > 0.05


def test_cpsat_coarse_rounding_is_not_optimal():
    S = np.abs(np.random.default_rng(2).standard_normal((8, 8)))
    sol = permopt.solve(S, 2, "cpsat", resolution=1, seed=0, time_limit=20)
    assert sol.upper_bound >= brute_force(S, 2) * (1 - 1e-9)
    assert sol.status != "optimal" or sol.upper_bound <= sol.kept * (1 + 1e-6)


def test_scores_whose_sum_overflows_or_complex_are_refused():
    with pytest.raises(ValueError, match="float range"):
        permopt.solve(np.random.default_rng(0).random((8, 8)) * 1.7e308, 2, "grps")
    with pytest.raises(TypeError, match="complex"):
        permopt.solve(np.ones((4, 4)) * (1 + 1j), 2, "grps")
