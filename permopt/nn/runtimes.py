"""Runtimes a model can be timed in besides torch eager: torch.compile (Inductor), and the
deployment runtimes ONNX Runtime, OpenVINO and ExecuTorch with its XNNPACK delegate (each an
optional extra, imported only when used, with the install line when missing). Each session is a
no-argument callable running the model on fixed inputs, for :func:`~permopt.nn.timing.interleaved_medians`."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

from ..runtimes import get_runtime

def version(runtime: str) -> str:
    """``runtime`` and the version of the package that runs it (``torch`` for eager and compile),
    for cache keys: a table measured under one version is not reused under another."""
    from importlib.metadata import PackageNotFoundError, version as package_version

    try:
        return f"{runtime} {package_version(get_runtime(runtime).package)}"
    except PackageNotFoundError:
        return f"{runtime} (not installed)"


def check_installed(runtime: str) -> None:
    """Raise ImportError naming the extra to install when ``runtime``'s packages are missing: at
    configuration time, before any model is timed (``find_spec`` does not import them)."""
    import importlib.util

    entry = get_runtime(runtime)
    missing = [p for p in entry.packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ImportError(f"runtime {runtime!r} needs {', '.join(missing)}: {entry.install_hint()}")


def session(model: nn.Module, x: Any, runtime: str, threads: int = 1) -> Callable[[], Any]:
    """A no-argument callable running ``model`` on ``x`` in the registered ``runtime``
    (:mod:`permopt.runtimes`) with ``threads`` threads."""
    entry = get_runtime(runtime)
    try:
        return entry.maker()(model, x, threads)
    except ImportError as e:
        raise ImportError(f"runtime {runtime!r} needs its package: {entry.install_hint()} ({e})") from None


def eager_session(model: nn.Module, x: Any, threads: int = 1) -> Callable[[], Any]:
    """A no-argument callable running ``model`` on ``x`` in torch eager (``threads`` is set by the
    caller's timing)."""
    args = x if isinstance(x, tuple) else (x,)
    return partial(model, *args)


def onnx_session(model: nn.Module, x: torch.Tensor, threads: int = 1) -> Callable[[], Any]:
    """A no-argument callable running ``model`` on ``x`` in ONNX Runtime (``threads`` intra-op threads)."""
    import onnxruntime as ort

    with warnings.catch_warnings():  # the exporter's own deprecation notices, not the user's to act on
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(program.model_proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x.numpy()}
    return lambda: sess.run(None, feed)


def _openvino_compiled(model: nn.Module, x: torch.Tensor, threads: int, profiled: bool = False) -> Any:
    """``model`` converted with ``openvino.convert_model`` and compiled for the CPU plugin, and the
    converted (uncompiled) ``ov.Model``."""
    import openvino as ov

    converted = ov.convert_model(model.eval(), example_input=x)
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    if profiled:
        config["PERF_COUNT"] = True
    return ov.Core().compile_model(converted, "CPU", config), converted


def openvino_session(model: nn.Module, x: torch.Tensor, threads: int = 1) -> Callable[[], Any]:
    """A no-argument callable running ``model`` on ``x`` in OpenVINO's CPU plugin (converted with
    ``openvino.convert_model``; ``threads`` inference threads, the latency hint, float32 kept:
    on CPUs with bf16 units the plugin would otherwise compute in bf16)."""
    compiled, _ = _openvino_compiled(model, x, threads)
    request, feed = compiled.create_infer_request(), x.numpy()
    return lambda: request.infer([feed])


def openvino_layer_session(model: nn.Module, x: torch.Tensor, names: list[str], threads: int = 1
                           ) -> tuple[Callable[[], Any], Callable[[], dict[str, float]]]:
    """Run ``model`` in OpenVINO with its performance counters on: a no-argument callable running
    it on ``x``, and one returning the seconds each named layer took in the last run *inside*
    the converted model (with whatever the plugin fused into it: BN, ReLU, the residual add).

    The converter renames most layers (a convolution with a folded batch norm becomes
    ``Multiply_…``), so each converted convolution or matrix product is matched to the torch
    layer whose weight rows it holds up to a per-row scale (the folding); an executed node
    holding none of them but still carrying a module path (``__module.fc/…``) is matched by
    that. Raises :class:`LookupError` naming the layers no executed node could be matched to."""
    compiled, converted = _openvino_compiled(model, x, threads, profiled=True)
    owner = _match_layers(converted, {n: model.get_submodule(n) for n in names})
    node_owner: dict[str, str] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        originals = op.get_rt_info()["originalLayersNames"].astype(str).split(",")
        found = ({owner[o] for o in originals if o in owner}  # by weight; else by module path
                 or {n for n in names for o in originals if o.startswith(f"__module.{n}/")})
        if len(found) == 1:
            node_owner[op.get_friendly_name()] = found.pop()
    missing = sorted(set(names) - set(node_owner.values()))
    if missing:
        raise LookupError(f"layers {missing} have no node of their own in the OpenVINO model")
    request, feed = compiled.create_infer_request(), x.numpy()

    def layer_times() -> dict[str, float]:
        out = dict.fromkeys(names, 0.0)
        for p in request.profiling_info:
            if p.node_name in node_owner:
                out[node_owner[p.node_name]] += p.real_time.total_seconds()
        return out
    return lambda: request.infer([feed]), layer_times


def _match_layers(converted: Any, layers: dict[str, nn.Module]) -> dict[str, str]:
    """Friendly name of each convolution or matrix product of the converted model → the layer
    (of ``layers``) whose weight it holds up to a per-output-row scale."""
    import numpy as np

    def unit_rows(w: np.ndarray, out: int) -> np.ndarray | None:
        if w.size % out:
            return None
        r = w.reshape(out, -1).astype(np.float64)
        r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-30)
        return r * np.sign(r[np.arange(out), np.abs(r).argmax(1)])[:, None]

    wanted = {}
    for n, m in layers.items():
        weight = getattr(m, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2:  # a layer without one is not found
            w = weight.detach().numpy()
            wanted[n] = unit_rows(w, w.shape[0] * (w.shape[1] if w.ndim == 3 else 1))  # GroupedLinear: (G, out/G, in/G)
    owner = {}
    for op in converted.get_ordered_ops():
        if op.get_type_name() not in ("Convolution", "GroupConvolution", "MatMul"):
            continue
        const = op.input_value(1).get_node()
        if const.get_type_name() != "Constant":
            continue
        data = np.asarray(const.data)
        views = [data] + ([np.swapaxes(data, -1, -2)] if data.ndim >= 2 else [])  # MatMul may hold Wᵀ
        rows: dict[tuple[int, int], np.ndarray | None] = {}  # each view's unit rows, once per row count
        for n, target in wanted.items():
            if target is None or target.size != data.size:
                continue
            for i, v in enumerate(views):
                key = (i, target.shape[0])
                if key not in rows:
                    rows[key] = unit_rows(np.ascontiguousarray(v), target.shape[0])
                got = rows[key]
                if got is not None and got.shape == target.shape and np.allclose(got, target, atol=1e-4):
                    owner[op.get_friendly_name()] = n
    return owner


def executorch_session(model: nn.Module, x: torch.Tensor, threads: int = 1) -> Callable[[], Any]:
    """A no-argument callable running ``model`` on ``x`` in ExecuTorch, lowered to its XNNPACK
    delegate (``torch.export`` → ``to_edge_transform_and_lower`` → the runtime's pybindings),
    float32, on an XNNPACK thread pool of ``threads`` threads (a process-wide setting)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    exported = torch.export.export(model.eval(), (x,))
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    portable_lib._unsafe_reset_threadpool(threads)
    buffer = program.buffer
    loaded = Runtime.get().load_program(buffer)
    method = loaded.load_method("forward")
    inputs = [x]
    # the closure holds the buffer and the loaded program: the runtime reads them without a copy
    return lambda: (buffer, loaded) and method.execute(inputs)



def compile_session(model: nn.Module, x: Any, threads: int = 1) -> Callable[[], Any]:
    """A no-argument callable running ``torch.compile(model)`` (Inductor, the default mode) on
    ``x``; it compiles on its first call (a warm-up round of the timing, under inference mode).
    ``threads`` is set by the caller's timing (:func:`~permopt.nn.timing.interleaved_medians`)."""
    compiled = torch.compile(model)
    args = x if isinstance(x, tuple) else (x,)
    return lambda: compiled(*args)
