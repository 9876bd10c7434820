"""``colgen``: the set-partitioning LP by column generation, with exact pricing and its own certificate.

A balanced grouping is ``G`` *blocks* ``(R, C)`` (``F/G`` rows and ``C/G`` columns each) that
cover every row and column once, and keeps ``Σ_blocks S[R, C].sum()``. The set-partitioning
LP over all blocks is a far tighter relaxation than top-k, spectral or the SDP (on random
16×16 and 24×24 G=4 layers its optimum is usually integral: the optimum itself).

* **Certificate (Lagrangian).** For *any* duals ``y`` (one per row and column), every block
  keeps ``S[R, C].sum() ≤ y(R) + y(C) + red*`` with ``red*`` the largest reduced profit of any
  block, and every grouping has exactly ``G`` blocks, so ``kept ≤ Σy + G·red*``. ``red*`` is
  bounded by the pricer (:mod:`permopt.solvers.pricing`), never by the LP solver, so the bound
  is certified whatever the LP solver's accuracy: exactly by enumerating every subset of the
  cheaper side while that table is at most ``MAX_PRICING_ENTRIES`` (24×24 G=4: 134,596 subsets
  × 24 rows); beyond (64×64 G=8), by a branch and bound that proves no block beats a
  tolerance ``τ`` (``pricing_tol`` of the average block's dual mass), so ``red* ≤ τ``.
* **Column generation.** The restricted master LP (HiGHS, one model warm-started from its last
  basis as blocks join) over the blocks found so far gives duals; the best-priced blocks join
  it. With exact pricing the duals are smoothed towards the best certificate so far (Wentges),
  which cuts the rounds about threefold on 24×24 G=4; the pricing tree runs only when the cheap
  alternating search finds nothing (once on 64×64 G=8).
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

from dataclasses import dataclass, field
from math import comb
from typing import Any

import numpy as np

from ..backends.highs import MasterLP
from ..certify import on_grid, topk_bound
from ..limits import Deadline, validate_count
from ..problem import GroupingProblem
from ..solution import Solution
from ..status import Status
from .heuristics import best
from .pricing import (MAX_PRICING_ENTRIES, MAX_TREE_MEMBERS, MAX_TREE_SUBSETS, TREE_WORK, Block, EnumerationPricer,
                      Pair, Priced, PricingTreeTooLarge, TreePricer, cheaper_side, table_sizes)
from .registry import register

#: Column-generation rounds (one master LP and one or two pricings each).
MAX_ROUNDS = 400
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


#: Pricing tree tolerance, as a fraction of the average block's dual mass ``|Σy|/G``: the tree
#: proves no block's reduced profit exceeds it, so the bound is within about this fraction of
#: the LP (64×64 G=8: 10 s at 2%, 5 s at 5%).
PRICING_TOLERANCE = 0.02
PRICINGS = ("auto", "enumerate", "tree")


def pricing_entries(problem: GroupingProblem) -> int:
    """Size of the exact pricing table: the group-size subsets of one side times the other side's
    channels, for the cheaper side."""
    return min(table_sizes(problem.F, problem.C, problem.groups))


def pricing_method(problem: GroupingProblem, pricing: str = "auto") -> str:
    """``enumerate`` (exact, while the table is at most ``MAX_PRICING_ENTRIES``) or ``tree`` (up to
    ``MAX_TREE_SUBSETS`` subsets of the cheaper side, ``MAX_TREE_MEMBERS`` of the other per block)
    for ``pricing`` (one of those or ``auto``: the first that applies); a ValueError naming the
    way out where none applies."""
    if pricing not in PRICINGS:
        raise ValueError(f"pricing must be one of {PRICINGS}, got {pricing!r}")
    F, C, G = problem.F, problem.C, problem.groups
    entries = pricing_entries(problem)
    if pricing == "enumerate" or (pricing == "auto" and entries <= MAX_PRICING_ENTRIES):
        if entries > MAX_PRICING_ENTRIES:
            raise ValueError(f"colgen's enumeration pricing of {F}x{C} G={G} needs a table of {entries:.3g} entries, "
                             f"over MAX_PRICING_ENTRIES={MAX_PRICING_ENTRIES:.3g}; use pricing='tree' (or 'auto')")
        return "enumerate"
    swap = cheaper_side(F, C, G)
    subsets, members = (comb(F, F // G), C // G) if swap else (comb(C, C // G), F // G)
    if subsets > MAX_TREE_SUBSETS or members > MAX_TREE_MEMBERS:
        raise ValueError(f"colgen's pricing tree for {F}x{C} G={G} would branch over {subsets:.3g} group subsets "
                         f"(MAX_TREE_SUBSETS={MAX_TREE_SUBSETS:.3g}) with {members} channels of the other side per "
                         f"block (MAX_TREE_MEMBERS={MAX_TREE_MEMBERS}); for layers with larger groups use the 'sdp' "
                         "solver, or the 'lagrangian' bound (any width)")
    return "tree"


def make_pricer(problem: GroupingProblem, Sn: np.ndarray, pricing: str = "auto", tolerance: float = PRICING_TOLERANCE,
                tree_work_limit: int = TREE_WORK, deadline: Deadline | None = None) -> EnumerationPricer | TreePricer:
    """The pricer :func:`pricing_method` picks, on the grid scores ``Sn``."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < float("inf"):
        raise ValueError(f"pricing_tol must be a finite number >= 0, got {tolerance!r}")
    tree_work_limit = validate_count("tree_work_limit", tree_work_limit, 1)
    if pricing_method(problem, pricing) == "enumerate":
        return EnumerationPricer(Sn, problem.groups)
    return TreePricer(Sn, problem.groups, float(tolerance), tree_work_limit, deadline)


