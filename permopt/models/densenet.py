"""DenseNet-40 (Huang et al. 2017, growth 12, no bottleneck) and CondenseNet-86's layout
(Huang et al. 2018: 1x1 conv then a 3x3 group conv, growth 8/16/32, 14 layers per stage)."""
from __future__ import annotations

import torch
from torch import nn


class DenseLayer(nn.Module):
    """BN-ReLU-conv3x3 producing ``growth`` channels, concatenated to the input."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.bn, self.relu = nn.BatchNorm2d(cin), nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(cin, growth, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(self.relu(self.bn(x)))], 1)


class Transition(nn.Module):
    """BN-ReLU-conv1x1-avgpool2."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn, self.relu = nn.BatchNorm2d(cin), nn.ReLU(inplace=True)
        self.conv, self.pool = nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.relu(self.bn(x))))


class DenseNet(nn.Module):
    """DenseNet-(3n+4) for 32x32 inputs; DenseNet-40 is depth 40, growth 12."""

    def __init__(self, depth: int = 40, growth: int = 12, num_classes: int = 10):
        super().__init__()
        if (depth - 4) % 3:
            raise ValueError(f"depth must be 3n+4, got {depth}")
        n = (depth - 4) // 3
        c = 2 * growth
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, 1, 1, bias=False)]
        for stage in range(3):
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            if stage < 2:
                layers.append(Transition(c, c))
        self.features = nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


class CondenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (4·growth) then BN-ReLU-conv3x3 with ``groups`` groups, concatenated."""

    def __init__(self, cin: int, growth: int, groups: int = 4):
        super().__init__()
        mid = 4 * growth
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, mid, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(mid), nn.Conv2d(mid, growth, 3, 1, 1, groups=groups, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu(self.bn1(x)))
        return torch.cat([x, self.conv2(self.relu(self.bn2(out)))], 1)


class CondenseNet(nn.Module):
    """CondenseNet-86's layout: stages of 14 layers, growth 8/16/32, avg-pool transitions.

    The learned group convolutions of the original are plain 1x1 convs here: permopt
    learns their grouping.
    """

    def __init__(self, stages: tuple[int, ...] = (14, 14, 14), growth: tuple[int, ...] = (8, 16, 32),
                 num_classes: int = 10) -> None:
        super().__init__()
        c = 2 * growth[0]
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, 1, 1, bias=False)]
        for i, (n, g) in enumerate(zip(stages, growth)):
            for _ in range(n):
                layers.append(CondenseLayer(c, g))
                c += g
            if i < len(stages) - 1:
                layers.append(nn.AvgPool2d(2))
        self.features = nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))
