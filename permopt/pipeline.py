"""One call to prune a model: inspect → (search) → solve per layer → mask or export → report."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from torch import nn

from .criteria import scores_from_weight
from .nn import ExportResult, apply_masks, count, export, inspect
from .plan import LayerPlan, Plan
from .problem import GroupingProblem
from .search import SearchResult, SearchSpace, SolverCostModel, search
from .solvers import get as get_solver
from .solvers import run


@dataclass
class Report:
    """Per-layer and total parameters/MACs before and after, with each layer's G and kept ratio."""

    layers: list[dict]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    index_modules: int = 0

    def table(self) -> str:
        """A plain-text table, one row per conv/linear layer plus totals."""
        head = f"{'layer':<28} {'G':>3} {'kept':>7} {'params':>10} {'-> after':>10} {'MACs':>12} {'-> after':>12}"
        lines = [head, "-" * len(head)]
        for r in self.layers:
            kept = f"{r['kept_ratio']:.3f}" if r["groups"] > 1 else "-"
            lines.append(f"{r['name'][:28]:<28} {r['groups']:>3} {kept:>7} {r['params_before']:>10} "
                         f"{r['params_after']:>10} {r['macs_before']:>12} {r['macs_after']:>12}")
        lines.append("-" * len(head))
        lines.append(f"{'total (all parameters)':<28} {'':>3} {'':>7} {self.params_before:>10} {self.params_after:>10} "
                     f"{self.macs_before:>12} {self.macs_after:>12}")
        lines.append(f"params x{self.params_after / self.params_before:.3f}, MACs x{self.macs_after / self.macs_before:.3f}, "
                     f"{self.index_modules} channel-index modules")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"layers": self.layers, "params_before": self.params_before, "params_after": self.params_after,
                "macs_before": self.macs_before, "macs_after": self.macs_after, "index_modules": self.index_modules}


@dataclass
class PruneResult:
    """What :func:`prune` returns: the pruned model, the plan that rebuilds it, and the report."""

    model: nn.Module
    plan: Plan
    report: Report
    search: SearchResult | None = None
    export: ExportResult | None = None
    solutions: dict = field(default_factory=dict)


def _select(info, layers, ignored_layers):
    names = list(info.layers)
    if layers is not None:
        unknown = set(layers) - set(names)
        if unknown:
            raise KeyError(f"unknown or non-groupable layers {sorted(unknown)}; groupable: {names}"
                           + (f"; skipped: { {n: info.skipped[n] for n in unknown if n in info.skipped} }"
                              if unknown & set(info.skipped) else ""))
        names = [n for n in names if n in set(layers)]
    unknown = set(ignored_layers) - set(info.layers) - set(info.skipped)
    if unknown:
        raise KeyError(f"ignored_layers names unknown layers {sorted(unknown)}")
    return [n for n in names if n not in set(ignored_layers)]


def build_plan(model: nn.Module, example_inputs, *, groups: int | None = None, budget=None, strategy: str = "exact",
               solver: str = "auto", criterion="l2", grads: dict | None = None, layers=None, ignored_layers=(),
               include_linear: bool = False, min_channels: int = 4, max_groups: int | None = 64,
               time_limit: float | None = None, seed: int | None = 0, progress: bool = True):
    """Choose G per layer (uniform ``groups`` or a ``budget`` search) and solve each layer.

    Returns ``(plan, search_result or None, solutions)``; see :func:`prune` for the arguments.
    """
    if (groups is None) == (budget is None):
        raise ValueError("give exactly one of groups= (uniform G) or budget= (searched G per layer)")
    get_solver(solver)
    info = inspect(model, example_inputs, include_linear=include_linear, min_channels=min_channels)
    names = _select(info, layers, ignored_layers)
    grads = grads or {}

    def scores(name):
        w = model.get_submodule(name).weight
        if criterion == "taylor" and name not in grads:
            raise ValueError(f"criterion 'taylor' needs grads={{name: weight gradient}}; missing {name!r}")
        return scores_from_weight(w, criterion, grads.get(name))

    plan = Plan(meta={"criterion": criterion if isinstance(criterion, str) else "custom", "solver": solver})
    solutions, result = {}, None
    if groups is not None:
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"groups must be a positive int, got {groups!r}")
        config = {n: groups for n in names if groups in info[n].candidates}
        skipped = [n for n in names if n not in config]
        plan.meta.update(groups=groups, left_dense=skipped)
        if not config:
            raise ValueError(f"groups={groups} divides no selected layer's channels (with >= {min_channels} "
                             f"per group); candidates: { {n: info[n].candidates for n in names} }")
    else:
        space = SearchSpace.from_model(model, example_inputs, criterion=criterion, include_linear=include_linear,
                                       min_channels=min_channels, max_groups=max_groups, layers=names)
        cost = SolverCostModel(solver, time_limit=time_limit, seed=seed)
        cost.precompute(space, progress=progress)
        result = search(space, budget, strategy, cost_model=cost, seed=seed)
        if not result.feasible:
            raise ValueError(f"budget {budget} cannot be met even with the largest G everywhere "
                             f"(best: {result.params} params, {result.macs} MACs): {result.message}")
        config = {n: g for n, g in result.config.items() if g > 1}
        solutions = {n: cost.solutions[(n, g)] for n, g in config.items() if (n, g) in cost.solutions}
        plan.meta.update(budget=str(budget), strategy=strategy, objective=result.objective)

    todo = [n for n in config if n not in solutions]
    it = todo
    if progress and todo:
        from tqdm.auto import tqdm
        it = tqdm(todo, desc=f"solving layers ({solver})", unit="layer")
    for n in it:
        solutions[n] = run(GroupingProblem(scores(n), config[n], name=n), solver, time_limit=time_limit, seed=seed)
    for n in names:
        L = info[n]
        plan.layers[n] = (LayerPlan.from_solution(n, solutions[n]) if n in config
                          else LayerPlan.dense(n, L.out_channels, L.in_channels))
    return plan, result, solutions


