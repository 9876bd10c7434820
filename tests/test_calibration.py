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
