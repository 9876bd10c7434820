"""Timing primitives: calls of several models timed round-robin, medians, fixed thread counts.

Variants are timed round-robin (one call of each per round), so a slow period of the machine
hits them alike; the median over rounds is reported. :mod:`permopt.nn.latency` builds its layer
tables and whole-model timings on these.
"""
from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..progress import progress_bar
from .kinds import set_submodule
from .modules import ChannelIndex


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def without_index_modules(model: nn.Module) -> nn.Module:
    """A copy of an exported model with every ``ChannelIndex`` replaced by an identity: its outputs
    are wrong, but its time shows what the gathers cost (timing only)."""
    out = copy.deepcopy(model)
    for name, m in list(out.named_modules()):
        if isinstance(m, ChannelIndex):
            set_submodule(out, name, _Identity())
    return out


#: Untimed rounds before the timed ones (caches, allocator, lazy initialisation).
WARMUP = 3


def _counting(fn: Callable[[], Any], bar: Any | None) -> Callable[[], Any]:
    """``fn``, advancing ``bar`` by one step per call (``fn`` itself when there is no bar)."""
    if bar is None:
        return fn

    def counted() -> Any:
        out = fn()
        bar.update()
        return out
    return counted


def interleaved_medians(fns: dict[str, Callable[[], Any]], rounds: int = 20, warmup: int = WARMUP,
                        threads: int | None = None) -> dict[str, float]:
    """Median seconds per call of each function, timed round-robin with ``threads`` torch threads."""
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                for fn in fns.values():
                    fn()
            times: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(rounds):
                for k, fn in fns.items():
                    t = time.perf_counter()
                    fn()
                    times[k].append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(old)
    return {k: statistics.median(v) for k, v in times.items()}


def timed_medians(calls: dict[str, Callable[[], Any]], rounds: int, threads: int, desc: str, progress: bool,
           warmup: int = WARMUP) -> dict[str, float]:
    """:func:`interleaved_medians` of ``calls`` with a progress bar of its passes."""
    bar = progress_bar((rounds + warmup) * len(calls), desc, "pass", progress)
    try:
        return interleaved_medians({k: _counting(fn, bar) for k, fn in calls.items()}, rounds, warmup=warmup,
                                   threads=threads)
    finally:
        if bar:
            bar.close()


def batch_inputs(example_inputs: Any, batch: int | None) -> Any:
    """``example_inputs`` with the batch dimension resized to ``batch`` (random values; None: unchanged)."""
    if batch is None:
        return example_inputs
    if isinstance(example_inputs, tuple):
        return tuple(batch_inputs(t, batch) for t in example_inputs)
    return torch.randn((batch,) + tuple(example_inputs.shape[1:]), dtype=example_inputs.dtype)


__all__ = ["interleaved_medians", "timed_medians", "batch_inputs", "without_index_modules", "WARMUP"]
