"""Reliability round 3 (issue 39): each test fails without its fix."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

import permopt
from permopt import models
from permopt.cli import main


def _digits_pair():
    teacher = models.get("digits_cnn", seed=0).eval()
    student = permopt.prune(teacher, torch.randn(2, 1, 8, 8), groups=4, mode="mask", progress=False).model
    return teacher, student, torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("bad, match", [
    ({"temperature": math.inf}, "temperature must be a finite number > 0"),
    ({"temperature": math.nan}, "temperature must be a finite number > 0"),
    ({"lr": -1.0}, "lr must be a finite number > 0"),
    ({"threads": 0}, "threads must be >= 1"),
    ({"data": torch.zeros(0, 1, 8, 8)}, "data is empty"),
    ({"data": torch.full((4, 1, 8, 8), math.nan)}, "NaN or Inf"),
    ({"data": torch.zeros(4, 1, 8, 8, dtype=torch.uint8)}, "floating point"),
    ({"data": (b for b in [torch.randn(4, 1, 8, 8)])}, "one-shot iterator"),
    ({"teacher": nn.Sequential(nn.Flatten(), nn.Linear(64, 7))}, "logits tensor of the teacher's shape"),
    ({"teacher": "not a model"}, "teacher must be a torch.nn.Module"),
])
def test_distill_refuses_what_would_ruin_the_student_and_leaves_it_untouched(bad, match):
    teacher, student, data = _digits_pair()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    kwargs = {"steps": 3, "progress": False, **bad}
    with pytest.raises((ValueError, TypeError), match=match):
        permopt.nn.distill(student, kwargs.pop("teacher", teacher), kwargs.pop("data", data), **kwargs)
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_distill_stops_at_a_diverging_loss_and_restores_the_weights():
    teacher, student, data = _digits_pair()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    with pytest.raises(FloatingPointError, match="weights were restored"):
        permopt.nn.distill(student, teacher, data, steps=20, lr=1e30, progress=False)
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_load_pruned_returns_the_model_in_eval_mode(tmp_path):
    out = tmp_path / "out"
    assert main(["prune", "--model", "digits_cnn", "-g", "4", "--quiet", "--out-dir", str(out)]) == 0
    x = torch.randn(3, 1, 8, 8)
    dense = models.get("digits_cnn", seed=0)  # train mode, as models.get() returns it
    assert dense.training
    loaded = permopt.load_pruned(dense, out / "plan.json", out / "pruned_state_dict.pt", x)
    assert not loaded.training and not any(m.training for m in loaded.modules())


def test_cli_plot_inside_a_new_out_dir(tmp_path):
    out = tmp_path / "new" / "out"
    assert main(["prune", "--model", "digits_cnn", "-g", "4", "--quiet", "--out-dir", str(out),
                 "--plot", str(out / "plan.png")]) == 0
    assert (out / "plan.png").is_file() and (out / "plan.json").is_file()


@pytest.mark.parametrize("calibration, match", [
    (torch.zeros(0, 1, 8, 8), "no samples"),
    ([], "empty list"),
    (torch.full((4, 1, 8, 8), math.inf), "NaN or Inf"),
])
def test_bad_calibration_data_is_named_before_any_work(calibration, match):
    model, x = models.get("digits_cnn", seed=0).eval(), torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError, match=match):
        permopt.prune(model, x, groups=4, calibration=calibration, progress=False)
    plan = permopt.prune(model, x, groups=4, progress=False).plan
    with pytest.raises(ValueError, match=match):
        permopt.apply_plan(model, plan, x, calibration=calibration)


def test_apply_plan_with_calibration_leaves_the_callers_plan_alone():
    model, x = models.get("digits_cnn", seed=0).eval(), torch.randn(2, 1, 8, 8)
    plan = permopt.prune(model, x, groups=4, progress=False).plan
    meta = dict(plan.meta)
    permopt.apply_plan(model, plan, x, calibration=torch.randn(16, 1, 8, 8))
    assert plan.meta == meta and "reconstruction" not in plan.meta


@pytest.mark.parametrize("options, error, match", [
    ({"budget": {"params": math.inf}}, ValueError, "finite positive number"),
    ({"budget": "macs=nan"}, ValueError, "finite positive number"),
    ({"groups": 4, "reconstruct": "yes", "calibration": torch.randn(4, 1, 8, 8)}, ValueError,
     "reconstruct must be True, False or None"),
    ({"groups": 4, "criterion": "bogus", "calibration": torch.randn(4, 1, 8, 8)}, ValueError,
     r"unknown criterion 'bogus'.*activation"),
])
def test_bad_options_are_refused_when_the_config_is_made(options, error, match):
    with pytest.raises(error, match=match):
        permopt.PruneConfig(**options)


def test_an_unreachable_budget_names_a_reachable_value_to_copy_back():
    import re

    model, x = models.get("digits_cnn", seed=0).eval(), torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError, match="cannot be met") as caught:
        permopt.prune(model, x, budget={"params": 0.01}, progress=False)
    reachable = float(re.search(r"params \(([\d.]+) of dense\)", str(caught.value)).group(1))
    permopt.prune(model, x, budget={"params": reachable}, progress=False)  # the value it named is met


def test_a_users_hook_on_a_pruned_layer_is_refused_before_solving_not_dropped():
    model, x = models.get("digits_cnn", seed=0).eval(), torch.randn(2, 1, 8, 8)
    plan = permopt.prune(model, x, groups=4, progress=False).plan
    name = next(iter(plan.pruned()))
    model.get_submodule(name).register_forward_hook(lambda m, i, o: o * 2)
    with pytest.raises(ValueError, match=f"layer '{name}' has forward hook"):
        permopt.prune(model, x, groups=4, progress=False)
    with pytest.raises(ValueError, match=f"layer '{name}' has forward hook"):
        permopt.apply_plan(model, plan, x)
    masked = permopt.prune(model, x, groups=4, mode="mask", progress=False).model  # mask mode keeps the layer
    assert masked.get_submodule(name)._forward_hooks
    dense_ok = permopt.prune(model, x, groups=4, ignored_layers=[name], progress=False)
    assert name not in dense_ok.plan.pruned()


class _SharedNorm(nn.Module):
    """``c2 → s → relu → c3 → s → relu``: one per-channel module after two pruned convs."""

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.c3 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.s, self.head = norm, nn.Conv2d(16, 8, 1)

    def forward(self, x):
        y = torch.relu(self.c1(x))
        y = torch.relu(self.s(self.c2(y)))
        return self.head(torch.relu(self.s(self.c3(y))))


@pytest.mark.parametrize("norm", [nn.BatchNorm2d(16), nn.PReLU(16), nn.GroupNorm(16, 16)], ids=type)
@pytest.mark.parametrize("coupling", ["none", "full"])
def test_a_per_channel_module_shared_by_two_pruned_convs_exports_exactly(norm, coupling):
    torch.manual_seed(0)
    model = _SharedNorm(norm)
    with torch.no_grad():  # parameters a permutation applied twice (or to one space only) would scramble
        for p in model.s.parameters():
            p.uniform_(0.5, 1.5)
        if isinstance(norm, nn.BatchNorm2d):
            norm.running_mean.uniform_(-1, 1)
            norm.running_var.uniform_(0.5, 2)
    model.eval()
    x = torch.randn(4, 3, 8, 8)
    res = permopt.prune(model, x, groups=4, coupling=coupling, progress=False)
    assert {"c2", "c3"} <= set(res.plan.pruned())
    masked = permopt.apply_plan(model, res.plan, x, mode="mask")  # an independently masked copy
    calibrated = permopt.prune(model, x, groups=4, coupling=coupling, mode="mask", progress=False,
                               calibration=torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        ref = masked(x)
        assert (res.model(x) - ref).norm() <= 1e-5 * ref.norm()
        ref = calibrated.model(x)
        assert (permopt.apply_plan(calibrated.model, calibrated.plan, x)(x) - ref).norm() <= 1e-5 * ref.norm()


def test_a_runtime_that_is_not_installed_is_named_when_the_setup_is_made(monkeypatch, capsys):
    import importlib.util

    from permopt.nn.latency import LatencySetup

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(ImportError, match=r"runtime 'openvino' needs openvino: pip install 'permopt\[openvino\]'"):
        LatencySetup(runtime="openvino")
    # the CLI names it before timing any model
    assert main(["bench", "--latency", "--model", "digits_cnn", "--runtimes", "torch,openvino", "--quiet"]) == 2
    assert "needs openvino" in capsys.readouterr().err


def test_a_calibration_set_too_small_to_hold_out_keeps_the_masked_weights_and_says_so():
    model, x = models.get("digits_cnn", seed=0).eval(), torch.randn(2, 1, 8, 8)
    plain = permopt.prune(model, x, groups=4, mode="mask", progress=False)
    with pytest.warns(UserWarning, match="calibration too small to hold any of it out"):
        one = permopt.prune(model, x, groups=4, mode="mask", progress=False, calibration=torch.randn(1, 1, 8, 8),
                            criterion="l2")
    assert all(r["ridge"] == math.inf and r["after"] == r["before"] for r in one.plan.meta["reconstruction"].values())
    fresh = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    dense = model(fresh).detach()
    with torch.no_grad():  # on fresh inputs: never worse than plain masking
        assert (one.model(fresh) - dense).norm() <= (plain.model(fresh) - dense).norm() * (1 + 1e-6)


def test_an_unwritable_latency_cache_folder_is_named_before_any_timing(tmp_path):
    from permopt.nn.latency import LatencySetup

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="latency cache_dir .* is a file; give a folder"):
        LatencySetup(cache_dir=blocker)
    with pytest.raises(ValueError, match="latency cache_dir .* is not writable here"):
        LatencySetup(cache_dir=blocker / "inside")
    assert LatencySetup(cache_dir=tmp_path / "new" / "folder").cache_dir == tmp_path / "new" / "folder"
    assert (tmp_path / "new" / "folder").is_dir()


class _Transposed(nn.Module):
    """Two convs with an attribute node between them: ``y.mT.mT`` (an identity, but fx sees an
    attribute read it cannot tell from a reordering)."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 16, 3), nn.Conv2d(16, 16, 3), nn.Conv2d(16, 16, 3)

    def forward(self, x):
        y = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.c3(y.mT.mT)


