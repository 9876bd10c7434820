"""One call to prune a model: inspect → (search) → solve per layer → mask or export → report."""
from __future__ import annotations

import copy
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .coupling import assign_spaces, couple, validate_coupling
from .limits import within
from .nn import ExportResult, apply_masks, count, export, inspect
from .nn.count import Counts
from .nn.inspect import ModelInfo, signature
from .nn.spaces import channel_spaces
from .parallel import map_jobs
from .plan import LayerPlan, Plan
from .progress import progress_bar
from .search import Budget, SearchResult, SearchSpace, SolverCostModel, get_strategy, search
from .nn.latency import LatencySetup, LatencyTable
from .nn.space import layer_scores, search_space
from .solvers import get as get_solver
from .solvers.run import solve_layer


@dataclass
class Report:
    """Per-layer and total parameters/MACs before and after, with each layer's G and kept ratio."""

    layers: list[dict]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    index_modules: int = 0
    latency_before: float | None = None  # measured seconds per batch (latency budgets / latency=)
    latency_after: float | None = None

    @property
    def kept_ratio(self) -> float:
        """The whole model's kept ratio: each conv/linear layer's kept ratio (of its criterion mass;
        1 for layers left dense) weighted by its dense parameter count."""
        weights = np.array([r["params_before"] for r in self.layers], float)
        return float(np.dot([r["kept_ratio"] for r in self.layers], weights) / weights.sum()) if weights.sum() else 1.0

    @property
    def latency_ratio(self) -> float | None:
        """Measured pruned / dense latency (None when latency was not measured)."""
        if self.latency_before is None or self.latency_after is None:
            return None
        return self.latency_after / self.latency_before

    def table(self) -> str:
        """A plain-text table, one row per conv/linear layer plus totals."""
        head = (f"{'layer':<28} {'G':>3} {'kept':>7} {'method':<16} {'params':>10} {'-> after':>10} {'MACs':>12} "
                f"{'-> after':>12}")
        lines = [head, "-" * len(head)]
        for r in self.layers:
            kept, method = (f"{r['kept_ratio']:.3f}", r["method"][:16]) if r["groups"] > 1 else ("-", "")
            lines.append(f"{r['name'][:28]:<28} {r['groups']:>3} {kept:>7} {method:<16} {r['params_before']:>10} "
                         f"{r['params_after']:>10} {r['macs_before']:>12} {r['macs_after']:>12}")
        lines.append("-" * len(head))
        lines.append(f"{'total (all parameters)':<28} {'':>3} {'':>7} {'':<16} {self.params_before:>10} "
                     f"{self.params_after:>10} {self.macs_before:>12} {self.macs_after:>12}")
        lines.append(f"params x{self.params_after / self.params_before:.3f}, MACs x{self.macs_after / self.macs_before:.3f}, "
                     f"kept x{self.kept_ratio:.3f} (layer kept ratios weighted by parameters), "
                     f"{self.index_modules} channel-index modules")
        if self.latency_before and self.latency_after:
            lines.append(f"latency x{self.latency_ratio:.3f} (measured: "
                         f"{1e3 * self.latency_before:.3g} ms dense -> {1e3 * self.latency_after:.3g} ms)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"layers": self.layers, "kept_ratio": self.kept_ratio,
                "params_before": self.params_before, "params_after": self.params_after,
                "macs_before": self.macs_before, "macs_after": self.macs_after, "index_modules": self.index_modules,
                "latency_before": self.latency_before, "latency_after": self.latency_after}


@dataclass
class PruneResult:
    """What :func:`prune` returns: the pruned model, the plan that rebuilds it, and the report."""

    model: nn.Module
    plan: Plan
    report: Report
    search: SearchResult | None = None
    export: ExportResult | None = None
    solutions: dict = field(default_factory=dict)


def default_coupling(coupling: str | None, budget: "Budget | None") -> str:
    """``coupling`` if given; else ``"full"`` under a latency budget (gathers would make the
    measured layer table lie: they cost up to half the time in channels-last), ``"none"`` otherwise."""
    if coupling is not None:
        return coupling
    return "full" if budget is not None and budget.latency is not None else "none"


#: Channels per group below which a layer is not grouped, by default (thin groups cost accuracy).
MIN_CHANNELS = 4


