"""A small sample of real CIFAR-10 images shipped with permopt, and the CIFAR-10 conventions.

    from permopt import datasets
    calib, (x, y) = datasets.cifar10_sample()   # 256 unlabelled training images; 2,000 labelled test images

The sample (``permopt/data/cifar10_sample.npz``, JPEG bytes as in ``shared/data/cifar10.npz``)
holds the first 256 images of a fixed shuffle of the CIFAR-10 training set, for calibration, and
the first 2,000 of a fixed shuffle of the test set, for measuring: the zoo's trained weights
(``models.get("resnet20", weights="cifar10")``) never saw either, and the test images are never
used to choose anything. ``benchmarks/cifar.py`` reads the full data set with the same
:func:`decode` and :func:`normalise`.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

#: Per-channel mean and standard deviation of the CIFAR-10 training images (RGB, in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
#: The class names, in label order.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SAMPLE = Path(__file__).resolve().parent / "data" / "cifar10_sample.npz"


def decode(jpeg: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Concatenated JPEG files (``jpeg[offsets[i]:offsets[i+1]]`` is image ``i``) as
    ``uint8 (N, H, W, 3)`` RGB arrays (Pillow)."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(jpeg[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB"))
                     for i in range(len(offsets) - 1)])


def normalise(images: np.ndarray) -> Any:
    """``uint8 (N, 32, 32, 3)`` images as a float32 tensor ``(N, 3, 32, 32)`` normalised per
    channel with :data:`CIFAR10_MEAN` and :data:`CIFAR10_STD` (what the zoo's weights expect)."""
    import torch

    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    return (t - torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)


def cifar10_sample(calibration: int = 256, test: int = 2000) -> tuple[Any, tuple[Any, Any]]:
    """The shipped sample, normalised: ``calibration`` unlabelled training images (at most 256)
    as a tensor ``(n, 3, 32, 32)``, and ``test`` labelled test images (at most 2,000) with their
    labels (int64)."""
    import torch

    if not 1 <= calibration <= 256:
        raise ValueError(f"calibration must be 1..256 images, got {calibration!r}")
    if not 1 <= test <= 2000:
        raise ValueError(f"test must be 1..2000 images, got {test!r}")
    if not SAMPLE.is_file():
        raise FileNotFoundError(f"the CIFAR-10 sample {str(SAMPLE)!r} is missing from this install of permopt")
    with np.load(SAMPLE) as d:
        cal = decode(d["calib_jpeg"], d["calib_offsets"][:calibration + 1])
        x = decode(d["test_jpeg"], d["test_offsets"][:test + 1])
        y = torch.from_numpy(d["test_labels"][:test].astype(np.int64))
    return normalise(cal), (normalise(x), y)


__all__ = ["cifar10_sample", "decode", "normalise", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10_CLASSES"]
