"""Small models and plans for the nn tests."""
import copy

import numpy as np
import torch
from torch import nn

import permopt
from permopt.nn import inspect
from permopt.plan import LayerPlan, Plan


class Chain(nn.Module):
    """conv0 → BN → ReLU → conv1 → BN → ReLU → conv2 → pool → flatten → fc."""

    def __init__(self, c=16, bias=False):
        super().__init__()
        self.conv0, self.bn0 = nn.Conv2d(3, c, 3, padding=1, bias=bias), nn.BatchNorm2d(c)
        self.conv1, self.bn1 = nn.Conv2d(c, 2 * c, 3, padding=2, dilation=2, bias=bias), nn.BatchNorm2d(2 * c)
        self.conv2, self.bn2 = nn.Conv2d(2 * c, c, 1, stride=2, bias=True), nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, 5)

    def forward(self, x):
        x = torch.relu(self.bn0(self.conv0(x)))
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def randomize_bn(model, seed=0):
    """Non-trivial BatchNorm statistics and affine parameters (eval mode then matters)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model.eval()


def random_plan(model, x, G=4, seed=0, names=None, include_linear=False):
    """Random valid groupings for the chosen (default: all groupable) layers."""
    rng = np.random.default_rng(seed)
    plan = Plan()
    for L in inspect(model, x, include_linear=include_linear):
        if names is not None and L.name not in names:
            continue
        g = max(d for d in L.candidates if d <= G)
        if g > 1:
            plan.layers[L.name] = LayerPlan(L.name, g, rng.permutation(np.arange(L.out_channels) // (L.out_channels // g)),
                                            rng.permutation(np.arange(L.in_channels) // (L.in_channels // g)))
    return plan


def solved_plan(model, x, G=4, solver="grps", include_linear=False):
    """Plans from the real weights (l2 criterion)."""
    plan = Plan()
    for L in inspect(model, x, include_linear=include_linear):
        g = max(d for d in L.candidates if d <= G)
        if g > 1:
            sol = permopt.solve(permopt.scores_from_weight(model.get_submodule(L.name).weight), g, solver)
            plan.layers[L.name] = LayerPlan.from_solution(L.name, sol)
    return plan


def masked_copy(model, plan):
    return permopt.nn.apply_masks(copy.deepcopy(model), plan).eval()


def rel_err(a, b):
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))
