"""A pruning plan: per layer, the number of groups and the row/column groups chosen.

A plan is all that is needed to rebuild a pruned model from the dense one
(:func:`permopt.nn.export`), so it round-trips through JSON.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .solution import GroupedChannels, Solution


@dataclass
class LayerPlan(GroupedChannels):
    """One layer's grouping: ``row_groups`` (output channels) and ``col_groups`` (input channels)."""

    name: str
    groups: int
    row_groups: np.ndarray
    col_groups: np.ndarray
    kept_ratio: float = float("nan")
    solver: str = ""
    status: str = ""
    gap: float = float("nan")

    @classmethod
    def from_solution(cls, name: str, sol: Solution) -> "LayerPlan":
        """The plan entry of a solved layer."""
        return cls(name, sol.groups, sol.row_groups, sol.col_groups, sol.kept_ratio, sol.solver, sol.status, sol.gap)

    @classmethod
    def dense(cls, name: str, out_channels: int, in_channels: int) -> "LayerPlan":
        """A layer left dense (``G = 1``)."""
        return cls(name, 1, np.zeros(out_channels, np.int64), np.zeros(in_channels, np.int64), 1.0, "dense", "optimal", 0.0)

    def __post_init__(self):
        self.row_groups = np.asarray(self.row_groups, dtype=np.int64)
        self.col_groups = np.asarray(self.col_groups, dtype=np.int64)
        if self.groups < 1:
            raise ValueError(f"layer {self.name!r}: groups must be >= 1, got {self.groups}")
        for what, a in (("row_groups", self.row_groups), ("col_groups", self.col_groups)):
            if a.ndim != 1 or a.size == 0:
                raise ValueError(f"layer {self.name!r}: {what} must be a non-empty 1-D array")
            if a.size % self.groups:
                raise ValueError(f"layer {self.name!r}: groups={self.groups} does not divide {a.size} channels ({what})")
            if a.min() < 0 or a.max() >= self.groups:
                raise ValueError(f"layer {self.name!r}: {what} labels must lie in [0, {self.groups})")
            if (np.bincount(a, minlength=self.groups) != a.size // self.groups).any():
                raise ValueError(f"layer {self.name!r}: {what} must put {a.size // self.groups} channels in each group")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["row_groups"], d["col_groups"] = self.row_groups.tolist(), self.col_groups.tolist()
        return d


@dataclass
class Plan:
    """Per-layer plans keyed by qualified module name, plus free-form metadata."""

    layers: dict[str, LayerPlan] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def pruned(self) -> dict[str, LayerPlan]:
        """Only the layers with ``groups > 1``."""
        return {n: p for n, p in self.layers.items() if p.groups > 1}

    def to_json(self, **kw) -> str:
        """JSON text."""
        return json.dumps({"layers": {n: p.to_dict() for n, p in self.layers.items()}, "meta": self.meta}, **kw)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        return cls({n: LayerPlan(**p) for n, p in d["layers"].items()}, d.get("meta", {}))

    def save(self, path) -> None:
        """Write the JSON to ``path``."""
        Path(path).write_text(self.to_json(indent=1))

    @classmethod
    def load(cls, path) -> "Plan":
        """Read a plan written by :meth:`save`."""
        return cls.from_json(Path(path).read_text())
