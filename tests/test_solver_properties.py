"""Properties every registered solver must satisfy (hypothesis)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import permopt
from permopt.solvers import available
from helpers import check_solution, slow_params

FAST = [n for n in available() if n not in ("cpsat", "mip", "enumerate", "colgen", "auto")]
EXACT = ["enumerate", "cpsat", "mip", "colgen", "auto"]  # exhaustive searches
PROVING = [n for n in EXACT if n != "mip"]  # mip's proof is CBC's, uncertified

shapes = st.sampled_from([(4, 4, 2), (6, 9, 3), (8, 4, 2), (12, 8, 4), (16, 16, 8), (10, 20, 5), (8, 8, 1)])


@pytest.mark.parametrize("solver", slow_params(FAST, {"sdp"}))
@given(shape=shapes, seed=st.integers(0, 2**31), dist=st.sampled_from(["normal", "uniform", "lognormal", "sparse"]))
def test_heuristic_solutions_are_valid(solver, shape, seed, dist):
    F, C, G = shape
    rng = np.random.default_rng(seed)
    S = {"normal": lambda: np.abs(rng.standard_normal((F, C))), "uniform": lambda: rng.random((F, C)),
         "lognormal": lambda: rng.lognormal(0, 2, (F, C)),
         "sparse": lambda: rng.random((F, C)) * (rng.random((F, C)) < 0.2)}[dist]()
    sol = permopt.solve(S, groups=G, solver=solver, seed=seed % 1000)
    check_solution(S, G, sol)


@pytest.mark.parametrize("solver", slow_params(EXACT, {"mip"}))
@given(shape=st.sampled_from([(4, 4, 2), (6, 6, 3), (4, 8, 2), (6, 6, 2)]), seed=st.integers(0, 2**31))
def test_exact_solutions_are_valid(solver, shape, seed):
    F, C, G = shape
    S = np.abs(np.random.default_rng(seed).standard_normal((F, C)))
    sol = permopt.solve(S, groups=G, solver=solver, time_limit=20, seed=0)
    check_solution(S, G, sol)
    assert sol.status == "optimal" or (solver not in PROVING and sol.status == "feasible")


@pytest.mark.parametrize("solver", FAST)
def test_constant_scores_give_valid_solutions(solver):
    # every item indifferent: the transportation profits are constant (a flow once divided 0 by 0)
    S = np.ones((128, 128))
    sol = permopt.solve(S, groups=4, solver=solver, seed=0)
    check_solution(S, 4, sol)
    assert sol.kept == pytest.approx(128 * 128 / 4) and sol.status == "optimal"

