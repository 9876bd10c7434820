"""Building a plan from a :class:`~permopt.pruning.session.PruningSession`: choose G per layer
(uniform, or a budget search) and solve every grouped layer."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from ..caller import warn
from ..coupling import assign_spaces, couple
from ..limits import within
from ..nn.inspect import ModelInfo, signature
from ..nn.model_space import layer_scores
from ..parallel import map_jobs
from ..plan import LayerPlan, Plan
from ..progress import progress_bar
from ..search import Budget, SearchResult, SearchSpace, search
from ..solvers.run import solve_layer
from .options import PruneConfig
from .protocol import Session

#: A grouped layer keeping less than this share of its criterion mass is named in a warning.
LOW_KEPT_RATIO = 0.05


@dataclass
class BuiltPlan:
    """What :func:`build_plan` returns: the plan, the budget search's result (None for uniform
    ``groups``) and each grouped layer's solution."""

    plan: Plan
    search: SearchResult | None = None
    solutions: dict = field(default_factory=dict)


def build_plan(session: Session, config: PruneConfig) -> BuiltPlan:
    """Choose G per layer (``config.groups`` everywhere it divides, or a ``config.budget`` search)
    and solve each grouped layer, from the session's analysis, statistics and cost model."""
    info, names, model = session.info, session.names, session.model
    criterion = config.criterion_used
    plan = Plan(meta={"criterion": criterion if isinstance(criterion, str) else "custom", "solver": config.solver,
                      "model_signature": signature(model)})
    built = BuiltPlan(plan)
    stats = session.stats
    if config.budget is None:
        config_g = _uniform(info, names, config, plan)
    else:
        plan.meta["cost"] = config.cost_kind
        built.search, config_g, built.solutions = _searched(session, config, plan)
    built.solutions.update(_solve_layers(model, config_g, built.solutions, config, stats))
    if config.coupling_mode != "none":
        built.solutions = _couple(session, config_g, built.solutions, config, plan)
    for n in names:
        L = info[n]
        plan.layers[n] = (LayerPlan.from_solution(n, built.solutions[n]) if n in config_g
                          else LayerPlan.dense(n, L.out_channels, L.in_channels))
    _warn_low_kept(plan)
    return built


def _uniform(info: ModelInfo, names: list[str], config: PruneConfig, plan: Plan) -> dict[str, int]:
    """``{layer: G}`` for uniform ``groups``: every selected layer it divides."""
    groups = int(config.groups or 0)
    chosen = {n: groups for n in names if groups in info[n].candidates}
    plan.meta.update(groups=groups, left_dense=[n for n in names if n not in chosen])
    if not chosen:
        raise ValueError(f"groups={groups} divides no selected layer's channels (with >= "
                         f"{config.min_channels_per_group} per group); candidates: "
                         f"{ {n: info[n].candidates for n in names} }")
    return chosen


def _searched(session: Session, config: PruneConfig, plan: Plan) -> tuple[SearchResult, dict, dict]:
    """The budget search: its result, ``{layer: G}`` for the grouped layers, and their solutions."""
    budget = config.budget
    assert budget is not None
    space = session.search_space(config)
    _check_budget(budget, space, session.info, config)
    cost = session.cost_model(config)
    cost.precompute(space, progress=config.progress)
    result = search(space, budget, config.strategy, cost_model=cost, seed=config.seed,
                    time_limit=config.search_time_limit)
    if not result.feasible:
        raise ValueError(f"budget {budget} was not met by strategy {config.strategy!r}: {result.message}")
    chosen = {n: g for n, g in result.config.items() if g > 1}
    solutions = {n: cost.solutions[(n, g)] for n, g in chosen.items() if (n, g) in cost.solutions}
    plan.meta.update(budget=str(budget), strategy=config.strategy, objective=result.objective)
    if result.latency is not None and space.dense_latency:
        plan.meta["estimated_latency_ratio"] = result.latency / space.dense_latency
        plan.meta["memory_format"] = space.meta["memory_format"]
    return result, chosen, solutions


def _budget_hints(info: ModelInfo, config: PruneConfig) -> list[str]:
    """What would let a budget reach further than the largest G everywhere."""
    hints = []
    if not config.include_linear and any("include_linear" in why for why in info.skipped.values()):
        hints.append("include_linear=True (Linear layers are left dense)")
    if config.max_groups is not None and any(L.candidates[-1] > config.max_groups for L in info):
        hints.append(f"a larger max_groups (now {config.max_groups})")
    stuck = [L.name for L in info if len(L.candidates) < 2]
    if stuck:
        hints.append(f"a smaller min_channels: {len(stuck)} layers have no G > 1 at the current one")
    return hints