def apply_plan(model: nn.Module, plan: Plan, example_inputs, mode: str = "export"):
    """Apply a plan to a dense model: ``"export"`` (grouped layers) or ``"mask"`` (masked copy).

    Returns ``(model, export_result)``; the input model is left untouched.
    """
    if mode == "export":
        res = export(model, plan, example_inputs)
        return res.model, res
    if mode == "mask":
        return apply_masks(copy.deepcopy(model), plan), None
    raise ValueError(f"mode must be 'export' or 'mask', got {mode!r}")


def make_report(model: nn.Module, plan: Plan, example_inputs, exported: ExportResult | None = None) -> Report:
    """Counts before (``model``) and after (its export under ``plan``), per layer and total."""
    exported = exported or export(model, plan, example_inputs)
    before, after = count(model, example_inputs), count(exported.model, example_inputs)
    rows = []
    for name, b in before.layers.items():
        a = after.layers.get(name, b)
        lp = plan.layers.get(name)
        rows.append({"name": name, "groups": lp.groups if lp else 1, "kept_ratio": lp.kept_ratio if lp else 1.0,
                     "params_before": b["params"], "params_after": a["params"],
                     "macs_before": b["macs"], "macs_after": a["macs"]})
    return Report(rows, before.params, after.params, before.macs, after.macs, len(exported.index_modules))


def prune(model: nn.Module, example_inputs, *, groups: int | None = None, budget=None, strategy: str = "exact",
          solver: str = "auto", criterion="l2", grads: dict | None = None, layers=None, ignored_layers=(),
          include_linear: bool = False, min_channels: int = 4, max_groups: int | None = 64, mode: str = "export",
          time_limit: float | None = None, seed: int | None = 0, progress: bool = True) -> PruneResult:
    """Prune ``model`` into group convolutions in one call.

    Parameters
    ----------
    model, example_inputs : the dense model and inputs for tracing (a tensor or a tuple).
    groups : uniform ``G`` for every layer it divides; or
    budget : ``{"params": 0.5}``, ``{"macs": 0.4}``, both, or "params=0.5": ``G`` per layer is
        chosen by the search ``strategy`` (default ``exact``).
    solver : permutation solver per layer (default ``auto``: exact when provable, else ``best``).
    criterion : ``l2`` (default), ``l1``, ``taylor`` (with ``grads={name: grad}``) or a callable.
    layers / ignored_layers : restrict which layers are grouped.
    include_linear, min_channels, max_groups : which layers and ``G`` are candidates.
    mode : ``export`` (real grouped layers) or ``mask`` (dense layers with masks, for fine-tuning).
    time_limit : seconds per layer solve; seed : for reproducibility; progress : tqdm bars.
    """
    plan, result, solutions = build_plan(
        model, example_inputs, groups=groups, budget=budget, strategy=strategy, solver=solver, criterion=criterion,
        grads=grads, layers=layers, ignored_layers=ignored_layers, include_linear=include_linear,
        min_channels=min_channels, max_groups=max_groups, time_limit=time_limit, seed=seed, progress=progress)
    out, exported = apply_plan(model, plan, example_inputs, mode)
    report = make_report(model, plan, example_inputs, exported)
    return PruneResult(out, plan, report, result, exported, solutions)
