"""CIFAR-10 from ``shared/data/cifar10.npz`` (JPEG bytes and labels; nothing downloads).

    from cifar import load, normalise, augment
    x, y = load("train")          # uint8 (50000, 32, 32, 3), int64 (50000,)

The JPEGs are decoded once and cached as plain arrays outside the repository (``~/.cache/permopt``
or ``$PERMOPT_CACHE``), keyed by the source file's size and modification time, so every later call
returns the same arrays in well under a second. ``$PERMOPT_CIFAR10`` points at another copy of the
``.npz``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from permopt.datasets import decode, normalise  # noqa: F401  (re-exported for the scripts)

#: The shared data file, found from the repository (``<repo>/../shared/data/cifar10.npz``).
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10.npz"
SPLITS = ("train", "test")


def source_path() -> Path:
    """The ``cifar10.npz`` in use: ``$PERMOPT_CIFAR10`` when set, else the shared data folder."""
    return Path(os.environ.get("PERMOPT_CIFAR10", DEFAULT_PATH))


def cache_dir() -> Path:
    """Where decoded arrays are kept: ``$PERMOPT_CACHE`` or ``~/.cache/permopt``."""
    return Path(os.environ.get("PERMOPT_CACHE", Path.home() / ".cache" / "permopt"))


def load(split: str, path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 (N, 32, 32, 3)`` and labels ``int64 (N,)`` of ``split`` ("train": 50,000,
    "test": 10,000), decoded once and cached; the same arrays on every call."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    src = Path(path) if path is not None else source_path()
    if not src.is_file():
        raise FileNotFoundError(f"CIFAR-10 file {str(src)!r} not found: it ships in shared/data/cifar10.npz "
                                f"beside the repository; set PERMOPT_CIFAR10 to another copy")
    st = src.stat()
    cached = cache_dir() / f"cifar10_{split}_{st.st_size}_{int(st.st_mtime)}.npz"
    if cached.is_file():
        with np.load(cached) as d:
            return d["x"], d["y"]
    with np.load(src) as d:
        missing = {f"{split}_jpeg", f"{split}_offsets", f"{split}_labels"} - set(d.files)
        if missing:
            raise ValueError(f"CIFAR-10 file {str(src)!r} lacks arrays {sorted(missing)}")
        x = decode(d[f"{split}_jpeg"], d[f"{split}_offsets"])
        y = d[f"{split}_labels"].astype(np.int64)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, y=y)
    tmp.replace(cached)  # atomic: a process reading the cache never sees half a file
    return x, y


def augment(x, generator):
    """The standard CIFAR augmentation on a normalised batch ``(N, 3, 32, 32)``: zero-pad 4 pixels,
    random 32×32 crop, random horizontal flip, drawn from ``generator`` (a ``torch.Generator``)."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=generator)
    dx = torch.randint(0, 9, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (n, h)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx_n = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()
