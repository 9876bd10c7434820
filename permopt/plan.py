"""A pruning plan: per layer, the number of groups and the row/column groups chosen.

A plan is all that is needed to rebuild a pruned model from the dense one
(:func:`permopt.nn.export`), so it round-trips through JSON.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .problem import validate_labels
from .solution import GroupedChannels, Solution
from .status import Status


@dataclass
class LayerPlan(GroupedChannels):
    """One layer's grouping: ``row_groups`` (output channels) and ``col_groups`` (input channels)."""

    name: str
    groups: int
    row_groups: np.ndarray
    col_groups: np.ndarray
    kept_ratio: float = float("nan")
    solver: str = ""
    status: Status = Status.FEASIBLE
    gap: float = float("nan")

    @classmethod
    def from_solution(cls, name: str, sol: Solution) -> "LayerPlan":
        """The plan entry of a solved layer."""
        return cls(name, sol.groups, sol.row_groups, sol.col_groups, sol.kept_ratio, sol.solver, sol.status, sol.gap)

    @classmethod
    def dense(cls, name: str, out_channels: int, in_channels: int) -> "LayerPlan":
        """A layer left dense (``G = 1``)."""
        return cls(name, 1, np.zeros(out_channels, np.int64), np.zeros(in_channels, np.int64), 1.0, "dense", Status.OPTIMAL, 0.0)

    def __post_init__(self) -> None:
        if isinstance(self.groups, bool) or not isinstance(self.groups, (int, np.integer)) or self.groups < 1:
            raise ValueError(f"layer {self.name!r}: groups must be an int >= 1, got {self.groups!r}")
        self.status = Status.parse(self.status)
        for what in ("row_groups", "col_groups"):
            a = np.asarray(getattr(self, what))
            if a.ndim != 1 or a.size == 0 or a.size % self.groups:
                raise ValueError(f"layer {self.name!r}: {what} must be a non-empty 1-D array whose length "
                                 f"groups={self.groups} divides, got shape {a.shape}")
            try:
                setattr(self, what, validate_labels(a, a.size, self.groups, what))
            except ValueError as e:
                raise ValueError(f"layer {self.name!r}: {e}") from None

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
