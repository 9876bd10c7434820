"""Pricing for column generation: blocks with the largest reduced profit, and a certified bound on it.

At duals ``y`` (one per row, then one per column) a block ``(R, C)`` has the reduced profit
``S[R, C].sum() − y(R) − y(C)``. Column generation needs good blocks; its Lagrangian
certificate needs an upper bound on the *largest* reduced profit (see :mod:`permopt.solvers.colgen`).
Both pricers work on ``T`` — the scores, transposed when the rows' subsets make the smaller table
(:func:`cheaper_side`) — so that they enumerate or branch over the cheaper side's subsets; duals,
pairs and blocks are in the original orientation.

* :class:`EnumerationPricer` enumerates every subset (the other side's best members are a
  top-k): exact, for tables up to :data:`MAX_PRICING_ENTRIES`; it obeys branching pairs.
* :class:`TreePricer`, for larger blocks (64×64 G=8: 4.4e9 subsets): a cheap stage —
  alternating row/column top-k search from every row and every column at once — and, when
  that finds nothing, branch and bound over the column subsets that proves no block has a
  reduced profit above ``τ`` (a fixed fraction of the average block's dual mass). With the
  penalties spread over the block's cells, ``A = T − a/kc − b/kr``, a block's reduced profit
  is ``Σ A[R, C]``; a node (chosen columns with row sums ``p``, ``m`` more to pick from the
  columns after the last one) is bounded twice:
  *rows alone* — every row adds its own best ``m`` remaining columns, the best ``kr`` rows;
  *columns alone* — ``Σ_R p = Σ_{C'} Σ_R p/m``, so every remaining column adds its best ``kr``
  rows of ``A + p/m`` and the best ``m`` columns count. The first is cheap and prunes near the
  root; the second, where a node has several columns fixed, prunes ~99% of what the first keeps.
  Exhaustive up to ``τ``, so the bound is ``max(τ, the best leaf)``, certified; a work count
  (nodes) caps it.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from math import comb

import numpy as np

from ..limits import Deadline

Block = tuple[np.ndarray, np.ndarray]
#: A branching decision: (row, column, together).
Pair = tuple[int, int, bool]
#: Masks that make a pricer obey branching pairs: (forced, forbidden) per subset and row.
Masks = tuple[np.ndarray, np.ndarray]

#: Largest pricing table (enumerated subsets × the other side's channels) for exact pricing:
#: 128 MB of float64, about 0.2 s per pricing pass (24×24 G=4: 134,596 subsets × 24 = 3.2e6).
MAX_PRICING_ENTRIES = 16_000_000
#: Largest number of group-size subsets the pricing tree branches over (64×64 G=8: 4.4e9).
MAX_TREE_SUBSETS = 10_000_000_000
#: Most channels of the other side per block for the pricing tree (each node keeps its best this
#: many rows, so the bounds loosen as it grows): 128×64 G=8 (16) certifies in 45 s; 256×64 G=8
#: (32) ran 400 column-generation rounds (250 s of master LPs) and then out of tree work.
MAX_TREE_MEMBERS = 16
#: Work the pricing tree may do per pricing, in node × row evaluations (its cost grows with both):
#: 64×64 G=8 at a 2% tolerance used 4.1e8 (6.4M nodes), 128×64 G=8 7.3e8; a 256×64 G=8 layer,
#: whose bounds prune little, is refused after ~35 s instead of running out of time or memory.
TREE_WORK = 1_000_000_000
#: Blocks a pricer returns per call, best first.
BLOCKS_PER_ROUND = 50
#: Alternating rounds of the cheap stage (it settles in a few).
HEURISTIC_ROUNDS = 10
#: Floats (children × rows) per vectorised batch of the pricing tree: 128 MB of float64.
_TREE_BATCH_FLOATS = 1 << 24
#: float32 entries per columns-alone bound evaluation (nodes × candidate columns × rows): 64 MB.
_COLUMNS_BOUND_FLOATS = 1 << 24


def table_sizes(F: int, C: int, G: int) -> tuple[int, int]:
    """Pricing table sizes: the columns' group-size subsets × the rows, and the rows' × the columns."""
    return comb(C, C // G) * F, comb(F, F // G) * C


def cheaper_side(F: int, C: int, G: int) -> bool:
    """Whether the rows' group-size subsets times the columns make a smaller table than the other
    way round (then ``T`` is ``S.T`` and the rows' subsets are enumerated or branched over)."""
    by_columns, by_rows = table_sizes(F, C, G)
    return by_rows < by_columns


@dataclass
class Priced:
    """A pricing's result: its best blocks (best first) and a certified upper bound on the
    largest reduced profit of *any* allowed block (``inf`` when this stage certifies nothing)."""

    blocks: list[Block]
    bound: float


class _Oriented:
    """Shared orientation: ``T`` is the scores with the enumerated/branched side as its columns."""

    def __init__(self, S: np.ndarray, G: int):
        F, C = S.shape
        self.F, self.swap = F, cheaper_side(F, C, G)
        self.T = S.T if self.swap else S
        self.kr, self.kc = self.T.shape[0] // G, self.T.shape[1] // G

    def _split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Duals of ``T``'s rows and of its columns."""
        rows, cols = y[:self.F], y[self.F:]
        return (cols, rows) if self.swap else (rows, cols)

    def _block(self, t_rows: np.ndarray, t_cols: np.ndarray) -> Block:
        t_rows, t_cols = np.sort(t_rows), np.sort(t_cols)
        return (t_cols, t_rows) if self.swap else (t_rows, t_cols)


class EnumerationPricer(_Oriented):
    """Exact pricing: every ``kc``-subset of ``T``'s columns; the best rows for a subset are the
    top ``kr`` of their reduced mass on it. Obeys branching pairs through :meth:`masks`."""

    exhaustive = True

    def __init__(self, S: np.ndarray, G: int):
        super().__init__(S, G)
        T, kc = self.T, self.kc
        self.subsets = np.array(list(itertools.combinations(range(T.shape[1]), kc)), dtype=np.int64).reshape(-1, kc)
        m = self.subsets.shape[0]
        from scipy.sparse import csr_matrix  # imported where used: `import permopt` stays fast

        self.indicator = csr_matrix((np.ones(m * kc), (np.repeat(np.arange(m), kc), self.subsets.ravel())),
                                    shape=(m, T.shape[1]))
        self.mass = np.asarray(self.indicator @ T.T)  # mass[s, i]: T's row i on subset s
        self.member = self.indicator.toarray() > 0  # member[s, j]: T's column j is in subset s

    def masks(self, pairs: list[Pair]) -> Masks | None:
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

    def _choose(self, P: np.ndarray, masks: Masks | None, rows: slice | int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``T`` rows per subset and their summed reduced mass (``-inf`` if none obey the masks)."""
        if masks is None:
            idx = np.argpartition(-P, self.kr - 1, axis=1)[:, :self.kr]
            return idx, np.take_along_axis(P, idx, axis=1).sum(axis=1)
        forced, forbidden = np.atleast_2d(masks[0][rows]), np.atleast_2d(masks[1][rows])
        allowed = np.where(forbidden, -np.inf, P)
        idx = np.argpartition(-np.where(forced, np.inf, allowed), self.kr - 1, axis=1)[:, :self.kr]
        value = np.take_along_axis(allowed, idx, axis=1).sum(axis=1)
        return idx, np.where(forced.sum(axis=1) > self.kr, -np.inf, value)

    def reduced(self, y: np.ndarray, masks: Masks | None = None) -> np.ndarray:
        """The largest reduced profit of an allowed block on each subset."""
        a, b = self._split(y)
        return self._choose(self.mass - a[None, :], masks, slice(None))[1] - self.indicator @ b

    def price(self, y: np.ndarray, masks: Masks | None = None) -> Priced:
        """The best allowed blocks and the exact largest reduced profit."""
        red = self.reduced(y, masks)
        picks = [int(s) for s in np.argsort(-red, kind="stable")[:BLOCKS_PER_ROUND] if red[s] > -np.inf]
        a = self._split(y)[0]
        blocks = [self._block(self._choose((self.mass[s] - a)[None, :], masks, s)[0][0], self.subsets[s])
                  for s in picks]
        return Priced(blocks, float(red.max()))

    def exact(self, y: np.ndarray, masks: Masks | None = None) -> Priced:
        """Same as :meth:`price` (it is exact already)."""
        return self.price(y, masks)


def _top_sum(M: np.ndarray, k: int) -> np.ndarray:
    """Sum of the ``k`` largest entries of each row of ``M``."""
    return np.partition(M, M.shape[1] - k, axis=1)[:, M.shape[1] - k:].sum(axis=1)


def _top_idx(M: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest entries of each row of ``M`` (in no order)."""
    return np.argpartition(-M, k - 1, axis=1)[:, :k]


def _top_mask(M: np.ndarray, k: int) -> np.ndarray:
    """0/1 rows marking the ``k`` largest entries of each row of ``M``."""
    out = np.zeros_like(M)
    np.put_along_axis(out, _top_idx(M, k), 1.0, axis=1)
    return out


class TreePricer(_Oriented):
    """Pricing for blocks too many to enumerate: the cheap stage in :meth:`price`, the
    certified branch and bound in :meth:`exact` (see the module docstring). No branching pairs."""

    exhaustive = False

    def __init__(self, S: np.ndarray, G: int, tolerance: float, max_work: int = TREE_WORK,
                 deadline: Deadline | None = None):
        super().__init__(S, G)
        self.tolerance, self.max_work, self.deadline = tolerance, max_work, deadline
        self.nodes = 0  # tree nodes evaluated over all pricings (a work count, reported in colgen's info)

    def _spread(self, y: np.ndarray) -> np.ndarray:
        """``A``: the scores with each block's duals spread over its cells (``Σ A[R, C]`` = reduced profit)."""
        a, b = self._split(y)
        return self.T - a[:, None] / self.kc - b[None, :] / self.kr

    def masks(self, pairs: list[Pair]) -> Masks | None:
        """Branching pairs are not supported (the tree bounds ignore them): only the root is priced."""
        if pairs:
            raise ValueError("tree pricing does not support branching pairs")
        return None

    def price(self, y: np.ndarray, masks: Masks | None = None) -> Priced:
        """Cheap stage: alternating top-k search from every column's best rows and every row's
        best columns; its blocks, with no certificate."""
        A, kr, kc = self._spread(y), self.kr, self.kc
        # row sets as 0/1 rows: every column's best rows, and the best rows of every row's best columns
        rows = np.vstack([_top_mask(A.T, kr), _top_mask(_top_mask(A, kc) @ A.T, kr)])
        for _ in range(HEURISTIC_ROUNDS):
            new = _top_mask(_top_mask(rows @ A, kc) @ A.T, kr)
            if np.array_equal(new, rows):
                break
            rows = new
        col_mass = rows @ A
        cidx = _top_idx(col_mass, kc)
        value = np.take_along_axis(col_mass, cidx, axis=1).sum(axis=1)
        blocks, seen = [], set()
        for s in np.argsort(-value, kind="stable"):
            block = self._block(np.flatnonzero(rows[s]), cidx[s])
            key = (block[0].tobytes(), block[1].tobytes())
            if key not in seen:
                seen.add(key)
                blocks.append(block)
            if len(blocks) == BLOCKS_PER_ROUND:
                break
        return Priced(blocks, np.inf)

    def exact(self, y: np.ndarray, masks: Masks | None = None) -> Priced:
        """Branch and bound: every block with reduced profit above ``τ = tolerance · |Σy| / G``
        is found (the best ones returned), so ``max(τ, best found)`` bounds them all; raises
        :class:`PricingTreeTooLarge` past ``max_work`` node × row evaluations; certifies nothing (bound ``inf``)
        when the deadline passes first."""
        A, kr, kc = self._spread(y), self.kr, self.kc
        G = self.T.shape[0] // kr
        order = np.argsort(-_top_sum(A.T, kr), kind="stable")  # strong columns first: late candidates are weak
        A = A[:, order]
        amax = max(float(np.abs(A).max()), 1e-300)
        # float error of a block's sum in float64 (its exact value), and of the float32 columns-alone
        # bound: each of its kr·m terms is off by at most 2·eps32·(|A| + |p|/m), |p| ≤ (kc − m)·amax
        exact_pad = 1e-12 * kr * kc * amax
        prune_pad = exact_pad + 4 * kr * kc * float(np.finfo(np.float32).eps) * amax
        tau = self.tolerance * abs(float(y.sum())) / G
        tree = _Tree(A, kr, kc, tau, prune_pad, self.max_work // A.shape[0], self.deadline)
        try:
            leaves = tree.run()
        finally:
            self.nodes += tree.nodes
        if leaves is None:
            return Priced([], np.inf)
        blocks = [self._block(rows, order[cols]) for _, rows, cols in leaves]
        best = leaves[0][0] if leaves else -np.inf
        return Priced(blocks, max(tau, best) + exact_pad)


class PricingTreeTooLarge(RuntimeError):
    """The pricing tree needed more nodes than allowed."""


class _Tree:
    """The level-by-level branch and bound of :meth:`TreePricer.exact` on ``A`` (columns sorted)."""

    def __init__(self, A: np.ndarray, kr: int, kc: int, tau: float, pad: float, max_nodes: int,
                 deadline: Deadline | None):
        self.A, self.kr, self.kc, self.tau, self.pad, self.max_nodes = A, kr, kc, tau, pad, max_nodes
        self.deadline = deadline
        self.A32T = np.ascontiguousarray(A.T, dtype=np.float32)
        n_r, n_c = A.shape
        # rest[l, m, i]: the sum of row i's m best entries among columns l.. (-inf if fewer are left)
        self.rest = np.full((n_c + 1, kc + 1, n_r), -np.inf)
        self.rest[:, 0] = 0.0
        for l in range(n_c):
            top = np.cumsum(-np.sort(-A[:, l:], axis=1), axis=1)
            mm = min(kc, n_c - l)
            self.rest[l, 1:mm + 1] = top[:, :mm].T
        self.nodes = 0

    def _columns_bound(self, p: np.ndarray, last: np.ndarray, m: int) -> np.ndarray:
        """The columns-alone bound of nodes with row sums ``p`` whose next columns follow ``last``."""
        out = np.empty(p.shape[0])
        n_r = self.A.shape[0]
        share = (p / m).astype(np.float32)
        chunk = max(1, _COLUMNS_BOUND_FLOATS // (self.A.shape[1] * n_r))
        for j in np.unique(last):
            nodes = np.flatnonzero(last == j)
            for sel in (nodes[s:s + chunk] for s in range(0, nodes.size, chunk)):
                V = self.A32T[j + 1:][None, :, :] + share[sel][:, None, :]  # node, candidate column, row
                best_rows = np.partition(V, n_r - self.kr, axis=2)[:, :, n_r - self.kr:].sum(axis=2, dtype=np.float64)
                out[sel] = _top_sum(best_rows, m)
        return out

    def _children(self, p: np.ndarray, nxt: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row sums, columns and parent indices of the children (``level + 1`` columns chosen) of
        the nodes with row sums ``p`` and next allowed column ``nxt`` that can still be completed."""
        n_c = self.A.shape[1]
        m = self.kc - level - 1  # still to choose after the child's column
        counts = np.maximum(n_c - m - nxt, 0)
        parent = np.repeat(np.arange(p.shape[0]), counts)
        col = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(nxt, counts)
        self.nodes += col.size
        if self.nodes > self.max_nodes:
            raise PricingTreeTooLarge(f"the pricing tree needed more than its work budget (tree_work_limit) allows: "
                                      f"{self.max_nodes} nodes at this block size")
        return p[parent] + self.A[:, col].T, col, parent

    def _expand(self, p: np.ndarray, nxt: np.ndarray, path: np.ndarray, level: int) -> tuple[np.ndarray, ...]:
        """The children of one batch of nodes that either bound keeps above ``τ``: (p, next, path)."""
        m = self.kc - level - 1
        cp, col, parent = self._children(p, nxt, level)
        path = np.concatenate([path[parent], col[:, None]], axis=1)
        keep = _top_sum(cp + self.rest[col + 1, m], self.kr) + self.pad > self.tau
        cp, col, path = cp[keep], col[keep], path[keep]
        if level >= 2 and cp.shape[0]:  # with a few columns fixed the columns-alone bound pays
            keep = self._columns_bound(cp, col, m) + self.pad > self.tau
            cp, col, path = cp[keep], col[keep], path[keep]
        return cp, col + 1, path

    def run(self) -> list[tuple[float, np.ndarray, np.ndarray]] | None:
        """Leaves above ``τ`` as (reduced profit, rows, sorted-column positions), best first, at most
        :data:`BLOCKS_PER_ROUND`; None when the deadline passed.

        Depth first over batches of nodes (a batch's surviving children are expanded before its
        siblings), so memory holds about one batch per level: breadth first kept a whole level and
        ran out of 24 GB on a 256×64 layer."""
        n_r, n_c = self.A.shape
        step = max(1, _TREE_BATCH_FLOATS // (n_c * n_r))  # parents per batch: their children × rows floats
        stack = [(np.zeros((1, n_r)), np.zeros(1, dtype=np.int64), np.zeros((1, 0), dtype=np.int64), 0)]
        leaves: list[tuple[float, np.ndarray, np.ndarray]] = []
        while stack:
            p, nxt, path, level = stack.pop()
            if p.shape[0] > step:  # split: the first part is expanded first
                stack += [(p[s:s + step], nxt[s:s + step], path[s:s + step], level)
                          for s in reversed(range(0, p.shape[0], step))]
                continue
            if self.deadline is not None and self.deadline.passed():
                return None
            if level == self.kc - 1:  # every child is a block, valued exactly
                cp, col, parent = self._children(p, nxt, level)
                leaves += self._leaves(cp, np.concatenate([path[parent], col[:, None]], axis=1))
                leaves = sorted(leaves, key=lambda t: -t[0])[:BLOCKS_PER_ROUND]
                continue
            cp, nxt2, path2 = self._expand(p, nxt, path, level)
            if cp.shape[0]:
                stack.append((cp, nxt2, path2, level + 1))
        return leaves

    def _leaves(self, p: np.ndarray, path: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """(value, rows, path) of the leaves (row sums ``p``) above ``τ``, best first."""
        value = _top_sum(p, self.kr)
        above = np.flatnonzero(value > self.tau)
        above = above[np.argsort(-value[above], kind="stable")][:BLOCKS_PER_ROUND]
        rows = _top_idx(p[above], self.kr)
        return [(float(value[k]), np.sort(r), path[k]) for k, r in zip(above, rows)]
