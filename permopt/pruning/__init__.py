"""One call to prune a model: inspect → (search) → solve per layer → mask or export → report.

The package holds the options (:mod:`.options`: :class:`PruneConfig`), plan building
(:mod:`.build`), the latency-budget loop (:mod:`.latency_loop`) and the report (:mod:`.report`).
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Unpack

from torch import nn

from ..nn.count import count
from ..nn.export import ExportResult, check_hooks, export
from ..nn.inspect import inspect, signature
from ..nn.mask import apply_masks
from ..nn.state import load_state
from ..plan import Plan
from ..search import SearchResult
from .build import LOW_KEPT_RATIO, BuiltPlan, budget_cost_model, build_plan, calibration_stats
from .latency_loop import LATENCY_RETRIES, LATENCY_SLACK, latency_choice, runs_until_measured
from ..nn.calibration import POSITIONS, check_reiterable
from ..nn.reconstruct import reconstruct
from .options import MIN_CHANNELS, MODES, PruneConfig, PruneOptions, default_coupling, default_min_channels
from .report import Report, make_report


@dataclass
class PruneResult:
    """What :func:`prune` returns: the pruned model, the plan that rebuilds it, and the report."""

    model: nn.Module
    plan: Plan
    report: Report
    search: SearchResult | None = None
    export: ExportResult | None = None
    solutions: dict = field(default_factory=dict)


def apply_plan(model: nn.Module, plan: Plan | str | Path, example_inputs: Any, mode: str = "export",
               calibration: Any = None) -> nn.Module:
    """Apply a plan (a :class:`Plan` or the path of a saved ``plan.json``) to a dense model and
    return the new model: ``"export"`` (real grouped layers, permutations folded in; a
    ``torch.fx.GraphModule``) or ``"mask"`` (a masked copy with the dense layers, for
    fine-tuning). The input model is left untouched. A plan made for a different model (its
    recorded signature differs) is applied with a warning. For the export's details (its
    channel-index modules) call :func:`permopt.nn.export` directly. With ``calibration``
    (unlabelled inputs) the kept weights are refitted to the dense layers' outputs first
    (:func:`permopt.nn.reconstruct.reconstruct`).
    """
    check_reiterable(calibration)
    own = copy.deepcopy(_as_plan(plan)) if calibration is not None else _as_plan(plan)  # meta is written: not the caller's
    return _apply(model, own, example_inputs, mode, calibration=calibration)[0]


def load_pruned(dense_model: nn.Module, plan: Plan | str | Path, state_dict: dict | str | Path,
                example_inputs: Any, mode: str = "export") -> nn.Module:
    """The pruned model saved by ``permopt prune`` (or ``torch.save(res.model.state_dict())``),
    rebuilt: the dense architecture (any weights), the plan it was pruned with, and the pruned
    model's state dict (a dict or a ``.pt`` path). ``mode`` must be the one the state dict was
    saved from (``export`` for ``permopt prune``'s ``pruned_state_dict.pt``). The model is
    returned in eval mode, as ``permopt prune`` saved it (``models.get()`` builds models in train
    mode, whose BatchNorm would otherwise use batch statistics); call ``.train()`` to fine-tune."""
    model = apply_plan(dense_model, plan, example_inputs, mode)
    what = "the state dict" if isinstance(state_dict, dict) else f"state_dict {str(state_dict)!r}"
    load_state(model, state_dict, what, f"the dense model under this plan (mode={mode!r})")
    return model.eval()


def _as_plan(plan: Plan | str | Path) -> Plan:
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, (str, Path)):
        return Plan.load(plan)
    raise TypeError(f"plan must be a Plan or the path of a plan.json, got {type(plan).__name__}")


def _apply(model: nn.Module, plan: Plan, example_inputs: Any, mode: str, traced: Any = None,
           calibration: Any = None, seed: int = 0, progress: bool = False,
           positions: int = POSITIONS) -> tuple[nn.Module, ExportResult | None]:
    """``apply_plan``, also returning the export's result (None in mask mode); ``traced`` is the
    model's trace from :func:`permopt.nn.inspect`, reused instead of tracing again; with
    ``calibration`` the kept weights are refitted on it (the errors go to ``plan.meta``)."""
    recorded = plan.meta.get("model_signature")
    if recorded is not None and recorded != signature(model):
        warnings.warn("this plan was made for a model with other conv/linear layers (names or shapes differ); "
                      f"applying its {len(plan.pruned())} grouped layers where they fit", stacklevel=2)
    if mode not in MODES:
        raise ValueError(f"mode must be 'export' or 'mask', got {mode!r}")
    if calibration is not None:
        masked = apply_masks(copy.deepcopy(model), plan)
        plan.meta["reconstruction"] = reconstruct(model, masked, plan, calibration, seed=seed, progress=progress,
                                                  positions=positions, graph=traced)
        if mode == "mask":
            return masked, None
        res = export(masked, plan, example_inputs)
        return res.model, res
    if mode == "export":
        res = export(model, plan, example_inputs, traced)
        return res.model, res
    return apply_masks(copy.deepcopy(model), plan), None


def prune(model: nn.Module, example_inputs: Any, config: PruneConfig | None = None,
          **options: Unpack[PruneOptions]) -> PruneResult:
    """Prune ``model`` into group convolutions in one call; ``model`` itself is never changed.

    Parameters
    ----------
    model : the dense model (it is never changed).
    example_inputs : inputs for tracing (a tensor or a tuple).
    config : a :class:`PruneConfig` holding the options; keywords given as well replace its
        fields (``prune(model, x, config, seed=3)``).
    **options : the fields of :class:`PruneConfig`, typed by :class:`PruneOptions` (``groups=4``, ``budget={"params": 0.5}``,
        ``solver``, ``coupling``, ``latency`` …), each documented there; all are checked once,
        before any tracing or solving, and an unknown one is a TypeError naming the others.
    """
    parsed = PruneConfig.make(config, **options)
    info = inspect(model, example_inputs, include_linear=parsed.include_linear,
                   min_channels=parsed.min_channels_per_group)
    before = info.counts or count(model, example_inputs)  # the trace counted already: one run of the model
    names = info.select(parsed.layers, parsed.ignored_layers)
    if parsed.mode == "export":
        check_hooks(model, names)  # before any solving: the export would drop them
    stats = calibration_stats(model, parsed, names)  # one pass, shared by every build below
    cost = budget_cost_model(model, parsed, names, stats) if parsed.budget is not None else None
    build = partial(build_plan, model, example_inputs, info=info, counts=before, cost_model=cost, stats=stats)
    apply = partial(_apply, traced=info.graph_module, calibration=parsed.calibration if parsed.reconstructs else None,
                    seed=parsed.seed or 0, progress=parsed.progress, positions=parsed.positions)
    runs = runs_until_measured(build, apply, model, example_inputs, parsed, before, info.graph_module)
    run = latency_choice(runs, parsed)
    if len(runs) > 1:
        run.plan.meta["latency_runs"] = [{"internal_budget": r.plan.meta.get("budget"),
                                          "estimated": r.plan.meta.get("estimated_latency_ratio"),
                                          "measured": r.report.latency_ratio} for r in runs]
    if parsed.budget is not None:
        run.plan.meta["budget"] = str(parsed.budget)  # the caller's, not a lowered internal one
    return PruneResult(run.model, run.plan, run.report, run.search, run.export, run.solutions)


__all__ = ["prune", "apply_plan", "load_pruned", "PruneResult", "PruneConfig", "PruneOptions", "Report", "BuiltPlan", "build_plan",
           "make_report", "default_coupling", "default_min_channels", "MIN_CHANNELS", "LOW_KEPT_RATIO",
           "LATENCY_SLACK", "LATENCY_RETRIES"]
