"""Coupled partitions: layers on one channel space share its partition, so the export needs no gathers."""
import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import permopt
from permopt import models
from permopt.coupling import CoupledLayer, assign_spaces, solve_coupled
from permopt.nn.channel_order import channel_spaces
from permopt.plan import LayerPlan, Plan

from helpers import labelings
from nn_helpers import Chain, masked_copy, randomize_bn, rel_err


def _ratio(S, r, c):
    """Kept ratio recomputed entry by entry."""
    return float(sum(S[i, j] for i in range(S.shape[0]) for j in range(S.shape[1]) if r[i] == c[j]) / S.sum())


def _chain(seed, n=4, G=2):
    """Two layers A: space 0 → space 1 and B: space 1 → space 2 (B reads what A writes)."""
    rng = np.random.default_rng(seed)
    A, B = rng.random((n, n)), rng.random((n, n))
    return [CoupledLayer("A", A, G, 1, 0), CoupledLayer("B", B, G, 2, 1)]


def _starts(layers, seed):
    rng = np.random.default_rng(seed)
    return [(rng.permutation(np.arange(L.scores.shape[0]) % L.groups),
             rng.permutation(np.arange(L.scores.shape[1]) % L.groups)) for L in layers]


def _best_alone(S, G):
    """Each layer's own optimum (brute force): the starts the pipeline gives."""
    parts = [np.array(p) for p in labelings(S.shape[0], G)]
    return max(((r, c) for r in parts for c in parts), key=lambda rc: _ratio(S, *rc))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6))
def test_coupled_chain_is_valid_shared_and_below_brute_force(seed):
    layers = _chain(seed)
    (rA, cA), (rB, cB) = solve_coupled(layers, [_best_alone(L.scores, 2) for L in layers])
    for lab in (rA, cA, rB, cB):
        assert np.bincount(lab, minlength=2).tolist() == [2, 2]
    assert np.array_equal(rA, cB)  # one partition, one labelling of the shared space
    A, B = layers[0].scores, layers[1].scores
    got = _ratio(A, rA, cA) + _ratio(B, rB, cB)
    parts = [np.array(p) for p in labelings(4, 2)]
    best = max(_ratio(A, s1, s0) + _ratio(B, s2, s1) for s0, s1, s2 in itertools.product(parts, repeat=3))
    assert got <= best + 1e-12
    assert got >= 0.95 * best  # restarted alternating transportation: min 0.9745, mean 0.9997 over 200 seeds


def test_planted_shared_partition_is_found():
    """Both layers block-diagonal on one hidden partition of the shared space: everything is kept."""
    rng = np.random.default_rng(3)
    n, G = 12, 3
    hidden = [rng.permutation(np.arange(n) % G) for _ in range(3)]
    A = (hidden[1][:, None] == hidden[0][None, :]).astype(float)
    B = (hidden[2][:, None] == hidden[1][None, :]).astype(float)
    layers = [CoupledLayer("A", A, G, 1, 0), CoupledLayer("B", B, G, 2, 1)]
    starts = [(hidden[1], hidden[0]), (rng.permutation(hidden[2]), rng.permutation(hidden[1]))]
    (rA, cA), (rB, cB) = solve_coupled(layers, starts)
    assert _ratio(A, rA, cA) == 1.0 and _ratio(B, rB, cB) == 1.0
    assert np.array_equal(rA, cB)


def test_nested_groups_merge_the_space_partition():
    rng = np.random.default_rng(0)
    A, B = rng.random((16, 8)), rng.random((8, 16))
    layers = [CoupledLayer("A", A, 4, 1, 0), CoupledLayer("B", B, 2, 2, 1)]  # space 1 has G=4; B merges pairs
    (rA, cA), (rB, cB) = solve_coupled(layers, _starts(layers, 0))
    assert np.bincount(rA).tolist() == [4] * 4 and np.bincount(cB).tolist() == [8] * 2
    assert np.array_equal(cB, rA // 2)


def test_sweeps_never_lose_and_repeat_exactly():
    rng = np.random.default_rng(1)
    layers = [CoupledLayer(f"L{k}", rng.random((16, 16)), 4, (k + 1) % 3, k % 3) for k in range(5)]
    starts = _starts(layers, 1)
    values = []
    for sweeps in (0, 1, 2, 5, 20):
        res = solve_coupled(layers, starts, sweeps)
        values.append(sum(_ratio(L.scores, r, c) for L, (r, c) in zip(layers, res)))
        again = solve_coupled(layers, starts, sweeps)
        assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(res, again))
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:]))


@pytest.fixture(scope="module")
def resnet20():
    torch.manual_seed(0)
    return randomize_bn(models.get("resnet20")), torch.randn(2, 3, 32, 32)


@pytest.mark.slow
def test_full_coupling_removes_every_gather_and_matches_the_masked_model(resnet20):
    model, x = resnet20
    res = {c: permopt.prune(model, x, groups=4, coupling=c, progress=False) for c in ("none", "chain", "full")}
    counts = {c: r.report.index_modules for c, r in res.items()}
    assert counts["full"] == 0 < counts["chain"] < counts["none"]
    for c, r in res.items():
        with torch.no_grad():
            assert rel_err(masked_copy(model, r.plan)(x), r.model(x)) < 1e-5, c
    meta = res["full"].plan.meta["coupling"]
    assert meta["mode"] == "full" and meta["mean_kept_ratio"] <= meta["mean_kept_ratio_uncoupled"] + 1e-12
    for name, lp in res["full"].plan.pruned().items():
        S = permopt.scores_from_weight(model.get_submodule(name).weight)
        assert lp.kept_ratio == pytest.approx(_ratio(S, lp.row_groups, lp.col_groups), rel=1e-9)
        sol = res["full"].solutions[name]
        assert sol.upper_bound >= sol.kept and sol.solver.endswith("+coupled")


