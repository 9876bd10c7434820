"""Coupled partitions: grouped layers that share a channel space share one partition of it.

Solved one layer at a time, every grouped layer gets its own channel order, and wherever
two of them meet in a channel space (conv → BN → ReLU → conv, a residual stream, …) the
export needs an index module (a gather) to translate one order into the other. Coupling
gives each space one partition into ``G_s`` groups; each layer on it groups its channels by
that partition (a layer with fewer groups ``G`` merges ``G_s / G`` consecutive ones), so one
channel order serves them all and the gathers disappear.

The joint problem — maximise the summed kept ratio of all layers — is solved by alternating
transportation: with every other space fixed, the best partition of one space is a
balanced transportation problem (each channel's profit per group summed over the layers
that touch it), solved exactly; sweeps repeat until a sweep gains nothing. Every step is
exact for its space, so the objective never drops; the start is the uncoupled solutions,
propagated from the heaviest layer outwards. Work is counted in sweeps: deterministic.

Modes: ``"none"`` (every layer alone), ``"chain"`` (couple only spaces with one producer
and one consumer, e.g. conv → BN → ReLU → conv), ``"full"`` (every space, residual streams
included), ``"strict"`` (``full``, and spaces that must keep their original order — model
inputs and outputs, concatenations, operations the export does not know — are *pinned* to
contiguous groups, so they need no gathers either, at more kept mass: DenseNet, RegNet).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from .problem import GroupingProblem, one_hot
from .solution import Solution
from .solvers.transport import assign_balanced

COUPLING_MODES = ("none", "chain", "full", "strict")


@dataclass
class CoupledLayer:
    """A grouped layer in the coupled problem: its scores ``(F, C)``, ``G``, and the ids of
    the spaces its output rows and input columns belong to."""

    name: str
    scores: np.ndarray
    groups: int
    out_space: int
    in_space: int


def validate_coupling(coupling: Any) -> str:
    """``coupling`` if it is a known mode, else a ValueError naming the modes."""
    if coupling not in COUPLING_MODES:
        raise ValueError(f"coupling must be one of {', '.join(map(repr, COUPLING_MODES))}, got {coupling!r}")
    return str(coupling)


def assign_spaces(spaces: Any, config: dict[str, int], mode: str) -> tuple[dict[str, tuple[int, int]], set[int]]:
    """Space ids ``(out, in)`` for every configured layer under ``mode``, and the pinned spaces.

    ``spaces`` is a :class:`permopt.nn.channel_order.ChannelSpaces`. A space coupled under ``mode`` is
    partitioned into ``G_s`` = the least common multiple of its layers' ``G`` (when that divides
    its channels; else their largest ``G``), and each layer whose ``G`` divides ``G_s`` shares
    it, merging ``G_s / G`` consecutive groups (G = 2 and 3 share a 6-group partition). Under
    ``strict`` a space with fixed ends is pinned (contiguous groups, even for one layer). Other
    layer sides get a private id of their own (solved as before).
    """
    validate_coupling(mode)
    sides: dict[str, list[int]] = {n: [-1, -1] for n in config}
    pinned: set[int] = set()
    for s in range(len(spaces.channels)):
        members = [(n, 0) for n in spaces.producers[s] if n in config] + [(n, 1) for n in spaces.consumers[s] if n in config]
        pin = mode == "strict" and spaces.fixed_ends[s] > 0
        coupled = mode in ("full", "strict") or mode == "chain" and len(spaces.producers[s]) == 1 == len(spaces.consumers[s])
        if not members or not coupled or len(members) < 2 and not pin:
            continue
        top = math.lcm(*(config[n] for n, _ in members))
        if spaces.channels[s] % top:
            top = max(config[n] for n, _ in members)
        for n, side in members:
            if top % config[n] == 0:
                sides[n][side] = s
        if pin:
            pinned.add(s)
    fresh = len(spaces.channels)
    for n in config:
        for side in (0, 1):
            if sides[n][side] < 0:
                sides[n][side], fresh = fresh, fresh + 1
    return {n: (o, i) for n, (o, i) in sides.items()}, pinned


class _Coupled:
    """Labels per space (``G_s`` groups each) and the layers' view of them."""

    def __init__(self, layers: list[CoupledLayer], pinned: set[int] = frozenset()):  # type: ignore[assignment]
        self.layers, self.pinned = layers, set(pinned)
        self.norm = [L.scores / max(float(L.scores.sum()), np.finfo(float).tiny) for L in layers]
        self.size: dict[int, int] = {}
        self.groups: dict[int, int] = {}
        for L in layers:
            for s, n in ((L.out_space, L.scores.shape[0]), (L.in_space, L.scores.shape[1])):
                if self.size.setdefault(s, n) != n:
                    raise ValueError(f"layer {L.name!r}: space {s} has {self.size[s]} channels, the layer {n}")
                self.groups[s] = math.lcm(self.groups.get(s, 1), L.groups)
        for s, G in self.groups.items():
            if self.size[s] % G:
                raise ValueError(f"space {s}: its layers' groups (least common multiple {G}) do not divide its "
                                 f"{self.size[s]} channels")
        self.labels: dict[int, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every label but the pinned spaces' contiguous groups (identity channel order)."""
        self.labels = {s: np.arange(self.size[s]) // (self.size[s] // self.groups[s]) for s in self.pinned
                       if s in self.size}

    def layer_labels(self, k: int, s: int) -> np.ndarray:
        """Layer ``k``'s group of each channel of space ``s``: the space's group, merged."""
        return self.labels[s] // (self.groups[s] // self.layers[k].groups)

    def kept(self, k: int) -> float:
        """Layer ``k``'s kept ratio under the current labels."""
        L = self.layers[k]
        r, c = self.layer_labels(k, L.out_space), self.layer_labels(k, L.in_space)
        return float(np.trace(one_hot(r, L.groups).T @ self.norm[k] @ one_hot(c, L.groups)))

    def objective(self) -> float:
        return sum(self.kept(k) for k in range(len(self.layers)))

    def profit(self, s: int) -> np.ndarray:
        """``(n_s, G_s)``: each channel's kept ratio per group, from the layers whose other side is labelled."""
        G = self.groups[s]
        out = np.zeros((self.size[s], G))
        for k, L in enumerate(self.layers):
            for here, there, S in ((L.out_space, L.in_space, self.norm[k]), (L.in_space, L.out_space, self.norm[k].T)):
                if here == s and there in self.labels:
                    per_group = S @ one_hot(self.layer_labels(k, there), L.groups)
                    out += per_group[:, np.arange(G) // (G // L.groups)]
        return out

    def improve(self, s: int) -> None:
        if s not in self.pinned:
            self.labels[s] = assign_balanced(self.profit(s))[0]


def _refine(labels: np.ndarray, factor: int) -> np.ndarray:
    """Split each group into ``factor`` equal parts (by channel index): a balanced finer partition."""
    out = labels * factor
    for g in np.unique(labels):
        idx = np.flatnonzero(labels == g)
        out[idx] += np.arange(idx.size) * factor // idx.size
    return out


def _start(state: _Coupled, starts: list[tuple[np.ndarray, np.ndarray]], order: list[tuple[int, int]]) -> None:
    """Label the spaces outwards from the layer sides in ``order`` (layer, 0 = rows / 1 = columns):
    the first unlabelled space of each connected part takes that side's uncoupled groups, every
    other one the best partition given its labelled neighbours."""
    neighbours: dict[int, list[int]] = {}
    for L in state.layers:
        neighbours.setdefault(L.out_space, []).append(L.in_space)
        neighbours.setdefault(L.in_space, []).append(L.out_space)
    for s in list(state.labels):  # pinned spaces are labelled already: propagate from them first
        _propagate(state, neighbours, s)
    for k, side in order:
        L = state.layers[k]
        seed = (L.out_space, L.in_space)[side]
        if seed in state.labels:
            continue
        state.labels[seed] = _refine(starts[k][side], state.groups[seed] // L.groups)
        _propagate(state, neighbours, seed)


def _propagate(state: _Coupled, neighbours: dict[int, list[int]], seed: int) -> None:
    """Label every unlabelled space reachable from ``seed``, each given its labelled neighbours."""
    queue = deque(neighbours[seed])
    while queue:
        s = queue.popleft()
        if s not in state.labels:
            state.improve(s)
            queue.extend(neighbours[s])


def _sweep(state: _Coupled, sweep_limit: int) -> float:
    """Alternate over the spaces until a sweep gains at most 1e-9 of the objective; keep the best labels."""
    spaces = sorted(state.labels)
    best = prev = state.objective()
    best_labels = dict(state.labels)
    for _ in range(sweep_limit):
        for s in spaces:
            state.improve(s)
        obj = state.objective()
        if obj > best:
            best, best_labels = obj, dict(state.labels)
        if obj - prev <= 1e-9 * abs(prev):
            break
        prev = obj
    state.labels = best_labels
    return best


def solve_coupled(layers: list[CoupledLayer], starts: list[tuple[np.ndarray, np.ndarray]],
                  sweep_limit: int = 20, restarts: int = 4,
                  pinned: set[int] = frozenset()) -> list[tuple[np.ndarray, np.ndarray]]:  # type: ignore[assignment]
    """Coupled groups ``(row_groups, col_groups)`` for every layer, from uncoupled ``starts``.

    Up to ``restarts`` starts, each propagated from one side of one of the heaviest layers (rows
    of the heaviest, its columns, rows of the next, …); from each,
    alternating transportation over the spaces (ascending id) for at most ``sweep_limit``
    sweeps. Returns the best labelling (the summed kept ratio; ties to the earlier start).
    ``pinned`` spaces keep contiguous groups throughout.
    """
    weight = sorted(range(len(layers)), key=lambda k: (-float(layers[k].scores.sum()), k))
    sides = [(k, side) for k in weight for side in (0, 1)]
    best_value, best_labels, state = -np.inf, {}, _Coupled(layers, pinned)
    for first in sides[:max(1, restarts)]:
        state.reset()
        _start(state, starts, [first] + sides)
        value = _sweep(state, sweep_limit)
        if value > best_value:
            best_value, best_labels = value, dict(state.labels)
    state.labels = best_labels
    return [(state.layer_labels(k, L.out_space), state.layer_labels(k, L.in_space)) for k, L in enumerate(layers)]


def couple(solutions: dict[str, Solution], scores: dict[str, np.ndarray], sides: dict[str, tuple[int, int]],
           pinned: set[int] = frozenset(), sweep_limit: int = 20) -> dict[str, Solution]:  # type: ignore[assignment]
    """Coupled solutions for the layers that share a space or touch a pinned one (the others are
    returned as given).

    ``sides`` maps each layer to its ``(out, in)`` space ids and ``pinned`` names the spaces kept in
    contiguous groups (:func:`assign_spaces`). Each coupled solution keeps its uncoupled solution's
    certified bound (coupling only restricts a layer), so its gap stays honest;
    ``info["uncoupled_kept_ratio"]`` records what coupling cost.
    """
    use = {s for n in solutions for s in sides[n]}
    shared = {s for s in use if sum(s in sides[n] for n in solutions) > 1} | (set(pinned) & use)
    names = [n for n in solutions if shared & set(sides[n])]
    if not names:
        return dict(solutions)
    layers = [CoupledLayer(n, scores[n], solutions[n].groups, *sides[n]) for n in names]
    groups = solve_coupled(layers, [(solutions[n].row_groups, solutions[n].col_groups) for n in names], sweep_limit,
                           pinned=set(pinned) & use)
    out = dict(solutions)
    for n, (r, c) in zip(names, groups):
        sol = solutions[n]
        out[n] = Solution.from_groups(
            GroupingProblem(scores[n], sol.groups), r, c, solver=f"{sol.solver}+coupled", upper_bound=sol.upper_bound,
            bound_by=sol.info.get("bound_method", sol.solver), time_s=sol.time_s,
            info={"uncoupled_kept_ratio": sol.kept_ratio, "delegate": f"{sol.info.get('delegate', sol.solver)}+coupled"})
    return out