def default_min_channels(min_channels: int | None, budget: "Budget | None") -> int:
    """``min_channels`` if given; else 1 under a latency budget (depthwise layers are the fastest
    grouped kernels on CPU: resnet56 with every 3×3 conv depthwise runs at 0.53–0.56 of dense, while
    4 channels per group never get below 0.73; the search spends them only where the budget needs
    them), :data:`MIN_CHANNELS` otherwise."""
    if min_channels is not None:
        return min_channels
    return 1 if budget is not None and budget.latency is not None else MIN_CHANNELS


def check_arguments(groups: Any, budget: Any, mode: str, solver: str, strategy: str,
                    coupling: str | None = None) -> "Budget | None":
    """Every argument of :func:`prune` that can be checked without the model, before any tracing or
    solving; returns the parsed budget (None for uniform ``groups``)."""
    if coupling is not None:
        validate_coupling(coupling)
    if (groups is None) == (budget is None):
        raise ValueError("give exactly one of groups= (uniform G) or budget= (searched G per layer)")
    if groups is not None and (isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1):
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    if mode not in ("export", "mask"):
        raise ValueError(f"mode must be 'export' or 'mask', got {mode!r}")
    get_solver(solver)
    if budget is None:
        return None
    get_strategy(strategy)
    return Budget.parse(budget)


def _budget_hints(info: ModelInfo, include_linear: bool, max_groups: int | None, space: SearchSpace) -> list[str]:
    """What would let a budget reach further than the largest G everywhere."""
    hints = []
    if not include_linear and any("include_linear" in why for why in info.skipped.values()):
        hints.append("include_linear=True (Linear layers are left dense)")
    if max_groups is not None and any(L.candidates[-1] > max_groups for L in info):
        hints.append(f"a larger max_groups (now {max_groups})")
    stuck = [L.name for L in info if len(L.candidates) < 2]
    if stuck:
        hints.append(f"a smaller min_channels: {len(stuck)} layers have no G > 1 at the current one")
    return hints


def _check_budget(budget: Budget, space: SearchSpace, info: ModelInfo, include_linear: bool,
                  max_groups: int | None) -> None:
    limits = budget.limits(space.dense_params, space.dense_macs, space.dense_latency)
    for what, limit, dense in (("params", limits[0], space.dense_params), ("macs", limits[1], space.dense_macs)):
        value = getattr(budget, what)
        if value is not None and value > 1 and limit >= dense:  # an absolute count at or above dense
            warnings.warn(f"budget {what}={value:g} (an absolute count) is not below the dense model's {dense}: "
                          f"it constrains nothing; a fraction of dense is a number in (0, 1]", stacklevel=3)
    smallest = space.smallest
    if all(within(v, lim) for v, lim in zip(smallest, limits)):
        return
    hints = _budget_hints(info, include_linear, max_groups, space)
    reach = [f"{smallest[0]:.0f} params ({smallest[0] / space.dense_params:.3f} of dense)",
             f"{smallest[1]:.0f} MACs ({smallest[1] / space.dense_macs:.3f} of dense)"]
    if space.dense_latency is not None:
        reach.append(f"{1e3 * smallest[2]:.3g} ms ({smallest[2] / space.dense_latency:.3f} of dense, measured)")
    raise ValueError(f"budget {budget} cannot be met: the cheapest G on every searched layer reaches "
                     f"{', '.join(reach)}" + (f"; to reach further try {'; '.join(hints)}" if hints else ""))