@pytest.mark.slow
def test_budget_with_mixed_groups_couples_nested_partitions(resnet20):
    model, x = resnet20
    r = permopt.prune(model, x, budget={"params": 0.4}, coupling="full", progress=False)
    assert len({lp.groups for lp in r.plan.pruned().values()}) > 1
    assert r.report.index_modules == 0
    with torch.no_grad():
        assert rel_err(masked_copy(model, r.plan)(x), r.model(x)) < 1e-5


def test_export_accepts_any_order_within_groups():
    """conv1 (G=4) writes the space conv2 (G=2) reads; conv2's groups merge conv1's pairs: no gather."""
    torch.manual_seed(0)
    model, x = randomize_bn(Chain()), torch.randn(2, 3, 12, 12)
    rng = np.random.default_rng(0)
    r1 = rng.permutation(np.arange(32) % 4)
    plan = Plan({"conv1": LayerPlan("conv1", 4, r1, rng.permutation(np.arange(16) % 4)),
                 "conv2": LayerPlan("conv2", 2, rng.permutation(np.arange(16) % 2), r1 // 2)})
    res = permopt.nn.export(model, plan, x)
    assert res.index_modules == []
    with torch.no_grad():
        assert rel_err(masked_copy(model, plan)(x), res.model(x)) < 1e-5


def test_channel_spaces_and_assignment(resnet20):
    model, x = resnet20
    spaces = channel_spaces(model, x)
    out1, in1 = spaces.sides("layer1.0.conv1")
    out2, in2 = spaces.sides("layer1.0.conv2")
    assert out1 == in2 and in1 == out2  # block: stream → inner → stream
    config = {"layer1.0.conv1": 4, "layer1.0.conv2": 4, "layer1.1.conv1": 4}
    (full, pinned), (chain, _) = assign_spaces(spaces, config, "full"), assign_spaces(spaces, config, "chain")
    assert pinned == set()  # only strict pins
    assert full["layer1.0.conv2"][0] == full["layer1.1.conv1"][1]  # the residual stream is shared
    assert chain["layer1.0.conv2"][0] != chain["layer1.1.conv1"][1]  # but not under chain
    assert chain["layer1.0.conv1"][0] == chain["layer1.0.conv2"][1]
    with pytest.raises(KeyError, match="bn1"):
        spaces.sides("bn1")


def test_bad_coupling_is_named():
    with pytest.raises(ValueError, match="coupling must be one of"):
        permopt.prune(Chain(), torch.randn(1, 3, 8, 8), groups=2, coupling="partial", progress=False)
    out = subprocess.run([sys.executable, "-m", "permopt", "prune", "--model", "resnet20", "-g", "4",
                          "--coupling", "partial"], capture_output=True, text=True)
    assert out.returncode == 2 and "--coupling" in out.stderr


def test_groups_that_do_not_nest_share_their_least_common_multiple():
    """G = 2 and G = 3 on one 12-channel space: a 6-group partition both merge, so one order fits both."""
    from permopt.nn.export import fits

    rng = np.random.default_rng(0)
    layers = [CoupledLayer("A", rng.random((12, 8)), 2, 1, 0), CoupledLayer("B", rng.random((9, 12)), 3, 2, 1)]
    (rA, cA), (rB, cB) = solve_coupled(layers, _starts(layers, 0))
    order = np.argsort(rA * 10 + cB, kind="stable")
    assert fits(rA, order, 2) and fits(cB, order, 3)
    assert np.bincount(rA).tolist() == [6, 6] and np.bincount(cB).tolist() == [4, 4, 4]


def test_strict_coupling_pins_concatenations_and_removes_every_gather():
    """DenseNet concatenates every layer's output: under ``full`` those spaces keep their gathers,
    under ``strict`` they are pinned to contiguous groups (identity order) and need none."""
    torch.manual_seed(0)
    model, x = randomize_bn(models.get("densenet40")), torch.randn(2, 3, 32, 32)
    res = {c: permopt.prune(model, x, groups=4, coupling=c, progress=False) for c in ("none", "full", "strict")}
    assert res["strict"].report.index_modules == 0 < res["full"].report.index_modules
    with torch.no_grad():
        assert rel_err(masked_copy(model, res["strict"].plan)(x), res["strict"].model(x)) < 1e-5
    spaces = channel_spaces(model, x)
    config = {n: lp.groups for n, lp in res["strict"].plan.pruned().items()}
    _, pinned = assign_spaces(spaces, config, "strict")
    assert pinned and all(spaces.fixed_ends[s] > 0 for s in pinned)
    for n, lp in res["strict"].plan.pruned().items():
        out_space, in_space = spaces.sides(n)
        for labels, space in ((lp.row_groups, out_space), (lp.col_groups, in_space)):
            if space in pinned:  # contiguous: the identity order fits
                assert np.array_equal(labels, np.arange(labels.size) // (labels.size // lp.groups))
    strict, full = res["strict"].plan.meta["coupling"], res["full"].plan.meta["coupling"]
    assert strict["mean_kept_ratio"] <= full["mean_kept_ratio"] + 1e-12
