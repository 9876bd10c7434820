"""A small CNN for scikit-learn's bundled ``load_digits`` (1,797 8×8 images), and its training loop.

Real data with no download: used by the end-to-end example, the benchmarks (trained
weights) and the tests.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class DigitsCNN(nn.Module):
    """conv(1→c1)-BN-ReLU, conv(c1→c2)-BN-ReLU, pool, conv(c2→c3)-BN-ReLU, conv(c3→c3)-BN-ReLU, pool, linear."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 64), num_classes: int = 10) -> None:
        super().__init__()
        c1, c2, c3 = widths

        def block(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        self.features = nn.Sequential(*block(1, c1), *block(c1, c2), nn.MaxPool2d(2),
                                      *block(c2, c3), *block(c3, c3), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(c3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def load_digits_tensors(test_fraction: float = 0.25,
                        seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)`` as tensors, images scaled to [0, 1], shape (N, 1, 8, 8)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("the digits data needs scikit-learn: pip install scikit-learn") from e
    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    n_test = int(len(y) * test_fraction)
    test, train = perm[:n_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 10, lr: float = 3e-3,
          batch_size: int = 64, seed: int = 0) -> nn.Module:
    """Train with Adam and cross-entropy (in place); returns the model in eval mode.

    Runs on one torch thread (restored afterwards): the order of floating-point sums in the
    backward pass depends on the thread count, so the trained weights would differ between a
    1-core and a 2-core machine (digits test accuracy 0.9955 vs 0.9933 measured); one thread is
    also the faster on these tiny 8×8 images."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(y), generator=g).split(batch_size):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in eval mode."""
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def trained_digits_cnn(epochs: int = 8, widths: tuple[int, ...] = (32, 64, 64),
                       seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A DigitsCNN trained on the digits training split; returns (model, (x_tr, y_tr, x_te, y_te))."""
    torch.manual_seed(seed)
    data = load_digits_tensors(seed=seed)
    model = train(DigitsCNN(widths), data[0], data[1], epochs=epochs, seed=seed)
    return model, data
