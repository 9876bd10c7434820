"""A pruning plan: per layer, the number of groups and the row/column groups chosen.

A plan is all that is needed to rebuild a pruned model from the dense one
(:func:`permopt.nn.export`), so it round-trips through JSON.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .problem import validate_labels
from .solution import REMOVED, GroupedChannels, Solution
from .status import Status


#: The plan file format: 2 added removed channels (label ``-1``, channel pruning); format 1
#: plans (no ``format`` field) load unchanged.
PLAN_FORMAT = 2


@dataclass
class LayerPlan(GroupedChannels):
    """One layer's grouping: ``row_groups`` (output channels) and ``col_groups`` (input channels),
    each channel's group in ``0 … groups-1``, or ``-1`` (:data:`~permopt.solution.REMOVED`) for a
    channel removed altogether; the kept channels are balanced over the groups.

    ``solver`` is the solver asked for; ``method`` the one whose solution was kept (``auto``
    delegates to ``enumerate``, ``colgen`` or ``best``; other solvers are their own method)."""

    name: str
    groups: int
    row_groups: np.ndarray
    col_groups: np.ndarray
    kept_ratio: float = float("nan")
    solver: str = ""
    status: Status = Status.FEASIBLE
    gap: float = float("nan")
    method: str = ""

    @classmethod
    def from_solution(cls, name: str, sol: Solution) -> "LayerPlan":
        """The plan entry of a solved layer."""
        return cls(name, sol.groups, sol.row_groups, sol.col_groups, sol.kept_ratio, sol.solver, sol.status, sol.gap,
                   str(sol.info.get("delegate", sol.solver)))

    @classmethod
    def dense(cls, name: str, out_channels: int, in_channels: int) -> "LayerPlan":
        """A layer left dense (``G = 1``)."""
        return cls(name, 1, np.zeros(out_channels, np.int64), np.zeros(in_channels, np.int64), 1.0, "dense",
                   Status.OPTIMAL, 0.0, "dense")

    def __post_init__(self) -> None:
        if isinstance(self.groups, bool) or not isinstance(self.groups, (int, np.integer)) or self.groups < 1:
            raise ValueError(f"layer {self.name!r}: groups must be an int >= 1, got {self.groups!r}")
        self.status = Status.parse(self.status)
        for what in ("row_groups", "col_groups"):
            a = np.asarray(getattr(self, what))
            if a.ndim != 1 or a.size == 0:
                raise ValueError(f"layer {self.name!r}: {what} must be a non-empty 1-D array, got shape {a.shape}")
            try:
                setattr(self, what, validate_labels(a, a.size, self.groups, what, removable=True))
            except ValueError as e:
                raise ValueError(f"layer {self.name!r}: {e}") from None

    @property
    def removes(self) -> bool:
        """Whether the plan removes any of the layer's output or input channels altogether."""
        return bool((self.row_groups == REMOVED).any() or (self.col_groups == REMOVED).any())

    @property
    def changes(self) -> bool:
        """Whether the layer is changed at all: grouped, or channels removed."""
        return self.groups > 1 or self.removes

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
        """Only the layers it changes: ``groups > 1`` or channels removed."""
        return {n: p for n, p in self.layers.items() if p.changes}

    def to_json(self, **kw: Any) -> str:
        """JSON text."""
        return json.dumps({"format": PLAN_FORMAT, "layers": {n: p.to_dict() for n, p in self.layers.items()},
                           "meta": self.meta}, **kw)

    @classmethod
    def from_json(cls, text: str, source: str = "plan") -> "Plan":
        """Inverse of :meth:`to_json`; any malformed input is a ValueError naming ``source`` and the layer."""
        try:
            d = json.loads(text)
        except (ValueError, RecursionError) as e:  # ValueError also: an integer past Python's 4300-digit limit
            raise ValueError(f"{source}: not valid JSON ({type(e).__name__}: {str(e)[:80]})") from None
        if not isinstance(d, dict) or not isinstance(d.get("layers"), dict):
            raise ValueError(f"{source}: a plan is a JSON object with a 'layers' object (name -> layer plan)")
        version = d.get("format", 1)  # plans written before the field existed are format 1
        if version not in (1, PLAN_FORMAT) or isinstance(version, bool):
            raise ValueError(f"{source}: plan format {version!r} is not one this permopt reads (1 to {PLAN_FORMAT}); "
                             "a newer permopt wrote it")
        meta = d.get("meta", {})
        if not isinstance(meta, dict):
            raise ValueError(f"{source}: 'meta' must be a JSON object")
        return cls({name: _layer_from_dict(name, entry, source) for name, entry in d["layers"].items()}, meta)

    def save(self, path: str | Path) -> None:
        """Write the JSON to ``path``."""
        Path(path).write_text(self.to_json(indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "Plan":
        """Read a plan written by :meth:`save` (errors name the file)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"no plan file {str(p)!r}")
        return cls.from_json(p.read_text(), source=str(p))


_REQUIRED = {"name": str, "groups": int, "row_groups": list, "col_groups": list}
_OPTIONAL = {"kept_ratio": (int, float), "solver": str, "status": str, "gap": (int, float), "method": str}


def _layer_from_dict(key: str, entry: Any, source: str) -> LayerPlan:
    where = f"{source}: layer {key!r}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be a JSON object, got {type(entry).__name__}")
    missing = sorted(set(_REQUIRED) - set(entry))
    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if missing or unknown:
        problems = ([f"missing fields {missing}"] if missing else []) + ([f"unknown fields {unknown}"] if unknown else [])
        raise ValueError(f"{where}: " + "; ".join(problems))
    kinds: dict[str, Any] = {**_REQUIRED, **_OPTIONAL}
    for field_name, kind in kinds.items():
        value = entry.get(field_name)
        if field_name in entry and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ValueError(f"{where}: {field_name} must be {getattr(kind, '__name__', 'a number')}, "
                             f"got {value!r:.60}")
    if entry["name"] != key:
        raise ValueError(f"{where}: its name field says {entry['name']!r}")
    for labels in ("row_groups", "col_groups"):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in entry[labels]):
            raise ValueError(f"{where}: {labels} must hold integers")
    try:
        return LayerPlan(**entry)
    except (ValueError, TypeError, OverflowError) as e:
        raise ValueError(f"{source}: {e}") from None