def _check_budget(budget: Budget, space: SearchSpace, info: ModelInfo, config: PruneConfig) -> None:
    """Warn about absolute budgets that constrain nothing; refuse one no configuration meets,
    naming the smallest reachable values and what would reach further."""
    limits = budget.limits(space.dense_params, space.dense_macs, space.dense_latency)
    for what, limit, dense in (("params", limits[0], space.dense_params), ("macs", limits[1], space.dense_macs)):
        value = getattr(budget, what)
        if value is not None and value > 1 and limit >= dense:  # an absolute count at or above dense
            warn(f"budget {what}={value:g} (an absolute count) is not below the dense model's {dense}: "
                 f"it constrains nothing; a fraction of dense is a number in (0, 1]")
    smallest = space.smallest
    if all(within(v, lim) for v, lim in zip(smallest, limits)):
        return
    hints = _budget_hints(info, config)
    # fractions rounded up, so that the value printed, copied back as the budget, is reachable
    reach = [f"{smallest[0]:.0f} params ({_up(smallest[0] / space.dense_params)} of dense)",
             f"{smallest[1]:.0f} MACs ({_up(smallest[1] / space.dense_macs)} of dense)"]
    if space.dense_latency is not None:
        reach.append(f"{1e3 * smallest[2]:.3g} ms ({_up(smallest[2] / space.dense_latency)} of dense, measured)")
    raise ValueError(f"budget {budget} cannot be met: the cheapest G on every searched layer reaches "
                     f"{', '.join(reach)}" + (f"; to reach further try {'; '.join(hints)}" if hints else ""))


def _up(fraction: float) -> str:
    """``fraction`` to three decimals, rounded up (0.33237 -> 0.333)."""
    return f"{math.ceil(fraction * 1000 - 1e-9) / 1000:.3f}"


def _warn_low_kept(plan: Plan) -> None:
    """One warning naming the grouped layers that keep less than :data:`LOW_KEPT_RATIO` (a budget
    search may put G=64 on a layer: it then works on about 2% of its weights)."""
    low = sorted((lp.kept_ratio, n, lp.groups) for n, lp in plan.pruned().items() if lp.kept_ratio < LOW_KEPT_RATIO)
    if low:
        named = ", ".join(f"{n} (G={g}, kept {k:.3f})" for k, n, g in low[:5])
        more = f" and {len(low) - 5} more" if len(low) > 5 else ""
        warn(f"{len(low)} grouped layer(s) keep less than {LOW_KEPT_RATIO:.0%} of their weight mass: "
             f"{named}{more}; a smaller G keeps more (groups=, or max_groups= under a budget)")


def _couple(session: Session, chosen: dict, solutions: dict, config: PruneConfig, plan: Plan) -> dict:
    """Re-solve the chosen layers jointly per channel space (read off the model's one trace);
    records the kept-ratio cost in ``plan.meta``."""
    if not chosen:  # every layer stays dense: nothing to couple
        return solutions
    spaces = session.channel_spaces()
    if spaces is None:
        return solutions
    sides, pinned = assign_spaces(spaces, chosen, config.coupling_mode)
    mine = {n: solutions[n] for n in chosen}
    scores = {n: layer_scores(session.model, n, config.criterion_used, config.grads, session.stats) for n in chosen}
    coupled = couple(mine, scores, sides, pinned)
    plan.meta["coupling"] = {"mode": config.coupling_mode,
                             "mean_kept_ratio": float(np.mean([s.kept_ratio for s in coupled.values()])),
                             "mean_kept_ratio_uncoupled": float(np.mean([s.kept_ratio for s in mine.values()]))}
    return {**solutions, **coupled}


def _solve_layers(model: nn.Module, chosen: dict, known: dict, config: PruneConfig, stats: dict | None) -> dict:
    """Solutions for the chosen layers not solved yet (one solver run each, on the executor)."""
    todo = [n for n in chosen if n not in known]
    bar = progress_bar(len(todo), f"solving layers ({config.solver})", "layer", config.progress)
    jobs = [(layer_scores(model, n, config.criterion_used, config.grads, stats), chosen[n], n, config.solver,
             config.layer_time_limit, config.seed) for n in todo]
    out = dict(zip(todo, map_jobs(solve_layer, jobs, config.executor, config.n_jobs, bar)))
    if bar:
        bar.close()
    return out
