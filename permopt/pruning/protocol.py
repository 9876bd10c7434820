"""What the plan building and the latency loop read off a pruning session (the
:class:`~permopt.pruning.session.PruningSession` implements it; this leaf keeps the session's
stages from importing it back)."""
from __future__ import annotations

from typing import Any, Protocol

from torch import nn

from ..nn.calibration import InputStats
from ..nn.count import Counts
from ..nn.export import ExportResult
from ..nn.inspect import ModelInfo
from ..plan import Plan
from ..search import SearchSpace, SolverCostModel
from .options import PruneConfig
from .report import Report


class Session(Protocol):
    """One model analysis and one calibration pass, with the plans' stages as methods."""

    model: nn.Module
    example_inputs: Any
    config: PruneConfig
    info: ModelInfo
    names: list[str]
    counts: Counts
    memo: dict[Any, Any]

    @property
    def stats(self) -> dict[str, InputStats] | None: ...

    def cost_model(self, config: PruneConfig) -> SolverCostModel: ...

    def search_space(self, config: PruneConfig) -> SearchSpace: ...

    def channel_spaces(self) -> Any: ...

    def plan(self, config: PruneConfig | None = None) -> Any: ...

    def apply(self, plan: Plan, mode: str | None = None) -> tuple[nn.Module, ExportResult | None]: ...

    def measure(self, plan: Plan, exported: ExportResult | None) -> tuple[Report, ExportResult]: ...
