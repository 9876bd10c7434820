"""Certified bounds: never below the brute-force optimum at any score scale; the spectral and
SDP bounds are tighter than top-k where they should be; solve/compare use them."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from helpers import brute_force, planted

import permopt
from permopt.bounds import bound, sdp_bound, spectral_bound, topk_bound
from permopt.problem import GroupingProblem

SHAPES = [(4, 4, 2), (6, 6, 2), (6, 6, 3), (4, 8, 2), (8, 4, 4), (8, 8, 2), (6, 9, 3)]


def instance(seed, shape, dist):
    F, C, _ = shape
    rng = np.random.default_rng(seed)
    return {"normal": np.abs(rng.standard_normal((F, C))), "lognormal": rng.lognormal(0, 2, (F, C)),
            "sparse": rng.random((F, C)) * (rng.random((F, C)) < 0.3)}[dist]


@pytest.mark.slow
def test_cheap_bounds_hold_on_hundreds_of_instances_at_every_scale():
    for seed in range(200):
        shape = SHAPES[seed % len(SHAPES)]
        S = instance(seed, shape, ("normal", "lognormal", "sparse")[seed % 3])
        opt = brute_force(S, shape[2])
        for scale in (1e-12, 1.0, 1e12):
            p = GroupingProblem(S * scale, shape[2])
            for value in (topk_bound(p), spectral_bound(p)):
                assert value >= opt * scale * (1 - 1e-12), (seed, scale)


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), shape=st.sampled_from(SHAPES), dist=st.sampled_from(["normal", "lognormal"]),
       scale=st.sampled_from([1e-12, 1.0, 1e12]))
def test_sdp_bound_is_certified(seed, shape, dist, scale):
    S = instance(seed, shape, dist) * scale
    opt = brute_force(S, shape[2])
    value, info = sdp_bound(GroupingProblem(S, shape[2]))
    assert value >= opt * (1 - 1e-12)
    # never looser than top-k beyond the solver's accuracy (SCS eps 1e-6 of the largest score; the
    # dual repair only loosens; measured up to 3e-6 relative on lognormal 8x4 G=4)
    assert value <= topk_bound(GroupingProblem(S, shape[2])) * (1 + 1e-4)


def test_sdp_is_tight_on_small_layers_and_tighter_than_the_cheap_bounds():
    gaps, cheap = [], []
    for seed in range(8):
        S = np.abs(np.random.default_rng(seed).standard_normal((8, 8)))
        opt = brute_force(S, 2)
        p = GroupingProblem(S, 2)
        gaps.append(sdp_bound(p)[0] / opt - 1)
        cheap.append(min(topk_bound(p), spectral_bound(p)) / opt - 1)
    assert np.mean(gaps) < 0.03 and np.mean(gaps) < 0.5 * np.mean(cheap), (gaps, cheap)


def test_spectral_beats_topk_at_g4_and_is_exact_on_planted_blocks():
    S = np.abs(np.random.default_rng(0).standard_normal((64, 64)))
    p = GroupingProblem(S, 4)
    assert spectral_bound(p) < 0.9 * topk_bound(p)
    P, _ = planted(32, 4, seed=1)
    assert spectral_bound(GroupingProblem(P, 4)) == pytest.approx(P.sum() / 1.0, rel=1e-9)  # everything kept


def test_solve_and_compare_use_a_requested_bound():
    S = np.abs(np.random.default_rng(4).standard_normal((8, 8)))
    plain = permopt.solve(S, 2, "best")
    tight = permopt.solve(S, 2, "best", bound="sdp")
    assert tight.kept == plain.kept and tight.upper_bound <= plain.upper_bound
    assert tight.info["bound_method"] == "sdp" and tight.upper_bound >= brute_force(S, 2) * (1 - 1e-12)
    P, _ = planted(8, 2, seed=3, noise=0.01)
    proven = permopt.solve(P, 2, "best", bound="sdp")
    assert proven.status == "optimal"  # the relaxation is tight on planted blocks: no search needed
    cmp = permopt.compare(np.abs(np.random.default_rng(5).standard_normal((12, 12))), 3, "grps,best", bound="best")
    # small enough to solve exactly: the proven optimum is the best bound (no relaxation needed)
    assert {r["certified_by"] for r in cmp.rows()} == {"optimum"} and cmp.best_bound == bound(cmp.problem).value
    assert cmp.best_bound == pytest.approx(permopt.solve(cmp.problem, solver="enumerate").kept, rel=1e-9)
    assert cmp.best_bound <= bound(cmp.problem, method="sdp").value  # small groups: the LP beats the SDP
    seeded = permopt.solve(S, 2, "grps", bound="colgen")  # the LP starts from the solution's own blocks
    assert seeded.info["bound_method"] == "colgen" and brute_force(S, 2) * (1 - 1e-12) <= seeded.upper_bound
    assert seeded.upper_bound <= tight.upper_bound
    with pytest.raises(ValueError, match="bound must be"):
        permopt.solve(S, 2, "grps", bound="magic")


def test_sdp_solver_rounds_the_relaxation_into_better_certified_solutions():
    """Lognormal 24×24 G=4: the rounded SDP solution keeps more than ``best`` and ``local`` and is
    certified by the SDP dual bound; a planted partition is recovered and proven."""

    S = np.random.default_rng(1).lognormal(0.0, 1.0, (24, 24))
    sdp = permopt.solve(S, 4, "sdp")
    sdp.validate(permopt.GroupingProblem(S, 4))
    assert sdp.info["bound_method"] == "sdp" and sdp.upper_bound <= permopt.bound(S, 4, "spectral").value
    for other in ("best", "local"):
        assert sdp.kept >= permopt.solve(S, 4, other).kept
    assert sdp.info.get("rounded_from_sdp")  # on this instance the rounding wins (measured +1.4% over local)
    P, mask = planted(24, 3, 0, noise=0.3)
    sol = permopt.solve(P, 3, "sdp")
    assert sol.status == "optimal" and np.array_equal(sol.mask(), mask)


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), shape=st.sampled_from([(6, 6, 2), (6, 6, 3), (8, 4, 2), (8, 8, 2)]),
       scale=st.sampled_from([1e-12, 1.0, 1e12]))
def test_triangle_cuts_keep_the_sdp_bound_certified(seed, shape, scale):
    F, C, G = shape
    S = np.random.default_rng(seed).lognormal(0.0, 1.0, (F, C)) * scale
    value, info = sdp_bound(GroupingProblem(S, G), cut_rounds=2, cuts_per_round=50)
    assert value >= brute_force(S, G) * (1 - 1e-9)


@pytest.mark.slow
def test_triangle_cuts_tighten_the_sdp_bound_at_24x24():
    S = np.abs(np.random.default_rng(0).standard_normal((24, 24)))
    problem = GroupingProblem(S, 4)
    plain, _ = sdp_bound(problem)
    cut, info = sdp_bound(problem, cut_rounds=2)
    kept = permopt.solve(S, 4, "sdp").kept
    assert info["triangle_cuts"] > 0 and kept <= cut < plain
    assert (cut - kept) / cut < 0.7 * (plain - kept) / plain  # measured: gap 4.2% -> 2.3%
    assert bound(S, 4, "sdp", cut_rounds=2).value == pytest.approx(cut, rel=1e-9)
