"""Channel spaces: tensors joined by channel-wise operations share one channel order.

BatchNorm, activations, pooling, residual adds and a flatten of 1×1 maps act on each
channel alone, so every tensor they join must list its channels in the same order. Each
such set is a *channel space*; conv/linear layers write into one space (their output) and
read from another (their input). The export folds permutations per space and the coupled
solver (:mod:`permopt.coupling`) gives every layer on a space one shared partition.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import fx, nn

from .inspect import trace_or_none, untouchable_layers
from .kinds import kind_of

_NORM_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
                 nn.InstanceNorm3d, nn.SyncBatchNorm)
_CHANNELWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Tanh,
    nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Mish, nn.Softplus, nn.Dropout, nn.Dropout2d, nn.AlphaDropout,
    nn.Identity, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
#: Functions and tensor methods that act on each channel alone (elementwise, spatial pooling).
_CHANNELWISE_FUNCS = {
    Fn.relu, Fn.relu6, Fn.relu_, torch.relu, torch.relu_, torch.sigmoid, torch.tanh, Fn.gelu, Fn.silu, Fn.mish,
    Fn.hardswish, Fn.hardsigmoid, Fn.hardtanh, Fn.leaky_relu, Fn.elu, Fn.selu, Fn.celu, Fn.softplus, Fn.sigmoid,
    Fn.tanh, torch.clamp, torch.clip, Fn.dropout, Fn.dropout2d, Fn.alpha_dropout, Fn.avg_pool2d, Fn.max_pool2d,
    Fn.adaptive_avg_pool2d, Fn.adaptive_max_pool2d, operator.add, operator.iadd, torch.add, operator.mul,
    operator.imul, torch.mul, operator.sub, torch.sub, operator.truediv, torch.div, operator.neg, torch.neg,
    torch.exp, torch.abs, operator.pow, torch.pow}
_CHANNELWISE_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "add", "add_", "mul", "mul_",
                        "sub", "sub_", "div", "div_", "contiguous", "clone", "float", "half", "to", "type_as",
                        "neg", "clamp", "clamp_", "clamp_min", "clamp_max", "exp", "abs", "pow", "detach"}
#: Functional norms whose per-channel tensors (weight, bias, running statistics) follow the order.
_NORM_FUNCS = {Fn.batch_norm, Fn.instance_norm, torch.batch_norm, torch.instance_norm}
#: Reductions that keep the channel dimension when they reduce only spatial dims.
_REDUCTIONS = {"mean", "sum", "amax", "amin", torch.mean, torch.sum, torch.amax, torch.amin}
_RESHAPES = {torch.flatten, "flatten", "view", "reshape"}
_ORDER_FREE_METHODS = {"size", "dim", "numel"}
#: Tensor attributes that are metadata, not values; any other attribute (``mT``, ``real``, ``T``)
#: reads the tensor's values and pins its channel order.
_METADATA_ATTRS = {"shape", "dtype", "device", "ndim", "layout", "is_cuda", "requires_grad", "is_sparse",
                   "is_quantized"}


def _shape(node):
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


class UnionFind:
    def __init__(self):
        self.parent = {}

    def find(self, a):
        self.parent.setdefault(a, a)
        while self.parent[a] is not a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra is not rb:
            self.parent[rb] = ra


@dataclass
class Space:
    channels: int
    producers: list = field(default_factory=list)   # layer nodes writing into the space
    consumers: list = field(default_factory=list)   # layer nodes reading from it
    fixed_sources: list = field(default_factory=list)
    fixed_sinks: list = field(default_factory=list)  # (tensor node, user node)
    params: list = field(default_factory=list)       # channel-wise modules with per-channel parameters


def _chan(node: object) -> int | None:
    """Channel count of a ``(N, C, ...)`` tensor node, else None."""
    shape = _shape(node)
    return shape[1] if shape is not None and len(shape) >= 2 else None


def _reduces_only_spatial(node: fx.Node) -> bool:
    dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    ndim = len(_shape(node.args[0]) or ())
    dims = (dims,) if isinstance(dims, int) else dims
    return isinstance(dims, (tuple, list)) and bool(dims) and all(isinstance(d, int) and d % ndim >= 2 for d in dims)


def _group_norm_is_channelwise(groups: int, channels: int | None) -> bool:
    """A group norm over one group (all channels) or one channel per group commutes with a channel order."""
    return groups in (1, channels)


#: Module classes and functions (by name, so that torchvision and timm need not be imported) that
#: scale each sample as a whole: stochastic depth on a residual branch (identity in eval mode).
_PER_SAMPLE_MODULES = {"StochasticDepth", "DropPath"}
_PER_SAMPLE_FUNCS = {"stochastic_depth", "drop_path"}


def _module_role(m: nn.Module, node: fx.Node) -> str:
    kind = kind_of(m)
    in_shape = _shape(node.args[0]) if node.args else None
    if kind is not None and (kind.spatial and m.groups == 1 or not kind.spatial and in_shape is not None
                             and len(in_shape) == 2):
        return "layer"
    if kind is not None and kind.spatial and m.groups == m.in_channels == m.out_channels:
        return "channelwise_params"  # depthwise: one filter per channel
    if isinstance(m, _NORM_MODULES) and len(in_shape or ()) >= 2:
        return "channelwise_params"
    if isinstance(m, nn.GroupNorm):
        return "channelwise_params" if _group_norm_is_channelwise(m.num_groups, _chan(node)) else "unknown"
    if isinstance(m, _CHANNELWISE_MODULES) or type(m).__name__ in _PER_SAMPLE_MODULES:
        return "channelwise"
    if isinstance(m, nn.Flatten) and m.start_dim == 1:
        return "reshape"
    return "unknown"


def _function_role(node: fx.Node) -> str:
    t = node.target
    if t in _NORM_FUNCS:
        return "channelwise_params"
    if t is Fn.group_norm:
        groups = node.kwargs.get("num_groups", node.args[1] if len(node.args) > 1 else None)
        ok = isinstance(groups, int) and _group_norm_is_channelwise(groups, _chan(node))
        return "channelwise_params" if ok else "unknown"
    if t in _CHANNELWISE_FUNCS or t in _CHANNELWISE_METHODS or getattr(t, "__name__", None) in _PER_SAMPLE_FUNCS:
        return "channelwise"
    if t in _REDUCTIONS:
        return "channelwise" if _reduces_only_spatial(node) else "unknown"
    if t in _RESHAPES:
        return "reshape"
    if t in _ORDER_FREE_METHODS:  # sizes: metadata, not channel values
        return "order_free"
    if t is getattr:  # y.shape, y.dtype … are metadata; y.mT, y.real are tensors in another order (or kind)
        return "order_free" if len(node.args) > 1 and node.args[1] in _METADATA_ATTRS else "unknown"
    return "unknown"


def _role(node: fx.Node, modules: dict, untouchable: dict) -> str:
    """What a node does to channel order: layer, channelwise(_params), order_free, source, sink or unknown
    (a layer in ``untouchable`` too: its weights and channel order must stay as they are)."""
    if node.op in ("placeholder", "get_attr"):
        return "source"
    if node.op == "output":
        return "sink"
    if node.op == "call_module" and node.target in untouchable:
        return "unknown"
    role = _module_role(modules[node.target], node) if node.op == "call_module" else _function_role(node)
    if role == "reshape":  # (N, C, 1, 1) -> (N, C) keeps channel order; anything else mixes
        s_in, s_out = (_shape(node.args[0]) if node.args else None), _shape(node)
        ok = s_in is not None and s_out is not None and len(s_out) == 2 and s_out[1] == s_in[1] \
            and int(np.prod(s_in[2:] or (1,))) == 1
        role = "channelwise" if ok else "unknown"
    return role


def analyse(gm: fx.GraphModule) -> tuple[UnionFind, dict, dict]:
    """Union channel tensors joined by channel-wise ops; classify every node's role."""
    modules = dict(gm.named_modules())
    uf, roles, untouchable = UnionFind(), {}, untouchable_layers(gm, modules)
    for node in gm.graph.nodes:
        role, c = _role(node, modules, untouchable), _chan(node)
        if role in ("channelwise", "channelwise_params") and c is not None:
            same = [a for a in node.all_input_nodes if _chan(a) == c]
            if not same:
                role = "unknown"
            for a in same:
                uf.union(a, node)
        roles[node] = role
    _pin_shared_modules(uf, roles)
    return uf, _collect_spaces(uf, roles), modules


