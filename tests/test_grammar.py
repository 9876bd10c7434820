"""Random small models from a grammar of operations (residual adds, depthwise convs, concatenation,
shared per-channel modules, attribute reads, tied weights, pooling and a linear head), pruned with
random options: every prune that is not refused with a clear error exports a model that computes
what the dense model computes with the plan's channels removed and blocks masked — checked against
a copy masked by hand, not by permopt's masks."""
import copy
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import permopt
from nn_helpers import randomize_bn, rel_err

OPS = ("conv", "res", "dw", "cat", "shared_bn", "attr", "tied")


class Program(nn.Module):
    """A model built from ``ops``: each op reads the current tensor ``x`` (and for ``cat`` an
    earlier one) and writes the new current tensor."""

    def __init__(self, ops, widths, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.ops, self.layers, c = list(ops), nn.ModuleList(), 8
        self.stem = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.channels = [c]
        for k, op in enumerate(self.ops):
            out = int(widths[k % len(widths)])
            if op == "conv":
                block = nn.ModuleList([nn.Conv2d(c, out, 3, padding=1, bias=bool(k % 2)), nn.BatchNorm2d(out)])
                c = out
            elif op == "res":
                block = nn.ModuleList([nn.Conv2d(c, c, 1), nn.BatchNorm2d(c)])
            elif op == "dw":
                block = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1, groups=c)])
            elif op == "cat":
                block = nn.ModuleList()
                c = c + self.channels[0]
            elif op == "shared_bn":
                bn = nn.BatchNorm2d(c)
                block = nn.ModuleList([nn.Conv2d(c, c, 1, bias=False), nn.Conv2d(c, c, 1, bias=False), bn])
            elif op == "tied":
                block = nn.ModuleList([nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)])
                block[1].weight = block[0].weight
            else:  # attr
                block = nn.ModuleList()
            self.layers.append(block)
            self.channels.append(c)
        self.fc = nn.Linear(c, 5)
        for p in self.parameters():
            p.data.normal_(0, 0.3, generator=g)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        first = x
        for op, block in zip(self.ops, self.layers):
            if op == "conv":
                x = torch.relu(block[1](block[0](x)))
            elif op == "res":
                x = torch.relu(x + block[1](block[0](x)))
            elif op == "dw":
                x = torch.relu(block[0](x))
            elif op == "cat":
                x = torch.cat([x, first], 1)
            elif op == "shared_bn":
                x = torch.relu(block[2](block[1](torch.relu(block[2](block[0](x))))))
            elif op == "tied":
                x = torch.relu(block[1](torch.relu(block[0](x))))
            else:
                x = x.mT.mT
        return self.fc(x.mean(dim=(2, 3)))


def masked_by_hand(model, plan):
    """Zero each planned layer's entries outside its blocks and its removed input columns."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        for name, lp in plan.layers.items():
            w = m.get_submodule(name).weight
            keep = (lp.row_groups[:, None] == lp.col_groups[None, :]) & (lp.col_groups[None, :] >= 0)
            if lp.groups == 1:
                keep = np.broadcast_to(lp.col_groups[None, :] >= 0, keep.shape).copy()
            w.mul_(torch.as_tensor(keep, dtype=w.dtype).reshape(*keep.shape, *[1] * (w.dim() - 2)))
    return m.eval()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=5), widths=st.lists(st.sampled_from([8, 16]), min_size=1,
                                                                                     max_size=3),
       seed=st.integers(0, 100), groups=st.sampled_from([1, 2, 4]), width=st.sampled_from([None, 0.5, 0.75]),
       coupling=st.sampled_from(["none", "full"]), calibrate=st.booleans())
def test_every_prune_of_a_random_model_exports_what_its_plan_says(ops, widths, seed, groups, width, coupling,
                                                                  calibrate):
    torch.manual_seed(seed)
    model = randomize_bn(Program(ops, widths, seed), seed)
    x = torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(seed))
    options = dict(groups=groups, width=width, coupling=coupling, align=4, min_channels=2, progress=False)
    if calibrate:
        options["calibration"] = torch.randn(16, 3, 6, 6, generator=torch.Generator().manual_seed(seed + 1))
    if groups == 1 and width is None:
        return
    try:
        with warnings.catch_warnings():  # layers kept dense, odd widths: warnings of a valid prune
            warnings.simplefilter("ignore")
            r = permopt.prune(model, x[:1], **options)
            masked = permopt.prune(model, x[:1], mode="mask", **options)
    except ValueError as e:  # refused: a clear message, never a wrong model
        assert "groups=" in str(e) or "width" in str(e) or "channel" in str(e), str(e)
        return
    source = masked.model if calibrate else model  # a refit changes the kept weights: mask those by hand too
    if calibrate:
        source = permopt.nn.remove_masks(copy.deepcopy(masked.model), bake=False)
    with torch.no_grad():
        want = masked_by_hand(source, r.plan)(x)
        assert rel_err(want, r.model(x)) < 1e-4
        assert rel_err(want, masked.model(x)) < 1e-4
