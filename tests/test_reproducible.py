"""Same inputs and seed ⇒ identical labels: twice in one process, in a fresh process, and
with several copies running at once (load). No solver or strategy may depend on the clock."""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import permopt
from permopt.search import SearchSpace, SolverCostModel, available_strategies, search
from permopt.search.space import LayerSpec

#: Instances each registered solver finishes on without a time limit.
SOLVER_CASES = {"small": (8, 8, 2), "large": (96, 64, 8)}
EXACT = set(permopt.solvers.available(exact=True))
SMALL = EXACT | {"sdp", "mip"}  # exact searches and the SDP relaxation run on the small case


def _matrix(F, C, seed=0):
    return np.random.default_rng(seed).lognormal(0.0, 1.0, (F, C))


def _solver_labels(name):
    F, C, G = SOLVER_CASES["small" if name in SMALL else "large"]
    sol = permopt.solve(_matrix(F, C), G, name, seed=7)
    return sol.row_groups.tolist(), sol.col_groups.tolist()


def _space():
    rng = np.random.default_rng(3)
    layers = [LayerSpec(f"l{i}", rng.lognormal(0, 1, (16, 32)), [1, 2, 4, 8], 16 * 32 * 9, 16 * 32 * 9 * 64, 16)
              for i in range(6)]
    return SearchSpace(layers, fixed_params=1000, fixed_macs=10_000)


def _strategy_config(name):
    res = search(_space(), {"params": 0.45}, name, cost_model=SolverCostModel("grps"), seed=5)
    return res.config


ALL_SOLVERS = permopt.available_solvers()
ALL_STRATEGIES = available_strategies()


def test_every_builtin_is_covered():
    assert {"best", "auto", "local", "anneal", "cpsat", "mip", "enumerate"} <= set(ALL_SOLVERS)
    assert {"paper", "exact", "descent", "annealing", "genetic", "random"} <= set(ALL_STRATEGIES)


@pytest.mark.parametrize("name", ALL_SOLVERS)
def test_solver_repeats_in_process_and_under_concurrent_load(name):
    first = _solver_labels(name)
    assert _solver_labels(name) == first
    with ThreadPoolExecutor(3) as pool:  # three copies at once compete for the two cores
        assert all(r == first for r in pool.map(lambda _: _solver_labels(name), range(3)))


@pytest.mark.parametrize("name", ALL_STRATEGIES)
def test_strategy_repeats_in_process(name):
    assert _strategy_config(name) == _strategy_config(name)


@pytest.mark.slow
def test_fresh_process_gives_the_same_labels():
    here = {"solvers": {n: _solver_labels(n) for n in ALL_SOLVERS},
            "strategies": {n: _strategy_config(n) for n in ALL_STRATEGIES}}
    code = ("import json, test_reproducible as t; "
            "print(json.dumps({'solvers': {n: t._solver_labels(n) for n in t.ALL_SOLVERS}, "
            "'strategies': {n: t._strategy_config(n) for n in t.ALL_STRATEGIES}}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent,  # -c imports from the cwd
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == json.loads(json.dumps(here))


def test_best_effort_never_loses_quality():
    S = _matrix(64, 64, seed=11)
    kept = [permopt.solve(S, 8, "best", seed=0, effort=e).kept for e in (0, 0.5, 1, 2)]
    assert all(b >= a for a, b in zip(kept, kept[1:]))
    assert kept[-1] >= permopt.solve(S, 8, "grps").kept


def test_answers_do_not_depend_on_the_blas_thread_count():
    from threadpoolctl import threadpool_limits

    S = _matrix(512, 256, seed=3)
    runs = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            runs.append([(s.kept, s.upper_bound, s.row_groups.tobytes()) for s in
                         (permopt.solve(S, G, solver, seed=0) for solver in ("best", "soft") for G in (8, 32))])
    assert runs[0] == runs[1]