def build_plan(model: nn.Module, example_inputs: Any, *, groups: int | None = None, budget: Any = None,
               strategy: str = "exact", solver: str = "auto", criterion: Any = "l2", grads: dict | None = None,
               layers: Any = None, ignored_layers: Any = (), include_linear: bool = False,
               min_channels: int | None = None, max_groups: int | None = 64, layer_time_limit: float | None = None,
               search_time_limit: float | None = None, seed: int | None = 0, progress: bool = True,
               executor: Executor | None = None, n_jobs: int | None = None, coupling: str | None = None,
               latency: Any = None, cost_model: SolverCostModel | None = None, info: ModelInfo | None = None,
               counts: Counts | None = None) -> tuple[Plan, SearchResult | None, dict]:
    """Choose G per layer (uniform ``groups`` or a ``budget`` search) and solve each layer.

    Returns ``(plan, search_result or None, solutions)``; see :func:`prune` for the arguments.
    ``cost_model`` (for ``budget``) may be passed to reuse its cached solves across calls.
    """
    budget = check_arguments(groups, budget, "export", solver, strategy, coupling)
    coupling, min_channels = default_coupling(coupling, budget), default_min_channels(min_channels, budget)
    info = info or inspect(model, example_inputs, include_linear=include_linear, min_channels=min_channels)
    names = info.select(layers, ignored_layers)
    plan = Plan(meta={"criterion": criterion if isinstance(criterion, str) else "custom", "solver": solver,
                      "model_signature": signature(model)})
    solutions: dict = {}
    result = None
    if groups is not None:
        config = {n: int(groups) for n in names if groups in info[n].candidates}
        plan.meta.update(groups=int(groups), left_dense=[n for n in names if n not in config])
        if not config:
            raise ValueError(f"groups={groups} divides no selected layer's channels (with >= {min_channels} "
                             f"per group); candidates: { {n: info[n].candidates for n in names} }")
    else:
        timed = latency if latency is not None else (LatencySetup() if budget.latency is not None else None)
        space = search_space(model, example_inputs, criterion=criterion, grads=grads, max_groups=max_groups,
                             layers=names, info=info, counts=counts, latency=timed, progress=progress)
        _check_budget(budget, space, info, include_linear, max_groups)
        cost = cost_model or SolverCostModel(solver, time_limit=layer_time_limit, seed=seed, executor=executor,
                                             n_jobs=n_jobs)
        cost.precompute(space, progress=progress)
        result = search(space, budget, strategy, cost_model=cost, seed=seed, time_limit=search_time_limit)
        if not result.feasible:
            raise ValueError(f"budget {budget} was not met by strategy {strategy!r}: {result.message}")
        config = {n: g for n, g in result.config.items() if g > 1}
        solutions = {n: cost.solutions[(n, g)] for n, g in config.items() if (n, g) in cost.solutions}
        plan.meta.update(budget=str(budget), strategy=strategy, objective=result.objective)
        if result.latency is not None and space.dense_latency:
            plan.meta["estimated_latency_ratio"] = result.latency / space.dense_latency
            plan.meta["memory_format"] = space.meta["memory_format"]
    solutions.update(_solve_layers(model, config, solutions, solver, criterion, grads, layer_time_limit, seed,
                                   progress, executor, n_jobs))
    if coupling != "none":
        solutions = _couple(model, example_inputs, config, solutions, coupling, criterion, grads, plan)
    for n in names:
        L = info[n]
        plan.layers[n] = (LayerPlan.from_solution(n, solutions[n]) if n in config
                          else LayerPlan.dense(n, L.out_channels, L.in_channels))
    _warn_low_kept(plan)
    return plan, result, solutions


#: A grouped layer keeping less than this share of its criterion mass is named in a warning.
LOW_KEPT_RATIO = 0.05


def _warn_low_kept(plan: Plan) -> None:
    """One warning naming the grouped layers that keep less than :data:`LOW_KEPT_RATIO` (a budget
    search may put G=64 on a layer: it then works on about 2% of its weights)."""
    low = sorted((lp.kept_ratio, n, lp.groups) for n, lp in plan.pruned().items() if lp.kept_ratio < LOW_KEPT_RATIO)
    if low:
        named = ", ".join(f"{n} (G={g}, kept {k:.3f})" for k, n, g in low[:5])
        more = f" and {len(low) - 5} more" if len(low) > 5 else ""
        warnings.warn(f"{len(low)} grouped layer(s) keep less than {LOW_KEPT_RATIO:.0%} of their weight mass: "
                      f"{named}{more}; a smaller G keeps more (groups=, or max_groups= under a budget)", stacklevel=3)


def _couple(model: nn.Module, example_inputs: Any, config: dict, solutions: dict, coupling: str, criterion: Any,
            grads: dict | None, plan: Plan) -> dict:
    """Re-solve the configured layers jointly per channel space; records the kept-ratio cost in ``plan.meta``."""
    spaces = channel_spaces(model, example_inputs)
    if spaces is None:
        return solutions
    sides, pinned = assign_spaces(spaces, config, coupling)
    mine = {n: solutions[n] for n in config}
    coupled = couple(mine, {n: layer_scores(model, n, criterion, grads) for n in config}, sides, pinned)
    plan.meta["coupling"] = {"mode": coupling, "mean_kept_ratio": float(np.mean([s.kept_ratio for s in coupled.values()])),
                             "mean_kept_ratio_uncoupled": float(np.mean([s.kept_ratio for s in mine.values()]))}
    return {**solutions, **coupled}