def _pin_shared_modules(uf: UnionFind, roles: dict) -> None:
    """One per-channel module applied in several places (the same ``BatchNorm2d`` after two convs)
    holds one set of parameters, permuted once: the channel spaces it is applied in must share one
    channel order, so they are joined (each layer in them still gets its own partition, with index
    modules where it does not fit the shared order)."""
    calls: dict = {}
    for node, role in roles.items():
        if role == "channelwise_params" and node.op == "call_module":
            calls.setdefault(node.target, []).append(node)
    for nodes in calls.values():
        for other in nodes[1:]:
            if _chan(other) == _chan(nodes[0]):  # a scalar-parameter module (PReLU()) may serve any width
                uf.union(nodes[0], other)


def _collect_spaces(uf: UnionFind, roles: dict) -> dict:
    """Per channel space: its producers, consumers, fixed ends and per-channel parameter holders."""
    spaces: dict = {}

    def space(n):
        root = uf.find(n)
        if root not in spaces:
            spaces[root] = Space(_chan(n))
        return spaces[root]

    for node, role in roles.items():
        c = _chan(node)
        if role == "layer":
            space(node.args[0]).consumers.append(node)
            space(node).producers.append(node)
        elif role in ("source", "unknown") and c is not None:
            space(node).fixed_sources.append(node)
        elif role == "channelwise_params":
            space(node).params.append(node)
        if role in ("sink", "unknown"):
            for a in node.all_input_nodes:
                if _chan(a) is not None:
                    space(a).fixed_sinks.append((a, node))
        elif role == "channelwise":
            for a in node.all_input_nodes:  # tensors broadcast into the op, not joined (e.g. 1 channel)
                if _chan(a) is not None and _chan(a) != c:
                    space(a).fixed_sinks.append((a, node))
    return spaces


