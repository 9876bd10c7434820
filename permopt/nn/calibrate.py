"""Re-estimate BatchNorm statistics after pruning (no weights change)."""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def recalibrate_bn(model: nn.Module, inputs: torch.Tensor, batch_size: int = 128) -> nn.Module:
    """Reset every BatchNorm's running statistics and re-estimate them on ``inputs`` (cumulative
    average over batches); returns the model in eval mode. Pruning changes a layer's outputs,
    so the dense model's statistics no longer fit; this is the usual fix before fine-tuning."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    for chunk in inputs.split(batch_size):
        model(chunk)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return model.eval()
