"""Budgets on parameters and MACs, absolute or as a fraction of the dense model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Budget:
    """Upper limits on parameters and/or MACs. A value in (0, 1] is a fraction of the dense
    model's total; a value above 1 is an absolute count. ``None`` means no limit."""

    params: float | None = None
    macs: float | None = None

    def __post_init__(self):
        if self.params is None and self.macs is None:
            raise ValueError("a budget needs params= and/or macs=")
        for what in ("params", "macs"):
            v = getattr(self, what)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
                raise ValueError(f"budget {what} must be a positive number (fraction <= 1 or absolute), got {v!r}")

    @classmethod
    def parse(cls, spec: Any) -> "Budget":
        """From a Budget, a dict ``{"params": 0.5}``, or a string ``"params=0.5,macs=0.6"``."""
        if isinstance(spec, Budget):
            return spec
        if isinstance(spec, dict):
            unknown = set(spec) - {"params", "macs"}
            if unknown:
                raise ValueError(f"unknown budget keys {sorted(unknown)}; use params and/or macs")
            return cls(**spec)
        if isinstance(spec, str):
            parts = {}
            for item in (p for p in spec.replace(" ", "").split(",") if p):
                key, eq, value = item.partition("=")
                try:
                    parts[key] = float(value) if eq else None
                except ValueError:
                    parts[key] = None
                if parts[key] is None:
                    raise ValueError(f"budget {spec!r}: {item!r} is not KEY=NUMBER; write e.g. 'params=0.5' or "
                                     "'params=0.5,macs=0.4'")
            return cls.parse(parts)
        raise TypeError(f"budget must be a Budget, dict or 'params=0.5' string, got {type(spec).__name__}")

    def limits(self, dense_params: int, dense_macs: int) -> tuple[float, float]:
        """Absolute (params, MACs) limits; ``inf`` where unlimited."""
        def resolve(v, dense):
            return float("inf") if v is None else (v * dense if v <= 1 else float(v))
        return resolve(self.params, dense_params), resolve(self.macs, dense_macs)
