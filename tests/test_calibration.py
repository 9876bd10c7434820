"""Calibration data: input-channel RMS recomputed directly, data-aware scores are the weight
scores times it, and pruning with it is reproducible and leaves the model alone."""
import numpy as np
import pytest
import torch
from torch import nn

import permopt
from permopt.nn.calibration import input_channel_rms
from permopt.nn.space import layer_scores


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 16, 8)).eval()


def test_input_channel_rms_matches_a_direct_computation():
    model, x = _model(), torch.randn(10, 3, 4, 4)
    rms = input_channel_rms(model, x, ["0", "2", "5"], batch_size=3)  # batches of 3, 3, 3, 1
    with torch.no_grad():
        h = model[1](model[0](x))
        flat = model[4](model[3](model[2](h)))
    assert np.allclose(rms["0"], x.double().pow(2).mean(dim=(0, 2, 3)).sqrt().numpy())
    assert np.allclose(rms["2"], h.double().pow(2).mean(dim=(0, 2, 3)).sqrt().numpy())
    assert np.allclose(rms["5"], flat.double().pow(2).mean(dim=0).sqrt().numpy())
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(10)), batch_size=4)
    assert all(np.allclose(rms[n], v) for n, v in input_channel_rms(model, loader, ["0", "2", "5"]).items())


def test_data_aware_scores_weight_each_input_channel():
    model, x = _model(), torch.randn(10, 3, 4, 4)
    rms = input_channel_rms(model, x, ["2"])
    plain = layer_scores(model, "2", "l2")
    aware = layer_scores(model, "2", "l2", input_rms=rms)
    assert np.allclose(aware, plain * rms["2"][None, :])


def test_pruning_with_calibration_is_reproducible_and_data_aware():
    model, x = _model(), torch.randn(10, 3, 4, 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = permopt.prune(model, x[:2], groups=2, calibration=x, progress=False)
    b = permopt.prune(model, x[:2], groups=2, calibration=list(x.split(4)), progress=False)
    plain = permopt.prune(model, x[:2], groups=2, progress=False)
    assert a.plan.to_json() == b.plan.to_json() and a.plan.meta["data_aware"] is True
    assert "data_aware" not in plain.plan.meta
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    with pytest.raises(TypeError, match="calibration batch 0 is a str"):
        permopt.prune(model, x[:2], groups=2, calibration=["no"], progress=False)
    with pytest.raises(ValueError, match="held no batches"):
        permopt.prune(model, x[:2], groups=2, calibration=[], progress=False)


def _digits():
    model = permopt.models.get("digits_cnn", seed=0).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return model, torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_reconstruction_is_never_worse_on_its_own_data_and_changes_only_kept_weights():
    from permopt.nn.reconstruct import reconstruct

    model, calib = _digits()
    res = permopt.prune(model, calib[:2], groups=4, mode="mask", progress=False)
    masked = res.model
    first = next(iter(res.plan.pruned()))
    layer = lambda m: m.get_submodule(first)  # noqa: E731
    with torch.no_grad():  # the first grouped layer sees the same inputs in both models: measure it directly
        feats = model.features[:3](calib)
        target = layer(model)(feats)
        before = (layer(masked)(feats) - target).norm() / target.norm()
    bias = None if layer(masked).bias is None else layer(masked).bias.clone()
    kept_before = layer(masked).weight.detach().clone()
    report = reconstruct(model, masked, res.plan, calib, positions=1000)
    with torch.no_grad():
        after = (layer(masked)(feats) - target).norm() / target.norm()
    assert float(after) <= float(before) + 1e-6 and report[first]["after"] <= report[first]["before"] + 1e-6
    assert float(after) == pytest.approx(report[first]["after"], rel=1e-3, abs=1e-6)  # all 36 positions were used
    assert all(r["after"] <= r["before"] + 1e-6 for r in report.values())
    block = torch.as_tensor(res.plan.layers[first].mask(), dtype=torch.bool)[:, :, None, None].expand_as(kept_before)
    refit = layer(masked).weight.detach()
    assert not refit[~block].any() and not torch.equal(refit[block], kept_before[block])  # only kept weights move
    assert bias is None or torch.equal(layer(masked).bias, bias)


def test_reconstructed_export_equals_the_reconstructed_mask_and_repeats():
    model, calib = _digits()
    options = dict(groups=4, calibration=calib, reconstruct=True, progress=False)
    exported = permopt.prune(model, calib[:2], **options)
    masked = permopt.prune(model, calib[:2], mode="mask", **options)
    again = permopt.prune(model, calib[:2], **options)
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        out = exported.model(x)
        assert (out - masked.model(x)).abs().max() <= 1e-5 * out.abs().max()
        assert torch.equal(out, again.model(x))
        assert not torch.allclose(out, permopt.prune(model, calib[:2], groups=4, progress=False).model(x))
    assert set(exported.plan.meta["reconstruction"]) == set(exported.plan.pruned())
    with pytest.raises(ValueError, match="reconstruct=True needs calibration"):
        permopt.prune(model, calib[:2], groups=4, reconstruct=True, progress=False)


def test_block_diagonal_weights_are_reconstructed_as_they_are():
    from permopt.nn.reconstruct import reconstruct

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8, bias=False)).eval()
    plan = permopt.prune(model, torch.randn(2, 8), groups=2, include_linear=True, min_channels=1,
                         mode="mask", progress=False).plan
    lp = plan.layers["0"]
    with torch.no_grad():  # make the dense layer exactly block-diagonal under the plan
        model[0].weight *= torch.as_tensor(lp.mask(), dtype=torch.float32)
    masked = permopt.apply_plan(model, plan, torch.randn(2, 8), mode="mask")
    report = reconstruct(model, masked, plan, torch.randn(256, 8), ridge=1e-10)
    assert report["0"]["before"] == pytest.approx(0.0, abs=1e-7) and report["0"]["after"] == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(masked[0].weight, model[0].weight, atol=1e-5)


def test_cli_prunes_with_calibration_and_reconstruction(tmp_path, capsys):
    import json

    from permopt.cli import main

    torch.save(torch.randn(32, 1, 8, 8), tmp_path / "calib.pt")
    assert main(["prune", "--model", "digits_cnn", "-g", "4", "--calibration", str(tmp_path / "calib.pt"),
                 "--reconstruct", "--quiet", "--out-dir", str(tmp_path / "out")]) == 0
    meta = json.loads((tmp_path / "out" / "plan.json").read_text())["meta"]
    assert meta["data_aware"] is True and set(meta["reconstruction"]) == {"features.3", "features.7", "features.10"}
    assert main(["prune", "--model", "digits_cnn", "-g", "4", "--reconstruct", "--quiet"]) == 2
    assert "--reconstruct needs --calibration" in capsys.readouterr().err
