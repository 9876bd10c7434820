"""Configuration-search strategies behind one interface and a registry.

A strategy is a function ``fn(problem, *, time_limit=None, seed=None, **options)`` or a
:class:`Strategy` subclass; it returns a choice (one candidate index per layer) or a
:class:`SearchResult`. ``problem`` is a :class:`ConfigProblem`; its arrays ``obj``,
``use`` (params, MACs, latency per layer and candidate; after ``evaluate_all()``) and
``totals``/``feasible`` are all a strategy needs.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..limits import Deadline, positive_number, validate_count, within
from ..registry import Registry
from .config import ConfigProblem
from .result import SearchResult


class Strategy(ABC):
    """Base class for class-style strategies (set ``exact = True`` if it proves optimality)."""

    exact: bool = False

    @abstractmethod
    def search(self, problem: ConfigProblem, *, time_limit: float | None = None,
               seed: int | None = None) -> "SearchResult | list[int]":
        """Return a choice (candidate index per layer) or a SearchResult."""


STRATEGIES = Registry("strategy", Strategy, "search")
register_strategy, unregister_strategy = STRATEGIES.register, STRATEGIES.unregister
get_strategy, available_strategies = STRATEGIES.get, STRATEGIES.available


def repair(problem: ConfigProblem, choice: Any) -> list[int]:
    """Step ``G`` up where it costs the least objective per resource saved until the budget holds."""
    choice = list(choice)
    res = problem.combined_use()
    while True:
        _, use = problem.totals(choice)
        if problem.feasible(use):
            return choice
        best, best_ratio = None, np.inf
        for i, j in enumerate(choice):
            if j + 1 < problem.n_choices[i] and res[i, j] > res[i, j + 1]:  # only steps that save
                ratio = (problem.obj[i, j + 1] - problem.obj[i, j]) / (res[i, j] - res[i, j + 1])
                if ratio < best_ratio:
                    best, best_ratio = i, ratio
        if best is None:
            return choice  # no step saves anything more: the budget cannot be met from here
        choice[best] += 1


def fill(problem: ConfigProblem, choice: Any) -> list[int]:
    """From a feasible choice, step one layer's ``G`` down at a time (largest objective gain per
    resource added) while the budget holds."""
    choice = list(choice)
    _, use = problem.totals(choice)
    if not problem.feasible(use):
        return choice
    w = problem.weights()
    while True:
        best, best_ratio = None, 0.0
        for i, j in enumerate(choice):
            if j == 0:
                continue
            gain = problem.obj[i, j] - problem.obj[i, j - 1]
            d = problem.use[:, i, j - 1] - problem.use[:, i, j]
            if gain <= 0 or not problem.feasible(use + d):
                continue
            ratio = gain / max(float(w @ d), 1e-30)
            if ratio > best_ratio:
                best, best_ratio = i, ratio
        if best is None:
            return choice
        j = choice[best]
        use = use + problem.use[:, best, j - 1] - problem.use[:, best, j]
        choice[best] = j - 1


@register_strategy("paper")
def paper(problem: ConfigProblem, *, time_limit: float | None = None, seed: int | None = None) -> list[int]:
    """The paper's greedy: start at the largest G (the cheapest, see ``ConfigProblem.cheapest``), step
    one layer down at a time (best gain per resource added) while the budget holds; infeasible if
    the cheapest choice does not fit."""
    problem.evaluate_all()
    return fill(problem, problem.cheapest())


def _descend(problem: ConfigProblem, choice: list[int]) -> list[int]:
    """Best-improvement descent over single steps and (one up, one down) pair moves, staying feasible."""
    choice = list(choice)
    n = len(choice)
    idx = np.arange(n)
    limits = problem.limits[:, None]
    while True:
        ch = np.asarray(choice)
        _, use = problem.totals(choice)
        up_ok = ch + 1 < problem.n_choices
        dn_ok = ch > 0
        up = np.where(up_ok, ch + 1, ch)
        dn = np.where(dn_ok, ch - 1, ch)
        d_obj_up = np.where(up_ok, problem.obj[idx, up] - problem.obj[idx, ch], np.inf)
        d_obj_dn = np.where(dn_ok, problem.obj[idx, dn] - problem.obj[idx, ch], np.inf)
        d_up = problem.use[:, idx, up] - problem.use[:, idx, ch]  # (resources, layers)
        d_dn = problem.use[:, idx, dn] - problem.use[:, idx, ch]
        # single step down (more params, less pruned)
        feas_dn = np.all(within(use[:, None] + d_dn, limits), axis=0)
        single = np.where(feas_dn, d_obj_dn, np.inf)
        # pairs: layer a up, layer b down
        pair = d_obj_up[:, None] + d_obj_dn[None, :]
        feas = np.all(within(use[:, None, None] + d_up[:, :, None] + d_dn[:, None, :], limits[:, :, None]), axis=0)
        pair = np.where(feas, pair, np.inf)
        np.fill_diagonal(pair, np.inf)
        k_single, k_pair = int(np.argmin(single)), int(np.argmin(pair))
        if min(single[k_single], pair.flat[k_pair]) >= -1e-12:
            return choice
        if single[k_single] <= pair.flat[k_pair]:
            choice[k_single] -= 1
        else:
            a, b = divmod(k_pair, n)
            choice[a] += 1
            choice[b] -= 1


@register_strategy("descent")
def descent(problem: ConfigProblem, *, time_limit: float | None = None, seed: int | None = None,
            restarts: int = 20, kick: float = 0.2) -> list[int]:
    """Descent over single and pair moves from the paper's greedy, then random kicks + repair + descent."""
    restarts = validate_count("restarts", restarts)
    kick = positive_number("kick", kick, "the chance each layer's G moves", maximum=1.0, allow_zero=True)
    rng = np.random.default_rng(seed)
    deadline = Deadline(time_limit)
    best = _descend(problem, repair(problem, paper(problem)))
    best_obj = problem.totals(best)[0]
    for _ in range(restarts):
        if deadline.passed():
            break
        cand = [int(min(k - 1, max(0, j + rng.integers(-1, 2)))) if rng.random() < kick else j
                for j, k in zip(best, problem.n_choices)]
        cand = _descend(problem, repair(problem, cand))
        o, use = problem.totals(cand)
        if problem.feasible(use) and o < best_obj:
            best, best_obj = cand, o
    return best


