"""A cost model measured on data: what a grouping costs a layer's *output*, not its weight mass.

Weight mass weighs every weight alike, so a budget search puts huge ``G`` on the widest layers
(ResNet-50's layer4 at G=64, 2% kept) and more kept mass does not predict accuracy. Here the
objective term of (layer, G) is the share of the layer's output energy that is lost after the
kept weights are refitted by least squares (:mod:`permopt.nn.reconstruct`), on the dense
model's inputs to that layer, with the partition the solver found::

    err(G) = Σ_g min_w ||W_g X − w X_{I_g}||² / ||W X||²     (≤ 1, 0 at G = 1)

computed from the input covariance ``H = E[x xᵀ]`` of the calibration data alone (no forward
pass per candidate): ``Σ_g [tr(W_g H W_gᵀ) − tr(B_gᵀ H_{I_g}⁻¹ B_g)] / tr(W H Wᵀ)`` with
``B_g = H_{I_g,:} W_gᵀ``. Being a share of each layer's own output, it is comparable across
layers. For layers wider than :data:`permopt.nn.calibration.FULL_LIMIT` only each channel's
block of ``H`` is kept; their term is the masked error under that block-diagonal approximation
(the ``hessian`` criterion's pruned share), noted in :attr:`DataCostModel.approximate`.
Arrays only (no torch): the statistics come from :func:`permopt.nn.calibration.layer_statistics`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..patches import block_energy, patch_columns
from .cost import LayerCost, SolverCostModel
from .space import LayerSpec

def output_error(W: np.ndarray, H: np.ndarray, row_groups: np.ndarray, col_groups: np.ndarray) -> float:
    """Share of the output energy ``tr(W H Wᵀ)`` lost when output ``f`` may read only its group's
    input channels and its weights are refitted by least squares. ``W`` is ``(F, C·k)``
    (channel-major), ``H`` the ``(C·k)²`` input covariance, the groups label rows and columns."""
    F, Ck = W.shape
    k = Ck // col_groups.size
    total = float(np.einsum("fi,ij,fj->", W, H, W))
    if total <= 0:
        return 0.0
    lost = 0.0
    for g in np.unique(row_groups):
        rows = np.flatnonzero(row_groups == g)
        chans = np.flatnonzero(col_groups == g)
        idx = patch_columns(chans, k)
        Wg = W[rows]
        A = H[np.ix_(idx, idx)]
        B = H[idx] @ Wg.T
        fit = np.linalg.lstsq(A, B, rcond=None)[0]  # H is PSD, so B lies in A's range: exact even if singular
        lost += float(np.einsum("fi,ij,fj->", Wg, H, Wg) - (B * fit).sum())
    return float(min(max(lost / total, 0.0), 1.0))


def masked_block_error(W: np.ndarray, blocks: np.ndarray, row_groups: np.ndarray, col_groups: np.ndarray) -> float:
    """Share of the output energy outside the groups under a block-diagonal ``H`` (each input
    channel's ``k × k`` block ``blocks[c]``): no refit can help there."""
    F, Ck = W.shape
    C = col_groups.size
    energy = block_energy(W.reshape(F, C, Ck // C), blocks)
    total = float(energy.sum())
    if total <= 0:
        return 0.0
    kept = float(energy[row_groups[:, None] == col_groups[None, :]].sum())
    return float(min(max(1.0 - kept / total, 0.0), 1.0))


class DataCostModel(SolverCostModel):
    """:class:`SolverCostModel` whose objective term is the layer's output error after
    reconstruction (module docstring) instead of its pruned mass; ``kept_ratio`` stays the
    solution's kept mass. The partitions come from the same solver on the layer's scores.

    Parameters
    ----------
    weights : ``{layer: (F, C·k) array}`` of the dense weights.
    stats : ``{layer: InputStats}`` from :func:`permopt.nn.calibration.layer_statistics`.
    **options : those of :class:`SolverCostModel` (an on-disk cache is refused: the terms
        depend on the data, which its keys do not record).
    """

    def __init__(self, weights: dict[str, np.ndarray], stats: dict[str, Any], **options: Any) -> None:
        if options.get("cache_dir"):
            raise ValueError("DataCostModel keeps no on-disk cache (cache_dir): its costs depend on the data")
        super().__init__(**options)
        self.weights, self.stats = weights, stats
        self.approximate = sorted(n for n, s in stats.items() if s.gram is None)

    def _key(self, layer: LayerSpec, groups: int) -> tuple:
        return ("data", *super()._key(layer, groups))

    def _store(self, layer: LayerSpec, groups: int, sol: Any) -> LayerCost:
        if layer.name not in self.stats:
            raise KeyError(f"DataCostModel has no calibration statistics for layer {layer.name!r}")
        cost = super()._store(layer, groups, sol)
        s, W = self.stats[layer.name], self.weights[layer.name]
        H = s.covariance()
        err = (output_error(W, H, sol.row_groups, sol.col_groups) if H is not None
               else masked_block_error(W, s.blocks, sol.row_groups, sol.col_groups))
        cost = LayerCost(err, cost.kept_ratio, cost.params, cost.macs, cost.status)
        self._memo[self._key(layer, groups)] = cost
        return cost
