"""CIFAR-10: the benchmark loader, the shipped sample and the zoo's trained weights."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from permopt import datasets, models

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import cifar  # noqa: E402


def test_sample_decodes_to_normalised_images_and_labels():
    calib, (x, y) = datasets.cifar10_sample(calibration=16, test=40)
    assert calib.shape == (16, 3, 32, 32) and x.shape == (40, 3, 32, 32) and y.shape == (40,)
    assert y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) <= 9
    assert len(set(y.tolist())) >= 8  # a shuffled split, not one class
    # normalised with the training set's statistics: roughly zero mean, unit spread
    assert abs(float(x.mean())) < 0.3 and 0.7 < float(x.std()) < 1.3
    with pytest.raises(ValueError, match="calibration must be 1..256"):
        datasets.cifar10_sample(calibration=0)
    with pytest.raises(ValueError, match="images must be uint8"):
        datasets.normalise(np.zeros((2, 32, 32, 3), np.float32))


def test_loader_decodes_known_images_and_caches_them(tmp_path, monkeypatch):
    if not cifar.DEFAULT_PATH.is_file():
        pytest.skip("shared/data/cifar10.npz is not beside this checkout")
    monkeypatch.setenv("PERMOPT_CACHE", str(tmp_path))
    # a small copy of the file (its test split's first 30 images), so the test decodes little
    with np.load(cifar.DEFAULT_PATH) as d:
        o = d["test_offsets"][:31]
        small = {"test_jpeg": d["test_jpeg"][:o[-1]], "test_offsets": o, "test_labels": d["test_labels"][:30]}
        full_labels = d["test_labels"][:30]
    np.savez(tmp_path / "small.npz", **small)
    x, y = cifar.load("test", tmp_path / "small.npz")
    assert x.shape == (30, 32, 32, 3) and x.dtype == np.uint8
    assert np.array_equal(y, full_labels.astype(np.int64))
    again = cifar.load("test", tmp_path / "small.npz")  # from the cache: the same arrays
    assert np.array_equal(again[0], x) and len(list(tmp_path.glob("cifar10_test_*.npz"))) == 1
    # the shipped sample's test images are these same JPEG bytes: identical pixels
    with np.load(datasets.SAMPLE) as d:
        first = d["test_index"][:200]
    mine = [i for i, k in enumerate(first) if k < 30]
    if mine:
        _, (xs, ys) = datasets.cifar10_sample(test=max(mine) + 1)
        for i in mine:
            assert torch.equal(xs[i], datasets.normalise(x[first[i]:first[i] + 1])[0])
            assert int(ys[i]) == int(y[first[i]])


def test_loader_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        cifar.load("train", tmp_path / "nothing.npz")
    with pytest.raises(ValueError, match="split must be one of"):
        cifar.load("validation", tmp_path / "nothing.npz")


def test_augmentation_crops_and_flips_reproducibly():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    a = cifar.augment(x, torch.Generator().manual_seed(0))
    b = cifar.augment(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    # every output pixel is an input pixel of the same image and channel, or the zero padding
    for n in range(2):
        for c in range(3):
            assert set(a[n, c].flatten().tolist()) <= set(x[n, c].flatten().tolist()) | {0.0}


def test_trained_weights_load_and_match_their_recorded_accuracy():
    record = models.available_weights()["resnet20:cifar10"]
    model = models.get("resnet20", weights="cifar10")
    assert not model.training
    _, (x, y) = datasets.cifar10_sample(test=500)
    torch.manual_seed(0)
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    assert abs(acc - record["sample_acc_500"]) <= 0.004  # two images either way: float differences between machines
    with pytest.raises(ValueError, match="no weights 'imagenet' for model 'resnet20'"):
        models.get("resnet20", weights="imagenet")
