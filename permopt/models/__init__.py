"""Model zoo: the architectures of the paper and its peers, by name (no weights are downloaded).

    from permopt import models
    net = models.get("resnet20", num_classes=10)
    net = models.get("resnet20", weights="cifar10")   # trained on CIFAR-10, shipped with permopt
    models.available(), models.available_weights()

Names prefixed ``tv:`` or ``timm:`` build torchvision / timm architectures with random
weights (``models.get("tv:resnet50")``); see :mod:`permopt.models.external`. Listing the
zoo does not import torch; building a model does.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

# name -> (module, class, constructor keywords, per-sample input shape)
_ZOO: dict[str, tuple[str, str, dict, tuple[int, ...]]] = {
    "resnet20": ("resnet", "CifarResNet", {"depth": 20}, (3, 32, 32)),
    "resnet56": ("resnet", "CifarResNet", {"depth": 56}, (3, 32, 32)),
    "resnet110": ("resnet", "CifarResNet", {"depth": 110}, (3, 32, 32)),
    "preresnet164": ("resnet", "PreResNet", {"depth": 164}, (3, 32, 32)),
    "densenet40": ("densenet", "DenseNet", {"depth": 40, "growth": 12}, (3, 32, 32)),
    "mobilenetv2": ("mobilenet", "MobileNetV2", {}, (3, 32, 32)),
    "vgg16": ("vgg", "VGG", {}, (3, 32, 32)),
    "condensenet86": ("densenet", "CondenseNet", {}, (3, 32, 32)),
    "digits_cnn": ("digits", "DigitsCNN", {}, (1, 8, 8)),
}
_CLASSES = {"CifarResNet": "resnet", "PreResNet": "resnet", "DenseNet": "densenet", "CondenseNet": "densenet",
            "MobileNetV2": "mobilenet", "VGG": "vgg", "DigitsCNN": "digits"}
#: Prefixes of external architecture names (torchvision, timm), built with random weights.
EXTERNAL_PREFIXES = ("tv:", "timm:")


def available() -> list[str]:
    """Names of the models in the zoo (external ``tv:``/``timm:`` names are accepted too)."""
    return sorted(_ZOO)


#: Trained weights shipped with permopt: ``weights/<model>_<dataset>.pt`` beside this file, each with
#: a ``.json`` record of how it was trained and its test accuracy (``benchmarks/train_cifar.py``).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def available_weights() -> dict[str, dict]:
    """``{"resnet20:cifar10": record, ...}``: the trained weights shipped with permopt and each
    one's record (data set, schedule, seed, test accuracy)."""
    out = {}
    for record in sorted(WEIGHTS_DIR.glob("*.json")):
        info = json.loads(record.read_text())
        out[f"{info['model']}:{info['dataset']}"] = info
    return out


def _check(name: str) -> None:
    if not isinstance(name, str) or (name not in _ZOO and not name.startswith(EXTERNAL_PREFIXES)):
        raise ValueError(f"unknown model {name!r}; available: {available()}, or tv:NAME (torchvision) / "
                         f"timm:NAME (timm)")


def get(name: str, seed: int | None = None, weights: str | None = None, **kwargs: Any) -> Any:
    """Build the named architecture with fresh (untrained) weights; ``kwargs`` go to its
    constructor (``num_classes=…``: see :func:`default_classes`).

    ``weights="cifar10"`` loads the trained weights shipped with permopt instead (see
    :func:`available_weights`; nothing downloads) and returns the model in eval mode.

    With ``seed`` the weights are drawn from ``torch.manual_seed(seed)`` (torch's global random
    state is left as it was), so the same name and seed give identical weights in any process;
    without it they come from the global random state, as ``torch.nn`` modules do. The CLI
    always passes its ``--seed``.
    """
    _check(name)
    if weights is not None:
        return _trained(name, weights, **kwargs)
    if seed is None:
        return _build(name, **kwargs)
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build(name, **kwargs)


def _trained(name: str, weights: str, **kwargs: Any) -> Any:
    import torch

    key = f"{name}:{weights}"
    shipped = available_weights()
    if key not in shipped:
        raise ValueError(f"no weights {weights!r} for model {name!r}; shipped: {sorted(shipped) or 'none'}")
    model = get(name, seed=0, **kwargs)
    state = torch.load(WEIGHTS_DIR / f"{name}_{weights}.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def _build(name: str, **kwargs: Any) -> Any:
    if name.startswith(EXTERNAL_PREFIXES):
        from .external import build

        return build(name, **kwargs)
    module, cls, defaults, _ = _ZOO[name]
    return getattr(importlib.import_module(f".{module}", __name__), cls)(**{**defaults, **kwargs})


def default_classes(name: str) -> int:
    """The class count the named model has unless ``num_classes=`` is given: 10 for the zoo
    (CIFAR-10 and digits), 1000 for ``tv:``/``timm:`` models (ImageNet)."""
    _check(name)
    return 1000 if name.startswith(EXTERNAL_PREFIXES) else 10


def input_shape(name: str) -> tuple[int, ...]:
    """Per-sample input shape (C, H, W) of the named model (224×224 images for external ones)."""
    _check(name)
    return (3, 224, 224) if name.startswith(EXTERNAL_PREFIXES) else _ZOO[name][3]


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(f".{_CLASSES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["available", "available_weights", "get", "input_shape", "default_classes", "CifarResNet", "PreResNet", "DenseNet", "CondenseNet",
           "MobileNetV2", "VGG", "DigitsCNN"]
