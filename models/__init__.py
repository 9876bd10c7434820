"""Model zoo: the architectures of the paper and its peers, by name (no weights are downloaded).

    import models
    net = models.get("resnet20", num_classes=10)
    models.available()
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from .densenet import CondenseNet, DenseNet
from .digits import DigitsCNN
from .mobilenet import MobileNetV2
from .resnet import CifarResNet, PreResNet
from .vgg import VGG

_ZOO: dict[str, tuple[Callable[..., nn.Module], tuple]] = {
    "resnet20": (lambda **kw: CifarResNet(20, **kw), (3, 32, 32)),
    "resnet56": (lambda **kw: CifarResNet(56, **kw), (3, 32, 32)),
    "resnet110": (lambda **kw: CifarResNet(110, **kw), (3, 32, 32)),
    "preresnet164": (lambda **kw: PreResNet(164, **kw), (3, 32, 32)),
    "densenet40": (lambda **kw: DenseNet(40, 12, **kw), (3, 32, 32)),
    "mobilenetv2": (lambda **kw: MobileNetV2(**kw), (3, 32, 32)),
    "vgg16": (lambda **kw: VGG(**kw), (3, 32, 32)),
    "condensenet86": (lambda **kw: CondenseNet(**kw), (3, 32, 32)),
    "digits_cnn": (lambda **kw: DigitsCNN(**kw), (1, 8, 8)),
}


def available() -> list[str]:
    """Names of the models in the zoo."""
    return sorted(_ZOO)


def get(name: str, **kwargs) -> nn.Module:
    """Build the named architecture with fresh (untrained) weights."""
    try:
        return _ZOO[name][0](**kwargs)
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {available()}") from None


def input_shape(name: str) -> tuple:
    """Per-sample input shape (C, H, W) of the named model."""
    if name not in _ZOO:
        raise ValueError(f"unknown model {name!r}; available: {available()}")
    return _ZOO[name][1]


__all__ = ["available", "get", "input_shape", "CifarResNet", "PreResNet", "DenseNet", "CondenseNet",
           "MobileNetV2", "VGG", "DigitsCNN"]
