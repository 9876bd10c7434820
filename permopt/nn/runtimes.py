"""Runtimes a model can be timed in besides torch eager: torch.compile (Inductor), and the
deployment runtimes ONNX Runtime, OpenVINO and ExecuTorch with its XNNPACK delegate (each an
optional extra, imported only when used, with the install line when missing). Each session is a
no-argument callable running the model on fixed inputs, for :func:`~permopt.nn.latency.interleaved_medians`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

#: Runtimes :func:`session` knows, with the extra that installs each.
RUNTIMES = {"onnxruntime": "onnx", "openvino": "openvino", "executorch": "executorch", "compile": ""}
#: Runtimes that run the torch model itself, in the setup's memory format (the others convert
#: it and take contiguous inputs).
TORCH_RUNTIMES = ("torch", "compile")


def version(runtime: str) -> str:
    """``runtime`` and the version of the package that runs it (``torch`` for eager and compile),
    for cache keys: a table measured under one version is not reused under another."""
    from importlib.metadata import PackageNotFoundError, version as package_version

    package = {"torch": "torch", "compile": "torch"}.get(runtime, runtime)
    try:
        return f"{runtime} {package_version(package)}"
    except PackageNotFoundError:
        return f"{runtime} (not installed)"


def session(model: nn.Module, x: torch.Tensor, runtime: str, threads: int = 1) -> Callable[[], Any]:
    """A no-argument callable running ``model`` on ``x`` in ``runtime`` with ``threads`` threads."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; known: {sorted(RUNTIMES)}")
    try:
        make = {"onnxruntime": onnx_session, "openvino": openvino_session, "executorch": executorch_session,
                "compile": compile_session}[runtime]
        return make(model, x, threads)
    except ImportError as e:
        raise ImportError(f"runtime {runtime!r} needs its package: pip install 'permopt[{RUNTIMES[runtime]}]' "
                          f"({e})") from None


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


def openvino_session(model: nn.Module, x: torch.Tensor, threads: int = 1) -> Callable[[], Any]:
    """A no-argument callable running ``model`` on ``x`` in OpenVINO's CPU plugin (converted with
    ``openvino.convert_model``; ``threads`` inference threads, the latency hint, float32 kept:
    on CPUs with bf16 units the plugin would otherwise compute in bf16)."""
    import openvino as ov

    compiled = ov.Core().compile_model(ov.convert_model(model.eval(), example_input=x), "CPU",
                                       {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                        "INFERENCE_PRECISION_HINT": "f32"})
    request, feed = compiled.create_infer_request(), x.numpy()
    return lambda: request.infer([feed])


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
    ``threads`` is set by the caller's timing (:func:`~permopt.nn.latency.interleaved_medians`)."""
    compiled = torch.compile(model)
    args = x if isinstance(x, tuple) else (x,)
    return lambda: compiled(*args)
