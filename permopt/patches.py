"""Patch-row maths shared by the torch side (calibration, reconstruction) and the array-only
search side (the data cost model): which columns of a channel-major ``(F, C·k)`` weight belong
to which input channels, and the output energy each input channel alone sends to each output.
A leaf: numpy only."""
from __future__ import annotations

import numpy as np


def patch_columns(chans: np.ndarray, kernel: int) -> np.ndarray:
    """Columns of a channel-major ``(F, C·k)`` weight (or patch row) that belong to the input
    channels ``chans``, each channel's ``kernel`` offsets together."""
    return (np.asarray(chans)[..., None] * kernel + np.arange(kernel)).reshape(*np.shape(chans)[:-1], -1)


def block_energy(W: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """``(F, C)``: ``w_fcᵀ B_c w_fc`` for weights ``W`` ``(F, C, k)`` and per-channel ``k × k``
    second-moment blocks ``B`` (the output energy channel ``c`` alone sends to output ``f``)."""
    return np.einsum("fci,cij,fcj->fc", W, blocks, W)