@register_strategy("annealing")
def annealing(problem: ConfigProblem, *, time_limit: float | None = None, seed: int | None = None,
              steps: int = 20000, t0: float = 0.05, t1: float = 1e-4, penalty: float = 10.0) -> list[int]:
    """Simulated annealing on single-layer steps with a penalty for budget excess; best feasible kept."""
    steps = validate_count("steps", steps)
    t0, t1 = positive_number("t0", t0, "start temperature"), positive_number("t1", t1, "end temperature")
    penalty = positive_number("penalty", penalty, "weight of the budget excess", allow_zero=True)
    rng = np.random.default_rng(seed)
    problem.evaluate_all()
    deadline = Deadline(time_limit)
    cur = repair(problem, paper(problem))
    obj, use = problem.totals(cur)
    score = obj + penalty * len(cur) * problem.excess(use)
    best, best_obj = list(cur), (obj if problem.feasible(use) else np.inf)
    temps = t0 * (t1 / t0) ** (np.arange(steps) / max(1, steps - 1)) * max(1.0, problem.obj[np.isfinite(problem.obj)].mean() * len(cur))
    layers, dirs, u = rng.integers(0, len(cur), steps), rng.choice([-1, 1], steps), rng.random(steps)
    for t in range(steps):
        if t % 1000 == 0 and deadline.passed():
            break
        i, j = layers[t], cur[layers[t]] + dirs[t]
        if not 0 <= j < problem.n_choices[i]:
            continue
        o2 = obj + problem.obj[i, j] - problem.obj[i, cur[i]]
        use2 = use + problem.use[:, i, j] - problem.use[:, i, cur[i]]
        s2 = o2 + penalty * len(cur) * problem.excess(use2)
        if s2 <= score or u[t] < np.exp((score - s2) / temps[t]):
            cur[i], obj, use, score = j, o2, use2, s2
            if obj < best_obj and problem.feasible(use):
                best, best_obj = list(cur), obj
    return _descend(problem, repair(problem, best))


@register_strategy("genetic")
def genetic(problem: ConfigProblem, *, time_limit: float | None = None, seed: int | None = None,
            population: int = 40, generations: int = 150, mutation: float = 0.05) -> list[int]:
    """Genetic algorithm: tournament selection, uniform crossover, ±1 mutation, repair, elitism."""
    population = validate_count("population", population, 2)
    generations = validate_count("generations", generations)
    mutation = positive_number("mutation", mutation, "the chance each layer's G moves", maximum=1.0,
                               allow_zero=True)
    rng = np.random.default_rng(seed)
    problem.evaluate_all()
    deadline = Deadline(time_limit)
    n, ks = len(problem.space), problem.n_choices
    seedling = repair(problem, paper(problem))
    pop = [seedling] + [repair(problem, list(rng.integers(0, ks))) for _ in range(population - 1)]

    def fitness(c):
        o, use = problem.totals(c)
        return o + 1e3 * problem.excess(use)

    fit = np.array([fitness(c) for c in pop])
    for _ in range(generations):
        if deadline.passed():
            break
        children = [pop[int(np.argmin(fit))]]  # elitism
        while len(children) < population:
            a, b = (min(rng.integers(0, population, 2), key=lambda k: fit[k]) for _ in range(2))
            mask = rng.random(n) < 0.5
            child = np.where(mask, pop[a], pop[b])
            mut = rng.random(n) < mutation
            child = np.clip(child + mut * rng.choice([-1, 1], n), 0, ks - 1)
            children.append(repair(problem, [int(v) for v in child]))
        pop = children
        fit = np.array([fitness(c) for c in pop])
    return _descend(problem, pop[int(np.argmin(fit))])


@register_strategy("random")
def random_search(problem: ConfigProblem, *, time_limit: float | None = None, seed: int | None = None,
                  samples: int = 200) -> list[int]:
    """Random configurations, each repaired to the budget and greedily filled; the best is kept."""
    samples = validate_count("samples", samples, 1)
    rng = np.random.default_rng(seed)
    problem.evaluate_all()
    deadline = Deadline(time_limit)
    best: list[int] = []
    best_obj = np.inf
    for _ in range(samples):
        if best and deadline.passed():
            break
        c = fill(problem, repair(problem, list(rng.integers(0, problem.n_choices))))
        o, use = problem.totals(c)
        if problem.feasible(use) and o < best_obj or not best:
            best, best_obj = c, o
    return best
