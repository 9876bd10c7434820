"""The house (issue 23): one prune configuration validated once, strategies refusing bad options
the way solvers do, one content hash."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import permopt
from permopt.digest import digest
from permopt.pruning import PruneConfig
from permopt.search import LayerSpec, SearchSpace, search


def _space():
    return SearchSpace([LayerSpec(f"l{i}", np.ones((8, 8)) + i, [1, 2, 4], 576, 9216) for i in range(3)])


@pytest.mark.parametrize("strategy,options,error,match", [
    ("annealing", {"t0": 0}, ValueError, "t0 must be a positive"),
    ("annealing", {"penalty": -1.0}, ValueError, "penalty must be a finite number >= 0"),
    ("descent", {"kick": 2}, ValueError, r"kick must be a finite number in \[0, 1\]"),
    ("genetic", {"mutation": -0.1}, ValueError, "mutation"),
    ("genetic", {"population": "x"}, TypeError, "option population must be int"),
    ("paper", {"steps": 3}, TypeError, r"strategy 'paper' got unknown option\(s\) \['steps'\]; it accepts \[\]"),
    ("random", {"sample": 3}, TypeError, r"it accepts \['samples'\]"),
])
def test_search_refuses_bad_strategy_options_like_solve(strategy, options, error, match):
    with pytest.raises(error, match=match):
        search(_space(), "params=0.5", strategy, **options)


def test_solve_names_the_options_the_same_way():
    with pytest.raises(TypeError, match=r"solver 'grps' got unknown option\(s\) \['steps'\]"):
        permopt.solve(np.ones((4, 4)), 2, "grps", steps=3)


def test_a_prune_config_is_checked_once_and_shared():
    with pytest.raises(TypeError, match=r"unknown prune option\(s\) \['group'\]"):
        PruneConfig.make(group=4)
    with pytest.raises(ValueError, match="exactly one of groups"):
        PruneConfig()
    with pytest.raises(ValueError, match="layer_time_limit|time_limit"):
        PruneConfig(groups=4, layer_time_limit=-1)
    config = PruneConfig(groups=4, budget=None, coupling="chain", seed=3)
    with pytest.raises(Exception):
        config.seed = 4  # frozen
    budgeted = PruneConfig(budget="latency=0.8")
    assert budgeted.budget == permopt.search.Budget(latency=0.8)
    assert budgeted.coupling_mode == "full" and budgeted.min_channels_per_group == 1
    assert budgeted.latency_setup is not None and PruneConfig(groups=2).latency_setup is None
    model, x = permopt.models.get("digits_cnn", seed=0), torch.randn(2, 1, 8, 8)
    a = permopt.prune(model, x, config, progress=False)
    b = permopt.prune(model, x, groups=4, coupling="chain", seed=3, progress=False)
    assert a.plan.to_json() == b.plan.to_json()
    c = permopt.prune(model, x, config, groups=2, progress=False)  # keywords replace the config's fields
    assert {lp.groups for lp in c.plan.pruned().values()} == {2}


@settings(max_examples=30, deadline=None)
@given(shape=st.tuples(st.integers(1, 5), st.integers(1, 5)), seed=st.integers(0, 2**31))
def test_digest_tells_contents_and_shapes_apart(shape, seed):
    a = np.random.default_rng(seed).random(shape)
    assert digest(a) == digest(a.copy()) == digest(np.asfortranarray(a))  # contents, not layout
    assert digest(a.reshape(-1)) != digest(a)  # the same bytes, another shape
    b = a.copy()
    b.flat[0] += 1.0
    assert digest(b) != digest(a)
    assert digest("x", a) != digest(a, "x")


@pytest.mark.parametrize("options", [{"groups": 4}, {"groups": 4, "coupling": "full"}, {"budget": {"params": 0.5}},
                                     {"groups": 4, "mode": "mask"}])
def test_a_prune_traces_and_runs_the_model_once(options, monkeypatch):
    from torch import fx

    traces, runs = [], []
    original = fx.Tracer.trace
    monkeypatch.setattr(fx.Tracer, "trace", lambda self, root, *a, **k: traces.append(1) or original(self, root, *a, **k))
    model = permopt.models.get("digits_cnn", seed=0)
    model.register_forward_pre_hook(lambda *a: runs.append(1))
    x = torch.randn(2, 1, 8, 8)
    res = permopt.prune(model, x, progress=False, **options)
    assert len(traces) == 1 and len(runs) == 0  # fx's trace, then shapes propagated through the graph (one run)
    c = permopt.nn.count(res.model if options.get("mode") != "mask" else permopt.apply_plan(model, res.plan, x), x)
    assert c.params == res.report.params_after and c.macs == res.report.macs_after  # computed = counted
