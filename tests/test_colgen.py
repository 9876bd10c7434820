"""Column generation and branch and price on the set-partitioning LP (``colgen``)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import permopt
from permopt.problem import GroupingProblem
from permopt.solvers.colgen import MAX_PRICING_ENTRIES, branch_and_price, pricing_entries
from permopt.solvers.pricing import EnumerationPricer, TreePricer
from helpers import brute_force, check_solution

# (F, C, G), small enough for brute force; (4, 8, 2) enumerates the rows' subsets, the others the columns'
SHAPES = [(4, 4, 2), (6, 6, 3), (4, 8, 2), (8, 8, 2), (9, 6, 3), (6, 8, 2)]


@pytest.mark.slow
@given(shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**31), scale=st.sampled_from([1e-12, 1.0, 1e12]),
       dist=st.sampled_from(["uniform", "lognormal", "sparse"]))
@settings(max_examples=60, deadline=None)
def test_colgen_proves_the_brute_force_optimum_at_every_scale(shape, seed, scale, dist):
    F, C, G = shape
    rng = np.random.default_rng(seed)
    S = {"uniform": lambda: rng.random((F, C)), "lognormal": lambda: rng.lognormal(0, 1.5, (F, C)),
         "sparse": lambda: rng.random((F, C)) * (rng.random((F, C)) < 0.3)}[dist]() * scale
    opt = brute_force(S, G)
    sol = permopt.solve(S, G, "colgen")
    check_solution(S, G, sol)
    assert sol.status == "optimal"
    assert sol.kept == pytest.approx(opt, rel=1e-9, abs=1e-300)
    assert permopt.bound(S, G, "colgen").value >= opt * (1 - 1e-12)


@pytest.mark.parametrize("shape,seed", [((12, 12, 3), 7), ((12, 12, 4), 2), ((8, 12, 4), 1)])
def test_fractional_roots_are_closed_by_branching(shape, seed):
    F, C, G = shape
    S = np.random.default_rng(seed).random((F, C))
    sol = permopt.solve(S, G, "colgen")
    assert not sol.info["root_integral"] and sol.info["nodes"] > 1  # the LP alone did not decide it
    assert sol.status == "optimal" and sol.info["open_nodes"] == 0
    assert sol.kept == pytest.approx(permopt.solve(S, G, "enumerate").kept, rel=1e-9)
    assert sol.info["root_bound"] > sol.kept * (1 + 1e-6)  # the root's bound was honest, not the optimum
    root_only = permopt.solve(S, G, "colgen", node_limit=1)
    assert root_only.status == "work_limit" and root_only.upper_bound == pytest.approx(sol.info["root_bound"], rel=1e-12)
    assert root_only.upper_bound >= sol.kept


@pytest.mark.slow
def test_colgen_proves_16x16_g4_like_enumerate_and_beats_the_sdp_bound():
    S = np.abs(np.random.default_rng(0).standard_normal((16, 16)))
    sol = permopt.solve(S, 4, "colgen")
    assert sol.status == "optimal"
    assert sol.kept == pytest.approx(permopt.solve(S, 4, "enumerate").kept, rel=1e-9)
    assert sol.kept >= permopt.solve(S, 4, "best").kept
    assert permopt.bound(S, 4, "colgen").value < permopt.bound(S, 4, "sdp").value


def test_node_limited_search_keeps_its_open_bound_and_repeats():
    S = np.random.default_rng(7).random((12, 12))
    problem = GroupingProblem(S, 3)
    start = permopt.solve(problem, solver="best")
    runs = [branch_and_price(problem, (start.row_groups, start.col_groups), node_limit=2) for _ in range(2)]
    (r, c), ub, info = runs[0]
    assert info["open_nodes"] > 0 and ub >= permopt.solve(S, 3, "enumerate").kept * (1 - 1e-12) >= problem.kept(r, c)
    assert np.array_equal(r, runs[1][0][0]) and np.array_equal(c, runs[1][0][1]) and ub == runs[1][1]


def test_layers_with_large_groups_are_refused_with_the_way_out():
    problem = GroupingProblem(np.ones((64, 64)), 4)
    assert pricing_entries(problem) > MAX_PRICING_ENTRIES
    with pytest.raises(ValueError, match=r"64x64 G=4 .*MAX_TREE_SUBSETS.* 'sdp' solver, or the 'lagrangian' bound"):
        permopt.solve(problem, solver="colgen")
    with pytest.raises(ValueError, match="MAX_TREE_SUBSETS"):
        permopt.bound(problem, method="colgen")
    with pytest.raises(ValueError, match=r"256x64 G=8 .* 32 channels .*MAX_TREE_MEMBERS=16"):  # the tree would not prune
        permopt.bound(np.ones((256, 64)), 8, method="colgen")
    assert permopt.bound(problem, method="best").method in ("topk", "spectral", "optimum")  # best skips what cannot run
    with pytest.raises(ValueError, match=r"MAX_PRICING_ENTRIES.*pricing='tree'"):
        permopt.solve(np.ones((32, 32)), 4, "colgen", pricing="enumerate")
    with pytest.raises(ValueError, match="pricing must be one of"):
        permopt.solve(np.ones((8, 8)), 2, "colgen", pricing="fast")
    with pytest.raises(ValueError, match="pricing_tol"):
        permopt.solve(np.ones((8, 8)), 2, "colgen", pricing_tol=-0.1)


def _reduced(S: np.ndarray, y: np.ndarray, block) -> float:
    R, C = block
    return float(S[np.ix_(R, C)].sum() - y[R].sum() - y[S.shape[0] + C].sum())


@given(shape=st.sampled_from([(8, 8, 2), (12, 12, 3), (12, 16, 4), (16, 12, 4), (16, 16, 4), (9, 6, 3)]),
       seed=st.integers(0, 2**31), tol=st.sampled_from([0.0, 0.05]))
@settings(max_examples=40, deadline=None)
def test_pricing_tree_bounds_the_largest_reduced_profit_like_enumeration(shape, seed, tol):
    F, C, G = shape
    rng = np.random.default_rng(seed)
    S = rng.random((F, C))
    kr, kc = F // G, C // G
    y = rng.random(F + C) * kr * kc / (kr + kc)  # blocks priced around 0: the regime column generation ends in
    exact = EnumerationPricer(S, G).price(y)
    tree_pricer = TreePricer(S, G, tol)
    tree = tree_pricer.exact(y)
    tau = tol * abs(y.sum()) / G
    assert exact.bound <= tree.bound <= max(exact.bound, tau) + 1e-9
    for R, Cc in tree.blocks + tree_pricer.price(y).blocks:  # every block is a valid one, valued honestly
        assert len(set(R)) == kr and len(set(Cc)) == kc and R.max() < F and Cc.max() < C
        assert _reduced(S, y, (R, Cc)) <= exact.bound + 1e-9
    if exact.bound > tau + 1e-9:  # then the tree finds the best block itself
        assert _reduced(S, y, tree.blocks[0]) == pytest.approx(exact.bound, rel=1e-9, abs=1e-9)
        assert all(_reduced(S, y, b) > tau for b in tree.blocks)


@pytest.mark.slow
@given(shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**31), scale=st.sampled_from([1e-12, 1.0, 1e12]))
@settings(max_examples=25, deadline=None)
def test_tree_priced_colgen_is_certified_and_within_its_tolerance_of_the_lp(shape, seed, scale):
    F, C, G = shape
    S = np.random.default_rng(seed).lognormal(0, 1, (F, C)) * scale
    opt = brute_force(S, G)
    sol = permopt.solve(S, G, "colgen", pricing="tree", pricing_tol=0.05)
    check_solution(S, G, sol)
    assert sol.info["pricing"] == "tree" and sol.info["nodes"] == 1  # the tree obeys no pairs: root only
    assert sol.upper_bound >= opt * (1 - 1e-12) and sol.kept >= permopt.solve(S, G, "best").kept
    # the heuristic LP is at most the full LP, which is at most the exact root certificate
    assert sol.upper_bound <= permopt.bound(S, G, "colgen").value * 1.05 * (1 + 1e-9)


@pytest.mark.slow
def test_tree_priced_bound_beats_the_sdp_bound_where_enumeration_cannot_run():
    S = np.abs(np.random.default_rng(0).standard_normal((32, 32)))
    assert pricing_entries(GroupingProblem(S, 4)) > MAX_PRICING_ENTRIES
    colgen = permopt.bound(S, 4, "colgen")
    assert colgen.info["pricing"] == "tree"
    assert colgen.value < permopt.bound(S, 4, "sdp").value
    assert colgen.value >= permopt.solve(S, 4, "best").kept
    assert permopt.bound(S * 1e9, 4, "colgen").value == pytest.approx(colgen.value * 1e9, rel=1e-12)  # same path
    with pytest.raises(ValueError, match="tree_work_limit"):
        permopt.solve(S, 4, "colgen", tree_work_limit=1)
    limited = permopt.solve(S, 4, "colgen", time_limit=1e-3)
    assert limited.status == "time_limit" and np.isfinite(limited.upper_bound)
    assert limited.upper_bound >= max(limited.kept, permopt.solve(S, 4, "local").kept)  # still a bound


def test_time_limit_returns_a_certified_solution():
    S = np.abs(np.random.default_rng(3).standard_normal((32, 32)))  # 31 nodes and 8 s to prove here
    sol = permopt.solve(S, 8, "colgen", time_limit=0.5)
    assert sol.status == "time_limit" and sol.info["time_limit_hit"] and 0 < sol.gap < 1
    check_solution(S, 8, sol)
    assert sol.kept >= permopt.solve(S, 8, "best").kept
