"""Budgets on parameters, MACs and measured latency, absolute or as a fraction of the dense model."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Budget:
    """Upper limits on parameters, MACs and/or latency. For params and MACs a value in (0, 1] is a
    fraction of the dense model's total and a whole number above 1 an absolute count (``1.5`` is
    neither, and refused: write ``0.5`` or ``1500000``); ``latency`` is a
    fraction in (0, 1] of the dense model's latency measured on this machine (see
    :mod:`permopt.nn.latency`). ``None`` means no limit."""

    params: float | None = None
    macs: float | None = None
    latency: float | None = None

    #: The resources, in the order :meth:`limits` returns them.
    RESOURCES = ("params", "macs", "latency")

    def __post_init__(self):
        if self.params is None and self.macs is None and self.latency is None:
            raise ValueError("a budget needs params=, macs= and/or latency=")
        for what in self.RESOURCES:
            v = getattr(self, what)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0
                                  or not math.isfinite(v)):
                raise ValueError(f"budget {what} must be a finite positive number (fraction <= 1 or absolute), "
                                 f"got {v!r}")
        for what in ("params", "macs"):
            v = getattr(self, what)
            if v is not None and v > 1 and v != int(v):
                raise ValueError(f"budget {what}={v!r} is neither a fraction of the dense model (in (0, 1], e.g. "
                                 f"{what}=0.5) nor an absolute count (a whole number, e.g. {what}=250000)")
        if self.latency is not None and self.latency > 1:
            raise ValueError(f"budget latency is a fraction of the dense model's latency in (0, 1], got {self.latency!r}")

    @classmethod
    def parse(cls, spec: Any) -> "Budget":
        """From a Budget, a dict ``{"params": 0.5}``, or a string ``"params=0.5,macs=0.6"``."""
        if isinstance(spec, Budget):
            return spec
        if isinstance(spec, dict):
            unknown = set(spec) - set(cls.RESOURCES)
            if unknown:
                raise ValueError(f"unknown budget keys {sorted(unknown)}; use {', '.join(cls.RESOURCES)}")
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

    def limits(self, dense_params: int, dense_macs: int, dense_latency: float | None = None) -> tuple[float, ...]:
        """Absolute (params, MACs, latency in seconds) limits; ``inf`` where unlimited."""
        if self.latency is not None and dense_latency is None:
            raise ValueError("a latency budget needs measured latencies: build the search space with "
                             "permopt.nn.search_space(..., latency=LatencySetup(...)) (prune does this)")

        def resolve(v, dense):
            return float("inf") if v is None else (v * dense if v <= 1 else float(v))
        return (resolve(self.params, dense_params), resolve(self.macs, dense_macs),
                resolve(self.latency, dense_latency or 0.0))
