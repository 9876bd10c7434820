"""Building a plan from a :class:`~permopt.pruning.session.PruningSession`: choose G per layer
(uniform, or a budget search) and solve every grouped layer."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from torch import nn

from ..caller import warn
from ..coupling import assign_spaces, couple
from ..limits import within
from ..nn.inspect import ModelInfo, common_divisors, signature
from ..nn.model_space import layer_scores
from ..parallel import map_jobs
from ..plan import LayerPlan, Plan
from ..progress import progress_bar
from ..search import Budget, SearchResult, SearchSpace, search
from ..solvers.run import solve_layer
from .options import PruneConfig
from .protocol import Session
from .width import Removal, choose_removal, removable_spaces, scores_or_l2, width_for_budget

#: A grouped layer keeping less than this share of its criterion mass is named in a warning.
LOW_KEPT_RATIO = 0.05


@dataclass
class BuiltPlan:
    """What :func:`build_plan` returns: the plan, the budget search's result (None for uniform
    ``groups``) and each grouped layer's solution."""

    plan: Plan
    search: SearchResult | None = None
    solutions: dict = field(default_factory=dict)


def build_plan(session: Session, config: PruneConfig, kept: dict[int, int] | None = None) -> BuiltPlan:
    """Choose the channels ``config.width`` removes, then G per layer (``config.groups`` everywhere
    it divides the kept channels, or a ``config.budget`` search) and solve each grouped layer on
    its kept channels, from the session's analysis, statistics and cost model. ``kept`` overrides
    how many channels some spaces keep (a budget's fill)."""
    if config.budget is not None and budget_structure(session, config) == "channels":
        return _channels_for_budget(session, config)
    info, names, model = session.info, session.names, session.model
    criterion = config.criterion_used
    plan = Plan(meta={"criterion": criterion if isinstance(criterion, str) else "custom", "solver": config.solver,
                      "model_signature": signature(model)})
    built = BuiltPlan(plan)
    removal = choose_removal(session, config, kept) if config.width is not None else Removal({}, {}, {})
    if config.width is not None:
        plan.meta["width"] = {"width": config.width, "align": config.align, "spaces": len(removal.removed),
                              "removed_channels": int(sum(r.size for r in removal.removed.values()))}
    if config.budget is None:
        config_g = _uniform(info, names, config, plan, removal)
    else:
        plan.meta.update(cost=config.cost_kind, structure="groups")
        built.search, config_g, built.solutions = _searched(session, config, plan)
    built.solutions.update(_solve_layers(model, config_g, built.solutions, config, session.stats, removal))
    if config.coupling_mode != "none":
        built.solutions = _couple(session, config_g, built.solutions, config, plan, removal)
    for n in dict.fromkeys((*names, *removal.rows, *removal.cols)):
        F, C = _channels(model, n)
        row, col = removal.labels(n, F, C)
        lp = (_with_removed(LayerPlan.from_solution(n, built.solutions[n]), row, col) if n in config_g
              else replace(LayerPlan.dense(n, F, C), row_groups=row, col_groups=col))
        if lp.removes:  # the solver's ratio is of the kept channels' mass; the plan's, of the whole layer's
            lp.kept_ratio *= _kept_share(model, n, config, session.stats, removal)
        plan.layers[n] = lp
    _warn_low_kept(plan)
    return built


def budget_structure(session: Session, config: PruneConfig) -> str:
    """What ``config.budget`` varies: ``config.structure``, or by default channels under a latency
    budget where the model has channels it can lose, else groups."""
    if config.structure is not None:
        return config.structure
    if config.budget is None or config.budget.latency is None:
        return "groups"
    spaces = session.channel_spaces()
    return "channels" if spaces is not None and removable_spaces(spaces, set(config.ignored_layers)) else "groups"


def _channels_for_budget(session: Session, config: PruneConfig) -> BuiltPlan:
    """The plan of the largest uniform width meeting ``config.budget`` (``structure="channels"``)."""
    width, kept, tried = width_for_budget(session, config, lambda c, k: build_plan(session, c, k).plan)
    built = build_plan(session, replace(config, width=width, budget=None, groups=1), kept)
    built.plan.meta.update(budget=str(config.budget), structure="channels", widths_tried=tried)
    return built


def _channels(model: nn.Module, name: str) -> tuple[int, int]:
    w: Any = model.get_submodule(name).weight
    return int(w.shape[0]), int(w.shape[1])


def _with_removed(lp: LayerPlan, row: np.ndarray, col: np.ndarray) -> LayerPlan:
    """``lp`` (solved on the kept channels) over all of the layer's channels, removed ones -1."""
    rows, cols = row.copy(), col.copy()
    rows[row >= 0], cols[col >= 0] = lp.row_groups, lp.col_groups
    return replace(lp, row_groups=rows, col_groups=cols)


