"""The search space: per-layer score matrices and candidate group counts."""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..criteria import scores_from_weight
from ..problem import about_layer, validate_scores


def layer_scores(model: Any, name: str, criterion: Any = "l2", grads: dict | None = None) -> np.ndarray:
    """Scores of layer ``name`` of ``model`` under ``criterion`` (``taylor`` reads ``grads[name]``)."""
    grads = grads or {}
    if criterion == "taylor" and name not in grads:
        raise ValueError(f"criterion 'taylor' needs grads={{layer name: weight gradient}}; missing {name!r}")
    with about_layer(name):  # validated here, so a bad layer stops a prune before any solve
        return validate_scores(scores_from_weight(model.get_submodule(name).weight, criterion, grads.get(name)))


@dataclass
class LayerSpec:
    """One searchable layer: its scores ``(F, C)``, candidate ``G`` values and dense costs.

    ``weight_params`` and ``macs`` are what grouping divides by ``G``; ``other_params``
    (a bias, say) stays. ``latency`` (optional) maps each candidate ``G`` to the layer's
    measured seconds per batch (:mod:`permopt.latency`).
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
        h = hashlib.sha1(np.ascontiguousarray(self.scores).tobytes())
        h.update(str(self.scores.shape).encode())
        return h.hexdigest()[:16]

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

    @classmethod
    def from_model(cls, model: Any, example_inputs: Any, *, criterion: Any = "l2", grads: dict | None = None,
                   include_linear: bool = False, min_channels: int = 4, max_groups: int | None = 64,
                   layers: Any = None, ignored_layers: Any = (), info: Any = None,
                   counts: Any = None, latency: Any = None, progress: bool = False) -> "SearchSpace":
        """Build from a PyTorch model via :func:`permopt.nn.inspect` (scores from ``criterion``).

        ``info`` and ``counts`` (from :func:`permopt.nn.inspect` / :func:`permopt.nn.count`)
        may be passed to avoid tracing the model again. ``latency`` (a
        :class:`permopt.latency.LatencySetup` or a dict of its fields) measures every layer at
        every candidate ``G`` and the dense model, for latency budgets; only powers of two are
        kept (they nest, so coupled layers need no gathers) and a ``G`` that does not run
        faster than the dense layer is dropped.
        """
        from ..nn import count, inspect

        info = info or inspect(model, example_inputs, include_linear=include_linear, min_channels=min_channels)
        specs = []
        for name in info.select(layers, ignored_layers):
            L = info[name]
            cands = [g for g in L.candidates if max_groups is None or g <= max_groups]
            if len(cands) >= 2:
                specs.append(LayerSpec(name, layer_scores(model, name, criterion, grads), cands, L.weight_params,
                                       L.macs, L.params - L.weight_params))
        if not specs:
            raise ValueError(f"no selected layer has a G > 1 (with >= {min_channels} channels per group and "
                             f"G <= {max_groups}); groupable layers: {list(info.layers)}")
        fixed_latency, meta = None, {"criterion": criterion if isinstance(criterion, str) else "custom"}
        if latency is not None:
            specs, fixed_latency, meta["memory_format"] = _measure(model, example_inputs, specs, latency, progress)
        counts = counts or count(model, example_inputs)
        searched_params = sum(s.params_at(1) for s in specs)
        searched_macs = sum(s.macs_at(1) for s in specs)
        return cls(specs, counts.params - searched_params, counts.macs - searched_macs, meta, fixed_latency)

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


def _measure(model: Any, example_inputs: Any, specs: list[LayerSpec], setup: Any,
             progress: bool) -> tuple[list[LayerSpec], float, str]:
    """Specs with measured latencies (powers of two only; ``G`` no faster than dense dropped;
    layers left with G = 1 only leave the search), the seconds of the rest of the dense model,
    and the memory format."""
    from ..latency import LatencySetup, LatencyTable

    setup = LatencySetup.parse(setup).resolve(model, example_inputs)
    table = LatencyTable(setup)
    # powers of two only: they nest, so coupled spaces always fold and no gather (uncounted in the
    # table, and up to half the time in channels-last) sneaks into the measured estimate
    specs = [LayerSpec(L.name, L.scores, [g for g in L.candidates if g & (g - 1) == 0], L.weight_params, L.macs,
                       L.other_params) for L in specs]
    times, dense = table.layers(model, example_inputs, {L.name: L.candidates for L in specs}, progress)
    out = []
    for L in specs:
        t = times[L.name]
        faster = [g for g in L.candidates if g == 1 or t[g] < t[1]]
        out.append(LayerSpec(L.name, L.scores, faster, L.weight_params, L.macs, L.other_params,
                             {g: t[g] for g in faster}))
    kept = [L for L in out if len(L.candidates) >= 2]
    if not kept:
        raise ValueError("no layer runs faster grouped than dense on this machine (measured), so a latency "
                         "budget cannot be met by grouping")
    # may come out slightly negative through timing noise; the totals stay consistent
    return kept, dense - sum(L.latency_at(1) for L in kept), setup.memory_format
