"""Applying plans to models: masks, export with folded permutations, counts."""
import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from permopt import models  # noqa: E402
from permopt.nn import ChannelIndex, GroupedLinear, apply_masks, count, export, inspect, remove_masks  # noqa: E402
from permopt.plan import LayerPlan, Plan  # noqa: E402
from nn_helpers import Chain, masked_copy, random_plan, randomize_bn, rel_err, solved_plan  # noqa: E402

torch.manual_seed(0)

SMALL = {
    "vgg": lambda: models.VGG([16, 16, "M", 32, 32, "M", 64], num_classes=10),
    "resnet20": lambda: models.get("resnet20"),
    "densenet": lambda: models.DenseNet(depth=13, growth=8),
    "mobilenetv2": lambda: models.MobileNetV2(width_mult=0.5),
    "preresnet": lambda: models.PreResNet(depth=20),
}


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("kind", ["random", "solved"])
def test_export_matches_masked_model(name, kind):
    model = randomize_bn(SMALL[name]())
    x = torch.randn(2, 3, 32, 32)
    plan = random_plan(model, x, 4) if kind == "random" else solved_plan(model, x, 4)
    assert plan.pruned()
    res = export(model, plan, x)
    with torch.no_grad():
        assert rel_err(masked_copy(model, plan)(x), res.model(x)) <= 1e-5
    mods = dict(res.model.named_modules())
    dense_params = count(model, x).params
    saved = 0
    for lname, lp in plan.pruned().items():
        m = mods[lname]
        assert isinstance(m, nn.Conv2d) and m.groups == lp.groups
        saved += m.weight.numel() * (lp.groups - 1)
    assert count(res.model, x).params == dense_params - saved
    assert not any(isinstance(m, nn.modules.conv.Conv2d) and m.groups == 1 and n in plan.pruned()
                   for n, m in mods.items())


def test_chain_folds_every_permutation():
    model = randomize_bn(Chain())
    x = torch.randn(3, 3, 12, 12)
    plan = solved_plan(model, x, 4)
    assert set(plan.pruned()) == {"conv1", "conv2"}  # conv0 has 3 input channels
    plan.layers.pop("conv2")  # conv1 pruned between dense neighbours: both sides fold
    res = export(model, plan, x)
    assert res.index_modules == []
    assert len(res.folded) == 2
    assert not any(isinstance(m, ChannelIndex) for m in res.model.modules())
    with torch.no_grad():
        assert rel_err(masked_copy(model, plan)(x), res.model(x)) <= 1e-5


class MLPHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Chain(bias=True)
        self.body.fc = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 8)

    def forward(self, x):
        return self.fc2(torch.relu(self.body(x)))


def test_bias_dilation_stride_and_grouped_linear():
    model = randomize_bn(MLPHead())
    x = torch.randn(2, 3, 10, 10)
    plan = random_plan(model, x, 4, include_linear=True)
    assert {"body.fc", "fc2", "body.conv1"} <= set(plan.pruned())
    res = export(model, plan, x)
    with torch.no_grad():
        assert rel_err(masked_copy(model, plan)(x), res.model(x)) <= 1e-5
    assert isinstance(res.model.get_submodule("body.fc"), GroupedLinear)
    assert res.model.get_submodule("body.fc").weight.shape == (4, 8, 4)


def test_mask_keeps_pruned_weights_zero_through_training_and_removes():
    model = Chain()
    x = torch.randn(4, 3, 8, 8)
    plan = random_plan(model, x, 4, names={"conv1"})
    original = model.conv1.weight.detach().clone()
    apply_masks(model, plan)
    keep = torch.as_tensor(plan.layers["conv1"].mask())[:, :, None, None].expand_as(original)
    for opt in (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), torch.optim.Adam(model.parameters(), 1e-2)):
        for _ in range(3):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
        w = model.conv1.weight
        assert (w[~keep] == 0).all()
        assert not torch.equal(w[keep], original[keep])  # kept weights did train
    dense = remove_masks(copy.deepcopy(model), bake=False)
    assert not torch.nn.utils.parametrize.is_parametrized(dense.conv1)
    # pruned originals never received a gradient: the dense weights come back as they were
    assert torch.equal(dense.conv1.weight[~keep], original[~keep])
    baked = remove_masks(model, bake=True)
    assert (baked.conv1.weight[~keep] == 0).all()


