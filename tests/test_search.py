"""Configuration search: exact knapsack vs brute force, budgets respected, user strategies."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from permopt.search import (Budget, LayerCost, LayerSpec, SearchSpace, SolverCostModel, available_strategies,
                            register_strategy, search, unregister_strategy)

STRATEGIES = ["paper", "exact", "descent", "annealing", "genetic", "random"]


def make_space(seed, n=6, sizes=(8, 16, 32)):
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(n):
        F, C = int(rng.choice(sizes)), int(rng.choice(sizes))
        cands = [g for g in (1, 2, 4, 8) if F % g == 0 and C % g == 0]
        layers.append(LayerSpec(f"layer{i}", rng.lognormal(0, 1, (F, C)), cands, F * C * 9, F * C * 9 * 16, F))
    return SearchSpace(layers, fixed_params=500, fixed_macs=5000)


class TableCost:
    """A user cost model (the Protocol): a fixed random table, counting calls."""

    def __init__(self, seed):
        self.rng, self.table, self.calls = np.random.default_rng(seed), {}, 0

    def evaluate(self, layer, groups):
        self.calls += 1
        if (layer.name, groups) not in self.table:
            self.table[layer.name, groups] = 0.0 if groups == 1 else float(self.rng.random()) * np.log2(groups)
        pruned = self.table[layer.name, groups]
        return LayerCost(pruned, 1 - pruned, layer.params_at(groups), layer.macs_at(groups))


def brute(space, cost, budget):
    maxp, maxm, _ = Budget.parse(budget).limits(space.dense_params, space.dense_macs)
    best = np.inf
    for combo in itertools.product(*[L.candidates for L in space.layers]):
        cs = [cost.evaluate(L, g) for L, g in zip(space.layers, combo)]
        p = space.fixed_params + sum(c.params for c in cs)
        m = space.fixed_macs + sum(c.macs for c in cs)
        if p <= maxp * (1 + 1e-9) and m <= maxm * (1 + 1e-9):
            best = min(best, sum(c.pruned for c in cs))
    return best


@pytest.mark.slow
@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), frac=st.sampled_from([0.2, 0.35, 0.5, 0.8]),
       kind=st.sampled_from(["params", "macs", "both"]))
def test_exact_matches_brute_force_and_bounds_every_strategy(seed, frac, kind):
    space = make_space(seed, n=5)
    cost = TableCost(seed)
    budget = {"params": {"params": frac}, "macs": {"macs": frac}, "both": {"params": frac, "macs": frac + 0.1}}[kind]
    ref = brute(space, cost, budget)
    ex = search(space, budget, "exact", cost_model=cost)
    if not np.isfinite(ref):
        assert not ex.feasible and ex.status == "infeasible"
        return
    assert ex.status == "optimal" and ex.feasible
    assert ex.objective == pytest.approx(ref, abs=1e-5)
    pulp = search(space, budget, "exact", cost_model=cost, backend="pulp")
    assert pulp.objective == pytest.approx(ref, abs=1e-7)
    for s in STRATEGIES:
        r = search(space, budget, s, cost_model=cost, seed=seed)
        assert r.feasible, s  # the largest G everywhere fits when anything does, and every strategy can reach it
        assert r.objective >= ref - 1e-5, s
        maxp, maxm, _ = Budget.parse(budget).limits(space.dense_params, space.dense_macs)
        assert r.params <= maxp * (1 + 1e-9) and r.macs <= maxm * (1 + 1e-9)
        assert set(r.config) == {L.name for L in space.layers}
        assert all(g in L.candidates for L, g in zip(space.layers, r.config.values()))


def test_paper_is_feasible_and_others_report_infeasibility():
    space = make_space(1)
    cost = SolverCostModel("grps")
    r = search(space, {"params": 0.5}, "paper", cost_model=cost)
    assert r.feasible and r.params <= 0.5 * space.dense_params
    tight = search(space, {"params": 0.01}, "paper", cost_model=cost)
    assert not tight.feasible and tight.status == "infeasible"
    assert search(space, {"params": 0.01}, "exact", cost_model=cost).status == "infeasible"


def test_solver_cost_model_caches_in_memory_and_on_disk(tmp_path):
    space = make_space(2, n=3)
    cm = SolverCostModel("grps", cache_dir=tmp_path)
    search(space, {"params": 0.5}, "exact", cost_model=cm)
    n = cm.evaluations
    assert n == sum(len(L.candidates) - 1 for L in space.layers)  # G=1 needs no solver
    search(space, {"params": 0.3}, "descent", cost_model=cm)
    assert cm.evaluations == n
    cm2 = SolverCostModel("grps", cache_dir=tmp_path)
    cm2.precompute(space)
    assert cm2.evaluations == 0 and len(list(tmp_path.iterdir())) == n  # one file per solve; G=1 needs none
    L = space.layers[0]
    assert cm2.evaluate(L, L.candidates[-1]) == cm.evaluate(L, L.candidates[-1])


def test_user_strategy_function_and_class_plug_in():
    @register_strategy("test_largest")
    def largest(problem, *, time_limit=None, seed=None):
        """Largest G everywhere."""
        return problem.cheapest()

    try:
        assert "test_largest" in available_strategies()
        space = make_space(3)
        r = search(space, {"params": 0.9}, "test_largest", cost_model=TableCost(0))
        assert r.strategy == "test_largest" and all(g == L.candidates[-1] for L, g in zip(space.layers, r.config.values()))
    finally:
        unregister_strategy("test_largest")
    with pytest.raises(ValueError, match="unknown strategy"):
        search(make_space(3), {"params": 0.5}, "test_largest", cost_model=TableCost(0))


def test_budget_parsing_and_errors():
    assert Budget.parse("params=0.5,macs=1e6") == Budget(0.5, 1e6)
    assert Budget(0.5).limits(1000, 10) == (500.0, float("inf"), float("inf"))
    assert Budget(params=300).limits(1000, 10)[0] == 300.0
    with pytest.raises(ValueError):
        Budget()
    with pytest.raises(ValueError, match="positive"):
        Budget(params=-1)
    with pytest.raises(ValueError, match="unknown budget keys"):
        Budget.parse({"flops": 0.5})
    with pytest.raises(ValueError, match="candidates"):
        LayerSpec("x", np.ones((4, 4)), [3], 16)


def test_space_save_load_round_trip(tmp_path):
    space = make_space(4)
    space.save(tmp_path / "space.npz")
    back = SearchSpace.load(tmp_path / "space.npz")
    assert [L.name for L in back.layers] == [L.name for L in space.layers]
    assert all(np.array_equal(a.scores, b.scores) and a.candidates == b.candidates
               for a, b in zip(space.layers, back.layers))
    assert back.dense_params == space.dense_params and back.dense_macs == space.dense_macs


def latency_space(seed, n=5):
    """A space with a measured-latency table per layer: not monotone in G (G=8 slower than G=4
    on some layers, as grouped kernels are on real CPUs)."""
    base = make_space(seed, n)
    rng = np.random.default_rng(seed + 1)
    layers = [LayerSpec(L.name, L.scores, L.candidates, L.weight_params, L.macs, L.other_params,
                        {g: float(rng.uniform(0.2, 1.2)) * 1e-3 / (g if rng.random() < 0.7 else 1) for g in L.candidates})
              for L in base.layers]
    return SearchSpace(layers, base.fixed_params, base.fixed_macs, fixed_latency=2e-4)


@pytest.mark.slow
@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), frac=st.sampled_from([0.4, 0.6, 0.8]), with_params=st.booleans())
def test_latency_budget_matches_brute_force(seed, frac, with_params):
    space, cost = latency_space(seed), TableCost(seed)
    budget = {"latency": frac, **({"params": 0.6} if with_params else {})}
    limits = Budget.parse(budget).limits(space.dense_params, space.dense_macs, space.dense_latency)
    best = np.inf
    for combo in itertools.product(*[L.candidates for L in space.layers]):
        lat = space.fixed_latency + sum(L.latency[g] for L, g in zip(space.layers, combo))
        params = space.fixed_params + sum(L.params_at(g) for L, g in zip(space.layers, combo))
        if lat <= limits[2] * (1 + 1e-9) and params <= limits[0] * (1 + 1e-9):
            best = min(best, sum(cost.evaluate(L, g).pruned for L, g in zip(space.layers, combo)))
    ex = search(space, budget, "exact", cost_model=cost)
    if not np.isfinite(best):
        assert ex.status == "infeasible"
        return
    assert ex.status == "optimal" and ex.objective == pytest.approx(best, abs=1e-5)
    assert ex.latency <= limits[2] * (1 + 1e-9)
    assert ex.latency == pytest.approx(space.fixed_latency + sum(L.latency[ex.config[L.name]] for L in space.layers))
    for s in STRATEGIES:
        r = search(space, budget, s, cost_model=cost, seed=seed)
        if r.feasible:  # no feasible configuration beats the optimum
            assert r.objective >= best - 1e-5, s
            assert r.latency <= limits[2] * (1 + 1e-9), s
        else:  # a strategy that found nothing within the budget says so, and its fallback is over it
            assert r.status == "infeasible", s
            assert r.latency > limits[2] * (1 + 1e-9) or r.params > limits[0] * (1 + 1e-9), s


def test_latency_budget_needs_measurements():
    with pytest.raises(ValueError, match="latency budget needs measured latencies"):
        search(make_space(0), {"latency": 0.5}, "paper", cost_model=TableCost(0))
    with pytest.raises(ValueError, match=r"fraction of the dense model's latency in \(0, 1\]"):
        Budget(latency=2.0)


@pytest.mark.slow
def test_exact_stops_at_its_deterministic_work_limit_with_a_budget_meeting_config():
    from permopt.search.space import LayerSpec

    rng = np.random.default_rng(3)
    layers = [LayerSpec(f"l{i}", rng.lognormal(0, 1, (16, 32)), [1, 2, 4, 8], 16 * 32 * 9, 16 * 32 * 9 * 64, 16)
              for i in range(40)]
    space = SearchSpace(layers, fixed_params=1000, fixed_macs=10_000)
    cut = search(space, {"params": 0.45}, "exact", cost_model=SolverCostModel("grps"), seed=5, work_limit=1e-6)
    assert cut.status == "work_limit"  # reproducible, unlike a wall-clock limit
    assert cut.params <= 0.45 * space.dense_params * (1 + 1e-9)
    full = search(space, {"params": 0.45}, "exact", cost_model=SolverCostModel("grps"), seed=5)
    assert full.status == "optimal" and full.objective <= cut.objective + 1e-12
