"""The Lagrangian spectral bound: certified against brute force at three scales, never looser than
the spectral bound it starts from, tighter on wide layers, reproducible, monotone in its work."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from helpers import brute_force

import permopt
from permopt.bounds import spectral_bound
from permopt.lagrangian import _bipartite, _symmetric, default_evaluations, lagrangian_bound, uses_symmetric
from permopt.problem import GroupingProblem

SHAPES = [(4, 4, 2), (6, 6, 2), (6, 6, 3), (4, 8, 2), (8, 4, 4), (8, 8, 2), (6, 9, 3), (8, 8, 4)]


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), shape=st.sampled_from(SHAPES), dist=st.sampled_from(["normal", "lognormal", "sparse"]),
       scale=st.sampled_from([1e-12, 1.0, 1e12]))
def test_lagrangian_bound_is_certified_and_never_looser_than_spectral(seed, shape, dist, scale):
    F, C, G = shape
    rng = np.random.default_rng(seed)
    S = {"normal": np.abs(rng.standard_normal((F, C))), "lognormal": rng.lognormal(0, 2, (F, C)),
         "sparse": rng.random((F, C)) * (rng.random((F, C)) < 0.3)}[dist] * scale
    p = GroupingProblem(S, G)
    value, info = lagrangian_bound(p, evaluations=30)
    assert value >= brute_force(S, G) * (1 - 1e-12)
    assert value <= spectral_bound(p) * (1 + 1e-9)
    assert 1 <= info["evaluations"] <= 30


def test_same_bound_at_every_scale_and_on_every_run():
    S = np.abs(np.random.default_rng(3).standard_normal((48, 32)))
    values = [lagrangian_bound(GroupingProblem(S * s, 4), evaluations=40)[0] / s for s in (1e-12, 1.0, 1e12)]
    assert values[0] == pytest.approx(values[1], rel=1e-12) and values[2] == pytest.approx(values[1], rel=1e-12)
    assert lagrangian_bound(GroupingProblem(S, 4), evaluations=40)[0] == values[1]


def test_more_evaluations_never_loosen_the_bound():
    p = GroupingProblem(np.random.default_rng(1).lognormal(0, 1, (64, 48)), 8)
    values = [lagrangian_bound(p, evaluations=e)[0] for e in (1, 5, 20, 80)]
    assert values[0] == pytest.approx(spectral_bound(p), rel=1e-9)  # the first point is N = 0
    assert all(b <= a for a, b in zip(values, values[1:])), values
    assert values[-1] < values[0]


@pytest.mark.slow
def test_tighter_than_spectral_on_a_wide_layer_and_above_the_best_solution():
    S = np.abs(np.random.default_rng(0).standard_normal((256, 128)))  # a random 1x1 conv's scores
    p = GroupingProblem(S, 8)
    kept = permopt.solve(p, solver="best", seed=0).kept
    spectral = spectral_bound(p)
    value, _ = lagrangian_bound(p, evaluations=30)
    assert kept <= value < spectral - 0.15 * (spectral - kept), (kept, value, spectral)


@pytest.mark.parametrize("form", [_bipartite, _symmetric])
def test_gradient_matches_finite_differences(form):
    rng = np.random.default_rng(5)
    S = np.abs(rng.standard_normal((10, 7)))
    size = 70 if form is _bipartite else 17 + 17 * 17
    x = np.abs(rng.standard_normal(size)) * 0.05
    value, grad = form(S, x, 3)
    for i in (0, 5, 16, 40, size - 1):
        step = np.zeros(size)
        step[i] = 1e-6
        numeric = (form(S, x + step, 3)[0] - form(S, x - step, 3)[0]) / 2e-6
        assert numeric == pytest.approx(grad[i], rel=1e-4, abs=1e-6), i


def test_the_symmetric_form_is_tighter_where_it_runs():
    S = np.abs(np.random.default_rng(4).standard_normal((96, 24)))
    p = GroupingProblem(S, 4)
    assert uses_symmetric(96, 24) and not uses_symmetric(2048, 512)
    value, info = lagrangian_bound(p, evaluations=150)
    assert info["form"] == "symmetric"
    bipartite, info2 = lagrangian_bound(p, evaluations=150, form="bipartite")
    assert info2["form"] == "bipartite" and value < bipartite
    with pytest.raises(ValueError, match="form"):
        lagrangian_bound(p, form="dual")


@pytest.mark.slow
def test_best_includes_it_and_a_time_cap_stops_after_one_evaluation():
    S = np.abs(np.random.default_rng(2).standard_normal((144, 136)))  # beyond the SDP and colgen sizes
    b = permopt.bound(S, 8, method="best", evaluations=40)
    assert "lagrangian" in b.info["all"] and b.value == min(b.info["all"].values())
    capped = permopt.bound(S, 8, method="lagrangian", time_limit=1e-6)
    assert capped.info["lagrangian_evaluations"] == 1 and capped.info["time_limit_hit"]
    assert capped.value == pytest.approx(spectral_bound(GroupingProblem(S, 8)), rel=1e-9)
    assert permopt.bound(S, 8, method="lagrangian", evaluations=3).info["lagrangian_evaluations"] == 3


def test_default_work_depends_on_the_shape_only_and_bad_counts_are_named():
    assert default_evaluations(64, 64) == 600 and 10 <= default_evaluations(2048, 512) < 600
    assert default_evaluations(2048, 512) == default_evaluations(512, 2048)
    p = GroupingProblem(np.ones((8, 8)), 2)
    with pytest.raises(ValueError, match="evaluations"):
        lagrangian_bound(p, evaluations=0)
    with pytest.raises(TypeError, match="evaluations"):
        permopt.bound(p, method="lagrangian", evaluations=2.5)
