"""Channel pruning (``width=``): the same channels removed from every layer sharing them, the
export a real thinner model equal to the masked one, the refit never worse than removal alone."""
import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import permopt
from permopt import models
from permopt.plan import LayerPlan, Plan
from permopt.pruning.width import kept_count
from permopt.solution import REMOVED
from nn_helpers import Chain, randomize_bn, rel_err


class Residual(nn.Module):
    """A stem, a residual block (two convs added to the stream), a depthwise conv on the stream,
    a 1x1 conv and a linear head: residual, depthwise and flatten coupling in one small model."""

    def __init__(self, c=16):
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.a, self.bna = nn.Conv2d(c, 2 * c, 3, padding=1, bias=False), nn.BatchNorm2d(2 * c)
        self.b, self.bnb = nn.Conv2d(2 * c, c, 3, padding=1, bias=True), nn.BatchNorm2d(c)
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.pw = nn.Conv2d(c, 2 * c, 1)
        self.fc = nn.Linear(2 * c, 4)

    def forward(self, x):
        s = torch.relu(self.bn0(self.stem(x)))
        s = torch.relu(s + self.bnb(self.b(torch.relu(self.bna(self.a(s))))))
        s = torch.relu(self.pw(torch.relu(self.dw(s))))
        return self.fc(s.mean(dim=(2, 3)))


def _model(seed=0, kind=Residual):
    torch.manual_seed(seed)
    return randomize_bn(kind())