def _solve_layers(model: nn.Module, config: dict, known: dict, solver: str, criterion: Any, grads: dict | None,
                  time_limit: float | None, seed: int | None, progress: bool, executor: Executor | None,
                  n_jobs: int | None) -> dict:
    """Solutions for the configured layers not solved yet (one solver run each, on the executor)."""
    todo = [n for n in config if n not in known]
    bar = progress_bar(len(todo), f"solving layers ({solver})", "layer", progress)
    jobs = [(layer_scores(model, n, criterion, grads), config[n], n, solver, time_limit, seed) for n in todo]
    out = dict(zip(todo, map_jobs(solve_layer, jobs, executor, n_jobs, bar)))
    if bar:
        bar.close()
    return out


def apply_plan(model: nn.Module, plan: Plan | str | Path, example_inputs: Any, mode: str = "export") -> nn.Module:
    """Apply a plan (a :class:`Plan` or the path of a saved ``plan.json``) to a dense model and
    return the new model: ``"export"`` (real grouped layers, permutations folded in; a
    ``torch.fx.GraphModule``) or ``"mask"`` (a masked copy with the dense layers, for
    fine-tuning). The input model is left untouched. A plan made for a different model (its
    recorded signature differs) is applied with a warning. For the export's details (its
    channel-index modules) call :func:`permopt.nn.export` directly.
    """
    return _apply(model, _as_plan(plan), example_inputs, mode)[0]


def load_pruned(dense_model: nn.Module, plan: Plan | str | Path, state_dict: dict | str | Path,
                example_inputs: Any, mode: str = "export") -> nn.Module:
    """The pruned model saved by ``permopt prune`` (or ``torch.save(res.model.state_dict())``),
    rebuilt: the dense architecture (any weights), the plan it was pruned with, and the pruned
    model's state dict (a dict or a ``.pt`` path). ``mode`` must be the one the state dict was
    saved from (``export`` for ``permopt prune``'s ``pruned_state_dict.pt``)."""
    import torch

    model = apply_plan(dense_model, plan, example_inputs, mode)
    if not isinstance(state_dict, dict):
        path = state_dict
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ValueError(f"state_dict {str(path)!r}: no such file") from None
        if not isinstance(state_dict, dict):
            raise ValueError(f"state_dict {str(path)!r} holds a {type(state_dict).__name__}, not a state dict")
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as e:  # shapes: torch lists each mismatch on its own line
        raise ValueError("the state dict does not fit the dense model under this plan: " + "; ".join(
            line.strip() for line in str(e).splitlines()[1:] if line.strip())) from None
    if missing or unexpected:
        raise ValueError(f"the state dict does not fit the dense model under this plan (mode={mode!r}): missing "
                         f"keys {sorted(missing)}, unexpected keys {sorted(unexpected)}; was it saved from "
                         f"another architecture, plan or mode?")
    return model


def _as_plan(plan: Plan | str | Path) -> Plan:
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, (str, Path)):
        return Plan.load(plan)
    raise TypeError(f"plan must be a Plan or the path of a plan.json, got {type(plan).__name__}")


def _apply(model: nn.Module, plan: Plan, example_inputs: Any, mode: str) -> tuple[nn.Module, ExportResult | None]:
    """``apply_plan``, also returning the export's result (None in mask mode)."""
    recorded = plan.meta.get("model_signature")
    if recorded is not None and recorded != signature(model):
        warnings.warn("this plan was made for a model with other conv/linear layers (names or shapes differ); "
                      f"applying its {len(plan.pruned())} grouped layers where they fit", stacklevel=2)
    if mode == "export":
        res = export(model, plan, example_inputs)
        return res.model, res
    if mode == "mask":
        return apply_masks(copy.deepcopy(model), plan), None
    raise ValueError(f"mode must be 'export' or 'mask', got {mode!r}")


#: Under a latency budget, a model measured above ``budget · (1 + LATENCY_SLACK)`` is searched again
#: with the budget lowered by the estimate's measured error, at most ``LATENCY_RETRIES`` times.
LATENCY_SLACK, LATENCY_RETRIES = 0.01, 2


