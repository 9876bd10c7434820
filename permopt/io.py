"""Reading score matrices and weight tensors from ``.npy`` / ``.pt`` files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .criteria import scores_from_weight


def load_array(path: str | Path) -> np.ndarray:
    """Load a ``.npy`` array or a ``.pt`` tensor (a bare tensor, or a dict with one tensor)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix in (".pt", ".pth"):
        import torch

        obj = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(obj, dict):
            tensors = [v for v in obj.values() if hasattr(v, "detach")]
            if len(tensors) != 1:
                raise ValueError(f"{path} holds a dict with {len(tensors)} tensors; save the one tensor alone")
            obj = tensors[0]
        if not hasattr(obj, "detach"):
            raise ValueError(f"{path} does not hold a tensor (got {type(obj).__name__})")
        return obj.detach().cpu().numpy()
    raise ValueError(f"unsupported file type {path.suffix!r}: use .npy or .pt")


def load_scores(path: str | Path, criterion: str | None = None) -> np.ndarray:
    """A score matrix from a file: 2-D non-negative arrays are scores; 4-D weights (or any with
    ``criterion``) go through a criterion (default ``l2`` for 4-D)."""
    a = load_array(path)
    if criterion is None:
        if a.ndim == 4:
            criterion = "l2"
        elif a.ndim == 2 and (a < 0).any():
            raise ValueError(f"{path} is 2-D with negative entries: it looks like a weight, not scores; "
                             "pass a criterion (e.g. --criterion l2)")
    return scores_from_weight(a, criterion) if criterion else np.asarray(a, dtype=np.float64)
