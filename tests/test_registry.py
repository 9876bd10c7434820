import numpy as np
import pytest

import permopt
from permopt.solvers import Solver, available, get, register, unregister


def test_unknown_solver_lists_known_ones():
    with pytest.raises(ValueError, match="unknown solver 'nope'.*grps"):
        permopt.solve(np.ones((4, 4)), groups=2, solver="nope")


def test_builtin_names():
    names = available()
    for n in ["same", "sort", "grps", "alternating", "local", "anneal", "best", "enumerate", "cpsat", "mip", "colgen",
              "auto"]:
        assert n in names
    assert set(available(exact=True)) == {"enumerate", "cpsat", "colgen"}  # mip's CBC proof is not certified


def test_user_function_solver_is_checked():
    @register("test_reverse")
    def reverse(problem, *, time_limit=None, seed=None):
        """Groups in reverse order."""
        r = (np.arange(problem.F) // problem.rows_per_group)[::-1]
        c = (np.arange(problem.C) // problem.cols_per_group)[::-1]
        return r, c

    try:
        S = np.abs(np.random.default_rng(0).standard_normal((6, 6)))
        sol = permopt.solve(S, groups=3, solver="test_reverse")
        assert sol.solver == "test_reverse" and get("test_reverse").description == "Groups in reverse order."
        assert sol.kept == pytest.approx(float(sum(S[2*i:2*i+2, 2*i:2*i+2].sum() for i in range(3))))
        with pytest.raises(ValueError, match="already registered"):
            register("test_reverse", reverse)
    finally:
        unregister("test_reverse")


def test_user_class_solver_and_bad_output():
    class Bad(Solver):
        name = "bad"

        def solve(self, problem, *, time_limit=None, seed=None):
            return np.zeros(problem.F, dtype=int), np.zeros(problem.C, dtype=int)

    register("test_bad", Bad)
    try:
        with pytest.raises(ValueError, match="per group"):
            permopt.solve(np.ones((4, 4)), groups=2, solver="test_bad")
    finally:
        unregister("test_bad")
    with pytest.raises(TypeError, match="subclass"):
        register("test_notsolver", int)


def test_option_validation():
    S = np.ones((4, 4))
    with pytest.raises(ValueError, match="time_limit"):
        permopt.solve(S, groups=2, solver="grps", time_limit=-1)
    with pytest.raises(TypeError, match="seed"):
        permopt.solve(S, groups=2, solver="grps", seed="x")
    with pytest.raises(ValueError, match="iterations"):
        permopt.solve(S, groups=2, solver="grps", iterations=0)
    with pytest.raises(TypeError):
        permopt.solve(S, groups=2, solver="grps", bogus_option=1)


def test_a_clashing_user_name_never_breaks_the_registry():
    before = available()
    with pytest.raises(ValueError, match="already registered"):
        register("local", lambda problem, *, time_limit=None, seed=None: None)
    assert available() == before  # still complete, nothing lost

    def mine(problem, *, time_limit=None, seed=None):
        return permopt.solve(problem, solver="grps")
    original = get("local")
    register("local", mine, overwrite=True)
    try:
        assert available() == before and get("local").fn is mine
    finally:
        register("local", original.fn, overwrite=True)
    assert get("local").fn is original.fn


def test_criteria_share_the_registry_rules():
    with pytest.raises(ValueError, match="already registered"):
        permopt.register_criterion("l2", lambda w, grad=None: w)
    with pytest.raises(ValueError, match="unknown criterion 'nope'.*l1"):
        permopt.scores_from_weight(np.ones((2, 2)), "nope")


def test_matrices_and_help_never_import_torch():
    import subprocess
    import sys

    code = ("import sys, numpy as np, permopt, permopt.cli; S = np.ones((8, 8)); permopt.solve(S, 2); "
            "permopt.compare(S, 2, 'grps'); permopt.bound(S, 2, method='best')\n"
            "from permopt.search import LayerSpec, SearchSpace, pareto_front, search, ConfigProblem, SolverCostModel\n"
            "sp = SearchSpace([LayerSpec(f'l{i}', np.ones((8, 8)) + i, [1, 2, 4], 576, 9216) for i in range(3)])\n"
            "search(sp, 'params=0.5', 'exact'); pareto_front(ConfigProblem(sp, SolverCostModel('grps'), 'params=0.5'))\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    helped = subprocess.run([sys.executable, "-c", "import sys; from permopt.cli import main\n"
                             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
                             "print('torch' in sys.modules)"], capture_output=True, text=True, check=True)
    assert helped.stdout.strip().endswith("False")
