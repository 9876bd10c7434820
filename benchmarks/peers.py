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


#: Torch-Pruning importances the benchmarks compare: magnitude, first-order Taylor, and the
#: OBD-style Hessian diagonal (squared per-sample gradients), each over coupled channel groups.
PEER_IMPORTANCES = ("l2", "taylor", "hessian")


def _importance(name: str):
    import torch_pruning as tp

    if name == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    if name == "hessian":
        return tp.importance.GroupHessianImportance()
    raise ValueError(f"importance must be one of {PEER_IMPORTANCES}, got {name!r}")


def _peer_gradients(model: nn.Module, imp, importance: str, calib: torch.Tensor, pseudo: torch.Tensor) -> None:
    """Gradients the data-aware importances read, from the dense model's own predictions on
    ``calib`` (no labels): one backward for Taylor, one per sample (up to 64) for Hessian."""
    if importance == "taylor":
        model.zero_grad()
        Fn.cross_entropy(model(calib), pseudo).backward()
    elif importance == "hessian":
        imp.zero_grad()
        for i in range(min(len(calib), 64)):
            model.zero_grad()
            Fn.cross_entropy(model(calib[i:i + 1]), pseudo[i:i + 1]).backward()
            imp.accumulate_grad(model)


def torch_pruning_ratio(model: nn.Module, x: torch.Tensor, ratio: float, importance: str = "l2",
                        calib: torch.Tensor | None = None, ignored: list[str] | None = None,
                        global_pruning: bool = False, isomorphic: bool = False) -> nn.Module:
    """A copy of ``model`` with ``ratio`` of its channels removed by Torch-Pruning (``importance``
    of :data:`PEER_IMPORTANCES`; ``global_pruning``/``isomorphic`` as in its ``MetaPruner``).
    ``ignored``: module names left alone (default: the last Linear layer, the classifier)."""
    import torch_pruning as tp

    if ignored is None:
        ignored = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1:]
    if importance != "l2" and calib is None:
        raise ValueError(f"{importance} importance needs calib (inputs for the gradients)")
    m = copy.deepcopy(model).eval()
    imp = _importance(importance)
    pruner = tp.pruner.MetaPruner(m, x, importance=imp, pruning_ratio=ratio, global_pruning=global_pruning,
                                  isomorphic=isomorphic, ignored_layers=[m.get_submodule(n) for n in ignored])
    if calib is not None and importance != "l2":
        with torch.no_grad():
            pseudo = model.eval()(calib).argmax(1)
        _peer_gradients(m, imp, importance, calib, pseudo)
    pruner.step()
    m.zero_grad()
    return m


def torch_pruning_at(model: nn.Module, x: torch.Tensor, macs_ratio: float, importance: str = "l2",
                     calib: torch.Tensor | None = None, ignored: list[str] | None = None, **options) -> nn.Module:
    """A copy of ``model`` channel-pruned by Torch-Pruning to ``macs_ratio`` of its MACs (permopt's
    count), its channel ratio bisected (:func:`torch_pruning_ratio` for the rest)."""
    dense = count(model, x).macs
    return torch_pruning_where(model, x, lambda m: count(m, x).macs <= macs_ratio * dense, importance, calib, ignored,
                               **options)


def torch_pruning_where(model: nn.Module, x: torch.Tensor, small_enough, importance: str = "l2",
                        calib: torch.Tensor | None = None, ignored: list[str] | None = None, steps: int = 12,
                        **options) -> nn.Module:
    """The least-pruned Torch-Pruning copy of ``model`` for which ``small_enough(copy)`` holds
    (MACs or a measured latency under a target), its channel ratio bisected in ``steps`` steps."""
    # Uniform pruning removes the same share of every layer whatever the importance: bisect with the
    # cheap magnitude and score once (the Hessian needs a backward per sample).
    probe, probe_calib = (importance, calib) if options.get("global_pruning") else ("l2", None)
    lo, hi = 0.0, 0.95
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if small_enough(torch_pruning_ratio(model, x, mid, probe, probe_calib, ignored,
                                                               **options)) else (mid, hi)
    return torch_pruning_ratio(model, x, hi, importance, calib, ignored, **options)
