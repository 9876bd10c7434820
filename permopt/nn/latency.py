"""Measuring inference latency: how (:class:`LatencySetup`) and per layer (:class:`LatencyTable`).

Models are timed side by side with the primitives of :mod:`permopt.nn.timing` (round-robin
rounds, medians, fixed thread counts). Used by ``permopt bench --latency``,
``benchmarks/bench_latency.py`` and latency budgets.

A latency budget (``budget={"latency": 0.6}``) needs each searched layer's time at every
candidate ``G``: :meth:`LatencyTable.layers` runs one variant of the model per ``G`` (random
groups, no index modules: timing only) round-robin with the dense model, and hooks (torch) or
the plugin's performance counters (OpenVINO) time every layer inside the real forward pass
(other deployment runtimes: each layer alone). The model's latency is estimated as the dense
model's measured time minus its searched layers' dense times plus their grouped times, all
from that one session (the machine's speed drifts between runs; ratios within a session are
stable). Sessions are cached on disk, keyed by the model's layers and shapes, candidates,
input size, batch, threads, memory format, runtime and its version, and CPU, so searches under a
latency budget are reproducible from the same cache and not across machines.
"""
from __future__ import annotations

import copy
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..digest import digest
from ..limits import validate_count
from ..plan import LayerPlan, Plan
from ..progress import progress_bar
from .export import export
from .hooks import evaluating, forward_with_hooks
from .inspect import signature
from .kinds import kind_of
from ..io import writable_folder
from ..runtimes import get_runtime
from .runtimes import check_installed, openvino_layer_session, session, version
from .timing import WARMUP, batch_inputs, timed_medians, without_index_modules


def default_cache_dir() -> Path:
    """``$PERMOPT_CACHE`` or ``~/.cache/permopt``: where measured layer latencies are kept."""
    return Path(os.environ.get("PERMOPT_CACHE", Path.home() / ".cache" / "permopt"))


#: Memory formats a model can run in. ``auto`` (the default) times the dense model in both and
#: keeps the faster: channels-last measured faster on this CPU for dense and grouped convs alike
#: (batch 32, 1 thread: resnet56 dense 46 vs 56 ms; mobilenetv2 dense 78 vs 175 ms).
MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


@dataclass(frozen=True)
class LatencySetup:
    """How latencies are measured: ``batch`` (default: the example inputs' batch), torch
    ``threads``, timing ``rounds`` (medians over them), ``memory_format`` of weights and inputs
    (``channels_last``, ``contiguous``, or ``auto``: whichever runs the dense model faster,
    measured by :meth:`resolve`), ``cache_dir`` for the layer table (``None``: no disk cache), and
    the ``runtime`` whole models are timed in: ``torch`` (eager), or a deployment runtime of
    :mod:`permopt.nn.runtimes` (``compile``: torch.compile, in the setup's memory format;
    ``onnxruntime``, ``openvino``, ``executorch``: contiguous inputs). Per-layer tables for
    latency budgets are measured in the same runtime (see :meth:`LatencyTable.layers`)."""

    batch: int | None = None
    threads: int = 1
    rounds: int = 15
    memory_format: str = "auto"
    cache_dir: str | Path | None = field(default_factory=default_cache_dir)  # read when the setup is made
    runtime: str = "torch"

    def __post_init__(self) -> None:
        if self.batch is not None:
            validate_count("batch", self.batch, 1)
        validate_count("threads", self.threads, 1)
        validate_count("rounds", self.rounds, 1)
        if self.memory_format not in (*MEMORY_FORMATS, "auto"):
            raise ValueError(f"memory_format must be 'auto' or one of {sorted(MEMORY_FORMATS)}, "
                             f"got {self.memory_format!r}")
        get_runtime(self.runtime)  # an unknown name is a ValueError naming the registered ones
        check_installed(self.runtime)  # before any timing: a missing package is named at once
        if not get_runtime(self.runtime).runs_torch and self.memory_format == "channels_last":
            raise ValueError(f"runtime {self.runtime!r} takes contiguous inputs; use memory_format='contiguous'")
        if self.cache_dir is not None:  # before any timing: the table is written after the measuring
            writable_folder(self.cache_dir, "latency cache_dir")

    def resolve(self, model: nn.Module, example_inputs: Any) -> "LatencySetup":
        """This setup with ``memory_format="auto"`` replaced by the format that runs the dense
        ``model`` faster (both timed side by side); unchanged otherwise."""
        if self.memory_format != "auto":
            return self
        if not get_runtime(self.runtime).runs_torch:  # deployment runtimes convert the model and choose their own layouts
            return replace(self, memory_format="contiguous")
        trials = {fmt: replace(self, memory_format=fmt, runtime="torch") for fmt in MEMORY_FORMATS}  # eager: no compiles
        times = {}
        for fmt, setup in trials.items():  # one format at a time: each needs its own input layout
            times[fmt] = LatencyTable(replace(setup, cache_dir=None)).models({"dense": model}, example_inputs)["dense"]
        return replace(self, memory_format=min(times, key=lambda f: times[f]))

    def _torch_format(self) -> torch.memory_format:
        if self.memory_format == "auto":
            raise ValueError("resolve() the 'auto' memory format against a model first")
        return MEMORY_FORMATS[self.memory_format]

    def apply(self, model: nn.Module) -> nn.Module:
        """``model`` with its 4-D weights in this setup's memory format (in place; returned)."""
        return model.to(memory_format=self._torch_format())  # type: ignore[call-overload]

    def inputs(self, example_inputs: Any) -> Any:
        """``example_inputs`` resized to the batch (random values) in this memory format."""
        fmt = self._torch_format()
        x = batch_inputs(example_inputs, self.batch)
        if isinstance(x, tuple):
            return tuple(t.contiguous(memory_format=fmt) if t.dim() == 4 else t for t in x)
        return x.contiguous(memory_format=fmt) if x.dim() == 4 else x

    @classmethod
    def parse(cls, spec: Any) -> "LatencySetup":
        """From a LatencySetup, None (defaults) or a dict of its fields."""
        if spec is None:
            return cls()
        if isinstance(spec, cls):
            return spec
        if isinstance(spec, dict):
            fields = ("batch", "threads", "rounds", "memory_format", "cache_dir", "runtime")
            unknown = set(spec) - set(fields)
            if unknown:
                raise ValueError(f"unknown latency options {sorted(unknown)}; use {', '.join(fields)}")
            return cls(**spec)
        raise TypeError(f"latency must be a LatencySetup or a dict, got {type(spec).__name__}")


