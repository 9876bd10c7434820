"""The search space: per-layer score matrices and candidate group counts (matrices only; a
model's space is built by :func:`permopt.nn.search_space`)."""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..digest import digest
from ..problem import about_layer, validate_scores


@dataclass
class LayerSpec:
    """One searchable layer: its scores ``(F, C)``, candidate ``G`` values and dense costs.

    ``weight_params`` and ``macs`` are what grouping divides by ``G``; ``other_params``
    (a bias, say) stays. ``latency`` (optional) maps each candidate ``G`` to the layer's
    measured seconds per batch (:mod:`permopt.nn.latency`).
    """

    name: str
    scores: np.ndarray
    candidates: list[int]
    weight_params: int
    macs: int = 0
    other_params: int = 0
    latency: dict[int, float] | None = None

    def __post_init__(self):
        with about_layer(self.name):
            self.scores = validate_scores(self.scores)
        F, C = self.scores.shape
        self.candidates = sorted({int(g) for g in self.candidates})
        bad = [g for g in self.candidates if g < 1 or F % g or C % g]
        if not self.candidates or bad:
            raise ValueError(f"layer {self.name!r}: candidates must be non-empty divisors of F={F} and C={C}; bad: {bad}")
        if self.latency is not None:
            self.latency = {int(g): float(t) for g, t in self.latency.items()}
            missing = [g for g in self.candidates if g not in self.latency]
            if missing:
                raise ValueError(f"layer {self.name!r}: latency has no time for candidates {missing}")

    @property
    def key(self) -> str:
        """Content hash of the scores (the cache key of the layer)."""
        return digest(self.scores)[:16]

    def params_at(self, groups: int) -> int:
        """Parameters with ``groups`` groups."""
        return self.weight_params // groups + self.other_params

    def macs_at(self, groups: int) -> int:
        """MACs per sample with ``groups`` groups."""
        return self.macs // groups

    def latency_at(self, groups: int) -> float:
        """Measured seconds with ``groups`` groups (0 when latencies were not measured)."""
        return 0.0 if self.latency is None else self.latency[groups]


@dataclass
class SearchSpace:
    """Layers to configure plus the parameters and MACs of the rest of the model (not searched)."""

    layers: list[LayerSpec]
    fixed_params: int = 0
    fixed_macs: int = 0
    meta: dict = field(default_factory=dict)
    fixed_latency: float | None = None  # seconds of everything but the searched layers, when measured

    def __post_init__(self):
        names = [L.name for L in self.layers]
        if len(set(names)) != len(names):
            raise ValueError("layer names in a search space must be unique")
        if not self.layers:
            raise ValueError("a search space needs at least one layer")
        if (self.fixed_latency is None) != all(L.latency is None for L in self.layers):
            raise ValueError("latency must be measured for every layer and the rest of the model, or for none")

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def dense_params(self) -> int:
        """Parameters of the dense model (all layers at G = 1)."""
        return self.fixed_params + sum(L.params_at(1) for L in self.layers)

    @property
    def dense_macs(self) -> int:
        """MACs of the dense model."""
        return self.fixed_macs + sum(L.macs_at(1) for L in self.layers)

    @property
    def dense_latency(self) -> float | None:
        """Measured seconds of the dense model (None when not measured)."""
        return None if self.fixed_latency is None else self.fixed_latency + sum(L.latency_at(1) for L in self.layers)

    @property
    def smallest(self) -> tuple[float, ...]:
        """(params, MACs, latency) at each layer's cheapest ``G`` (the largest; the fastest for latency)."""
        return (self.fixed_params + sum(L.params_at(L.candidates[-1]) for L in self.layers),
                self.fixed_macs + sum(L.macs_at(L.candidates[-1]) for L in self.layers),
                (self.fixed_latency or 0.0) + sum(min(map(L.latency_at, L.candidates)) for L in self.layers))

    def save(self, path: str | Path) -> None:
        """Save as ``.npz`` (scores) with the rest as JSON inside."""
        meta = {"fixed_params": self.fixed_params, "fixed_macs": self.fixed_macs, "meta": self.meta,
                "fixed_latency": self.fixed_latency,
                "layers": [{"name": L.name, "candidates": L.candidates, "weight_params": L.weight_params,
                            "macs": L.macs, "other_params": L.other_params,
                            "latency": None if L.latency is None else {str(g): t for g, t in L.latency.items()}}
                           for L in self.layers]}
        arrays: dict[str, Any] = {f"scores_{i}": L.scores for i, L in enumerate(self.layers)}
        np.savez_compressed(path, __meta__=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "SearchSpace":
        """Inverse of :meth:`save`."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no such file: {path}")
        hint = "not a saved search space (write one with SearchSpace.save or permopt search --save-space)"
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["__meta__"]))
                layers = [LayerSpec(d["name"], z[f"scores_{i}"], d["candidates"], d["weight_params"], d["macs"],
                                    d["other_params"], d.get("latency")) for i, d in enumerate(meta["layers"])]
            return cls(layers, meta["fixed_params"], meta["fixed_macs"], meta.get("meta", {}),
                       meta.get("fixed_latency"))
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: {hint} (missing or malformed {e})") from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: {hint} ({type(e).__name__}: {e})") from None