@dataclass
class ChannelSpaces:
    """The channel spaces of a traced model, numbered ``0 … n-1``.

    ``channels[s]`` is space ``s``'s channel count; ``producers[s]`` / ``consumers[s]`` the
    conv/linear layers writing into / reading from it; ``fixed_ends[s]`` how many model
    inputs, outputs, concatenations or unknown operations need its channels in their
    original order (each costs an index module when the space is reordered).
    """

    channels: list[int]
    producers: list[list[str]]
    consumers: list[list[str]]
    fixed_ends: list[int]

    def sides(self, layer: str) -> tuple[int, int]:
        """``(output space, input space)`` of ``layer``."""
        out = next((s for s, names in enumerate(self.producers) if layer in names), None)
        inp = next((s for s, names in enumerate(self.consumers) if layer in names), None)
        if out is None or inp is None:
            raise KeyError(f"layer {layer!r} is not a conv/linear layer of the traced model")
        return out, inp


def channel_spaces(model: nn.Module, example_inputs: Any, traced: fx.GraphModule | None = None) -> ChannelSpaces | None:
    """Number the channel spaces of ``model`` (traced here unless its trace from
    :func:`permopt.nn.inspect` is passed as ``traced``); None when it cannot be traced."""
    gm = traced if traced is not None else trace_or_none(model, example_inputs, "channel spaces are unknown, so "
                                                                                 "layers are solved uncoupled")
    if gm is None:
        return None
    _, spaces, _ = analyse(gm)
    sps = [sp for sp in spaces.values() if sp.channels is not None]
    return ChannelSpaces([sp.channels for sp in sps], [[n.target for n in sp.producers] for sp in sps],
                         [[n.target for n in sp.consumers] for sp in sps],
                         [len(sp.fixed_sources) + len(sp.fixed_sinks) for sp in sps])
