"""Calibration data: unlabelled inputs run through the dense model to see which channels carry
signal. Data-aware scores weight each input channel's scores by the RMS of that channel's
activations (Wanda, Sun et al. 2023: ``|W| · ||X||``), so channels that carry little signal
count for little when the groups are chosen."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from .hooks import evaluating, recording


def batches(data: torch.Tensor | Iterable[Any], batch_size: int = 128) -> Iterator[torch.Tensor]:
    """Input batches from one tensor (split into ``batch_size``) or any iterable of batches (a
    ``DataLoader``: each item a tensor, or a tuple/list whose first element is the input); a
    ValueError once it is exhausted if it held none."""
    items = data.split(batch_size) if isinstance(data, torch.Tensor) else data
    k = -1
    for k, batch in enumerate(items):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"calibration batch {k} is a {type(x).__name__}, not a tensor (or a tuple whose first "
                            "element is one)")
        yield x
    if k < 0:
        raise ValueError("calibration data held no batches")


def input_channel_rms(model: nn.Module, data: torch.Tensor | Iterable[Any], names: list[str],
                      batch_size: int = 128) -> dict[str, np.ndarray]:
    """Root mean square of each input channel of the layers ``names`` over ``data`` (eval mode,
    no grad): channels are dimension 1 of a convolution's input, the last of a linear layer's."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    wanted = set(names)

    def record(name: str, module: nn.Module, inputs: tuple, output: Any) -> None:
        x = inputs[0].detach().double()
        x = x.movedim(1, -1) if isinstance(module, nn.modules.conv._ConvNd) else x
        flat = x.reshape(-1, x.shape[-1])
        sums[name] = sums.get(name, 0) + (flat * flat).sum(0)
        counts[name] = counts.get(name, 0) + flat.shape[0]

    ids = {id(model.get_submodule(n)) for n in wanted}
    with recording(model, lambda m: id(m) in ids, record), evaluating(model):
        for x in batches(data, batch_size):
            model(x)
    missing = sorted(wanted - set(sums))
    if missing:
        raise ValueError(f"layers {missing} did not run on the calibration data")
    return {n: (sums[n] / counts[n]).sqrt().numpy() for n in names}