def test_attribute_nodes_pin_the_channel_order():
    torch.manual_seed(0)
    model, x = _Transposed().eval(), torch.randn(4, 3, 12, 12)
    for coupling in ("none", "full"):
        r = permopt.prune(model, x[:1], groups=4, coupling=coupling, progress=False)
        masked = permopt.nn.apply_masks(copy.deepcopy(model), r.plan)
        with torch.no_grad():
            want = masked(x)
            assert float((r.model(x) - want).abs().max() / want.abs().max()) < 1e-5


class _Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0, self.c1, self.c2 = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1), \
            nn.Conv2d(16, 16, 3, padding=1)
        self.c3 = nn.Conv2d(16, 16, 3, padding=1)
        self.c3.weight = self.c2.weight  # tied

    def forward(self, x):
        x = torch.relu(self.c1(torch.relu(self.c0(x))))
        return self.c3(torch.relu(self.c2(x)))


def test_tied_layers_stay_dense_and_keep_their_shared_weight():
    torch.manual_seed(0)
    model, x = _Tied().eval(), torch.randn(16, 3, 8, 8)
    before = model.c2.weight.detach().clone()
    with pytest.warns(UserWarning, match="c2: a parameter tied to c3"):
        r = permopt.prune(model, x[:1], groups=2, calibration=x, progress=False, mode="mask")
    assert set(r.plan.pruned()) == {"c1"}
    assert r.model.c2.weight is r.model.c3.weight and torch.equal(r.model.c2.weight, before)
    with pytest.warns(UserWarning, match="tied"):
        thin = permopt.prune(model, x[:1], width=0.5, calibration=x, progress=False)
    assert set(thin.plan.pruned()) <= {"c0", "c1"}