def _master(blocks: list[Block], F: int, C: int) -> Any:
    """The master's ``(F + C) × blocks`` 0/1 matrix: which rows and columns each block covers."""
    from scipy.sparse import csc_matrix  # scipy is imported where used: `import permopt` stays fast

    idx = [np.concatenate([R, F + Cc]) for R, Cc in blocks]
    ptr = np.cumsum([0] + [len(i) for i in idx])
    return csc_matrix((np.ones(ptr[-1]), np.concatenate(idx) if idx else np.zeros(0, int), ptr),
                      shape=(F + C, len(blocks)))


def _certificate(y: np.ndarray, max_reduced: float, G: int, block_terms: int) -> float:
    """``Σy + G·max_reduced``, padded upwards for the float error of its sums (scores are at most 1)."""
    size = abs(max_reduced) if np.isfinite(max_reduced) else 0.0
    return float(y.sum() + G * max_reduced + 1e-12 * (np.abs(y).sum() + G * (block_terms + size)))


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
    pricer: EnumerationPricer | TreePricer
    deadline: Deadline
    blocks: list[Block] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    known: set = field(default_factory=set)
    rows_in: list[np.ndarray] = field(default_factory=list)
    cols_in: list[np.ndarray] = field(default_factory=list)
    incumbent: float = -np.inf
    labels: tuple[np.ndarray, np.ndarray] | None = None
    rounds: int = 0
    master: MasterLP = field(init=False)

    def __post_init__(self) -> None:
        self.master = MasterLP(*self.Sn.shape)

    def add(self, block: Block, value: float | None = None) -> bool:
        """Add ``block`` (its kept mass ``value`` if known) unless the master has it; whether it was new."""
        key = (block[0].tobytes(), block[1].tobytes())
        if key in self.known:
            return False
        self.known.add(key)
        self.blocks.append(block)
        self.values.append(float(self.Sn[np.ix_(*block)].sum()) if value is None else value)
        self.master.add(np.concatenate([block[0], self.Sn.shape[0] + block[1]]), self.values[-1])
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

    def integer_master(self, mip_node_limit: int) -> None:
        """Offer the best grouping made of the blocks so far (HiGHS MIP, at most ``mip_node_limit`` nodes)."""
        F, C = self.Sn.shape
        from scipy.optimize import Bounds, LinearConstraint, milp

        res = milp(-np.array(self.values), constraints=LinearConstraint(_master(self.blocks, F, C), 1, 1),
                   integrality=np.ones(len(self.blocks)), bounds=Bounds(0, 1),
                   options={"node_limit": mip_node_limit, "time_limit": self.deadline.remaining(1e-3) or np.inf})
        if res.x is not None:
            self.offer([self.blocks[j] for j in np.flatnonzero(res.x > 0.5)])

    def _new_blocks(self, priced: Priced, y: np.ndarray) -> list[Block]:
        """The priced blocks with a positive reduced profit at the LP's duals ``y`` that the master lacks (added)."""
        F = self.Sn.shape[0]
        values = [float(self.Sn[np.ix_(*b)].sum()) for b in priced.blocks]
        return [b for b, v in zip(priced.blocks, values)
                if v - y[b[0]].sum() - y[F + b[1]].sum() > 1e-9 and self.add(b, v)]

    def generate(self, node: _Node, round_limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Column generation at ``node``, which keeps the best certified bound in ``node.bound``;
        returns the usable blocks and the last LP's weights (artificials last).

        Each point is priced cheaply first and exhaustively only when that adds nothing (the
        enumeration pricer is exhaustive at once); duals are smoothed only with an exhaustive
        pricer, since each smoothed point must be certified to move the centre."""
        masks = self.pricer.masks(node.pairs) if node.pairs else None
        terms = (self.Sn.shape[0] // self.G) * (self.Sn.shape[1] // self.G)
        centre: np.ndarray | None = None
        for _ in range(round_limit):
            self.rounds += 1
            usable = self.usable(node.pairs)
            y, lp, x = self.master.solve(usable)
            points = [y]
            if centre is not None and self.pricer.exhaustive:  # the smoothed point first; y if it offers nothing new
                points = [SMOOTHING * centre + (1 - SMOOTHING) * y, y]
            new: list[Block] = []
            for point in points:
                for stage in (self.pricer.price, self.pricer.exact):
                    priced = stage(point, masks)
                    certificate = _certificate(point, priced.bound, self.G, terms)
                    if certificate < node.bound:
                        node.bound, centre = certificate, point
                    new = self._new_blocks(priced, y)
                    if new or np.isfinite(priced.bound):
                        break
                if new:
                    break
            solved = np.isfinite(node.bound) and node.bound - lp <= LP_RTOL * node.bound
            if solved or not new or node.bound <= self.cutoff() or self.deadline.passed():
                break
        else:
            if not np.isfinite(node.bound):  # the cheap stage never ran dry: certify the last duals
                node.bound = _certificate(y, self.pricer.exact(y, masks).bound, self.G, terms)
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
                     node_limit: int = MAX_NODES, round_limit: int = MAX_ROUNDS, mip_node_limit: int = MIP_NODES,
                     deadline: Deadline | None = None, pricing: str = "auto", pricing_tol: float = PRICING_TOLERANCE,
                     tree_work_limit: int = TREE_WORK) -> tuple[tuple[np.ndarray, np.ndarray], float, dict]:
    """Branch and price from the blocks of ``start``, at most ``node_limit`` nodes: the best grouping
    found, its certified bound (in the problem's units) and search facts. ``mip_node_limit=0`` skips
    the integer master. With the pricing tree (see :func:`make_pricer`) only the root is solved
    (the tree does not obey branching pairs) and the integer master is skipped."""

    F, C, G = problem.F, problem.C, problem.groups
    if G == 1 or problem.total == 0:
        return start, problem.total, {"nodes": 0}
    Sn, unit, rounding = on_grid(problem)
    deadline = deadline or Deadline(None)
    search = _Search(Sn, G, make_pricer(problem, Sn, pricing, pricing_tol, tree_work_limit, deadline), deadline)
    if not search.pricer.exhaustive:
        node_limit = 1
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
            try:
                usable, x = search.generate(node, round_limit)
            except PricingTreeTooLarge as e:
                raise ValueError(f"colgen on {F}x{C} G={G}: {e} (tree_work_limit={tree_work_limit:.3g} node x row evaluations); "
                                 "for layers with larger groups use the 'lagrangian' bound (any width) or the "
                                 "'sdp' solver") from None
            if nodes == 1:
                root = {"root_bound": (node.bound + rounding) * unit, "root_blocks": len(search.blocks),
                        "root_integral": bool(np.all((x < 1e-7) | (x > 1 - 1e-7)))}
                # cheap and often the optimum with exact pricing; over the pricing tree's thousands of root
                # blocks it took a minute for 100 nodes on 64x64 G=8 and found nothing better than best
                if mip_node_limit > 0 and search.pricer.exhaustive:
                    search.integer_master(mip_node_limit)
            if node.bound > search.cutoff():
                children = search.branch(node, usable, x)
        if not children:  # pruned or a leaf: what is left of its subtree is under its bound
            closed = max(closed, node.bound)
        stack += children
    open_bound = max([n.bound for n in stack] + [closed, search.incumbent])
    info = {**root, "pricing": "enumerate" if search.pricer.exhaustive else "tree", "nodes": nodes,
            "rounds": search.rounds, "blocks": len(search.blocks), "open_nodes": len(stack),
            "time_limit_hit": search.deadline.hit, "tree_nodes": getattr(search.pricer, "nodes", 0)}
    assert search.labels is not None
    # top-k always holds; it certifies alone only when a time limit stopped the tree before any certificate
    return search.labels, min((open_bound + rounding) * unit, topk_bound(problem)), info


def colgen_bound(problem: GroupingProblem, *, time_limit: float | None = None, round_limit: int = MAX_ROUNDS,
                 pricing: str = "auto", pricing_tol: float = PRICING_TOLERANCE,
                 start: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, dict]:
    """The set-partitioning LP's certified bound (the root of :func:`branch_and_price`, no
    branching), from the blocks of ``start`` (default: ``best``'s groups); ``time_limit`` caps it
    (breaking reproducibility)."""
    start = best(problem) if start is None else start
    _, value, info = branch_and_price(problem, start, node_limit=1, round_limit=round_limit, mip_node_limit=0,
                                      deadline=Deadline(time_limit), pricing=pricing, pricing_tol=pricing_tol)
    return value, info


@register("colgen", exact=True)
def colgen(problem: GroupingProblem, *, time_limit: float | None = None, seed: int | None = None,
           node_limit: int = MAX_NODES, round_limit: int = MAX_ROUNDS, mip_node_limit: int = MIP_NODES,
           pricing: str = "auto", pricing_tol: float = PRICING_TOLERANCE, tree_work_limit: int = TREE_WORK) -> Solution:
    """Branch and price on the set-partitioning LP from ``best``'s blocks, with a certified bound:
    ``optimal`` when the search closes, else ``work_limit`` (``node_limit`` nodes or ``round_limit``
    per node) or ``time_limit``. Enumeration pricing (exact, with branching) up to
    ``MAX_PRICING_ENTRIES`` (24×24 G=4, 32×32 G=8, 48×48 G=12); beyond, up to ``MAX_TREE_SUBSETS``
    subsets of the cheaper side (64×64 G=8), the pricing tree: the root only, its bound within
    about ``pricing_tol`` of the LP, at most ``tree_work_limit`` node × row evaluations per pricing
    (see :func:`make_pricer`)."""
    node_limit, round_limit = validate_count("node_limit", node_limit, 1), validate_count("round_limit", round_limit, 1)
    mip_node_limit = validate_count("mip_node_limit", mip_node_limit)
    r, c = best(problem, seed=seed)
    (r2, c2), bound, info = branch_and_price(problem, (r, c), node_limit=node_limit, round_limit=round_limit,
                                             mip_node_limit=mip_node_limit, deadline=Deadline(time_limit), pricing=pricing,
                                             pricing_tol=pricing_tol, tree_work_limit=tree_work_limit)
    if problem.kept(r2, c2) >= problem.kept(r, c):
        r, c = r2, c2
    status = Status.TIME_LIMIT if info.get("time_limit_hit") else Status.WORK_LIMIT
    return Solution.from_groups(problem, r, c, status=status, upper_bound=bound, info=info)
