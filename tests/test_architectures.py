"""Real widths: torchvision and timm architectures with random weights, pruned uniformly (grps)
and under a budget (the default settings); exported = masked numerically; torch.export and ONNX
Runtime agree; the user's model is never changed. (Every architecture at 64x64 and 224x224: benchmarks/bench_models.py.)"""
import numpy as np
import pytest
import torch

import permopt
from permopt import models
from permopt.nn import count

pytestmark = pytest.mark.filterwarnings("ignore:torchvision's compiled operators")

GROUPS_MATRIX = ["tv:resnet18", "tv:mobilenet_v3_small", "tv:efficientnet_b0", "tv:regnet_x_400mf",
                 "tv:shufflenet_v2_x1_0", "tv:densenet121", "tv:convnext_tiny", "tv:mnasnet0_5", "timm:resnet26d",
                 "timm:efficientnet_lite0", "timm:mixnet_s", "timm:rexnet_100"]
X = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def build(name):
    torch.manual_seed(0)
    return models.get(name).eval()


def rel_diff(a, b):
    return float((a - b).abs().max() / b.abs().max())


def outputs(model, x=X):
    with torch.no_grad():
        return model(x)


@pytest.fixture(scope="module")
def pruned():
    """name -> (dense model, PruneResult with groups=4, solver grps) for the whole matrix."""
    out = {}
    for name in GROUPS_MATRIX:
        model = build(name)
        out[name] = model, permopt.prune(model, X, groups=4, solver="grps", progress=False)  # 2.5x faster than
        # the default solver, and the export, not the solver, is under test (defaults: the budget test below)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", GROUPS_MATRIX)
def test_uniform_groups_export_equals_mask(pruned, name):
    model, res = pruned[name]
    plan = res.plan.pruned()
    assert plan, name
    grouped = {n: m for n, m in res.model.named_modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1
               and n in plan}
    assert set(grouped) <= set(plan) and all(m.groups == plan[n].groups for n, m in grouped.items())
    masked = permopt.apply_plan(model, res.plan, X, mode="mask")
    assert rel_diff(outputs(res.model), outputs(masked)) < 1e-5
    # parameters drop by exactly the pruned share of each grouped weight
    saved = sum(lp.row_groups.size * lp.col_groups.size * int(np.prod(model.get_submodule(n).weight.shape[2:]))
                * (1 - 1 / lp.groups) for n, lp in plan.items())
    assert count(res.model, X).params == count(model, X).params - round(saved)


@pytest.mark.slow  # it reads the whole matrix's fixture (7 s)
def test_timm_batchnormact_folds_like_torchvision(pruned):
    """timm's BatchNormAct2d is traced into F.batch_norm: it must still carry permutations. Before
    functional norms were recognised, efficientnet_lite0 needed two index modules per grouped conv."""
    _, res = pruned["timm:efficientnet_lite0"]
    grouped = len(res.plan.pruned())
    assert res.report.index_modules <= 1.25 * grouped, (res.report.index_modules, grouped)
    _, tv = pruned["tv:resnet18"]
    _, tm = pruned["timm:resnet26d"]
    assert tm.report.index_modules / len(tm.plan.pruned()) <= 1.3  # resnet26d: same ratio class as torchvision
    assert tv.report.index_modules / len(tv.plan.pruned()) <= 1.4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tv:resnet18", "timm:efficientnet_lite0"])
def test_budget_with_defaults_meets_it_in_both_modes(name):
    model = build(name)
    res = permopt.prune(model, X, budget={"params": 0.5}, progress=False)
    assert res.report.params_after <= 0.5 * res.report.params_before * (1 + 1e-9)
    masked = permopt.apply_plan(model, res.plan, X, mode="mask")
    assert rel_diff(outputs(res.model), outputs(masked)) < 1e-5


def test_unreachable_budget_is_refused_before_solving_with_what_would_help():
    model = build("tv:resnet18")
    with pytest.raises(ValueError, match=r"cannot be met.*include_linear=True"):
        permopt.prune(model, X, budget={"params": 0.02}, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tv:mobilenet_v3_small", "timm:efficientnet_lite0"])
def test_torch_export_and_onnx_runtime_agree(pruned, name):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    _, res = pruned[name]
    want = outputs(res.model)
    ep = torch.export.export(res.model, (X,))
    assert rel_diff(outputs(ep.module()), want) < 1e-6
    program = torch.onnx.export(res.model, (X,), dynamo=True, verbose=False)
    sess = ort.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: X.numpy()})[0]
    assert rel_diff(torch.from_numpy(got), want) < 1e-5


@pytest.mark.slow
def test_the_users_model_is_never_changed():
    model = build("timm:resnet26d")
    model.train()
    model.bn1.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = {n: m.training for n, m in model.named_modules()}
    for kw in ({"groups": 4}, {"groups": 2, "mode": "mask"}):
        permopt.prune(model, X, progress=False, solver="grps", **kw)
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


COUPLED = ["tv:resnet50", "tv:mobilenet_v3_small", "timm:efficientnet_lite0", "timm:resnet26d"]


@pytest.fixture(scope="module")
def coupled():
    """name -> (dense model, uncoupled and fully coupled PruneResults at G=4)."""
    out = {}
    for name in COUPLED:
        model = build(name)
        out[name] = model, {c: permopt.prune(model, X, groups=4, coupling=c, solver="grps", progress=False)
                            for c in ("none", "full")}  # grps: the coupling is under test, not the solver
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", COUPLED)
def test_full_coupling_removes_gathers_on_real_architectures(coupled, name):
    model, res = coupled[name]
    none, full = res["none"], res["full"]
    assert full.report.index_modules < none.report.index_modules
    assert full.report.index_modules <= 0.15 * len(full.plan.pruned())  # only fixed ends (inputs, cats) remain
    masked = permopt.apply_plan(model, full.plan, X, mode="mask")
    assert rel_diff(outputs(full.model), outputs(masked)) < 1e-5
    meta = full.plan.meta["coupling"]
    assert meta["mean_kept_ratio"] <= meta["mean_kept_ratio_uncoupled"] + 1e-12


@pytest.mark.slow
def test_coupled_channels_last_export_runs_in_torch_export_and_onnx_runtime(coupled):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    _, res = coupled["tv:mobilenet_v3_small"]
    model = res["full"].model.to(memory_format=torch.channels_last)
    want = outputs(res["full"].model)
    ep = torch.export.export(model, (X,))
    assert rel_diff(outputs(ep.module()), want) < 1e-5
    program = torch.onnx.export(model, (X,), dynamo=True, verbose=False)
    sess = ort.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: X.numpy()})[0]
    assert rel_diff(torch.from_numpy(got), want) < 1e-5