class _Changing:
    """One batch of integer-valued images whose later reads change it without changing its sums:
    flipped left-right (a random augmentation left on) or two samples swapped (a shuffling loader)."""

    def __init__(self, x, change):
        self.x, self.change, self.reads = x, change, 0

    def __iter__(self):
        self.reads += 1
        yield self.x if self.reads == 1 else self.change(self.x)


def test_a_later_read_with_the_same_sums_but_other_samples_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3)).eval()
    x = torch.randint(0, 255, (6, 3, 8, 8), generator=torch.Generator().manual_seed(0)).float()
    plan = permopt.prune(model, x[:1], groups=2, mode="mask", progress=False).plan
    for change in (lambda b: b.flip(-1), lambda b: b[torch.tensor([1, 0, 2, 3, 4, 5])]):
        with pytest.MonkeyPatch.context() as mp:  # batches not kept: each layer reads the data again
            mp.setattr(permopt.nn.calibration, "KEEP_BYTES", 0)
            with pytest.raises(ValueError, match="must give the same batches in the same order"):
                permopt.apply_plan(model, plan, x[:1], mode="mask", calibration=_Changing(x, change))


@pytest.mark.slow
def test_mip_and_the_default_bound_are_bounded_by_work_by_default():
    import inspect as pyinspect

    import numpy as np

    from permopt.solvers.mip import MIP

    assert pyinspect.signature(MIP.solve).parameters["node_limit"].default is not None  # no unbounded default
    S = np.random.default_rng(0).random((16, 16))
    sol = permopt.solve(S, 4, "mip", node_limit=20)  # 16x16 G=4: CBC does not close the gap in 100 s
    assert sol.status == "work_limit" and sol.kept <= sol.upper_bound and "node limit 20" in sol.message
    wide = np.random.default_rng(0).random((2, 400))
    b = permopt.bound(wide, 2)  # a layer solve settles exactly: its optimum is the bound (was 157 s)
    assert b.method == "optimum" and b.value == pytest.approx(permopt.solve(wide, 2).kept, rel=1e-9)
    assert b.info["all"]["optimum"] <= b.info["all"]["topk"]


