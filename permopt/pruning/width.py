"""Channel pruning: remove a share of the channels of every channel space that can lose them.

A channel space (:mod:`permopt.nn.channel_order`) is the set of tensors joined by channel-wise
operations — a conv's output, its BatchNorm, the ReLU, a residual add, the next layers' inputs.
Removing a channel means removing it everywhere in the space at once: the producers' output rows,
the BatchNorm and depthwise entries, the consumers' input columns. A space can lose channels when
no model input, output, concatenation or unknown operation reads it in full and no layer on it is
ignored (``ignored_layers``).

Which channels go: with calibration, those whose loss the consumers' refit makes up for best
(:func:`refit_aware_removal`, over the consumers' input second moments); without, those sending
the least output energy into the consumers (:func:`channel_importance`, the weights' ``l2``).
One removal order per space and session (:func:`removal_order`); a width removes a prefix. How many: ``width`` of each space's channels, rounded to a multiple of ``align``
(kernels run fastest on channel counts that fill their vector registers) and never below ``align``.

In a plan a removed channel carries the group label ``-1`` (:data:`permopt.solution.REMOVED`) in
every layer that writes or reads it; grouping (``groups=G``) then partitions the kept channels.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from ..criteria import DATA_CRITERIA
from ..nn.count import count
from ..nn.export import export
from ..nn.latency import LatencyTable
from ..nn.model_space import layer_scores
from ..plan import Plan
from ..solution import REMOVED
from .options import PruneConfig
from .protocol import Session


@dataclass
class Removal:
    """Channels removed per channel space: ``removed[s]`` the sorted indices of space ``s``'s
    removed channels (spaces that keep all are absent), and per layer touched the removed output
    rows and input columns (``None``: none)."""

    removed: dict[int, np.ndarray]
    rows: dict[str, np.ndarray | None]
    cols: dict[str, np.ndarray | None]

    def labels(self, name: str, out_channels: int, in_channels: int) -> tuple[np.ndarray, np.ndarray]:
        """``(row, col)`` labels of a dense layer: 0 for a kept channel, -1 for a removed one."""
        row, col = np.zeros(out_channels, np.int64), np.zeros(in_channels, np.int64)
        for labels, removed in ((row, self.rows.get(name)), (col, self.cols.get(name))):
            if removed is not None:
                labels[removed] = REMOVED
        return row, col

    def kept(self, name: str, out_channels: int, in_channels: int) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)`` the layer keeps."""
        row, col = self.labels(name, out_channels, in_channels)
        return np.flatnonzero(row >= 0), np.flatnonzero(col >= 0)


def kept_count(channels: int, width: float, align: int) -> int:
    """How many of ``channels`` a space keeps at ``width``: the nearest multiple of ``align``, at
    least ``align`` (all when there are no more than ``align``), never more than there are."""
    if channels <= align:
        return channels
    return int(min(channels, max(align, align * round(width * channels / align))))


def removable_spaces(spaces: Any, ignored: set[str]) -> list[int]:
    """Ids of the spaces that can lose channels: produced by layers, read in full by nothing fixed
    (model input/output, concatenation, unknown operation), no layer on them in ``ignored``."""
    out = []
    for s in range(len(spaces.channels)):
        layers = set(spaces.producers[s]) | set(spaces.consumers[s])
        if spaces.producers[s] and spaces.consumers[s] and not spaces.fixed_ends[s] and not layers & ignored:
            out.append(s)
    return out


def scores_or_l2(model: nn.Module, name: str, config: PruneConfig, stats: dict | None) -> np.ndarray:
    """The layer's criterion scores; ``l2`` where a data criterion has no statistics for it (a
    layer outside the selected ones that shares their channels)."""
    data = isinstance(config.criterion_used, str) and config.criterion_used in DATA_CRITERIA
    criterion = config.criterion_used if not data or (stats and name in stats) else "l2"
    return layer_scores(model, name, criterion, config.grads, stats)


def channel_importance(session: Session, config: PruneConfig, consumers: list[str]) -> np.ndarray:
    """Each channel's share of the output energy of the layers reading it, summed over them."""
    total: np.ndarray | None = None
    for name in consumers:
        column = scores_or_l2(session.model, name, config, session.stats).sum(axis=0)
        share = column / (column.sum() or 1.0)
        total = share if total is None else total + share
    assert total is not None
    return total


#: Dampening of each consumer's input second moments before inverting them (a share of their
#: mean diagonal, as OBS/OBC do): calibration sets smaller than a layer's inputs leave them singular.
DAMPENING = 0.01


