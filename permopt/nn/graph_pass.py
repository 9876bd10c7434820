"""A traced model run node by node over all calibration batches at once.

A layer-wise reconstruction refits each layer on the inputs the *refitted* earlier layers give.
Run as whole forwards, that is one forward per layer cut short at it (about half a pass per layer:
a ResNet-18 with 64 crops spent 15 minutes so). Run over the model's ``torch.fx`` trace one node
at a time, with every batch's value of each live node kept, it is one pass: the walk pauses at
each layer to refit (:func:`node_by_node` yields there) and goes on with the new weights. The
price is memory: every batch's activations of the nodes alive at once (:func:`peak_bytes`).
"""
from __future__ import annotations

from collections.abc import Iterator
from functools import reduce
from typing import Any

import numpy as np
import torch
from torch import fx, nn


def single_input(graph: fx.GraphModule) -> bool:
    """Whether the trace takes exactly one input (what a calibration batch is)."""
    return sum(n.op == "placeholder" for n in graph.graph.nodes) == 1


def _last_uses(nodes: list[fx.Node]) -> dict[fx.Node, int]:
    """Index of the last node that reads each node."""
    last: dict[fx.Node, int] = {}
    for i, node in enumerate(nodes):
        for used in node.all_input_nodes:
            last[used] = i
    return last


def _meta_bytes(node: fx.Node) -> int:
    """Bytes of a node's value for the trace's batch, from the metadata shape propagation left; a
    node without any holds no tensor (a size, a shape tuple, an int)."""
    meta = node.meta.get("tensor_meta")
    if meta is None:
        return 0
    metas = [meta] if hasattr(meta, "shape") else list(meta) if isinstance(meta, (list, tuple)) else []
    return sum(int(np.prod(m.shape)) * torch.empty((), dtype=m.dtype).element_size()
               for m in metas if hasattr(m, "shape"))


def peak_bytes(graph: fx.GraphModule, samples: int) -> int | None:
    """The most bytes the values alive at once take over ``samples`` inputs, read off the shapes
    the trace recorded (the trace's batch scaled to ``samples``); None where it recorded no input shape."""
    nodes = list(graph.graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    meta = inputs[0].meta.get("tensor_meta") if inputs else None
    if meta is None or not getattr(meta, "shape", None):
        return None
    batch = int(meta.shape[0]) or 1
    last, live, peak = _last_uses(nodes), 0, 0
    sizes: dict[fx.Node, int] = {}
    for i, node in enumerate(nodes):
        size = _meta_bytes(node)
        sizes[node] = size
        live += size
        peak = max(peak, live)
        for used in node.all_input_nodes:
            if last[used] == i:
                live -= sizes[used]
    return peak * samples // batch


def _attribute(model: nn.Module, target: str) -> Any:
    return reduce(getattr, target.split("."), model)


def _call(node: fx.Node, model: nn.Module, args: tuple, kwargs: dict) -> Any:
    if node.op == "call_module":
        return model.get_submodule(str(node.target))(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)  # type: ignore[operator]
    if node.op == "call_method":
        return getattr(args[0], str(node.target))(*args[1:], **kwargs)
    raise ValueError(f"cannot run node {node.name} ({node.op})")


def _batch_value(arg: Any, env: dict[fx.Node, list[Any]], b: int) -> Any:
    """``arg`` with every node replaced by its value on batch ``b``."""
    def value(n: fx.Node) -> Any:
        return env[n][b]
    return fx.node.map_arg(arg, value)


def node_by_node(graph: fx.GraphModule, model: nn.Module, inputs: list[torch.Tensor],
                 stops: set[str]) -> Iterator[tuple[str, list[tuple[tuple, dict]]]]:
    """Run ``model`` (the module the trace ``graph`` was made of, or a copy with the same module
    names: the modules and attributes are looked up in it) over the batches ``inputs``, one node
    at a time. Before each call of a module named in ``stops`` it yields ``(name, [(args,
    kwargs) per batch])``; the call runs once the caller resumes, so weights changed meanwhile
    are used. Values are dropped after their last use. Call it under ``torch.no_grad()`` and with
    the model in eval mode."""
    nodes = list(graph.graph.nodes)
    last = _last_uses(nodes)
    env: dict[fx.Node, list[Any]] = {}
    count = len(inputs)
    for i, node in enumerate(nodes):
        if node.op == "placeholder":
            env[node] = list(inputs)
        elif node.op == "get_attr":
            env[node] = [_attribute(model, str(node.target))] * count
        elif node.op != "output":
            calls: list[tuple[Any, Any]] = [(_batch_value(node.args, env, b), _batch_value(node.kwargs, env, b))
                                            for b in range(count)]
            if node.op == "call_module" and str(node.target) in stops:
                yield str(node.target), calls
            env[node] = [_call(node, model, a, k) for a, k in calls]
        for used in node.all_input_nodes:
            if last[used] == i:
                del env[used]


__all__ = ["node_by_node", "peak_bytes", "single_input"]
