"""Write ``permopt/data/cifar10_sample.npz``: the CIFAR-10 images shipped with permopt.

    python benchmarks/make_cifar_sample.py

256 training images for calibration and 2,000 test images for measuring, each the first of a
fixed permutation (``numpy.random.default_rng(0)``) of its split, copied as the JPEG bytes of
``shared/data/cifar10.npz`` (no re-encoding, so they decode to the same pixels as the benchmark's).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cifar  # noqa: E402

from permopt.datasets import SAMPLE  # noqa: E402

COUNTS = {"train": 256, "test": 2000}


def pick(d, split: str, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """JPEG bytes, offsets, labels and source indices of the first ``count`` of a seeded shuffle."""
    offsets = d[f"{split}_offsets"]
    idx = np.random.default_rng(0).permutation(len(offsets) - 1)[:count]
    parts = [d[f"{split}_jpeg"][offsets[i]:offsets[i + 1]] for i in idx]
    new_offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return np.concatenate(parts), new_offsets, d[f"{split}_labels"][idx], idx.astype(np.int64)


def main() -> None:
    with np.load(cifar.source_path()) as d:
        cj, co, _, ci = pick(d, "train", COUNTS["train"])
        tj, to, tl, ti = pick(d, "test", COUNTS["test"])
    SAMPLE.parent.mkdir(exist_ok=True)
    np.savez_compressed(SAMPLE, calib_jpeg=cj, calib_offsets=co, calib_index=ci,
                        test_jpeg=tj, test_offsets=to, test_labels=tl, test_index=ti)
    print(f"wrote {SAMPLE} ({SAMPLE.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
