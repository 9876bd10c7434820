"""Measuring inference latency side by side: interleaved runs, medians, fixed thread counts.

Used by ``permopt bench --latency`` and ``benchmarks/bench_latency.py``. Variants are timed
round-robin (one call of each per round), so a slow period of the machine hits them alike;
the median over rounds is reported.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def without_index_modules(model: nn.Module) -> nn.Module:
    """A copy of an exported model with every ``ChannelIndex`` replaced by an identity: its outputs
    are wrong, but its time shows what the gathers cost (timing only)."""
    import copy

    from .nn.modules import ChannelIndex

    out = copy.deepcopy(model)
    for name, m in list(out.named_modules()):
        if isinstance(m, ChannelIndex):
            parent, _, attr = name.rpartition(".")
            setattr(out.get_submodule(parent) if parent else out, attr, _Identity())
    return out


def interleaved_medians(fns: dict[str, Callable[[], Any]], rounds: int = 20, warmup: int = 3,
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


def onnx_session(model: nn.Module, x: torch.Tensor, threads: int = 1) -> Callable[[], Any]:
    """A no-argument callable running ``model`` on ``x`` in ONNX Runtime (``threads`` intra-op threads)."""
    import onnxruntime as ort

    program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(program.model_proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x.numpy()}
    return lambda: sess.run(None, feed)