def _uniform(info: ModelInfo, names: list[str], config: PruneConfig, plan: Plan, removal: Removal) -> dict[str, int]:
    """``{layer: G}`` for uniform ``groups``: every selected layer whose (kept) channels it divides
    with at least ``min_channels`` per group."""
    groups, minimum = int(config.groups or 1), config.min_channels_per_group
    candidates, unfit = {}, []
    for n in names:
        L = info[n]
        rows, cols = removal.kept(n, L.out_channels, L.in_channels)
        candidates[n] = L.candidates if (rows.size, cols.size) == (L.out_channels, L.in_channels) else \
            [g for g in common_divisors(rows.size, cols.size, minimum)
             if config.max_groups is None or g <= config.max_groups]
        narrow = min(rows.size, cols.size) < groups * minimum  # e.g. an image's 3 channels: nothing to warn about
        if groups > 1 and groups not in candidates[n] and not narrow and (rows.size % groups or cols.size % groups):
            unfit.append(n)
    chosen = {n: groups for n in names if groups > 1 and groups in candidates[n]}
    plan.meta.update(groups=groups, left_dense=[n for n in names if n not in chosen])
    if not chosen and (groups > 1 or config.width is None):
        raise ValueError(f"groups={groups} divides no selected layer's channels (with >= "
                         f"{config.min_channels_per_group} per group); candidates: {candidates}")
    if unfit:  # a model pruned elsewhere to odd widths (26, 52, 103) would otherwise stay dense unnoticed
        warn(f"groups={groups} does not divide the channels of {len(unfit)} selected layer(s), left dense: "
             f"{', '.join(unfit[:4])}{' ...' if len(unfit) > 4 else ''}; width= with align= a multiple of {groups} "
             f"makes every layer fit")
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


def _couple(session: Session, chosen: dict, solutions: dict, config: PruneConfig, plan: Plan,
            removal: Removal) -> dict:
    """Re-solve the chosen layers jointly per channel space (read off the model's one trace) on
    their kept channels (every layer on a space keeps the same); records the kept-ratio cost in
    ``plan.meta``."""
    if not chosen:  # every layer stays dense: nothing to couple
        return solutions
    spaces = session.channel_spaces()
    if spaces is None:
        return solutions
    kept_spaces = replace(spaces, channels=[c - removal.removed[s].size if s in removal.removed else c
                                               for s, c in enumerate(spaces.channels)])
    sides, pinned = assign_spaces(kept_spaces, chosen, config.coupling_mode)
    mine = {n: solutions[n] for n in chosen}
    scores = {n: _kept_scores(session.model, n, config, session.stats, removal) for n in chosen}
    coupled = couple(mine, scores, sides, pinned)
    plan.meta["coupling"] = {"mode": config.coupling_mode,
                             "mean_kept_ratio": float(np.mean([s.kept_ratio for s in coupled.values()])),
                             "mean_kept_ratio_uncoupled": float(np.mean([s.kept_ratio for s in mine.values()]))}
    return {**solutions, **coupled}


def _kept_scores(model: nn.Module, name: str, config: PruneConfig, stats: dict | None,
                 removal: Removal) -> np.ndarray:
    """The layer's criterion scores on the channels it keeps."""
    scores = layer_scores(model, name, config.criterion_used, config.grads, stats)
    rows, cols = removal.kept(name, *scores.shape)
    return scores if (rows.size, cols.size) == scores.shape else scores[np.ix_(rows, cols)]


def _kept_share(model: nn.Module, name: str, config: PruneConfig, stats: dict | None, removal: Removal) -> float:
    """The share of the layer's criterion mass on the channels it keeps."""
    scores = scores_or_l2(model, name, config, stats)
    rows, cols = removal.kept(name, *scores.shape)
    return float(scores[np.ix_(rows, cols)].sum() / (scores.sum() or 1.0))


def _solve_layers(model: nn.Module, chosen: dict, known: dict, config: PruneConfig, stats: dict | None,
                  removal: Removal) -> dict:
    """Solutions for the chosen layers not solved yet (one solver run each, on the executor), on
    their kept channels."""
    todo = [n for n in chosen if n not in known]
    bar = progress_bar(len(todo), f"solving layers ({config.solver})", "layer", config.progress)
    jobs = [(_kept_scores(model, n, config, stats, removal), chosen[n], n, config.solver,
             config.layer_time_limit, config.seed) for n in todo]
    out = dict(zip(todo, map_jobs(solve_layer, jobs, config.executor, config.n_jobs, bar)))
    if bar:
        bar.close()
    return out