def layer_inputs(model: nn.Module, example_inputs: Any, names: list[str]) -> dict[str, tuple[int, ...]]:
    """Shape of each named layer's input for ``example_inputs`` (one forward pass, batch dim included)."""
    shapes: dict[str, tuple[int, ...]] = {}
    wanted = {id(model.get_submodule(n)) for n in names}

    def record(name: str, module: nn.Module, inputs: tuple, output: Any) -> None:
        shapes.setdefault(name, tuple(inputs[0].shape))

    forward_with_hooks(model, example_inputs, lambda m: id(m) in wanted, record)
    missing = [n for n in names if n not in shapes]
    if missing:
        raise ValueError(f"layers {missing} did not run on the example inputs; their latency cannot be measured")
    return shapes


def _layer_key(m: nn.Module, shape: tuple[int, ...], groups: int, setup: LatencySetup) -> str:
    kind = kind_of(m)
    what = kind.describe(m) if kind else type(m).__name__
    return (f"{what}|bias{m.bias is not None}|in{'x'.join(map(str, shape[1:]))}|b{shape[0]}|G{groups}|"
            f"t{setup.threads}|{setup.memory_format}|{version(setup.runtime)}|"
            f"{platform.machine()} {platform.processor()}")


#: How each runtime's layer table is measured (part of the cache key): torch hooks, OpenVINO's
#: performance counters, or each layer alone (:meth:`LatencyTable.layers`).
_WAYS = {"torch": "hooks", "openvino": "counters"}


