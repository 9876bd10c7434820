"""A pruning session: one analysis of the model and one calibration pass, shared by every plan,
application and measurement made from them.

:func:`permopt.prune` is ``PruningSession(model, x, config).prune()`` and
:func:`permopt.apply_plan` is a session's :meth:`~PruningSession.apply`. A session traces the model
once (layer kinds, counts, the graph the export and the reconstruction walk), reads the
calibration data once (statistics and the reconstruction's dense targets together, on first
use), and keeps what the plans it makes can share: the budget search's cost model with its cached
solves, and the search space of each latency setup (its measured layer table). The re-searches
of a latency budget are :meth:`~PruningSession.plan` calls on the same session.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Unpack

from torch import nn

from ..nn.calibration import CalibrationPass, InputStats, calibration_pass
from ..nn.count import Counts, count
from ..nn.distill import distill
from ..nn.export import ExportResult, check_hooks, export
from ..nn.inspect import ModelInfo, inspect
from ..nn.mask import apply_masks
from ..nn.reconstruct import reconstruct
from ..nn.model_space import search_space
from ..nn.channel_order import channel_spaces
from ..plan import Plan
from ..search import SearchResult, SearchSpace, SolverCostModel
from . import build
from .latency_loop import latency_choice, runs_until_measured
from .options import MODES, PruneConfig, PruneOptions
from .width import touched_layers
from .report import Report, make_report


@dataclass
class PruneResult:
    """What :func:`permopt.prune` returns: the pruned model, the plan that rebuilds it, and the report."""

    model: nn.Module
    plan: Plan
    report: Report
    search: SearchResult | None = None
    export: ExportResult | None = None
    solutions: dict = field(default_factory=dict)


#: Options a session's analysis and calibration pass are made with: a ``plan(config)`` may change
#: the budget, the search and the solver, not these.
SESSION_FIELDS = ("layers", "ignored_layers", "include_linear", "min_channels", "calibration", "positions",
                  "reconstruct")


def _same(a: Any, b: Any) -> bool:
    """Whether two option values are the same: data (a tensor, a loader) by identity, the rest by value."""
    plain = (str, int, float, bool, tuple, list, type(None))
    return a is b or (isinstance(a, plain) and isinstance(b, plain) and a == b)


class PruningSession:
    """One model analysis and one calibration pass for any number of plans.

    Parameters
    ----------
    model : the dense model (never changed).
    example_inputs : inputs for tracing (a tensor or a tuple).
    config : a :class:`PruneConfig`; keywords given as well replace its fields.
    **options : the fields of :class:`PruneConfig` (``groups=4``, ``budget=...``, ``calibration=...``),
        all checked before the model is traced.
    """

    def __init__(self, model: nn.Module, example_inputs: Any, config: PruneConfig | None = None,
                 **options: Unpack[PruneOptions]) -> None:
        self.config = PruneConfig.make(config, **options)
        self.model, self.example_inputs = model, example_inputs
        c = self.config
        if c.calibration is not None and isinstance(example_inputs, (tuple, list)) and len(example_inputs) > 1:
            raise ValueError(f"calibration= feeds each batch to the model as its one input, but the example inputs "
                             f"are {len(example_inputs)} tensors: a model with several inputs cannot be calibrated "
                             "yet; prune it without calibration=")
        self.info: ModelInfo = inspect(model, example_inputs, include_linear=c.include_linear,
                                       min_channels=c.min_channels_per_group)
        self.counts: Counts = self.info.counts or count(model, example_inputs)  # the trace counted already
        self.names: list[str] = self.info.select(c.layers, c.ignored_layers)
        if c.mode == "export":
            check_hooks(model, self.names)  # before any solving: the export would drop them
        self._pass: CalibrationPass | None = None
        self._costs: dict[tuple, SolverCostModel] = {}
        self._spaces: dict[Any, SearchSpace] = {}
        self.memo: dict[Any, Any] = {}  # what the plans' stages compute once per session (removal orders)

    @property
    def calibration(self) -> CalibrationPass | None:
        """The one pass of the calibration data (None without it), made on first use: the input
        statistics of the selected layers (the full gram only for the data cost) and, when the
        prune reconstructs, the dense targets and the batches."""
        c = self.config
        if self._pass is None and c.calibration is not None:
            names = self.names + [n for n in touched_layers(self, c) if n not in self.names]
            self._pass = calibration_pass(self.model, c.calibration, names, positions=c.positions,
                                          seed=c.seed or 0, progress=c.progress,
                                          full=c.budget is not None and c.cost_kind == "data" or c.may_remove_channels,
                                          keep=c.reconstructs)
        return self._pass

    @property
    def stats(self) -> dict[str, InputStats] | None:
        """The calibration statistics of the selected layers (None without calibration)."""
        return self.calibration.stats if self.calibration is not None else None

    def cost_model(self, config: PruneConfig) -> SolverCostModel:
        """The budget search's cost model for ``config``, made once per cost, solver, limit and
        seed: its solves are cached across re-searches. With ``cost="data"`` it reads the
        statistics and the layers' dense weights."""
        key = (config.cost_kind, config.solver, config.layer_time_limit, config.seed)
        if key not in self._costs:
            weights = None
            if config.cost_kind == "data":
                weights = {}
                for n in self.names:
                    w: Any = self.model.get_submodule(n).weight
                    weights[n] = w.detach().double().reshape(w.shape[0], -1).numpy()
            self._costs[key] = config.cost_model(weights, self.stats)
        return self._costs[key]

    def search_space(self, config: PruneConfig) -> SearchSpace:
        """The search space of ``config``'s budget search, made once per latency setup (a latency
        setup measures every layer at every candidate G)."""
        criterion = config.criterion_used
        key = (config.latency_setup, config.max_groups, criterion if isinstance(criterion, str) else id(criterion),
               id(config.grads))
        if key not in self._spaces:
            self._spaces[key] = search_space(
                self.model, self.example_inputs, criterion=config.criterion_used, grads=config.grads,
                max_groups=config.max_groups, layers=self.names, info=self.info, counts=self.counts,
                latency=config.latency_setup, progress=config.progress, stats=self.stats)
        return self._spaces[key]

    def channel_spaces(self) -> Any:
        """The model's channel spaces (what must share a permutation), read off the one trace once
        (None where it cannot tell)."""
        if not hasattr(self, "_channel_spaces"):
            self._channel_spaces = channel_spaces(self.model, self.example_inputs, self.info.graph_module)
        return self._channel_spaces

    def plan(self, config: PruneConfig | None = None) -> Any:
        """A :class:`~permopt.pruning.build.BuiltPlan` for ``config`` (default: the session's; a
        re-search passes one with another budget). ``config`` may change the budget, the search
        and the solver; the options in :data:`SESSION_FIELDS` are the session's (a ValueError
        says so), and the calibration pass keeps the session's seed."""
        config = config or self.config
        fixed = [f for f in SESSION_FIELDS if not _same(getattr(config, f), getattr(self.config, f))]
        if fixed:
            raise ValueError(f"plan(config) changes {fixed}, which the session's one analysis and calibration pass "
                             f"fixed; make a new PruningSession for them")
        return build.build_plan(self, config)

    def apply(self, plan: Plan, mode: str | None = None) -> tuple[nn.Module, ExportResult | None]:
        """The model under ``plan``: ``"export"`` (grouped layers, permutations folded in) or
        ``"mask"`` (a masked copy), with the kept weights refitted first when the session
        reconstructs (the errors go to ``plan.meta``); the export's result (None in mask mode)."""
        mode = mode or self.config.mode
        if mode not in MODES:
            raise ValueError(f"mode must be 'export' or 'mask', got {mode!r}")
        c, traced = self.config, self.info.graph_module
        if c.reconstructs:
            masked = apply_masks(copy.deepcopy(self.model), plan)
            plan.meta["reconstruction"] = reconstruct(
                self.model, masked, plan, c.calibration, seed=c.seed or 0, progress=c.progress,
                positions=c.positions, graph=traced, dense_pass=self.calibration)
            if mode == "mask":
                return masked, None
            res = export(masked, plan, self.example_inputs, traced)
            return res.model, res
        if mode == "export":
            res = export(self.model, plan, self.example_inputs, traced)
            return res.model, res
        return apply_masks(copy.deepcopy(self.model), plan), None

    def measure(self, plan: Plan, exported: ExportResult | None) -> tuple[Report, ExportResult]:
        """The report of ``plan`` (counts before and after) and the export it was counted on
        (``exported``, or one made here for a masked model: what would be deployed)."""
        timed = exported or export(self.model, plan, self.example_inputs, self.info.graph_module, refuse_hooks=False)
        return make_report(self.model, plan, self.example_inputs, timed, self.counts), timed

    def prune(self) -> PruneResult:
        """Plan, apply and measure under the session's config; under a latency budget, search
        again while the measured model misses it (:mod:`.latency_loop`) and keep the best run."""
        runs = runs_until_measured(self)
        run = latency_choice(runs, self.config)
        if len(runs) > 1:
            run.plan.meta["latency_runs"] = [{"internal_budget": r.plan.meta.get("budget"),
                                              "estimated": r.plan.meta.get("estimated_latency_ratio"),
                                              "measured": r.report.latency_ratio} for r in runs]
        if self.config.budget is not None:
            run.plan.meta["budget"] = str(self.config.budget)  # the caller's, not a lowered internal one
        if self.config.distill:  # the structure is chosen and measured; only the kept weights train
            c = self.config
            losses = distill(run.model, self.model, c.calibration, steps=c.distill, seed=c.seed, progress=c.progress)
            run.plan.meta["distill"] = {"steps": c.distill, "first_loss": losses[0], "last_loss": losses[-1]}
        run.plan.meta["config"] = self.config.record()
        return PruneResult(run.model, run.plan, run.report, run.search, run.export, run.solutions)
