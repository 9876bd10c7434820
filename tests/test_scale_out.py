"""Scale out: the same answers on local processes and on a Dask cluster as serially; Optuna
strategy within budget, reproducible, resumable through shared storage; Pareto fronts."""
import numpy as np
import pytest
import torch

import permopt
from permopt import models
from permopt.search import Budget, ConfigProblem, SearchSpace, SolverCostModel, pareto_front, search
from permopt.search.space import LayerSpec


def space():
    rng = np.random.default_rng(3)
    layers = [LayerSpec(f"l{i}", rng.lognormal(0, 1, (16 * (1 + i % 2), 32)), [1, 2, 4, 8], 16 * 32 * 9,
                        16 * 32 * 9 * 64, 16) for i in range(6)]
    return SearchSpace(layers, fixed_params=1000, fixed_macs=10_000)


def costs(cm, sp):
    return {(L.name, g): (cm.evaluate(L, g), cm.solutions.get((L.name, g))) for L in sp.layers for g in L.candidates}


def same_costs(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k][0] == b[k][0], k
        if a[k][1] is not None:
            assert np.array_equal(a[k][1].row_groups, b[k][1].row_groups), k


@pytest.fixture(scope="module")
def dask_executor():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client.get_executor()
    client.close()
    cluster.close()


def test_precompute_is_the_same_serial_on_processes_and_on_dask(dask_executor):
    sp = space()
    serial = SolverCostModel("best")
    serial.precompute(sp)
    procs = SolverCostModel("best", n_jobs=2)
    procs.precompute(sp, progress=True)
    dask = SolverCostModel("best", executor=dask_executor)
    dask.precompute(sp)
    ref = costs(serial, sp)
    same_costs(ref, costs(procs, sp))
    same_costs(ref, costs(dask, sp))
    assert procs.evaluations == dask.evaluations == serial.evaluations == 18


@pytest.mark.slow
def test_prune_and_compare_on_an_executor_match_serial(dask_executor):
    torch.manual_seed(0)
    model, x = models.get("resnet20"), torch.randn(1, 3, 32, 32)
    serial = permopt.prune(model, x, budget={"params": 0.5}, progress=False)
    remote = permopt.prune(model, x, budget={"params": 0.5}, progress=False, executor=dask_executor)
    assert remote.plan.to_json() == serial.plan.to_json()
    S = np.abs(np.random.default_rng(1).standard_normal((32, 32)))
    a = permopt.compare(S, 4, "grps,best,local")
    b = permopt.compare(S, 4, "grps,best,local", n_jobs=2)
    assert [r["kept"] for r in a.rows()] == [r["kept"] for r in b.rows()]


def test_bad_parallel_arguments():
    with pytest.raises(ValueError, match="not both"):
        SolverCostModel(executor=object(), n_jobs=2)
    with pytest.raises(TypeError, match="Executor"):
        SolverCostModel(executor=object())
    with pytest.raises(ValueError, match="n_jobs"):
        permopt.compare(np.ones((4, 4)), 2, "grps", n_jobs=0)


@pytest.mark.slow
def test_optuna_strategy_within_budget_reproducible_and_resumable(tmp_path):
    optuna = pytest.importorskip("optuna")
    sp, cm = space(), SolverCostModel("grps")
    exact = search(sp, {"params": 0.45}, "exact", cost_model=cm)
    runs = [search(sp, {"params": 0.45}, "optuna", cost_model=cm, seed=1, n_trials=60) for _ in range(2)]
    assert runs[0].config == runs[1].config and runs[0].feasible
    assert runs[0].objective >= exact.objective - 1e-12
    assert runs[0].params <= Budget(params=0.45).limits(sp.dense_params, sp.dense_macs)[0] * (1 + 1e-9)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    for _ in range(2):  # a second process (or machine) with the same storage and name continues the study
        search(sp, {"params": 0.45}, "optuna", cost_model=cm, seed=2, n_trials=15, storage=storage,
               study_name="shared")
    assert len(optuna.load_study(study_name="shared", storage=storage).trials) == 30


def test_pareto_front_is_non_dominated_and_drawn(tmp_path):
    pytest.importorskip("optuna")
    sp, cm = space(), SolverCostModel("grps")
    problem = ConfigProblem(sp, cm, Budget(params=0.5))
    front = pareto_front(problem, resources=("params",), method="nsga2", n_trials=80, seed=0)
    assert len(front) >= 3
    for p in front:
        choice = [L.candidates.index(p["config"][L.name]) for L in sp.layers]
        obj, (params, _, _) = problem.totals(choice)
        assert p["objective"] == pytest.approx(obj) and p["params"] == int(params)
        assert not any(q["objective"] <= p["objective"] and q["params"] <= p["params"]
                       and (q["objective"], q["params"]) != (p["objective"], p["params"]) for q in front)
    from permopt.plot import plot_pareto
    plot_pareto(front, tmp_path / "front.png", dense=sp.dense_params)
    assert (tmp_path / "front.png").stat().st_size > 5000