class LatencyTable:
    """Measured seconds of layers at each ``G`` inside their model (and of whole models), cached on disk."""

    FILE = "layer_latency.json"

    def __init__(self, setup: LatencySetup | None = None) -> None:
        self.setup = setup or LatencySetup()
        self.measured = 0  # timing sessions actually run (cache misses)
        path = self._path()
        self._cache: dict[str, Any] = {}
        if path is not None and path.exists():
            try:
                self._cache = dict(json.loads(path.read_text()))
            except (ValueError, TypeError) as e:
                raise ValueError(f"latency cache {path} is unreadable ({e}); delete it to measure again") from None

    def _path(self) -> Path | None:
        return Path(self.setup.cache_dir) / self.FILE if self.setup.cache_dir is not None else None

    def layers(self, model: nn.Module, example_inputs: Any, candidates: dict[str, list[int]],
               progress: bool = False) -> tuple[dict[str, dict[int, float]], float]:
        """Seconds of each named layer at each of its candidate ``G``, timed *inside* the model,
        and of the whole dense model, all from one interleaved session.

        One variant of the model per ``G`` (every layer that has it grouped at it, random groups
        and no index modules: timing only; ``G = 1`` is the dense model) runs round-robin with the
        others on the setup's batch and memory format; hooks time each layer call. One session,
        because this machine's speed drifts between runs (measured ±30% on a shared 2-core box)
        while ratios within a session are stable. Cached per model (layer shapes, candidates,
        input) and setup.

        In OpenVINO the same is done with the plugin's performance counters in place of hooks
        (each layer's time inside the converted model, with what the plugin fused into it). In
        the other deployment runtimes, which cannot be looked into, each layer is timed *alone*
        instead, dense and at each ``G``, on a random input of its shape, round-robin with the
        whole dense model in that runtime; the rest of the model is the dense model's time minus
        its layers' (fusions the runtime makes across layers are in that rest, so the estimate
        is checked by timing the searched model there). OpenVINO falls back to that too where a
        layer has no node of its own in the converted model.
        """
        x = self.setup.inputs(example_inputs)
        shapes = layer_inputs(model, x, list(candidates))
        layer_keys = sorted(f"{n}:{_layer_key(model.get_submodule(n), shapes[n], g, self.setup)}"
                            for n, gs in candidates.items() for g in gs)
        key = digest("\n".join([str(signature(model)), _WAYS.get(self.setup.runtime, "alone")] + layer_keys))
        if key not in self._cache:
            with evaluating(model):
                times, dense, way = self._measure(model, x, candidates, shapes, progress)
            layers: dict[str, dict[str, float]] = {}
            for (g, n), t in times.items():
                layers.setdefault(n, {})[str(g)] = t
            self._cache[key] = {"dense": dense, "layers": layers, "measured_by": way}
            self.measured += 1
            self.save()
        entry = self._cache[key]
        return ({n: {g: float(entry["layers"][n][str(g)]) for g in gs} for n, gs in candidates.items()},
                float(entry["dense"]))

    def _measure(self, model: nn.Module, x: Any, candidates: dict[str, list[int]],
                 shapes: dict[str, tuple[int, ...]], progress: bool
                 ) -> tuple[dict[tuple[int, str], float], float, str]:
        """Each layer's time at each G, the dense model's, and how they were measured (the best
        way the runtime allows: ``hooks``, ``counters`` or ``alone``)."""
        if self.setup.runtime == "torch":
            return (*self._hooked(model, x, candidates, progress), "hooks")
        if self.setup.runtime == "openvino":
            try:
                return (*self._profiled(model, x, candidates, progress), "counters")
            except LookupError:  # a layer the converter merged away: time each layer alone instead
                pass
        return (*self._alone(model, x, candidates, shapes, progress), "alone")

    def _hooked(self, model: nn.Module, x: Any, candidates: dict[str, list[int]],
                progress: bool) -> tuple[dict[tuple[int, str], float], float]:
        """Torch eager: each layer timed by hooks inside one model variant per ``G``."""
        variants = _timing_variants(model, x, candidates)
        times, totals = _hooked_medians({g: self.setup.apply(m) for g, (m, _) in variants.items()},
                                        {g: names for g, (_, names) in variants.items()}, x, self.setup.rounds,
                                        self.setup.threads, progress)
        return times, totals[1]

    def _profiled(self, model: nn.Module, x: Any, candidates: dict[str, list[int]],
                  progress: bool) -> tuple[dict[tuple[int, str], float], float]:
        """OpenVINO: each layer timed by the plugin's performance counters inside one converted
        variant of the model per ``G`` (as :meth:`_hooked` does in torch), round-robin with the
        dense model converted without counters (its time is the total the estimate starts from)."""
        threads = self.setup.threads
        calls: dict[str, Callable[[], Any]] = {"dense": session(copy.deepcopy(model).eval(), x, "openvino", threads)}
        samples: dict[tuple[int, str], list[float]] = {}
        variants = _timing_variants(model, x, candidates)
        for g, (variant, names) in variants.items():
            run, read = openvino_layer_session(variant, x, names, threads)

            def profiled(run: Callable[[], Any] = run, read: Callable[[], dict[str, float]] = read,
                         g: int = g) -> None:
                run()
                for n, t in read().items():
                    samples.setdefault((g, n), []).append(t)
            calls[str(g)] = profiled
        medians = timed_medians(calls, self.setup.rounds, threads, f"timing layers ({len(variants)} variants)", progress)
        return {k: statistics.median(v[WARMUP:]) for k, v in samples.items()}, medians["dense"]

    def _alone(self, model: nn.Module, x: Any, candidates: dict[str, list[int]], shapes: dict[str, tuple[int, ...]],
               progress: bool) -> tuple[dict[tuple[int, str], float], float]:
        """A deployment runtime: each layer alone at each ``G`` (and dense), with the whole dense
        model, in one interleaved session of that runtime. A call's own cost (the runtime's
        dispatch and the input copy: a ReLU alone on the same input, timed alongside) is taken
        off each layer's time; at batch 1 it is most of a small layer's standalone time, and
        leaving it in would count it once per layer instead of once per model."""
        runtime, threads = self.setup.runtime, self.setup.threads
        calls = {"dense": session(copy.deepcopy(model).eval(), x, runtime, threads)}
        base = {n: "base|" + "x".join(map(str, shapes[n])) for n in candidates}  # one per input shape
        bar = progress_bar(len(candidates), f"converting layers for {runtime}", "layer", progress)
        for n, gs in candidates.items():
            alone, inp = nn.Sequential(copy.deepcopy(model.get_submodule(n))).eval(), torch.randn(shapes[n])
            if base[n] not in calls:
                calls[base[n]] = session(nn.Sequential(nn.ReLU()).eval(), inp, runtime, threads)
            for g in sorted(set(gs) | {1}):
                m = alone if g == 1 else without_index_modules(_variant(alone, inp, {"0": [g]}, g)).eval()
                calls[f"{g}|{n}"] = session(m, inp, runtime, threads)
            if bar:
                bar.update()
        if bar:
            bar.close()
        medians = timed_medians(calls, self.setup.rounds, threads, f"timing {len(calls)} layer variants", progress)
        times: dict[tuple[int, str], float] = {}
        for n, gs in candidates.items():
            for g in set(gs) | {1}:
                times[(g, n)] = max(medians[f"{g}|{n}"] - medians[base[n]], 0.0)
        return times, medians["dense"]

    def models(self, models: dict[str, nn.Module], example_inputs: Any, progress: bool = False) -> dict[str, float]:
        """Seconds per call of whole models in eval mode (copies in the setup's memory format) on
        ``example_inputs`` resized to its batch; not cached: they are timed side by side each time."""
        x = self.setup.inputs(example_inputs)
        copies = {k: self.setup.apply(copy.deepcopy(m)).eval() for k, m in models.items()}
        calls = {k: session(m, x, self.setup.runtime, self.setup.threads) for k, m in copies.items()}
        return timed_medians(calls, self.setup.rounds, self.setup.threads, f"timing {len(copies)} models", progress)

    def save(self) -> None:
        """Write the cache (atomically, so concurrent runs never see half a file)."""
        path = self._path()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._cache, indent=0, sort_keys=True))
        tmp.replace(path)


