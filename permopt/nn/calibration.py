"""Calibration data: unlabelled inputs run through the dense model, so pruning sees what each
layer's inputs carry.

One streaming pass (:func:`layer_statistics`) gathers, per layer, the second moments of the
inputs its weights multiply (patch rows of a convolution at sampled output positions, in
float64; never the data itself). They give the data-aware criteria, both *additive* scores
for the permutation solvers:

* ``"activation"``: ``||W[f, c]||₂ · rms(x_c)`` (Wanda, Sun et al. 2023): a channel that
  carries little signal counts for little;
* ``"hessian"``: ``w_fcᵀ H_cc w_fc``, the output energy input channel ``c`` alone sends to
  output ``f`` (``H_cc`` the channel's patch covariance; for a 1×1 conv, ``w² · E[x_c²]``),

and, with the full ``H`` (:data:`FULL_LIMIT`), the output error a grouping leaves after
reconstruction (:mod:`permopt.search.data_cost`).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
import functools
import zlib

import numpy as np
import torch
from torch import nn

from ..criteria import DATA_CRITERIA, l2
from ..progress import progress_bar
from ..patches import block_energy
from .capture import LayerCall, catching, forward_caught
from .hooks import evaluating

#: Output positions sampled per sample of a convolution's output (all rows of a linear layer's).
POSITIONS = 64
#: The full input covariance ``(C·k)²`` is kept for layers with ``C·k`` up to this (128 MiB in
#: float64); wider layers keep only each channel's ``k × k`` block.
FULL_LIMIT = 4096


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


def batch_count(data: Any, batch_size: int = 128) -> int:
    """How many batches :func:`batches` yields, or 0 when the iterable does not say (no ``len``)."""
    if isinstance(data, torch.Tensor):
        return -(-len(data) // batch_size)
    try:
        return len(data)
    except TypeError:
        return 0


def check_reiterable(data: Any) -> None:
    """Refuse calibration data that can be read only once (a generator, an iterator): pruning
    reads it once for the statistics and again for each reconstructed layer, and every read must
    give the same batches in the same order (a reconstruction checks it)."""
    if data is None:
        return
    if isinstance(data, torch.Tensor):
        if data.ndim == 0 or len(data) == 0:
            raise ValueError(f"calibration holds no samples (shape {tuple(data.shape)}); pass unlabelled inputs, "
                             "a batch dimension first")
        if data.is_floating_point() and not bool(torch.isfinite(data).all()):
            raise ValueError("calibration data holds NaN or Inf values")
        return
    if isinstance(data, (list, tuple)) and not data:
        raise ValueError("calibration is an empty list: pass unlabelled inputs (a tensor or batches)")
    if not isinstance(data, Iterable):
        raise TypeError(f"calibration must be a tensor or an iterable of batches, got {type(data).__name__}")
    if iter(data) is data:
        raise TypeError(f"calibration is a {type(data).__name__}, which can be read only once; pass a tensor, a "
                        "list of batches or a DataLoader (it is read once per reconstructed layer)")


def sampled_positions(call: LayerCall, rng: np.random.Generator, positions: int) -> torch.Tensor | None:
    """Up to ``positions`` output positions of a convolution call, drawn without replacement
    from ``rng`` and sorted (None: all of them, also for linear layers)."""
    P = call.positions()
    if not call.spatial or P <= positions:
        return None
    return torch.as_tensor(np.sort(rng.choice(P, positions, replace=False)))


@dataclass
class InputStats:
    """Second moments of the inputs a layer's weights multiply, over ``rows`` sampled rows.

    ``gram`` is the sum of ``a aᵀ`` over patch rows ``a`` (``C·k`` long, channel-major) when
    ``C·k <=`` :data:`FULL_LIMIT`, else None; ``blocks`` ``(C, k, k)`` always holds each
    channel's own block of it."""

    channels: int
    kernel: int
    rows: int
    blocks: np.ndarray
    gram: np.ndarray | None

    def channel_rms(self) -> np.ndarray:
        """Root mean square of each input channel (over kernel offsets and rows)."""
        return np.sqrt(np.einsum("ckk->c", self.blocks) / (self.kernel * max(self.rows, 1)))

    def covariance(self) -> np.ndarray | None:
        """The mean ``E[a aᵀ]`` (``C·k × C·k``), or None for layers over :data:`FULL_LIMIT`."""
        return None if self.gram is None else self.gram / max(self.rows, 1)


class _Accumulator:
    """Sums of ``a aᵀ`` over the patch rows of one layer (``channels × kernel`` long): each
    channel's ``k × k`` block, and the whole gram up to :data:`FULL_LIMIT` (the blocks cost
    ``1/C`` of it, so they are summed on their own rather than cut out of it)."""

    def __init__(self, channels: int, kernel: int, full: bool = True) -> None:
        self.channels, self.kernel, self.rows = channels, kernel, 0
        self.full = full and channels * kernel <= FULL_LIMIT
        self.gram: torch.Tensor | int = 0
        self.blocks: torch.Tensor | int = 0

    def add(self, a: torch.Tensor) -> None:
        a = a.double()
        per = a.reshape(a.shape[0], self.channels, self.kernel)
        self.blocks = self.blocks + torch.einsum("rci,rcj->cij", per, per)
        if self.full:
            self.gram = self.gram + a.T @ a
        self.rows += a.shape[0]

    def result(self) -> InputStats:
        assert isinstance(self.blocks, torch.Tensor)
        gram = self.gram.numpy() if isinstance(self.gram, torch.Tensor) else None
        return InputStats(self.channels, self.kernel, self.rows, self.blocks.numpy(), gram)