def test_parametrized_weights_stay_dense_and_multi_input_calibration_is_refused_up_front():
    conv = nn.utils.parametrizations.weight_norm(nn.Conv2d(8, 8, 3))
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), conv, nn.ReLU(), nn.Conv2d(8, 8, 1)).eval()
    x = torch.randn(2, 1, 12, 12)
    with pytest.warns(UserWarning, match="2: its weight is computed by a parametrization"):
        r = permopt.prune(model, x[:1], groups=2, progress=False)
    assert "2" not in r.plan.pruned()
    with torch.no_grad():
        masked = permopt.prune(model, x[:1], groups=2, mode="mask", progress=False).model
        assert torch.allclose(r.model(x), masked(x), atol=1e-5)

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 8, 3), nn.Conv2d(8, 8, 3)

        def forward(self, x, y):
            return self.b(self.a(x) + self.a(y))
    inputs = (torch.randn(1, 1, 8, 8), torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="example inputs are 2 tensors: a model with several inputs cannot be calib"):
        permopt.prune(Two().eval(), inputs, groups=2, calibration=torch.randn(4, 1, 8, 8), progress=False)


def test_a_sparse_calibration_file_is_named(tmp_path, capsys):
    path = tmp_path / "sparse.pt"
    torch.save(torch.randn(4, 3, 32, 32).to_sparse(), path)
    assert main(["prune", "--model", "resnet20", "--groups", "2", "--calibration", str(path), "--quiet",
                 "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "sparse.pt" in err and "to_dense" in err