def independently_masked(model, plan):
    """Zero every layer's removed input columns (and, for grouped layers, the off-block entries)
    by hand, without permopt's masks: what removing those channels must compute."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        for name, lp in plan.layers.items():
            w = m.get_submodule(name).weight
            keep = (lp.row_groups[:, None] == lp.col_groups[None, :]) if lp.groups > 1 else np.ones(w.shape[:2], bool)
            keep &= lp.col_groups[None, :] >= 0
            w.mul_(torch.as_tensor(keep, dtype=w.dtype).reshape(*keep.shape, *[1] * (w.dim() - 2)))
    return m.eval()


@settings(max_examples=8, deadline=None)
@given(width=st.floats(0.1, 1.0), groups=st.sampled_from([1, 2]), seed=st.integers(0, 3))
def test_export_is_a_thinner_model_equal_to_removing_the_channels(width, groups, seed):
    model, x = _model(seed), torch.randn(4, 3, 8, 8)
    r = permopt.prune(model, x[:1], width=width, groups=groups, align=4, progress=False, min_channels=2)
    with torch.no_grad():
        want, got = independently_masked(model, r.plan)(x), r.model(x)
    assert rel_err(want, got) < 1e-5
    for row in r.report.layers:  # a layer keeping F' x C' of F x C channels in G groups: F'C'/(FCG) of its MACs
        lp = r.plan.layers.get(row["name"])
        if lp is not None:
            kept = int((lp.row_groups >= 0).sum()) * int((lp.col_groups >= 0).sum())
            assert row["macs_after"] * row["out_channels"] * row["in_channels"] * lp.groups == row["macs_before"] * kept
    stream = r.plan.layers["stem"].row_groups
    for name in ("b", "pw"):  # the residual stream: one removal for all its writers and readers
        side = r.plan.layers[name].row_groups if name == "b" else r.plan.layers[name].col_groups
        assert np.array_equal(side < 0, stream < 0)
    assert r.model.get_submodule("dw").groups == int((stream >= 0).sum())


def test_width_removes_the_share_asked_rounded_to_align():
    model, x = _model(), torch.randn(2, 3, 8, 8)
    r = permopt.prune(model, x[:1], width=0.5, align=4, progress=False)
    kept = {n: (int((lp.row_groups >= 0).sum()), int((lp.col_groups >= 0).sum())) for n, lp in r.plan.layers.items()}
    # a, b, stem: 32 and 16 channels halved; fc keeps its 4 outputs (the model output); stem keeps the image
    assert kept["stem"] == (8, 3) and kept["a"] == (16, 8) and kept["b"] == (8, 16) and kept["fc"] == (4, 16)
    assert r.plan.meta["width"]["spaces"] == 3
    assert [kept_count(c, 0.5, 8) for c in (4, 8, 12, 16, 100)] == [4, 8, 8, 8, 48]
    assert kept_count(64, 0.01, 8) == 8 and kept_count(64, 1.0, 8) == 64


def test_nothing_removed_leaves_the_weights_unchanged():
    model, x = _model(), torch.randn(4, 3, 8, 8)
    r = permopt.prune(model, x[:1], width=1.0, calibration=torch.randn(16, 3, 8, 8), progress=False)
    assert not r.plan.pruned()
    for (n, a), (_, b) in zip(model.state_dict().items(), r.model.state_dict().items()):
        assert torch.equal(a, b), n


def test_refit_is_never_worse_than_removal_on_its_own_data():
    model, calib = _model(1), torch.randn(64, 3, 8, 8)
    refit = permopt.prune(model, calib[:1], width=0.5, align=4, calibration=calib, progress=False)
    plain = permopt.prune(model, calib[:1], width=0.5, align=4, calibration=calib, reconstruct=False, progress=False)
    assert np.array_equal(refit.plan.layers["a"].row_groups, plain.plan.layers["a"].row_groups)  # same channels
    errors = refit.plan.meta["reconstruction"]
    assert set(errors) == set(refit.plan.pruned())
    assert all(e["after"] <= e["before"] + 1e-12 for e in errors.values())
    with torch.no_grad():
        dense, a, b = model(calib), refit.model(calib), plain.model(calib)
    assert float((a - dense).pow(2).sum()) < float((b - dense).pow(2).sum())


@pytest.mark.slow
def test_mobilenet_depthwise_chains_lose_channels_together():
    model, x = models.get("mobilenetv2", seed=0).eval(), torch.randn(2, 3, 32, 32)
    randomize_bn(model)
    r = permopt.prune(model, x[:1], width=0.5, progress=False)
    assert r.report.macs_ratio < 0.6 and r.report.index_modules == 0
    with torch.no_grad():
        assert rel_err(independently_masked(model, r.plan)(x), r.model(x)) < 1e-5


def test_plans_that_remove_inconsistently_are_refused():
    model, x = _model(), torch.randn(2, 3, 8, 8)
    plan = permopt.prune(model, x[:1], width=0.5, align=4, progress=False, mode="mask").plan
    bad = copy.deepcopy(plan)
    cols = bad.layers["a"].col_groups.copy()
    cols[cols == REMOVED] = 0
    bad.layers["a"] = LayerPlan("a", 1, bad.layers["a"].row_groups, cols)
    with pytest.raises(ValueError, match="removes different channels.*'a'"):
        permopt.apply_plan(model, bad, x[:1])
    fc = plan.layers["fc"]
    rows = fc.row_groups.copy()
    rows[0] = REMOVED  # the model's output cannot lose a channel
    bad = Plan({**plan.layers, "fc": LayerPlan("fc", 1, rows, fc.col_groups)})
    with pytest.raises(ValueError, match="model input, output"):
        permopt.apply_plan(model, bad, x[:1])


def test_plans_with_removed_channels_round_trip_and_old_plans_load(tmp_path):
    model, x = Chain(), torch.randn(2, 3, 8, 8)
    plan = permopt.prune(model, x[:1], width=0.5, groups=2, progress=False).plan
    plan.save(tmp_path / "p.json")
    back = Plan.load(tmp_path / "p.json")
    for name, lp in plan.layers.items():
        assert np.array_equal(lp.row_groups, back.layers[name].row_groups)
        assert np.array_equal(lp.col_groups, back.layers[name].col_groups)
    old = '{"layers": {"conv1": {"name": "conv1", "groups": 2, "row_groups": [0, 1], "col_groups": [1, 0]}}}'
    assert Plan.from_json(old).layers["conv1"].groups == 2


def test_bad_width_options_are_refused_before_any_work():
    model, x = _model(), torch.randn(2, 3, 8, 8)
    for bad in (0, 1.5, -0.1, True, "half"):
        with pytest.raises(ValueError, match="width must be"):
            permopt.prune(model, x, width=bad)
    with pytest.raises(ValueError, match="not supported yet"):
        permopt.prune(model, x, width=0.5, budget={"macs": 0.5})
    with pytest.raises(ValueError, match="align"):
        permopt.prune(model, x, width=0.5, align=0)


@pytest.mark.parametrize("budget", [{"macs": 0.5}, {"params": 0.3}])
def test_a_channels_budget_takes_the_widest_model_that_meets_it(budget):
    model, x = _model(), torch.randn(2, 3, 8, 8)
    r = permopt.prune(model, x[:1], structure="channels", budget=budget, align=2, progress=False)
    (what, limit), = budget.items()
    assert getattr(r.report, f"{what}_ratio") <= limit
    width, tried = r.plan.meta["width"]["width"], r.plan.meta["widths_tried"]
    uniform = {float(w): ratios[what] for w, ratios in tried.items() if "space" not in w}
    assert all(v > limit for w, v in uniform.items() if w > width) and uniform[width] <= limit
    step = permopt.prune(model, x[:1], width=width + 1 / 64, align=2, progress=False)
    assert getattr(step.report, f"{what}_ratio") > limit  # the next uniform width up would not meet it
    assert uniform[width] <= getattr(r.report, f"{what}_ratio") <= limit  # the fill spends what is left
    filled = [w for w in tried if "space" in w and tried[w][what] <= limit]
    assert (getattr(r.report, f"{what}_ratio") > uniform[width]) == bool(filled)


def test_structure_option_is_checked():
    model, x = _model(), torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="structure must be one of"):
        permopt.prune(model, x, groups=2, structure="blocks")
    with pytest.raises(ValueError, match="needs width= .* or budget="):
        permopt.prune(model, x, structure="channels")
    with pytest.raises(ValueError, match="prunes channels only"):
        permopt.prune(model, x, structure="channels", groups=4, width=0.5)


def test_layers_groups_cannot_divide_are_named_and_width_makes_them_fit():
    m = nn.Sequential(nn.Conv2d(3, 26, 3), nn.ReLU(), nn.Conv2d(26, 52, 3), nn.ReLU(), nn.Conv2d(52, 103, 1),
                      nn.ReLU(), nn.Conv2d(103, 16, 1)).eval()  # widths a channel pruner left behind
    x = torch.randn(1, 3, 16, 16)
    with pytest.warns(UserWarning, match="does not divide the channels of 2 .* left dense: 4, 6"):
        permopt.prune(m, x, groups=2, progress=False)
    r = permopt.prune(m, x, groups=2, width=0.5, progress=False)
    assert [r.plan.layers[n].groups for n in ("2", "4", "6")] == [2, 2, 2]


@pytest.mark.slow
def test_stochastic_depth_residual_streams_lose_channels_too():
    torch.manual_seed(0)
    model, x = models.get("tv:efficientnet_b0").eval(), torch.randn(2, 3, 64, 64)
    r = permopt.prune(model, x[:1], width=0.5, progress=False)
    stream = r.plan.layers["features.2.0.block.3.0"].row_groups  # the residual stream of stage 2
    assert (stream >= 0).sum() == kept_count(stream.size, 0.5, 8) < stream.size and r.report.index_modules == 0
    with torch.no_grad():
        assert rel_err(independently_masked(model, r.plan)(x), r.model(x)) < 1e-4


def test_refit_aware_removal_picks_the_channel_least_squares_misses_least():
    """One removal from one consumer: the channel whose loss, after the other inputs are refitted
    by least squares (the Schur complement of the damped second moments), is smallest."""
    from types import SimpleNamespace

    from permopt.pruning.width import DAMPENING, refit_aware_removal

    rng, picked = np.random.default_rng(0), []

    def energy(W, H):
        return float(np.einsum("fi,ij,fj->", W, H, W))
    for trial in range(5):
        C, k = 6, 4
        mix = rng.normal(size=(C * k, C * k))
        X = rng.normal(size=(200, C * k)) @ mix  # correlated inputs: refitting matters
        conv = nn.Conv2d(C, 3, 2, bias=False)
        stats = {"c": SimpleNamespace(gram=X.T @ X, rows=200, kernel=k, channels=C)}
        H = X.T @ X / 200
        H = H + DAMPENING * np.mean(np.diag(H)) * np.eye(C * k)
        W = conv.weight.detach().double().reshape(3, -1).numpy()
        loss = []
        for c in range(C):
            b = np.arange(c * k, (c + 1) * k)
            rest = np.setdiff1d(np.arange(C * k), b)
            schur = H[np.ix_(b, b)] - H[np.ix_(b, rest)] @ np.linalg.solve(H[np.ix_(rest, rest)], H[np.ix_(rest, b)])
            loss.append(np.trace(W[:, b] @ schur @ W[:, b].T))
        model = nn.ModuleDict({"c": conv})
        picked.append(int(np.argmin(loss)))
        order, costs = refit_aware_removal(model, ["c"], stats, 4)
        assert order[0] == picked[-1] and costs[0] == pytest.approx(loss[picked[-1]] / energy(W, H), rel=1e-6)
        assert order[:2].tolist() == refit_aware_removal(model, ["c"], stats, 2)[0].tolist()
    assert len(set(picked)) > 1  # not always the same channel


@pytest.fixture
def macs_timing(monkeypatch):
    """Models 'run' in time proportional to their MACs: deterministic latency (timing is tested
    in test_latency.py)."""
    from permopt.nn import count
    from permopt.nn.latency import LatencyTable

    def models_(self, named, example_inputs, progress=False):
        return {k: float(count(m, example_inputs).macs) for k, m in named.items()}
    monkeypatch.setattr(LatencyTable, "models", models_)


def test_latency_budgets_remove_channels_by_default_where_a_model_has_them(macs_timing):
    model, x = _model(), torch.randn(2, 3, 8, 8)
    setup = {"rounds": 3, "cache_dir": None}
    r = permopt.prune(model, x[:1], budget={"latency": 0.5}, latency=setup, align=2, progress=False)
    assert r.plan.meta["structure"] == "channels" and "widths_tried" in r.plan.meta
    assert all(lp.groups == 1 for lp in r.plan.layers.values())
    assert r.report.latency_ratio == pytest.approx(r.report.macs_ratio) and r.report.latency_ratio <= 0.5
    one_conv = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 8, 1)).eval()  # inner space only...
    plain = nn.Sequential(nn.Conv2d(16, 16, 1)).eval()  # ...and none: input and output are the model's
    assert permopt.PruningSession(plain, torch.randn(1, 16, 4, 4), budget={"latency": 0.9}, latency=setup,
                                  progress=False).config.may_remove_channels
    from permopt.pruning.build import budget_structure
    for m, shape, want in ((one_conv, (1, 3, 8, 8), "channels"), (plain, (1, 16, 4, 4), "groups")):
        session = permopt.PruningSession(m, torch.randn(*shape), budget={"latency": 0.9}, latency=setup,
                                         progress=False)
        assert budget_structure(session, session.config) == want
