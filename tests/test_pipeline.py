"""permopt.prune end to end on the zoo; plans round-trip; bad arguments are refused."""

import numpy as np
import pytest
import torch

from permopt import models  # noqa: E402
import permopt  # noqa: E402
from permopt.nn import count  # noqa: E402
from nn_helpers import randomize_bn, rel_err  # noqa: E402
from helpers import slow_params  # noqa: E402


QUICK_ZOO = {"resnet20", "digits_cnn"}  # the rest are slow


@pytest.mark.parametrize("name", slow_params(models.available(), set(models.available()) - QUICK_ZOO))
def test_prune_every_zoo_model_uniform_and_budget(name):
    torch.manual_seed(0)
    model = randomize_bn(models.get(name))
    x = torch.randn(2, *models.input_shape(name))
    for kwargs in ({"groups": 4}, {"budget": {"params": 0.5}}):
        res = permopt.prune(model, x, solver="grps", progress=False, **kwargs)
        with torch.no_grad():
            y = res.model(x)
        assert y.shape == model(x).shape and torch.isfinite(y).all()
        c = count(res.model, x)
        assert c.params == res.report.params_after < res.report.params_before == count(model, x).params
        assert c.macs == res.report.macs_after
        assert sum(r["params_after"] for r in res.report.layers) <= c.params
        if "budget" in kwargs:
            assert res.search.feasible and res.report.params_after <= 0.5 * res.report.params_before + 1
        for lname, lp in res.plan.pruned().items():
            assert res.model.get_submodule(lname).groups == lp.groups


@pytest.mark.slow
def test_plan_json_round_trip_reproduces_the_model_and_mask_mode_matches():
    model = randomize_bn(models.get("resnet20"))
    x = torch.randn(3, 3, 32, 32)
    res = permopt.prune(model, x, budget="params=0.6", solver="best", progress=False)
    plan = permopt.Plan.from_json(res.plan.to_json())
    again = permopt.apply_plan(model, plan, x)
    masked = permopt.apply_plan(model, plan, x, mode="mask")
    with torch.no_grad():
        ref = res.model(x)
        assert torch.equal(again(x), ref)
        assert rel_err(masked(x), ref) <= 1e-5
    assert permopt.nn.is_masked(masked) and not permopt.nn.is_masked(model)
    assert plan.meta["strategy"] == "exact" and plan.layers.keys() == res.plan.layers.keys()


def test_better_permutations_keep_more_mass_at_the_same_g():
    torch.manual_seed(0)
    model = models.get("resnet20")
    x = torch.randn(2, 3, 32, 32)
    kept = {s: np.array([lp.kept_ratio for lp in permopt.prune(model, x, groups=4, solver=s, progress=False)
                         .plan.pruned().values()]) for s in ("same", "grps", "best")}
    assert (kept["best"] >= kept["grps"] - 1e-12).all()  # best starts from GRPS and never ends below it
    assert kept["same"].mean() < kept["grps"].mean() < kept["best"].mean()


def test_layer_selection_and_mask_mode():
    model = models.get("vgg16")
    x = torch.randn(2, 3, 32, 32)
    res = permopt.prune(model, x, groups=2, solver="grps", layers=["features.3", "features.7"], mode="mask",
                        progress=False)
    assert set(res.plan.pruned()) == {"features.3", "features.7"}
    assert count(res.model, x).params == count(model, x).params  # masks keep the dense shapes
    res2 = permopt.prune(model, x, groups=2, solver="grps", ignored_layers=["features.3"], progress=False)
    assert "features.3" not in res2.plan.pruned() and "features.7" in res2.plan.pruned()


def test_bad_arguments():
    model = models.get("resnet20")
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match="exactly one"):
        permopt.prune(model, x, groups=2, budget={"params": 0.5}, progress=False)
    with pytest.raises(ValueError, match="exactly one"):
        permopt.prune(model, x, progress=False)
    with pytest.raises(ValueError, match="unknown solver"):
        permopt.prune(model, x, groups=2, solver="magic", progress=False)
    with pytest.raises(KeyError, match="unknown"):
        permopt.prune(model, x, groups=2, layers=["nope"], progress=False)
    with pytest.raises(ValueError, match="taylor"):
        permopt.prune(model, x, groups=2, criterion="taylor", progress=False)
    with pytest.raises(ValueError, match="cannot be met"):
        permopt.prune(model, x, budget={"params": 0.01}, solver="grps", progress=False)
    with pytest.raises(ValueError, match="mode"):
        permopt.prune(model, x, groups=2, solver="grps", mode="fold", progress=False)
    with pytest.raises(ValueError, match="divides no selected layer"):
        permopt.prune(model, x, groups=3, progress=False)
    with pytest.raises(ValueError, match="unknown model"):
        models.get("resnet9000")


@pytest.mark.slow
def test_taylor_criterion_with_grads():
    model = models.get("resnet20")
    x = torch.randn(4, 3, 32, 32)
    model(x).logsumexp(1).sum().backward()
    grads = {n: m.weight.grad for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    res = permopt.prune(model.eval(), x, groups=2, solver="grps", criterion="taylor", grads=grads, progress=False)
    assert res.plan.meta["criterion"] == "taylor" and res.plan.pruned()
    # budget mode reads the same gradients (it used to fail: grads never reached the search space)
    budgeted = permopt.prune(model, x, budget={"params": 0.6}, solver="grps", criterion="taylor", grads=grads,
                             progress=False)
    assert budgeted.report.params_after <= 0.6 * budgeted.report.params_before * (1 + 1e-9)
    name, lp = next(iter(budgeted.plan.pruned().items()))
    taylor = permopt.scores_from_weight(model.get_submodule(name).weight, "taylor", grads[name])
    assert lp.kept_ratio == pytest.approx(permopt.solve(taylor, lp.groups, "grps").kept_ratio, rel=1e-12)
