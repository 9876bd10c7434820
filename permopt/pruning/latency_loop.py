"""Latency budgets are met as measured: build, export, time side by side, and search again with
the budget lowered by the estimate's error while the measured model is over it."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from torch import nn

from ..limits import within
from ..nn.export import ExportResult
from ..nn.latency import LatencySetup, LatencyTable
from ..plan import Plan
from ..search import SearchResult
from .options import PruneConfig
from .protocol import Session
from .report import Report

#: Under a latency budget, a model measured above ``budget · (1 + LATENCY_SLACK)`` is searched again
#: with the budget lowered by the estimate's measured error, at most ``LATENCY_RETRIES`` times.
LATENCY_SLACK, LATENCY_RETRIES = 0.01, 2
#: A model measured under ``budget · (1 − LATENCY_RELAX)`` before any run was over it is searched
#: again with the budget *raised* by the square root of the error (the budget it left unspent
#: costs accuracy); the slowest run within the budget is kept.
LATENCY_RELAX = 0.05


@dataclass
class Run:
    """One build of a prune: the plan, the search's result, the solutions, the model, its export
    (None in mask mode) and the report (with measured latencies under a latency setup)."""

    plan: Plan
    search: SearchResult | None
    solutions: dict
    model: nn.Module
    export: ExportResult | None
    report: Report


def runs_until_measured(session: Session) -> list[Run]:
    """One :class:`Run` of the session's plan, applied and measured; under a latency budget,
    more runs with the budget scaled by the estimate's measured error (at most
    ``LATENCY_RETRIES``): lowered while the model measures over it and no run has met it (a
    budget lowered under the floor ends the tries), raised while it measures more than
    ``LATENCY_RELAX`` under it and no run has been over."""
    config = session.config
    runs: list[Run] = []
    budget, setup, current = config.budget, config.latency_setup, config
    retries = LATENCY_RETRIES if budget is not None and budget.latency is not None else 0
    for _ in range(1 + retries):
        try:
            built = session.plan(current)
        except ValueError:
            if not runs:
                raise
            break
        out, exported = session.apply(built.plan)
        report, timed = session.measure(built.plan, exported)
        if setup is not None:  # the export is what gets deployed; a masked model runs at dense speed
            _measure_latency(session.model, timed.model, session.example_inputs, setup, built.plan, report,
                             config.progress)
        runs.append(Run(built.plan, built.search, built.solutions, out, exported, report))
        if not retries or budget is None or budget.latency is None or current.budget is None \
                or current.budget.latency is None:
            break
        measured = report.latency_ratio
        if measured is None or not _search_again(budget.latency, runs):
            break
        error = budget.latency / measured
        if error > 1:  # raising: half the error (in log terms), as a pessimistic error did not scale
            error = error ** 0.5  # (OpenVINO, resnet56, batch 1: measured 0.72x the estimate at 0.50, 0.93x at 0.70)
        scaled = replace(current.budget, latency=min(current.budget.latency * error, 1.0))
        fmt = built.plan.meta.get("memory_format")  # retries keep the format (and its cached table)
        current = replace(current, budget=scaled,
                          latency=replace(setup, memory_format=fmt) if setup is not None and fmt else current.latency)
    return runs


def _met(ratio: float, budget: float) -> bool:
    """Whether a measured latency ratio is within a latency budget (its slack included)."""
    return within(ratio, budget * (1 + LATENCY_SLACK))


def _search_again(budget: float, runs: list[Run]) -> bool:
    """Whether the last of ``runs`` (each measured) calls for another search: over the budget
    while no run has met it, or well under it while no run has been over (never back and
    forth: that would oscillate on timing noise)."""
    met = [_met(r.report.latency_ratio or 0.0, budget) for r in runs]
    if not met[-1]:
        return not any(met)
    return (runs[-1].report.latency_ratio or 0.0) < budget * (1 - LATENCY_RELAX) and all(met)


def _measure_latency(model: nn.Module, out: nn.Module, example_inputs: Any, setup: LatencySetup, plan: Plan,
                     report: Report, progress: bool = False) -> None:
    """Time the dense and the pruned model side by side into ``report``; ``out`` (the export, also
    in mask mode) is converted to the memory format it was measured in (the one the search used,
    or the setup's, resolved)."""
    setup = replace(setup, memory_format=plan.meta.get("memory_format", setup.memory_format))
    setup = setup.resolve(model, example_inputs)
    setup.apply(out)
    t = LatencyTable(setup).models({"dense": model, "pruned": out}, example_inputs, progress)
    report.latency_before, report.latency_after = t["dense"], t["pruned"]


def latency_choice(runs: list[Run], config: PruneConfig) -> Run:
    """The slowest run measured within a latency budget (the one that spent most of it), else the
    fastest measured (or the only run)."""
    budget = config.budget
    if budget is None or budget.latency is None or len(runs) == 1:
        return runs[0]
    ratio = [r.report.latency_ratio or float("inf") for r in runs]  # each run under a latency budget is measured
    ok = [k for k, v in enumerate(ratio) if _met(v, budget.latency)]
    return runs[max(ok, key=lambda k: ratio[k]) if ok else int(np.argmin(ratio))]