def _variant(model: nn.Module, x: Any, candidates: dict[str, list[int]], groups: int) -> nn.Module:
    """A copy of ``model`` with every layer that has ``groups`` among its candidates grouped at it
    (random groups, for timing only); ``groups = 1``: a plain copy."""
    if groups == 1:
        return copy.deepcopy(model)
    rng = np.random.default_rng(0)
    plan = Plan()
    for n, gs in candidates.items():
        if groups in gs:
            F, C = model.get_submodule(n).weight.shape[:2]  # type: ignore[index]
            plan.layers[n] = LayerPlan(n, groups, rng.permutation(np.arange(F) % groups),
                                       rng.permutation(np.arange(C) % groups))
    return export(model, plan, x, refuse_hooks=False).model  # timed only


def _timing_variants(model: nn.Module, x: Any, candidates: dict[str, list[int]]
                     ) -> dict[int, tuple[nn.Module, list[str]]]:
    """Per ``G`` (1, the dense model, included): the model with every layer that has ``G`` among
    its candidates grouped at it (random groups, no index modules: timing only, in eval mode),
    and the names of those layers, whose times that variant gives."""
    groups = sorted({g for gs in candidates.values() for g in gs} | {1})
    return {g: (without_index_modules(_variant(model, x, candidates, g)).eval(),
                [n for n, gs in candidates.items() if g in gs]) for g in groups}


def _hooked_medians(variants: dict[int, nn.Module], timed: dict[int, list[str]], x: Any, rounds: int, threads: int,
                    progress: bool) -> tuple[dict[tuple[int, str], float], dict[int, float]]:
    """Median seconds of each timed layer call per variant ``(G, layer)``, and of each variant's
    whole forward pass, over ``rounds`` interleaved passes."""
    samples: dict[tuple[int, str], list[float]] = {}
    hooks = []
    for g, m in variants.items():
        for n in timed[g]:
            layer, start = m.get_submodule(n), [0.0]
            hooks.append(layer.register_forward_pre_hook(lambda *_, s=start: s.__setitem__(0, time.perf_counter())))
            hooks.append(layer.register_forward_hook(
                lambda *_, s=start, k=(g, n): samples.setdefault(k, []).append(time.perf_counter() - s[0])))
    args = x if isinstance(x, tuple) else (x,)
    warmup = 2
    try:
        medians = timed_medians({str(g): partial(m, *args) for g, m in variants.items()}, rounds, threads,
                         f"timing layers ({len(variants)} variants)", progress, warmup)
        totals = {int(g): t for g, t in medians.items()}
    finally:
        for h in hooks:
            h.remove()
    return {k: statistics.median(v[warmup:]) for k, v in samples.items()}, totals