def test_state_dict_round_trip_and_torch_export():
    model = randomize_bn(models.get("resnet20"))
    x = torch.randn(2, 3, 32, 32)
    plan = solved_plan(model, x, 2)
    pruned = export(model, plan, x).model
    rebuilt = export(randomize_bn(models.get("resnet20"), seed=5), Plan.from_json(plan.to_json()), x).model
    rebuilt.load_state_dict(pruned.state_dict())
    exported = torch.export.export(pruned, (x,)).module()
    with torch.no_grad():
        ref = pruned(x)
        assert torch.allclose(rebuilt(x), ref, atol=1e-6)
        assert torch.allclose(exported(x), ref, atol=1e-5)


def test_inspect_lists_layers_candidates_and_neighbours():
    model = models.MobileNetV2(width_mult=0.5)
    info = inspect(model, torch.randn(1, 3, 32, 32), min_channels=4)
    assert info.traced
    depthwise = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert depthwise and all("depthwise" in info.skipped[n] for n in depthwise)
    L = info["features.0"]
    assert (L.in_channels, L.out_channels, L.kernel_size) == (3, 16, (3, 3))
    assert L.candidates == [1]  # 3 input channels: no G > 1 keeps 4 per group
    L = info["features.4.conv.0"]
    assert all(L.in_channels % g == 0 and L.out_channels % g == 0 and L.in_channels // g >= 4 for g in L.candidates)
    assert L.producers and L.consumers
    assert L.macs == L.out_channels * L.in_channels * 32 * 32  # 1x1 conv on a 32x32 map (CIFAR strides)
    with pytest.raises(KeyError, match="no prunable layer"):
        info["nope"]


def test_bad_plans_are_refused():
    model = models.MobileNetV2(width_mult=0.5)
    x = torch.randn(1, 3, 32, 32)
    dw = next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups > 1)
    C = model.get_submodule(dw).out_channels
    with pytest.raises(ValueError, match="already grouped"):
        export(model, Plan({dw: LayerPlan(dw, 2, np.arange(C) % 2, np.array([0, 1]))}), x)
    with pytest.raises(ValueError, match="divide|put"):
        LayerPlan("x", 3, np.arange(16) % 3, np.arange(3) % 3)  # 3 does not divide 16
    with pytest.raises(KeyError, match="does not have"):
        export(model, Plan({"nope": LayerPlan("nope", 2, np.arange(4) % 2, np.arange(4) % 2)}), x)
    with pytest.raises(ValueError, match="plan has"):
        export(model, Plan({"features.0": LayerPlan("features.0", 2, np.arange(8) % 2, np.arange(4) % 2)}), x)
    with pytest.raises(TypeError, match="only Conv2d and Linear"):
        export(model, Plan({"features.1": LayerPlan("features.1", 2, np.arange(16) % 2, np.arange(16) % 2)}), x)


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0, self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x = torch.relu(self.conv0(x))
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace this
            x = torch.relu(self.conv1(x))
        return self.conv2(x)


def test_untraceable_model_warns_and_still_exports_correctly():
    model = Untraceable()
    x = torch.rand(2, 3, 8, 8)
    with pytest.warns(UserWarning, match="could not trace"):
        info = inspect(model, x)
    assert not info.traced and set(info.layers) == {"conv0", "conv1", "conv2"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = random_plan(model, x, 2)
    res = export(model, plan, x)
    assert len(res.index_modules) == 2 * len(plan.pruned())
    with torch.no_grad():
        assert rel_err(masked_copy(model, plan)(x), res.model(x)) <= 1e-5
