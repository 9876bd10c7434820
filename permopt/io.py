"""Reading score matrices and weight tensors from ``.npy`` / ``.pt`` files; folders checked
writable before any work is spent on what goes into them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .criteria import scores_from_weight


def writable_folder(path: str | Path, what: str) -> Path:
    """``path`` as a folder, created (with its parents) and checked writable now, so that a run
    does not end with a raw errno after its work; ``what`` names the argument in the error."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a file; give a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / ".permopt-write-check"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise ValueError(f"{what} {str(path)!r} is not writable here ({e.strerror})") from None
    return p


def load_array(path: str | Path) -> np.ndarray:
    """Load a ``.npy`` array or a ``.pt`` tensor (a bare tensor, or a dict with one tensor)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give a .npy or .pt file")
    if path.suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f"{path} is not a readable .npy array ({e}); save one with numpy.save") from None
        if not isinstance(a, np.ndarray) or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ValueError(f"{path} holds {getattr(a, 'dtype', type(a).__name__)} data, not numbers")
        if np.iscomplexobj(a):
            raise ValueError(f"{path} holds complex numbers; save real scores (np.abs or the real part)")
        return a
    if path.suffix in (".pt", ".pth"):
        import torch

        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many kinds on a corrupt or foreign file
            raise ValueError(f"{path} is not a readable torch file ({type(e).__name__}: "
                             f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None
        if isinstance(obj, dict):
            tensors = [v for v in obj.values() if hasattr(v, "detach")]
            if len(tensors) != 1:
                raise ValueError(f"{path} holds a dict with {len(tensors)} tensors; save the one tensor alone")
            obj = tensors[0]
        if not hasattr(obj, "detach"):
            raise ValueError(f"{path} does not hold a tensor (got {type(obj).__name__})")
        if obj.is_complex():
            raise ValueError(f"{path} holds a complex tensor; save real scores (abs or the real part)")
        if obj.layout != torch.strided:  # sparse, quantized …: numpy cannot take them
            raise ValueError(f"{path} holds a {obj.layout} tensor; save a dense one (tensor.to_dense())")
        return obj.detach().cpu().double().numpy() if obj.is_floating_point() else obj.detach().cpu().numpy()
    raise ValueError(f"unsupported file type {path.suffix!r}: use .npy or .pt")


def load_scores(path: str | Path, criterion: str | None = None) -> np.ndarray:
    """A score matrix from a file: 2-D non-negative arrays are scores; weights with kernel
    dimensions (3-D to 5-D, or any with ``criterion``) go through a criterion (default ``l2``)."""
    a = load_array(path)
    if criterion is None:
        if a.ndim > 2:
            criterion = "l2"
        elif a.ndim == 2 and (a < 0).any():
            raise ValueError(f"{path} is 2-D with negative entries: it looks like a weight, not scores; "
                             "pass a criterion (e.g. --criterion l2)")
    return scores_from_weight(a, criterion) if criterion else np.asarray(a, dtype=np.float64)
