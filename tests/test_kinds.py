"""The layer-kind table: Conv1d and Conv3d prune end to end, a conv subclass with its own
forward is grouped in place when it honours ``groups`` (EfficientNet's static "same" padding
kept) and never silently replaced when it does not, and one registration makes a user layer
groupable."""
import warnings

import pytest
import torch
from torch import nn

import permopt
from permopt.nn.kinds import KINDS, LayerKind, kind_of, register_layer_kind
from nn_helpers import rel_err


def _chain(conv, bn, dims):
    torch.manual_seed(0)
    m = nn.Sequential(conv(4, 16, 3, padding=1), bn(16), nn.ReLU(), conv(16, 16, 3, padding=1), bn(16), nn.ReLU(),
                      conv(16, 8, 1)).eval()
    for b in m:
        if isinstance(b, bn):
            b.running_mean.normal_()
            b.running_var.uniform_(0.5, 2.0)
    return m, torch.randn(2, 4, *([6] * dims))


@pytest.mark.parametrize("conv,bn,dims", [(nn.Conv1d, nn.BatchNorm1d, 1), (nn.Conv3d, nn.BatchNorm3d, 3)])
@pytest.mark.parametrize("coupling", ["none", "full"])
def test_conv1d_and_conv3d_export_equals_the_masked_model(conv, bn, dims, coupling):
    model, x = _chain(conv, bn, dims)
    res = permopt.prune(model, x, groups=4, coupling=coupling, progress=False)
    assert res.plan.pruned() and all(type(m) is conv for m in res.model.modules() if isinstance(m, nn.modules.conv._ConvNd))
    masked = permopt.apply_plan(model, res.plan, x, mode="mask")
    with torch.no_grad():
        assert rel_err(res.model(x), masked(x)) <= 1e-5
    k = 3 ** dims
    positions = 6 ** dims
    expected = positions * (16 * 4 * k + 16 * 16 * k // 4 + 8 * 16)  # conv2 grouped at G=4
    assert res.report.macs_after == expected and res.report.macs_before == positions * (16 * 4 * k + 16 * 16 * k + 128)


class Doubled(nn.Conv2d):
    """A conv subclass with its own forward that honours ``groups`` (it calls the parent's)."""

    def forward(self, x):
        return 2 * super().forward(x)


class StaticSame(nn.Conv2d):
    """EfficientNet-Lite's ``Conv2dStaticSamePadding``: asymmetric zero padding, then the conv."""

    def __init__(self, c, f, k, stride=1, **kw):
        super().__init__(c, f, k, stride, bias=False, **kw)
        total = k - 1 if stride == 1 else k - 2
        self.pad = nn.ZeroPad2d((total // 2, total - total // 2, total // 2, total - total // 2))

    def forward(self, x):
        return nn.functional.conv2d(self.pad(x), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Ungrouped(nn.Conv2d):
    """A subclass whose forward ignores ``groups``: regrouping it would break it."""

    def forward(self, x):
        return nn.functional.conv2d(x, self.weight, self.bias, self.stride, self.padding)


def _doubled_model(cls=Doubled):
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), cls(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1))


@pytest.mark.parametrize("cls", [Doubled, StaticSame])
def test_a_subclass_with_its_own_forward_is_grouped_in_place(cls):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.ReLU(),
                          cls(8, 16, 3, **({"padding": 1} if cls is Doubled else {})), nn.ReLU(),
                          cls(16, 8, 4, stride=2, **({"padding": 1} if cls is Doubled else {}))).eval()
    x = torch.randn(6, 3, 9, 9)
    assert kind_of(model[3]).name == "conv"
    res = permopt.prune(model, x[:2], groups=2, min_channels=1, progress=False)
    assert {"3", "5"} <= set(res.plan.pruned())
    assert type(res.model.get_submodule("3")) is cls and res.model.get_submodule("3").groups == 2
    with torch.no_grad():
        assert rel_err(res.model(x), permopt.apply_plan(model, res.plan, x, mode="mask")(x)) <= 1e-5
    fitted = permopt.prune(model, x[:2], groups=2, min_channels=1, calibration=x, progress=False)
    assert all(r["after"] <= r["before"] for r in fitted.plan.meta["reconstruction"].values())
    with torch.no_grad():
        assert rel_err(fitted.model(x), permopt.apply_plan(model, fitted.plan, x, mode="mask", calibration=x)(x)) <= 1e-5


def test_a_subclass_that_ignores_groups_is_kept_dense_and_says_why():
    model, x = _doubled_model(Ungrouped), torch.randn(2, 3, 8, 8)
    assert kind_of(model[2]) is None and kind_of(model[0]).name == "conv"
    info = permopt.nn.inspect(model, x, min_channels=1)
    assert "2" not in info.layers and "does not honour groups" in info.skipped["2"] and "register" in info.skipped["2"]
    with torch.no_grad():
        res = permopt.prune(model, x, groups=2, min_channels=1, progress=False)
        assert "2" not in res.plan.pruned()
        assert rel_err(res.model(x), permopt.apply_plan(model, res.plan, x, mode="mask")(x)) <= 1e-5


def test_one_registration_makes_a_user_layer_groupable(monkeypatch):
    monkeypatch.setattr("permopt.nn.kinds.KINDS", list(KINDS))  # registrations end with the test

    def grouped(m, G, blocks):
        new = Doubled(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, groups=G,
                      bias=m.bias is not None)
        new.weight.data.copy_(torch.cat(blocks, 0))
        return new
    register_layer_kind(LayerKind("doubled", (Doubled,), True, grouped, lambda m: f"doubled{m.in_channels}"))
    with pytest.raises(ValueError, match="registered already"):
        register_layer_kind(LayerKind("doubled", (Doubled,), True, grouped, str))
    model, x = _doubled_model(), torch.randn(2, 3, 8, 8)
    res = permopt.prune(model, x, groups=2, min_channels=1, progress=False)
    assert "2" in res.plan.pruned() and isinstance(res.model.get_submodule("2"), Doubled)
    assert res.model.get_submodule("2").groups == 2
    with torch.no_grad():
        assert rel_err(res.model(x), permopt.apply_plan(model, res.plan, x, mode="mask")(x)) <= 1e-5


def _real_same_padding_convs():
    """The real classes: timm's Conv2dSame and EfficientNet-Lite's Conv2dStaticSamePadding."""
    out = []
    try:
        from permopt.models.external import import_timm

        with warnings.catch_warnings():  # warns only where torchvision's operators do not match torch
            warnings.simplefilter("ignore", RuntimeWarning)
            import_timm()
        from timm.layers import Conv2dSame

        out.append(pytest.param(lambda c, f, k, s: Conv2dSame(c, f, k, stride=s), id="timm-Conv2dSame"))
    except Exception:  # noqa: BLE001  the models extra is optional
        pass
    try:
        from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

        out.append(pytest.param(lambda c, f, k, s: Conv2dStaticSamePadding(c, f, k, stride=s, image_size=11, bias=False),
                                id="efficientnet-Conv2dStaticSamePadding"))
    except ImportError:
        pass
    return out or [pytest.param(None, marks=pytest.mark.skip(reason="neither timm nor efficientnet-lite-pytorch"))]


@pytest.mark.parametrize("make", _real_same_padding_convs())
def test_real_same_padding_convs_are_grouped_with_their_padding(make):
    torch.manual_seed(2)
    model = nn.Sequential(make(3, 8, 3, 1), nn.BatchNorm2d(8), nn.ReLU(), make(8, 16, 3, 2), nn.ReLU(),
                          make(16, 8, 1, 1)).eval()
    x = torch.randn(4, 3, 11, 11)
    res = permopt.prune(model, x[:1], groups=4, min_channels=1, calibration=x, progress=False)
    assert set(res.plan.pruned()) == {"3", "5"} and type(res.model.get_submodule("3")) is type(model[3])
    with torch.no_grad():
        masked = permopt.apply_plan(model, res.plan, x, mode="mask", calibration=x)
        assert rel_err(res.model(x), masked(x)) <= 1e-5
