"""Outside peers (optional; skipped when not installed): Torch-Pruning for the accuracy and
latency benchmarks, KaHIP for the heuristics benchmark.

Torch-Pruning (``pip install torch-pruning``, in the ``bench`` extra) is the channel pruner a
user would pick instead: :func:`torch_pruning_at` prunes a copy to a MACs ratio (permopt's
count), its channel ratio bisected.

KaHIP (``pip install kahip``), the state of the art in balanced graph partitioning, on the
bipartite score graph: rows and columns are nodes, ``S[f, c]`` the edge weights (scaled to
integers), ``G`` blocks with the total node count balanced; minimising the cut maximises the
mass kept inside blocks. KaHIP balances rows and columns together, not each side, so a
transportation repair follows: balanced rows by their mass in each column block, then the
best balanced columns for those rows. (Learned from KaHIP's documentation; our own code.)
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import nn

from permopt.nn import count

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


def torch_pruning_at(model: nn.Module, x: torch.Tensor, macs_ratio: float, importance: str = "l2",
                     calib: torch.Tensor | None = None, ignored: list[str] | None = None) -> nn.Module:
    """A copy of ``model`` channel-pruned by Torch-Pruning to ``macs_ratio`` of its MACs (permopt's
    count), its channel ratio bisected. ``importance``: ``l2`` (magnitude) or ``taylor``
    (gradients of the cross-entropy on ``calib`` against the dense model's own predictions, so
    it sees no labels). ``ignored``: module names left alone (default: the last Linear layer,
    the classifier)."""
    import torch_pruning as tp

    if ignored is None:
        ignored = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1:]
    if importance == "taylor" and calib is None:
        raise ValueError("taylor importance needs calib (inputs for the gradients)")
    dense = count(model, x).macs
    pseudo = None
    if calib is not None:
        with torch.no_grad():
            pseudo = model.eval()(calib).argmax(1)

    def pruned(ratio: float) -> nn.Module:
        m = copy.deepcopy(model).eval()
        imp = tp.importance.MagnitudeImportance(p=2) if importance == "l2" else tp.importance.TaylorImportance()
        pruner = tp.pruner.MetaPruner(m, x, importance=imp, pruning_ratio=ratio,
                                      ignored_layers=[m.get_submodule(n) for n in ignored])
        if importance == "taylor":
            m.zero_grad()
            Fn.cross_entropy(m(calib), pseudo).backward()
        pruner.step()
        m.zero_grad()
        return m

    lo, hi = 0.0, 0.95
    for _ in range(12):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if count(pruned(mid), x).macs > macs_ratio * dense else (lo, mid)
    return pruned(hi)