def _runs_until_measured(build: Any, model: nn.Module, example_inputs: Any, mode: str, before: Counts,
                         setup: LatencySetup | None, budget: Budget | None, progress: bool = False) -> list[tuple]:
    """``(plan, search result, solutions, model, export, report)`` of one build; under a latency
    budget, more builds with the budget lowered by the estimate's measured error while the model
    measures over it (at most ``LATENCY_RETRIES``; a budget lowered under the floor ends the tries)."""
    runs: list[tuple] = []
    spec = budget
    retries = LATENCY_RETRIES if budget is not None and budget.latency is not None else 0
    for _ in range(1 + retries):
        try:
            plan, result, solutions = build(budget=spec)
        except ValueError:
            if not runs:
                raise
            break
        out, exported = _apply(model, plan, example_inputs, mode)
        report = make_report(model, plan, example_inputs, exported, before)
        if setup is not None:
            _measure_latency(model, out, example_inputs, setup, plan, report, progress)
        runs.append((plan, result, solutions, out, exported, report))
        if not retries or spec is None or spec.latency is None or budget is None or budget.latency is None:
            break
        measured = report.latency_ratio
        if measured is None or within(measured, budget.latency * (1 + LATENCY_SLACK)):
            break
        spec = replace(spec, latency=spec.latency * budget.latency / measured)
        if setup is not None and "memory_format" in plan.meta:  # retries keep the format (and its cached table)
            build = partial(build, latency=replace(setup, memory_format=plan.meta["memory_format"]))
    return runs


def _measure_latency(model: nn.Module, out: nn.Module, example_inputs: Any, setup: LatencySetup, plan: Plan,
                     report: Report, progress: bool = False) -> None:
    """Time the dense and the pruned model side by side into ``report``; ``out`` is converted to the
    memory format it was measured in (the one the search used, or the setup's, resolved)."""
    setup = replace(setup, memory_format=plan.meta.get("memory_format", setup.memory_format))
    setup = setup.resolve(model, example_inputs)
    setup.apply(out)
    t = LatencyTable(setup).models({"dense": model, "pruned": out}, example_inputs, progress)
    report.latency_before, report.latency_after = t["dense"], t["pruned"]


def _latency_choice(runs: list[tuple], budget: Budget | None) -> tuple:
    """The first run measured within a latency budget, else the fastest measured (or the only run)."""
    if budget is None or budget.latency is None or len(runs) == 1:
        return runs[0]
    ratio = [r[5].latency_ratio for r in runs]
    ok = [k for k, v in enumerate(ratio) if within(v, budget.latency * (1 + LATENCY_SLACK))]
    return runs[ok[0] if ok else int(np.argmin(ratio))]


def make_report(model: nn.Module, plan: Plan, example_inputs: Any, exported: ExportResult | None = None,
                before: Counts | None = None) -> Report:
    """Counts before (``model``) and after (its export under ``plan``), per layer and total."""
    exported = exported or export(model, plan, example_inputs)
    before = before or count(model, example_inputs)
    after = count(exported.model, example_inputs)
    rows = []
    for name, b in before.layers.items():
        a = after.layers.get(name, b)
        lp = plan.layers.get(name)
        rows.append({"name": name, "groups": lp.groups if lp else 1, "kept_ratio": lp.kept_ratio if lp else 1.0,
                     "method": lp.method if lp else "dense",
                     "params_before": b["params"], "params_after": a["params"],
                     "macs_before": b["macs"], "macs_after": a["macs"]})
    return Report(rows, before.params, after.params, before.macs, after.macs, len(exported.index_modules))