#: The dense layers' sampled outputs and the input batches are kept (for the reconstruction) while
#: they take at most this many bytes; beyond, the reconstruction reads the data again per layer.
KEEP_BYTES = 2 * 2**30


def fingerprint(x: torch.Tensor) -> tuple:
    """The batch's shape and, per sample, its values projected on a fixed random direction:
    enough to notice that a later read gave other data, the same samples in another order (a
    shuffling loader with one batch), or the same values moved (random flips of integer pixels
    keep every sum)."""
    d = x.detach().double().reshape(x.shape[0] if x.dim() else 1, -1)
    return tuple(x.shape), tuple((d @ _direction(d.shape[1])).tolist())


@functools.lru_cache(maxsize=8)
def _direction(size: int) -> torch.Tensor:
    return torch.randn(size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@dataclass
class CalibrationPass:
    """What one read of the calibration data through the dense model gathers, per layer of
    ``names``: the input statistics (None unless asked for), and per batch the sampled output
    positions with the dense outputs there (``targets``; the positions drawn from
    :func:`layer_rng`), the batches themselves (``inputs``) and their fingerprints.
    ``targets`` and ``inputs`` are None when not kept (not asked for, or over :data:`KEEP_BYTES`)."""

    names: list[str]
    stats: dict[str, InputStats] | None
    targets: dict[str, list[tuple[torch.Tensor | None, torch.Tensor]]] | None
    inputs: list[torch.Tensor] | None
    prints: list[tuple]
    seed: int
    positions: int
    batch_size: int

    def rng(self, name: str, *stream: int) -> np.random.Generator:
        """Layer ``name``'s random generator (``stream`` picks another one of the layer's)."""
        return layer_rng(self.seed, name, *stream)


def layer_rng(seed: int, name: str, *stream: int) -> np.random.Generator:
    """The generator of layer ``name``'s draws: seeded by ``seed`` and the name itself, so a layer
    gets the same positions whichever other layers a pass covers (a prune's statistics and a later
    ``apply_plan`` with calibration sample the same rows)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), *stream])


def calibration_pass(model: nn.Module, data: torch.Tensor | Iterable[Any], names: list[str], *,
                     positions: int = POSITIONS, seed: int = 0, batch_size: int = 128, progress: bool = False,
                     statistics: bool = True, full: bool = True, keep: bool = False) -> CalibrationPass:
    """One eval-mode, no-grad pass of ``data`` through ``model``: for each layer of ``names``,
    ``positions`` output positions per sample of a convolution drawn from :func:`layer_rng`
    (seeded by ``seed`` and the layer's name: the same data and seed give the same result on any
    machine); there, with ``statistics``, the layer's :class:`InputStats` (the full gram only
    with ``full``), and with ``keep`` its dense outputs and the batches (up to :data:`KEEP_BYTES`)."""
    rngs = {n: layer_rng(seed, n) for n in names}
    acc = {}
    for n in names if statistics else []:
        w: Any = model.get_submodule(n).weight
        acc[n] = _Accumulator(int(w.shape[1]), int(np.prod(w.shape[2:])) if w.dim() > 2 else 1, full)
    targets: dict[str, list] | None = {n: [] for n in names} if keep else None
    inputs: list[torch.Tensor] | None = [] if keep else None
    prints, kept = [], 0
    bar = progress_bar(batch_count(data, batch_size), "calibration pass", "batch", progress)
    with catching(model, names) as calls, evaluating(model):
        for k, x in enumerate(batches(data, batch_size)):
            forward_caught(model, x, calls, names, k)
            prints.append(fingerprint(x))
            for n in names:
                take = sampled_positions(calls[n], rngs[n], positions)
                if n in acc:
                    acc[n].add(calls[n].input_rows(take))
                if targets is not None:
                    b = calls[n].output_rows(take)
                    targets[n].append((take, b))
                    kept += b.numel() * b.element_size()
            if inputs is not None:
                inputs.append(x)
                kept += x.numel() * x.element_size()
            if kept > KEEP_BYTES:
                targets = inputs = None
            if bar:
                bar.update()
    if bar:
        bar.close()
    stats = {n: acc[n].result() for n in names} if statistics else None
    return CalibrationPass(list(names), stats, targets, inputs, prints, seed, positions, batch_size)


def layer_statistics(model: nn.Module, data: torch.Tensor | Iterable[Any], names: list[str], *,
                     positions: int = POSITIONS, seed: int = 0, batch_size: int = 128,
                     progress: bool = False, full: bool = True) -> dict[str, InputStats]:
    """:class:`InputStats` of the layers ``names`` of ``model`` over ``data``: the statistics of
    :func:`calibration_pass`."""
    stats = calibration_pass(model, data, names, positions=positions, seed=seed, batch_size=batch_size,
                             progress=progress, full=full).stats
    assert stats is not None
    return stats


def data_scores(weight: torch.Tensor, stats: InputStats, criterion: str) -> np.ndarray:
    """``(F, C)`` scores of a layer under a data-aware ``criterion`` (:data:`DATA_CRITERIA`)."""
    if criterion == "activation":
        return l2(weight) * stats.channel_rms()[None, :]
    W = weight.detach().double().reshape(weight.shape[0], weight.shape[1], -1).numpy()  # (F, C, k)
    if criterion == "hessian":
        return block_energy(W, stats.blocks) / max(stats.rows, 1)
    raise ValueError(f"unknown data-aware criterion {criterion!r}; choose from {DATA_CRITERIA}")
