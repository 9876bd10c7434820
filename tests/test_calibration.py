"""Calibration data: statistics recomputed directly, data-aware scores equal hand computations,
every input kind gives the same plan, and pruning with it is reproducible and leaves the model
alone."""
import numpy as np
import pytest
import torch
from torch import nn

import permopt
from permopt.nn.calibration import data_scores, layer_statistics
from permopt.nn.model_space import layer_scores


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 16, 8)).eval()


def _patch_covariance(x, conv):
    """``E[a aᵀ]`` over every output position, from unfold (independent of permopt's capture)."""
    cols = torch.nn.functional.unfold(x.double(), conv.kernel_size, conv.dilation, conv.padding, conv.stride)
    a = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return (a.T @ a / a.shape[0]).numpy()


def test_layer_statistics_match_a_direct_computation_for_every_input_kind():
    model, x = _model(), torch.randn(10, 3, 4, 4)
    stats = layer_statistics(model, x, ["0", "2", "5"], positions=16, batch_size=3)  # batches of 3, 3, 3, 1
    with torch.no_grad():
        h = model[1](model[0](x))
        flat = model[4](model[3](model[2](h)))
    assert np.allclose(stats["0"].covariance(), _patch_covariance(x, model[0]))  # 16 positions: all of them
    assert np.allclose(stats["2"].covariance(), _patch_covariance(h, model[2]))
    assert np.allclose(stats["5"].covariance(), (flat.double().T @ flat.double() / 10).numpy())
    diag = np.diagonal(_patch_covariance(h, model[2])).reshape(8, 9)  # what the weights multiply, padding included
    assert np.allclose(stats["2"].channel_rms(), np.sqrt(diag.mean(1)))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(10)), batch_size=4)
    for data in (loader, list(x.split(4)), [(b, None) for b in x.split(5)]):
        again = layer_statistics(model, data, ["0", "2", "5"], positions=16)
        assert all(np.allclose(again[n].covariance(), stats[n].covariance()) for n in stats)
    shuffled = torch.utils.data.DataLoader(x, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    plan = permopt.prune(model, x[:2], groups=2, mode="mask", progress=False).plan
    permopt.apply_plan(model, plan, x[:2], mode="mask", calibration=shuffled)  # read once, kept: order is free
    with pytest.MonkeyPatch.context() as mp:  # the batches not kept: each layer reads the data again
        mp.setattr(permopt.nn.calibration, "KEEP_BYTES", 0)
        with pytest.raises(ValueError, match="must give the same batches in the same order"):
            permopt.apply_plan(model, plan, x[:2], mode="mask", calibration=shuffled)
    with pytest.raises(TypeError, match="read only once"):
        permopt.prune(model, x[:2], groups=2, calibration=(b for b in x.split(4)), progress=False)


def test_sampled_positions_repeat_with_the_seed():
    model, x = _model(), torch.randn(6, 3, 4, 4)
    a, b = (layer_statistics(model, x, ["2"], positions=5, seed=3)["2"] for _ in range(2))
    c = layer_statistics(model, x, ["2"], positions=5, seed=4)["2"]
    assert np.array_equal(a.gram, b.gram) and not np.array_equal(a.gram, c.gram) and a.rows == 30


def test_data_aware_scores_equal_hand_computations():
    model, x = _model(), torch.randn(10, 3, 4, 4)
    stats = layer_statistics(model, x, ["2"], positions=16)
    H = stats["2"].covariance()
    W = model[2].weight.detach().double().reshape(8, 8, 9).numpy()
    hessian = np.array([[W[f, c] @ H[9 * c:9 * c + 9, 9 * c:9 * c + 9] @ W[f, c] for c in range(8)] for f in range(8)])
    assert np.allclose(layer_scores(model, "2", "hessian", stats=stats), hessian)
    rms = np.sqrt(np.array([np.trace(H[9 * c:9 * c + 9, 9 * c:9 * c + 9]) / 9 for c in range(8)]))
    assert np.allclose(data_scores(model[2].weight, stats["2"], "activation"),
                       np.linalg.norm(W, axis=2) * rms[None, :])
    with pytest.raises(ValueError, match="needs calibration"):
        permopt.prune(model, x[:2], groups=2, criterion="hessian", progress=False)


def test_pruning_with_calibration_is_reproducible_and_data_aware():
    model, x = _model(), torch.randn(10, 3, 4, 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = permopt.prune(model, x[:2], groups=2, calibration=x, progress=False)
    b = permopt.prune(model, x[:2], groups=2, calibration=list(x.split(4)), progress=False)
    plain = permopt.prune(model, x[:2], groups=2, progress=False)
    again = permopt.prune(model, x[:2], groups=2, calibration=x, progress=False)
    assert a.plan.to_json() == again.plan.to_json() and a.plan.meta["criterion"] == "hessian"
    for n, lp in a.plan.layers.items():  # other batches sum in another order: same groups, last digits may differ
        assert np.array_equal(lp.row_groups, b.plan.layers[n].row_groups) and lp.kept_ratio == pytest.approx(
            b.plan.layers[n].kept_ratio, rel=1e-12)
    assert plain.plan.meta["criterion"] == "l2" and "reconstruction" in a.plan.meta
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    with torch.no_grad():
        assert torch.equal(a.model(x), again.model(x)) and torch.allclose(a.model(x), b.model(x), atol=1e-6)
    with pytest.raises(TypeError, match="calibration batch 0 is a str"):
        permopt.prune(model, x[:2], groups=2, calibration=["no"], progress=False)
    with pytest.raises(ValueError, match="calibration is an empty list"):
        permopt.prune(model, x[:2], groups=2, calibration=[], progress=False)
    with pytest.raises(ValueError, match=r"calibration batch 0 \(\(10, 5, 4, 4\), torch.float32\) does not run"):
        permopt.prune(model, x[:2], groups=2, calibration=torch.randn(10, 5, 4, 4), progress=False)
    with pytest.raises(ValueError, match="positions must be >= 1"):
        permopt.prune(model, x[:2], groups=2, calibration=x, positions=0, progress=False)


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
    assert layer(masked).bias is None and isinstance(masked.features[4], nn.BatchNorm2d)  # conv3 feeds a BN
    mean_before = masked.features[4].running_mean.clone()
    kept_before = layer(masked).weight.detach().clone()
    report = reconstruct(model, masked, res.plan, calib, positions=1000)
    with torch.no_grad():  # the fitted offset went into the BN: BN(z + c) with mean μ is BN(z) with mean μ − c
        offset = (mean_before - masked.features[4].running_mean).view(1, -1, 1, 1)
        after = (layer(masked)(feats) + offset - target).norm() / target.norm()
        assert offset.abs().max() > 0
    assert float(after) <= float(before) + 1e-6 and report[first]["after"] <= report[first]["before"] + 1e-6
    assert float(after) == pytest.approx(report[first]["after"], rel=1e-3, abs=1e-6)  # all 36 positions were used
    assert all(r["after"] <= r["before"] + 1e-6 for r in report.values())
    block = torch.as_tensor(res.plan.layers[first].mask(), dtype=torch.bool)[:, :, None, None].expand_as(kept_before)
    refit = layer(masked).weight.detach()
    assert not refit[~block].any() and not torch.equal(refit[block], kept_before[block])  # only kept weights move


def test_reconstructed_export_equals_the_reconstructed_mask_and_repeats():
    model, calib = _digits()
    options = dict(groups=4, calibration=calib, progress=False)
    exported = permopt.prune(model, calib[:2], **options)
    masked = permopt.prune(model, calib[:2], mode="mask", **options)
    again = permopt.prune(model, calib[:2], **options)
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        out = exported.model(x)
        assert (out - masked.model(x)).abs().max() <= 1e-5 * out.abs().max()
        assert torch.equal(out, again.model(x))
        plain = permopt.prune(model, calib[:2], groups=4, calibration=calib, reconstruct=False, progress=False)
        assert not torch.allclose(out, plain.model(x))
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
    # the errors come from float32 products summed in float64: a squared error of 0 reads as about 1e-8
    # of the output energy, 1e-4 once the square root is taken
    assert report["0"]["before"] == pytest.approx(0.0, abs=1e-3) and report["0"]["after"] == pytest.approx(0.0, abs=1e-3)
    assert torch.allclose(masked[0].weight, model[0].weight, atol=1e-5)


def test_cli_prunes_with_calibration_and_reconstruction(tmp_path, capsys):
    import json

    from permopt.cli import main

    torch.save(torch.randn(32, 1, 8, 8), tmp_path / "calib.pt")
    assert main(["prune", "--model", "digits_cnn", "-g", "4", "--calibration", str(tmp_path / "calib.pt"),
                 "--quiet", "--out-dir", str(tmp_path / "out")]) == 0
    meta = json.loads((tmp_path / "out" / "plan.json").read_text())["meta"]
    assert meta["criterion"] == "hessian" and set(meta["reconstruction"]) == {"features.3", "features.7", "features.10"}
    assert main(["prune", "--model", "digits_cnn", "-g", "4", "--calibration", str(tmp_path / "calib.pt"),
                 "--no-reconstruct", "--criterion", "activation", "--quiet", "--out-dir", str(tmp_path / "o2")]) == 0
    meta = json.loads((tmp_path / "o2" / "plan.json").read_text())["meta"]
    assert meta["criterion"] == "activation" and "reconstruction" not in meta
    assert main(["prune", "--model", "digits_cnn", "-g", "4", "--criterion", "hessian", "--quiet"]) == 2
    assert "--criterion hessian needs --calibration" in capsys.readouterr().err
    assert main(["prune", "--model", "digits_cnn", "-g", "4", "--distill", "5", "--quiet"]) == 2
    assert "--distill needs --calibration" in capsys.readouterr().err
    assert main(["prune", "--model", "digits_cnn", "-g", "4", "--calibration", str(tmp_path / "calib.pt"),
                 "--distill", "5", "--quiet", "--out-dir", str(tmp_path / "o3")]) == 0
    model = permopt.models.get("digits_cnn", seed=0)
    rebuilt = permopt.load_pruned(model, tmp_path / "o3" / "plan.json", tmp_path / "o3" / "pruned_state_dict.pt",
                                  torch.randn(1, 1, 8, 8))
    undistilled = permopt.load_pruned(model, tmp_path / "out" / "plan.json",
                                      tmp_path / "out" / "pruned_state_dict.pt", torch.randn(1, 1, 8, 8))
    with torch.no_grad():
        x = torch.randn(4, 1, 8, 8)
        assert not torch.allclose(rebuilt(x), undistilled(x))  # the distilled weights were saved


@pytest.mark.slow
def test_distillation_moves_only_kept_weights_lowers_the_loss_repeats_and_exports_exactly():
    model, calib = _digits()
    runs = []
    for _ in range(2):
        res = permopt.prune(model, calib[:2], groups=4, mode="mask", progress=False)
        losses = permopt.nn.distill(res.model, model, calib, steps=30, lr=3e-3, batch_size=16, progress=False)
        runs.append((res, losses))
    (res, losses), (again, losses2) = runs
    assert losses == losses2 and np.mean(losses[-5:]) < np.mean(losses[:5])
    for name, lp in res.plan.pruned().items():
        w = res.model.get_submodule(name).weight.detach()
        off = ~torch.as_tensor(lp.mask(), dtype=torch.bool)
        assert not w[off].any()  # pruned entries stay zero
    x = torch.randn(5, 1, 8, 8)
    exported = permopt.apply_plan(res.model, res.plan, x)
    with torch.no_grad():
        out = exported(x)
        assert (out - res.model(x)).abs().max() <= 1e-5 * out.abs().max()
        assert torch.equal(res.model(x), again.model(x))
    with pytest.raises(ValueError, match="steps must be >= 1"):
        permopt.nn.distill(res.model, model, calib, steps=0)


def test_reconstruction_in_one_walk_and_layer_by_layer_agrees(monkeypatch):
    from permopt.nn import calibration as cal, reconstruct as rec

    model, calib = _digits()
    plan = permopt.prune(model, calib[:2], groups=4, mode="mask", progress=False).plan
    results = []
    # one walk node by node / each layer over the kept batches / the data read and the dense model run per layer
    for walk, keep in ((rec.WALK_BYTES, cal.KEEP_BYTES), (0, cal.KEEP_BYTES), (0, 0)):
        monkeypatch.setattr(rec, "WALK_BYTES", walk)
        monkeypatch.setattr(cal, "KEEP_BYTES", keep)
        masked = permopt.apply_plan(model, plan, calib[:2], mode="mask")
        results.append((rec.reconstruct(model, masked, plan, calib, positions=20, batch_size=16), masked))
    (a, ma) = results[0]
    for b, mb in results[1:]:
        assert a == b and all(torch.equal(p, q) for p, q in zip(ma.state_dict().values(), mb.state_dict().values()))


def test_a_layer_with_a_bias_absorbs_what_constant_dropped_inputs_sent():
    from permopt.nn.reconstruct import reconstruct

    torch.manual_seed(0)
    x = torch.randn(64, 8)
    x[:, 4:] = 3.0  # half the inputs never vary: what they send through any weight is a constant per output
    for bias in (True, False):
        model = nn.Sequential(nn.Linear(8, 8, bias=bias)).eval()
        plan = permopt.prune(model, x[:2], groups=2, include_linear=True, min_channels=1, mode="mask",
                             progress=False).plan
        off = ~torch.as_tensor(plan.layers["0"].mask(), dtype=torch.bool)
        off[:, 4:] = False
        with torch.no_grad():  # dropped weights on varying inputs are zero: only constants are lost
            model[0].weight[off] = 0.0
        masked = permopt.apply_plan(model, plan, x[:2], mode="mask")
        before = model[0].bias.clone() if bias else None
        report = reconstruct(model, masked, plan, x)["0"]
        if bias:  # the offset is fitted into the bias, and the outputs are matched exactly
            assert report["after"] == pytest.approx(0.0, abs=1e-5) and not torch.equal(masked[0].bias, before)
            with torch.no_grad():
                assert rel_err_out(masked(x), model(x)) <= 1e-4
        else:  # no bias and no BatchNorm after it: nowhere to put an offset, and none is added
            assert masked[0].bias is None and report["after"] <= report["before"]


def rel_err_out(a, b):
    return float((a - b).norm() / b.norm())
