"""``colgen``: the set-partitioning LP by column generation, with exact pricing and its own certificate.

A balanced grouping is ``G`` *blocks* ``(R, C)`` (``F/G`` rows and ``C/G`` columns each) that
cover every row and column once, and keeps ``Σ_blocks S[R, C].sum()``. The set-partitioning
LP over all blocks is a far tighter relaxation than top-k, spectral or the SDP (on random
16×16 and 24×24 G=4 layers its optimum is usually integral: the optimum itself).

* **Certificate (Lagrangian).** For *any* duals ``y`` (one per row and column), every block
  keeps ``S[R, C].sum() ≤ y(R) + y(C) + red*`` with ``red*`` the largest reduced profit of any
  block, and every grouping has exactly ``G`` blocks, so ``kept ≤ Σy + G·red*``. Pricing is
  exact — every subset of the smaller side is enumerated (rows then follow as the top ``F/G``
  of their reduced mass) — so the bound is certified whatever the LP solver's accuracy.
  Feasible while that table is at most :data:`MAX_PRICING_ENTRIES` (24×24 G=4: 134,596
  subsets × 24 rows).
* **Column generation.** The restricted master LP (HiGHS) over the blocks found so far gives
  duals; the best-priced blocks join it. Duals are smoothed towards the best certificate so far
  (Wentges), which cuts the rounds about threefold on 24×24 G=4.
* **Branch and price.** Best first: a fractional LP is split on the row–column pair whose
  "together" weight is nearest ½: one child keeps them in one block, the other apart
  (Ryan–Foster; row–column pairs suffice: when every such weight is 0 or 1 the LP is integral). The pricing obeys a node's
  pairs exactly (forced and forbidden rows per subset), so every node's bound is certified too;
  the open nodes' largest bound is the certificate when the node limit stops the search.
* **Solutions.** The ``best`` heuristic's blocks start the master, so the result never keeps
  less than ``best``; integral node LPs and the integer master over the root's blocks (HiGHS
  MIP, a node limit) improve it.

Every stop is a work count (nodes, rounds per node, MIP nodes), so the result is reproducible; the scores are
scaled to max 1 on a fixed 2^-40 grid first (the rounding is added to the bound), so scaling all
scores changes no decision.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from math import comb

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csc_matrix, csr_matrix, identity
from scipy.sparse import hstack as sparse_hstack

from ..limits import Deadline, validate_count
from ..problem import GroupingProblem
from ..solution import Solution
from ..status import Status
from .heuristics import best
from .registry import register

#: Largest pricing table (enumerated subsets × the other side's channels) for exact pricing:
#: 128 MB of float64, about 0.2 s per pricing pass (24×24 G=4: 134,596 subsets × 24 = 3.2e6).
MAX_PRICING_ENTRIES = 16_000_000
#: Column-generation rounds (one master LP and one or two pricings each).
MAX_ROUNDS = 400
#: Best-priced blocks offered to the master per round.
BLOCKS_PER_ROUND = 50
#: Weight of the best certificate's duals in the pricing point (Wentges smoothing).
SMOOTHING = 0.7
#: Branch-and-bound nodes of the integer master (HiGHS).
MIP_NODES = 2000
#: Relative gap between the certificate and the LP at which the LP counts as solved.
LP_RTOL = 1e-9
#: Branch-and-price nodes (each one a column generation).
MAX_NODES = 200
#: A node is pruned when its bound exceeds the incumbent by at most this fraction.
PRUNE_RTOL = 1e-9


def pricing_entries(problem: GroupingProblem) -> int:
    """Size of the exact pricing table: the group-size subsets of one side times the other side's
    channels, for the cheaper side."""
    F, C, G = problem.F, problem.C, problem.groups
    return min(comb(C, C // G) * F, comb(F, F // G) * C)


Block = tuple[np.ndarray, np.ndarray]
#: A branching decision: (row, column, together).
Pair = tuple[int, int, bool]


class _Pricer:
    """Exact pricing. Works on ``T`` (the scores, transposed when the rows have fewer subsets) and
    enumerates every ``k``-subset of ``T``'s columns; the best rows for a subset are the top
    ``F/G`` of their reduced mass on it. Duals, pairs and blocks are in the original orientation."""

    def __init__(self, S: np.ndarray, G: int):
        F, C = S.shape
        self.F, self.swap = F, comb(F, F // G) * C < comb(C, C // G) * F
        T = S.T if self.swap else S
        self.kr, kc = T.shape[0] // G, T.shape[1] // G
        self.subsets = np.array(list(itertools.combinations(range(T.shape[1]), kc)), dtype=np.int64).reshape(-1, kc)
        m = self.subsets.shape[0]
        self.indicator = csr_matrix((np.ones(m * kc), (np.repeat(np.arange(m), kc), self.subsets.ravel())),
                                    shape=(m, T.shape[1]))
        self.mass = np.asarray(self.indicator @ T.T)  # mass[s, i]: T's row i on subset s
        self.member = self.indicator.toarray() > 0  # member[s, j]: T's column j is in subset s

    def _split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Duals of ``T``'s rows and of its columns."""
        rows, cols = y[:self.F], y[self.F:]
        return (cols, rows) if self.swap else (rows, cols)

    def masks(self, pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray] | None:
        """``(forced, forbidden)``: per subset, the ``T`` rows a block on it must / must not take."""
        if not pairs:
            return None
        forced = np.zeros(self.mass.shape, dtype=bool)
        forbidden = np.zeros(self.mass.shape, dtype=bool)
        for r, c, together in pairs:
            i, j = (c, r) if self.swap else (r, c)  # T's row, T's column
            on = self.member[:, j]
            if together:
                forced[on, i] = True
                forbidden[~on, i] = True
            else:
                forbidden[on, i] = True
        return forced, forbidden

    def _choose(self, P: np.ndarray, masks: tuple[np.ndarray, np.ndarray] | None,
                rows: slice | int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``T`` rows per subset and their summed reduced mass (``-inf`` if none obey the masks)."""
        if masks is None:
            idx = np.argpartition(-P, self.kr - 1, axis=1)[:, :self.kr]
            return idx, np.take_along_axis(P, idx, axis=1).sum(axis=1)
        forced, forbidden = masks[0][rows], masks[1][rows]
        forced, forbidden = np.atleast_2d(forced), np.atleast_2d(forbidden)
        allowed = np.where(forbidden, -np.inf, P)
        idx = np.argpartition(-np.where(forced, np.inf, allowed), self.kr - 1, axis=1)[:, :self.kr]
        value = np.take_along_axis(allowed, idx, axis=1).sum(axis=1)
        return idx, np.where(forced.sum(axis=1) > self.kr, -np.inf, value)

    def reduced(self, y: np.ndarray, masks: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The largest reduced profit of an allowed block on each subset."""
        a, b = self._split(y)
        return self._choose(self.mass - a[None, :], masks, slice(None))[1] - self.indicator @ b

    def block(self, s: int, y: np.ndarray, masks: tuple[np.ndarray, np.ndarray] | None = None) -> Block:
        """The best allowed ``(rows, cols)`` block on subset ``s`` at duals ``y``."""
        idx = self._choose((self.mass[s] - self._split(y)[0])[None, :], masks, s)[0][0]
        best_rows = np.sort(idx)
        return (self.subsets[s], best_rows) if self.swap else (best_rows, self.subsets[s])


def _master(blocks: list[Block], F: int, C: int) -> csc_matrix:
    """The master's ``(F + C) × blocks`` 0/1 matrix: which rows and columns each block covers."""
    idx = [np.concatenate([R, F + Cc]) for R, Cc in blocks]
    ptr = np.cumsum([0] + [len(i) for i in idx])
    return csc_matrix((np.ones(ptr[-1]), np.concatenate(idx) if idx else np.zeros(0, int), ptr),
                      shape=(F + C, len(blocks)))


def _certificate(y: np.ndarray, red: np.ndarray, G: int, block_terms: int) -> float:
    """``Σy + G·max red``, padded upwards for the float error of its sums (scores are at most 1)."""
    pad = 1e-12 * (np.abs(y).sum() + G * (block_terms + np.abs(red[np.isfinite(red)]).max(initial=0.0)))
    return float(y.sum() + G * red.max() + pad)


@dataclass
class _Node:
    """A branch-and-price node: its pairs, and the bound it inherited (then its own)."""

    pairs: list[Pair]
    bound: float


@dataclass
class _Search:
    """Branch and price on the grid scores ``Sn`` (max 1); every value here is in those units."""

    Sn: np.ndarray
    G: int
    pricer: _Pricer
    deadline: Deadline
    blocks: list[Block] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    known: set = field(default_factory=set)
    rows_in: list[np.ndarray] = field(default_factory=list)
    cols_in: list[np.ndarray] = field(default_factory=list)
    incumbent: float = -np.inf
    labels: tuple[np.ndarray, np.ndarray] | None = None
    rounds: int = 0

    def add(self, block: Block) -> bool:
        key = (block[0].tobytes(), block[1].tobytes())
        if key in self.known:
            return False
        self.known.add(key)
        self.blocks.append(block)
        self.values.append(float(self.Sn[np.ix_(*block)].sum()))
        for side, n, ids in ((self.rows_in, self.Sn.shape[0], block[0]), (self.cols_in, self.Sn.shape[1], block[1])):
            side.append(np.zeros(n, dtype=bool))
            side[-1][ids] = True
        return True

    def usable(self, pairs: list[Pair]) -> np.ndarray:
        """Indices of the blocks that obey ``pairs``."""
        ok = np.ones(len(self.blocks), dtype=bool)
        if pairs:
            R, C = np.array(self.rows_in), np.array(self.cols_in)
            for r, c, together in pairs:
                ok &= (R[:, r] == C[:, c]) if together else ~(R[:, r] & C[:, c])
        return np.flatnonzero(ok)

    def offer(self, chosen: list[Block]) -> None:
        """A grouping made of ``chosen`` blocks becomes the incumbent if it is one (every row and
        column covered once) and keeps more."""
        F, C = self.Sn.shape
        r, c = np.full(F, -1, dtype=np.int64), np.full(C, -1, dtype=np.int64)
        for g, (R, Cc) in enumerate(chosen):
            r[R], c[Cc] = g, g
        covered = len(chosen) == self.G and sum(len(R) for R, _ in chosen) == F and \
            sum(len(Cc) for _, Cc in chosen) == C and r.min() >= 0 and c.min() >= 0
        value = sum(float(self.Sn[np.ix_(R, Cc)].sum()) for R, Cc in chosen)
        if covered and value > self.incumbent:
            self.incumbent, self.labels = value, (r, c)

    def integer_master(self, mip_nodes: int) -> None:
        """Offer the best grouping made of the blocks so far (HiGHS MIP, at most ``mip_nodes`` nodes)."""
        F, C = self.Sn.shape
        res = milp(-np.array(self.values), constraints=LinearConstraint(_master(self.blocks, F, C), 1, 1),
                   integrality=np.ones(len(self.blocks)), bounds=Bounds(0, 1),
                   options={"node_limit": mip_nodes, "time_limit": self.deadline.remaining(1e-3) or np.inf})
        if res.x is not None:
            self.offer([self.blocks[j] for j in np.flatnonzero(res.x > 0.5)])

    def lp(self, usable: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """The master LP over the ``usable`` blocks, with penalised artificial columns so that it is
        always feasible: (duals, value, weights of the usable blocks and then the artificials)."""
        F, C = self.Sn.shape
        penalty = float(F * C)  # more than any grouping keeps: artificials only when nothing else covers
        A = _master([self.blocks[j] for j in usable], F, C)
        cost = np.concatenate([-np.array(self.values)[usable], np.full(F + C, penalty)])
        res = linprog(cost, A_eq=sparse_hstack([A, identity(F + C, format="csc")], format="csc"),
                      b_eq=np.ones(F + C), bounds=(0, None), method="highs")
        if res.status != 0:  # always feasible and bounded, so only a solver failure lands here
            raise RuntimeError(f"the master LP failed: {res.message}")
        return -np.asarray(res.eqlin.marginals), -float(res.fun), np.asarray(res.x)

    def generate(self, node: _Node, max_rounds: int) -> tuple[np.ndarray, np.ndarray]:
        """Column generation at ``node``, which keeps the best certified bound in ``node.bound``;
        returns the usable blocks and the last LP's weights (artificials last)."""
        F = self.Sn.shape[0]
        masks = self.pricer.masks(node.pairs)
        terms = (self.Sn.shape[0] // self.G) * (self.Sn.shape[1] // self.G)
        centre = None
        for _ in range(max_rounds):
            self.rounds += 1
            usable = self.usable(node.pairs)
            y, lp, x = self.lp(usable)
            points = [y] if centre is None else [SMOOTHING * centre + (1 - SMOOTHING) * y, y]
            new: list[Block] = []
            for point in points:  # the smoothed point first; the LP's own duals if it offers nothing new
                red = self.pricer.reduced(point, masks)
                certificate = _certificate(point, red, self.G, terms)
                if certificate < node.bound:
                    node.bound, centre = certificate, point
                picks = [int(s) for s in np.argsort(-red, kind="stable")[:BLOCKS_PER_ROUND] if red[s] > -np.inf]
                new = [b for b in (self.pricer.block(s, point, masks) for s in picks)
                       if self.Sn[np.ix_(*b)].sum() - y[b[0]].sum() - y[F + b[1]].sum() > 1e-9 and self.add(b)]
                if new:
                    break
            if node.bound - lp <= LP_RTOL * node.bound or not new or node.bound <= self.cutoff() \
                    or self.deadline.passed():
                break
        return usable, x

    def cutoff(self) -> float:
        """Nodes bounded at or below this cannot hold a grouping noticeably better than the incumbent."""
        return self.incumbent * (1 + PRUNE_RTOL) if self.incumbent > 0 else self.incumbent

    def branch(self, node: _Node, usable: np.ndarray, x: np.ndarray) -> list[_Node]:
        """Children of a node whose LP is fractional: the row–column pair with "together" weight
        nearest ½, apart and together. None when no pair is fractional; an integral LP without
        artificials is then offered as a grouping."""
        F = self.Sn.shape[0]
        w = x[:len(usable)]
        A = _master([self.blocks[j] for j in usable], F, self.Sn.shape[1])
        together = (A[:F].multiply(w[None, :]) @ A[F:].T).toarray()
        frac = np.abs(together - 0.5)
        frac[(together < 1e-7) | (together > 1 - 1e-7)] = np.inf
        if not np.isfinite(frac).any():
            if x[len(usable):].max(initial=0.0) <= 1e-7:
                self.offer([self.blocks[usable[j]] for j in np.flatnonzero(w > 0.5)])
            return []
        r, c = (int(v) for v in np.unravel_index(int(np.argmin(frac)), frac.shape))
        return [_Node(node.pairs + [(r, c, False)], node.bound),
                _Node(node.pairs + [(r, c, True)], node.bound)]  # popped first: together


def branch_and_price(problem: GroupingProblem, start: tuple[np.ndarray, np.ndarray], *,
                     node_limit: int = MAX_NODES, max_rounds: int = MAX_ROUNDS, mip_nodes: int = MIP_NODES,
                     deadline: Deadline | None = None) -> tuple[tuple[np.ndarray, np.ndarray], float, dict]:
    """Branch and price from the blocks of ``start``, at most ``node_limit`` nodes: the best grouping
    found, its certified bound (in the problem's units) and search facts. ``mip_nodes=0`` skips
    the integer master."""
    from ..bounds import on_grid

    F, C, G = problem.F, problem.C, problem.groups
    if G == 1 or problem.total == 0:
        return start, problem.total, {"nodes": 0}
    if pricing_entries(problem) > MAX_PRICING_ENTRIES:
        raise ValueError(f"colgen prices by enumerating group subsets: {F}x{C} G={G} needs a table of "
                         f"{pricing_entries(problem):.3g} entries, over MAX_PRICING_ENTRIES={MAX_PRICING_ENTRIES:.3g}; "
                         "for layers with larger groups use the 'sdp' solver or bound (or the 'spectral' bound)")
    Sn, unit, rounding = on_grid(problem)
    search = _Search(Sn, G, _Pricer(Sn, G), deadline or Deadline(None))
    r, c = start
    search.offer([(np.flatnonzero(r == g), np.flatnonzero(c == g)) for g in range(G)])
    for g in range(G):
        search.add((np.flatnonzero(r == g), np.flatnonzero(c == g)))
    stack, closed, nodes, root = [_Node([], np.inf)], -np.inf, 0, {}
    while stack and nodes < node_limit and not search.deadline.passed():
        # best first (the largest bound; among equals the newest, a "together" child): the open bound
        # falls fastest (32x32 G=8: two layers left open after 200 depth-first nodes proven in 31 and 153)
        node = stack.pop(max(range(len(stack)), key=lambda i: (stack[i].bound, i)))
        children: list[_Node] = []
        if node.bound > search.cutoff():
            nodes += 1
            usable, x = search.generate(node, max_rounds)
            if nodes == 1:
                root = {"root_bound": (node.bound + rounding) * unit, "root_blocks": len(search.blocks),
                        "root_integral": bool(np.all((x < 1e-7) | (x > 1 - 1e-7)))}
                if mip_nodes > 0:  # cheap, and often the optimum
                    search.integer_master(mip_nodes)
            if node.bound > search.cutoff():
                children = search.branch(node, usable, x)
        if not children:  # pruned or a leaf: what is left of its subtree is under its bound
            closed = max(closed, node.bound)
        stack += children
    open_bound = max([n.bound for n in stack] + [closed, search.incumbent])
    info = {**root, "nodes": nodes, "rounds": search.rounds, "blocks": len(search.blocks), "open_nodes": len(stack),
            "time_limit_hit": search.deadline.hit}
    assert search.labels is not None
    return search.labels, (open_bound + rounding) * unit, info


def colgen_bound(problem: GroupingProblem, *, time_limit: float | None = None,
                 max_rounds: int = MAX_ROUNDS) -> tuple[float, dict]:
    """The set-partitioning LP's certified bound (the root of :func:`branch_and_price`, no
    branching), from ``best``'s blocks; ``time_limit`` caps it (breaking reproducibility)."""
    _, value, info = branch_and_price(problem, best(problem), node_limit=1, max_rounds=max_rounds, mip_nodes=0,
                                      deadline=Deadline(time_limit))
    return value, info


@register("colgen", exact=True)
def colgen(problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
           node_limit: int = MAX_NODES, max_rounds: int = MAX_ROUNDS, mip_nodes: int = MIP_NODES) -> Solution:
    """Branch and price on the set-partitioning LP from ``best``'s blocks, with a certified bound:
    ``optimal`` when the search closes, else ``work_limit`` (``node_limit`` nodes or ``max_rounds``
    per node) or ``time_limit``. For layers with small groups: a pricing table of at most
    ``MAX_PRICING_ENTRIES`` (24×24 G=4, 32×32 G=8, 48×48 G=12)."""
    node_limit, max_rounds = validate_count("node_limit", node_limit, 1), validate_count("max_rounds", max_rounds, 1)
    mip_nodes = validate_count("mip_nodes", mip_nodes)
    r, c = best(problem, seed=seed)
    (r2, c2), bound, info = branch_and_price(problem, (r, c), node_limit=node_limit, max_rounds=max_rounds,
                                             mip_nodes=mip_nodes, deadline=Deadline(time_limit))
    if problem.kept(r2, c2) >= problem.kept(r, c):
        r, c = r2, c2
    status = Status.TIME_LIMIT if info.get("time_limit_hit") else Status.WORK_LIMIT
    return Solution.from_groups(problem, r, c, status=status, upper_bound=bound, info=info)
