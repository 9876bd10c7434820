"""Re-estimate BatchNorm statistics after pruning (no weights change)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .calibration import batches


@torch.no_grad()
def recalibrate_bn(model: nn.Module, inputs: torch.Tensor | Iterable[Any], batch_size: int = 128) -> nn.Module:
    """Reset every BatchNorm's running statistics and re-estimate them on ``inputs`` (cumulative
    average over batches); returns the model in eval mode. Pruning changes a layer's outputs,
    so the dense model's statistics no longer fit; this is the usual fix before fine-tuning.

    ``inputs`` is one tensor (split into batches of ``batch_size``) or any iterable of batches,
    such as a ``torch.utils.data.DataLoader``: each item is a tensor, or a tuple/list whose first
    element is the input (``(x, y)`` pairs), so data larger than memory streams through.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    try:
        for x in batches(inputs, batch_size):
            model(x)
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
    return model.eval()
