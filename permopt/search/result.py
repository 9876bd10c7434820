"""What every search strategy returns."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..status import Status


@dataclass
class SearchResult:
    """A configuration (``G`` per layer) with its objective, budget use and how it was found."""

    config: dict[str, int]
    objective: float          # total normalised pruned mass (lower is better)
    params: int
    macs: int
    status: Status            # optimal (proven), feasible, time_limit, infeasible (budget not met)
    strategy: str = ""
    time_s: float = 0.0
    evaluations: int = 0      # cost-model look-ups made by the strategy
    history: list = field(default_factory=list)  # (seconds, best objective so far)
    gap: float | None = None  # certified relative gap, for exact strategies
    message: str = ""
    latency: float | None = None  # estimated seconds (layer table + rest of the model), when measured

    @property
    def feasible(self) -> bool:
        """Whether the configuration meets the budget (``status.success``)."""
        return Status.parse(self.status).success

    def to_json(self, **kw: Any) -> str:
        """JSON text of all fields."""
        return json.dumps(asdict(self), **kw)

    def __repr__(self) -> str:
        return (f"SearchResult(strategy={self.strategy!r}, status={self.status!r}, objective={self.objective:.6g}, "
                f"params={self.params}, macs={self.macs}, time_s={self.time_s:.3f})")
