"""Outside peers for the heuristics benchmark (optional; skipped when not installed).

KaHIP (``pip install kahip``), the state of the art in balanced graph partitioning, on the
bipartite score graph: rows and columns are nodes, ``S[f, c]`` the edge weights (scaled to
integers), ``G`` blocks with the total node count balanced; minimising the cut maximises the
mass kept inside blocks. KaHIP balances rows and columns together, not each side, so a
transportation repair follows: balanced rows by their mass in each column block, then the
best balanced columns for those rows. (Learned from KaHIP's documentation; our own code.)
"""
from __future__ import annotations

import numpy as np

from permopt.problem import GroupingProblem
from permopt.solvers.transport import assign_balanced, best_col_groups
from permopt.problem import one_hot

KAHIP_MODES = ("FAST", "ECO", "STRONG")
#: KaHIP's allowed imbalance. A perfect balance (0) makes it very slow on these dense graphs
#: (minutes at 128x128); the transportation repair restores the exact per-side balance.
KAHIP_IMBALANCE = 0.03


def kahip_available() -> bool:
    try:
        import kahip  # noqa: F401
    except ImportError:
        return False
    return True


def kahip_groups(problem: GroupingProblem, mode: str = "FAST", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row and column groups from KaHIP's partition of the bipartite score graph, then repair."""
    import kahip

    S, G = problem.scores, problem.groups
    F, C = S.shape
    W = np.rint(S * (10**6 / S.max())).astype(np.int64)  # KaHIP takes integer edge weights
    f, c = np.nonzero(W)
    # CSR of the undirected bipartite graph: rows are nodes 0..F-1, columns F..F+C-1
    src = np.concatenate([f, F + c])
    dst = np.concatenate([F + c, f])
    wts = np.concatenate([W[f, c], W[f, c]])
    order = np.lexsort((dst, src))
    src, dst, wts = src[order], dst[order], wts[order]
    xadj = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=F + C))])
    _, blocks = kahip.kaffpa([1] * (F + C), xadj.tolist(), wts.tolist(), dst.tolist(), G, KAHIP_IMBALANCE, True, seed,
                             getattr(kahip, mode))
    blocks = np.asarray(blocks)
    col_blocks = blocks[F:]
    rows = assign_balanced(S @ one_hot(col_blocks, G))[0]  # repair: balanced rows for KaHIP's column blocks
    return rows, best_col_groups(S, rows, G)[0]