def refit_aware_removal(model: nn.Module, consumers: list[str], stats: dict,
                        count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` channels whose removal costs the consumers least *after* their refit, chosen
    greedily (optimal brain surgeon, by channel): removing channel ``c`` from a consumer with
    weights ``W`` and input second moments ``H`` costs ``tr(W_c (H⁻¹_cc)⁻¹ W_cᵀ)`` of output
    energy once the other inputs are refitted; each consumer's cost is a share of its output
    energy ``tr(W H Wᵀ)``, summed over the consumers. Channels go in at most
    :data:`REMOVAL_STEPS` steps of equal size, the cheapest first; after each step ``W`` and
    ``H⁻¹`` are updated as the refit would. In the order they go (the first ``m`` are what a call
    for ``m`` returns: steps have the same size whatever ``count``), with the cost each had when it
    went."""
    states = []
    for name in consumers:
        st = stats[name]
        w: Any = model.get_submodule(name).weight
        W = w.detach().double().reshape(w.shape[0], -1).numpy().copy()
        H = st.gram / max(st.rows, 1)
        H = H + DAMPENING * float(np.mean(np.diag(H)) or 1.0) * np.eye(H.shape[0])
        energy = float(np.einsum("fi,ij,fj->", W, H, W)) or 1.0
        states.append([W, np.linalg.inv(H), st.kernel, energy])
    C = stats[consumers[0]].channels
    alive, removed, costs = np.ones(C, bool), list[int](), list[float]()
    per_step = -(-C // REMOVAL_STEPS)
    while len(removed) < count:
        cost = sum(_removal_costs(W, Hinv, k, alive) / energy for W, Hinv, k, energy in states)
        cost[~alive] = np.inf
        chosen = np.argsort(cost, kind="stable")[:min(per_step, count - len(removed))]
        alive[chosen] = False
        removed += chosen.tolist()
        costs += cost[chosen].tolist()
        for state in states:  # the refit's update: the kept inputs absorb what the removed ones carried
            W, Hinv, k, _ = state
            b = (chosen[:, None] * k + np.arange(k)).reshape(-1)
            step = np.linalg.solve(Hinv[np.ix_(b, b)], Hinv[b, :])
            state[0], state[1] = W - W[:, b] @ step, Hinv - Hinv[:, b] @ step
    return np.asarray(removed, np.int64), np.asarray(costs)


#: :func:`refit_aware_removal` removes a space's channels in at most this many steps.
REMOVAL_STEPS = 32


def _removal_costs(W: np.ndarray, Hinv: np.ndarray, k: int, alive: np.ndarray) -> np.ndarray:
    """``(C,)``: the output energy each channel's removal alone costs after the refit (removed
    channels: meaningless, their blocks of ``H⁻¹`` are zero)."""
    C = alive.size
    blocks = Hinv.reshape(C, k, C, k)[np.arange(C), :, np.arange(C), :]  # (C, k, k) diagonal blocks
    blocks[~alive] = np.eye(k)
    Wc = W.reshape(W.shape[0], C, k)
    return np.einsum("fck,ckl,fcl->c", Wc, np.linalg.inv(blocks), Wc)


def removal_order(session: Session, config: PruneConfig, space: int) -> tuple[np.ndarray, np.ndarray]:
    """Space ``space``'s channels in the order they go (down to :data:`MIN_KEPT` at least kept)
    and what each costs (a share of its consumers' output energy), made once per session and
    criterion: any width removes a prefix of it."""
    spaces, stats = session.channel_spaces(), session.stats or {}
    criterion = config.criterion_used
    key = ("removal order", space, criterion if isinstance(criterion, str) else id(criterion), id(config.grads))
    if key not in session.memo:
        consumers, C = spaces.consumers[space], spaces.channels[space]
        count = C - min(C, MIN_KEPT)
        if criterion in DATA_CRITERIA and all(n in stats and stats[n].gram is not None for n in consumers):
            session.memo[key] = refit_aware_removal(session.model, consumers, stats, count)
        else:
            score = channel_importance(session, config, consumers)
            order = np.argsort(score, kind="stable")[:count]
            session.memo[key] = order, score[order]
    return session.memo[key]


#: Removal orders stop when this many channels of a space are left (widths keep at least ``align``).
MIN_KEPT = 1


def choose_removal(session: Session, config: PruneConfig, kept: dict[int, int] | None = None) -> Removal:
    """The channels ``config.width`` removes from each removable space of the session's model
    (the least important first, ties by index: deterministic); ``kept`` overrides how many
    channels some spaces keep."""
    assert config.width is not None
    spaces = session.channel_spaces()
    if spaces is None:
        raise ValueError("width= needs the model traced by torch.fx, to find the layers that share each channel; "
                         "this model could not be traced")
    removal = Removal({}, {}, {})
    for s in removable_spaces(spaces, set(config.ignored_layers)):
        C = spaces.channels[s]
        keep = kept_count(C, config.width, config.align)
        if keep >= C:
            continue
        keep = kept.get(s, keep) if kept is not None else keep
        if keep >= C:
            continue
        removed = np.sort(removal_order(session, config, s)[0][:C - keep])
        removal.removed[s] = removed
        for name in spaces.producers[s]:
            removal.rows[name] = removed
        for name in spaces.consumers[s]:
            removal.cols[name] = removed
    return removal


def touched_layers(session: Session, config: PruneConfig) -> list[str]:
    """Every layer that could lose channels under ``config.width`` (the calibration pass covers
    them: their refit needs the dense outputs), in model order."""
    spaces = session.channel_spaces()
    if not config.may_remove_channels or spaces is None:
        return []
    names = {n for s in removable_spaces(spaces, set(config.ignored_layers))
             for n in spaces.producers[s] + spaces.consumers[s]}
    return [n for n, _ in session.model.named_modules() if n in names]


#: A budget picks the largest uniform width ``k / WIDTH_STEPS`` whose model meets it.
WIDTH_STEPS = 64


def width_for_budget(session: Session, config: PruneConfig, plan_of: Callable[[PruneConfig, dict | None], Plan]
                     ) -> tuple[float, dict[int, int] | None, dict[str, dict[str, float]]]:
    """The largest uniform width ``k / WIDTH_STEPS`` whose model meets ``config.budget`` (params
    and MACs counted on the export, latency measured side by side with the dense model in the
    config's latency setup), by bisection over ``k``; under a params or MACs budget, then the
    spaces widened one ``align`` step each where the budget still holds, the costliest channels to
    have lost first (:func:`fill_budget`); and what was tried (``{label: ratios}``). Counts fall as
    the width does, so the bisection finds the best uniform width; measured latency is noisy, so
    under a latency budget the answer may differ between runs. ``plan_of(config, kept)`` builds
    the plan of a config with some spaces' kept counts overridden."""
    budget, setup = config.budget, config.latency_setup
    assert budget is not None
    if setup is not None:
        setup = setup.resolve(session.model, session.example_inputs)
    dense = session.counts
    limits = budget.limits(dense.params, dense.macs, 1.0)
    tried: dict[str, dict[str, float]] = {}

    def meets(width: float, kept: dict[int, int] | None = None, label: str | None = None) -> bool:
        plan = plan_of(replace(config, width=width, budget=None, groups=1), kept)
        model = export(session.model, plan, session.example_inputs, session.info.graph_module).model
        c = count(model, session.example_inputs)
        ratios = {"params": c.params / dense.params, "macs": c.macs / dense.macs}
        if budget.latency is not None and setup is not None:
            setup.apply(model)
            t = LatencyTable(setup).models({"dense": session.model, "pruned": model}, session.example_inputs)
            ratios["latency"] = t["pruned"] / t["dense"]
        tried[label or f"{width:g}"] = ratios
        values = (c.params, c.macs, ratios.get("latency"))
        return all(lim is None or v is None or v <= lim * (1 + 1e-9) for v, lim in zip(values, limits))

    width = _bisect_width(meets, budget, config.align, tried)
    if width == 1.0 or budget.latency is not None:
        return width, None, tried
    return width, fill_budget(session, config, width, meets), tried


def _bisect_width(meets: Callable[[float], bool], budget: Any, align: int, tried: dict) -> float:
    """The largest ``k / WIDTH_STEPS`` that ``meets``; a ValueError when not even ``1 / WIDTH_STEPS`` does."""
    low, high = 0, WIDTH_STEPS  # invariant: width low/STEPS meets the budget (0: nothing does yet), high fails
    if meets(1.0):
        return 1.0
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if meets(mid / WIDTH_STEPS) else (low, mid)
    if low == 0:
        if not meets(1 / WIDTH_STEPS):
            raise ValueError(f"budget {budget} cannot be met by channel pruning: the narrowest model tried "
                             f"(width {1 / WIDTH_STEPS:g}, {align} channels per space at least) reaches "
                             f"{tried[f'{1 / WIDTH_STEPS:g}']}")
        low = 1
    return low / WIDTH_STEPS


def fill_budget(session: Session, config: PruneConfig, width: float,
                meets: Callable[[float, dict[int, int] | None, str | None], bool]) -> dict[int, int]:
    """Per space, how many channels to keep: ``width``'s counts, then each space widened by one
    ``align`` step where the budget still holds, in order of what its last removed channels cost
    (their removal costs summed: the costliest losses are undone first). One pass: at most one
    export per space that lost channels. A uniform width rounds to ``align`` and lands under a
    budget (ResNet-20 at MACs 0.25: 0.219); this spends the rest."""
    spaces = session.channel_spaces()
    kept = {s: kept_count(spaces.channels[s], width, config.align)
            for s in removable_spaces(spaces, set(config.ignored_layers))}
    value = {}
    for s, k in kept.items():
        C = spaces.channels[s]
        if k < C:
            _, costs = removal_order(session, config, s)
            value[s] = float(costs[max(0, C - k - config.align):C - k].sum())
    for s in sorted(value, key=lambda s: (-value[s], s)):
        trial = {**kept, s: min(spaces.channels[s], kept[s] + config.align)}
        if meets(width, trial, f"{width:g}, space {s} +{trial[s] - kept[s]}"):
            kept = trial
    return kept