def prune(model: nn.Module, example_inputs: Any, *, groups: int | None = None, budget: Any = None,
          strategy: str = "exact", solver: str = "auto", criterion: Any = "l2", grads: dict | None = None,
          layers: Any = None, ignored_layers: Any = (), include_linear: bool = False, min_channels: int | None = None,
          max_groups: int | None = 64, mode: str = "export", layer_time_limit: float | None = None,
          search_time_limit: float | None = None, seed: int | None = 0, progress: bool = True,
          executor: Executor | None = None, n_jobs: int | None = None, coupling: str | None = None,
          latency: Any = None) -> PruneResult:
    """Prune ``model`` into group convolutions in one call; ``model`` itself is never changed.

    Parameters
    ----------
    model, example_inputs : the dense model and inputs for tracing (a tensor or a tuple).
    groups : uniform ``G`` for every layer it divides; or
    budget : ``{"params": 0.5}``, ``{"macs": 0.4}``, both, or "params=0.5": ``G`` per layer is
        chosen by the search ``strategy`` (default ``exact``). Checked before any solving; a
        budget no configuration meets is an error naming the smallest reachable value.
    solver : permutation solver per layer (default ``auto``: exact branch and bound where it is
        cheap and bounded, else the ``best`` heuristic).
    criterion : ``l2`` (default), ``l1``, ``taylor`` (with ``grads={name: grad}``) or a callable.
    layers / ignored_layers : restrict which layers are grouped.
    include_linear, min_channels, max_groups : which layers and ``G`` are candidates (``min_channels``
        per group: default 4, or 1 under a latency budget, see :func:`default_min_channels`).
    mode : ``export`` (real grouped layers) or ``mask`` (dense layers with masks, for fine-tuning).
    layer_time_limit : optional wall-clock cap per layer solve; search_time_limit : per search.
        Both break reproducibility when they bite; without them the same inputs and ``seed``
        give the same plan.
    progress : tqdm bars.
    executor, n_jobs : where layer solves run: any ``concurrent.futures.Executor`` (a process
        pool, ``distributed.Client(...).get_executor()`` for a Dask cluster) or ``n_jobs`` local
        processes; serial by default. The plan does not depend on it.
    coupling : ``"none"`` (each layer alone), ``"chain"`` (layers joined by BN/activations
        only share a partition) or ``"full"`` (every channel space shares one, residual streams
        included): coupled layers need no index modules (gathers) between them, at some kept
        mass, recorded in ``plan.meta["coupling"]`` (see :mod:`permopt.coupling`). Default:
        ``"full"`` under a latency budget, else ``"none"`` (it costs accuracy before fine-tuning).
        ``"strict"`` also pins spaces that must keep their order (concatenations, model
        inputs/outputs, unknown operations) to contiguous groups: fewer gathers still, more mass lost.
    latency : how latency is measured (:class:`permopt.nn.latency.LatencySetup` or a dict:
        ``batch`` (default: the example inputs'), ``threads`` (1), ``rounds``, ``cache_dir``),
        for a ``budget`` with ``latency`` (a fraction of the dense model's measured latency:
        per-layer times at every G, cached on disk) and for the report: when given or when the
        budget limits latency, the dense and the pruned model are timed side by side (a model
        measured over the latency budget is searched again with the budget lowered by the
        estimate's error, at most twice; ``plan.meta["latency_runs"]``), and the
        pruned model is returned in the setup's ``memory_format`` (default ``auto``: the format
        that runs the dense model faster, timed here; channels-last on this CPU).
    """
    parsed = check_arguments(groups, budget, mode, solver, strategy, coupling)
    min_channels = default_min_channels(min_channels, parsed)
    setup = LatencySetup.parse(latency) if latency is not None or parsed and parsed.latency is not None else None
    info = inspect(model, example_inputs, include_linear=include_linear, min_channels=min_channels)
    before = count(model, example_inputs)
    cost = SolverCostModel(solver, time_limit=layer_time_limit, seed=seed, executor=executor, n_jobs=n_jobs)
    build = partial(build_plan, model, example_inputs, groups=groups, strategy=strategy, solver=solver,
                    criterion=criterion, grads=grads, layers=layers, ignored_layers=ignored_layers,
                    include_linear=include_linear, min_channels=min_channels, max_groups=max_groups,
                    layer_time_limit=layer_time_limit, search_time_limit=search_time_limit, seed=seed,
                    progress=progress, executor=executor, n_jobs=n_jobs, coupling=coupling, latency=setup,
                    cost_model=cost, info=info, counts=before)
    runs = _runs_until_measured(build, model, example_inputs, mode, before, setup, parsed, progress)
    plan, result, solutions, out, exported, report = _latency_choice(runs, parsed)
    if len(runs) > 1:
        plan.meta["latency_runs"] = [{"internal_budget": r[0].meta.get("budget"),
                                      "estimated": r[0].meta.get("estimated_latency_ratio"),
                                      "measured": r[5].latency_ratio} for r in runs]
    if parsed is not None:
        plan.meta["budget"] = str(parsed)  # the caller's, not a lowered internal one
    return PruneResult(out, plan, report, result, exported, solutions)
