"""Export: replace pruned layers by real grouped layers and fold the permutations away.

A grouped layer built from a plan reads its input channels in ``col_perm`` order and
writes its outputs in ``row_perm`` order. Channel order only matters where channels mix,
so tensors joined by channel-wise operations (BatchNorm, activations, pooling, residual
adds, a flatten of 1×1 maps) form one *channel space* that shares one order ``π``.
For each space the export picks the ``π`` that needs the fewest index modules:

* a dense producer (conv/linear) or consumer adapts for free (permute its weight rows or
  columns, its bias), and so do BatchNorm and depthwise convs inside the space;
* a pruned producer fits only if ``π`` is its ``row_perm``, a pruned consumer only if ``π``
  is its ``col_perm``; model inputs, outputs, concatenations and unknown operations need
  ``π`` = identity; every mismatch gets an explicit :class:`ChannelIndex` module.

The result computes exactly what the masked dense model computes.
"""
from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import fx, nn

from ..plan import LayerPlan, Plan
from .inspect import layer_kind, trace_or_none
from .mask import remove_masks
from .modules import ChannelIndex, GroupedLinear

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


@dataclass
class ExportResult:
    """The exported model and what happened to each permutation."""

    model: nn.Module
    folded: list[str] = field(default_factory=list)       # permutations absorbed by neighbours
    index_modules: list[str] = field(default_factory=list)  # explicit ChannelIndex modules inserted

    def summary(self) -> str:
        return f"{len(self.folded)} permutations folded, {len(self.index_modules)} index modules"


def grouped_module(m: Any, lp: LayerPlan) -> nn.Module:
    """A real grouped layer holding the kept blocks of ``m`` (input ``col_perm``, output ``row_perm`` order)."""
    G = lp.groups
    rows = [np.flatnonzero(lp.row_groups == g) for g in range(G)]
    cols = [np.flatnonzero(lp.col_groups == g) for g in range(G)]
    W = m.weight.detach()
    blocks = [W[torch.as_tensor(r)][:, torch.as_tensor(c)] for r, c in zip(rows, cols)]
    bias = m.bias.detach()[torch.as_tensor(lp.row_perm)] if m.bias is not None else None
    new: Any
    if isinstance(m, nn.Conv2d):
        new = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,  # type: ignore[arg-type]
                        m.dilation, groups=G, bias=m.bias is not None, padding_mode=m.padding_mode)  # type: ignore[arg-type]
        new.weight.data.copy_(torch.cat(blocks, 0))
    else:
        new = GroupedLinear(m.in_features, m.out_features, G, bias=m.bias is not None)
        new.weight.data.copy_(torch.stack(blocks, 0))
    if bias is not None:
        new.bias.data.copy_(bias)
    return new.to(W.dtype).train(m.training)


def check_plan(model: nn.Module, plan: Plan) -> None:
    """Raise a clear error when a plan does not fit the model's layers."""
    for name, lp in plan.pruned().items():
        try:
            m: Any = model.get_submodule(name)
        except AttributeError:
            raise KeyError(f"plan names layer {name!r}, which the model does not have") from None
        kind = layer_kind(m)
        if kind is None:
            raise TypeError(f"layer {name!r} is a {type(m).__name__}; only Conv2d and Linear can be grouped")
        if kind == "conv" and m.groups != 1:
            raise ValueError(f"layer {name!r} is already grouped (groups={m.groups}"
                             f"{', depthwise' if m.groups == m.in_channels else ''}); it cannot be regrouped")
        F, C = m.weight.shape[:2]
        if (lp.row_groups.size, lp.col_groups.size) != (F, C):
            raise ValueError(f"layer {name!r}: plan has {lp.row_groups.size}x{lp.col_groups.size} channels, "
                             f"the layer {F}x{C}")
        if F % lp.groups or C % lp.groups:
            raise ValueError(f"layer {name!r}: groups={lp.groups} does not divide out={F} and in={C} channels")


def _shape(node):
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


class _UnionFind:
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
class _Space:
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


def _module_role(m: nn.Module, node: fx.Node) -> str:
    kind = layer_kind(m)
    in_shape = _shape(node.args[0]) if node.args else None
    if kind == "conv" and m.groups == 1 or kind == "linear" and in_shape is not None and len(in_shape) == 2:
        return "layer"
    if kind == "conv" and m.groups == m.in_channels == m.out_channels:
        return "channelwise_params"  # depthwise: one filter per channel
    if isinstance(m, _NORM_MODULES) and len(in_shape or ()) >= 2:
        return "channelwise_params"
    if isinstance(m, nn.GroupNorm):
        return "channelwise_params" if _group_norm_is_channelwise(m.num_groups, _chan(node)) else "unknown"
    if isinstance(m, _CHANNELWISE_MODULES):
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
    if t in _CHANNELWISE_FUNCS or t in _CHANNELWISE_METHODS:
        return "channelwise"
    if t in _REDUCTIONS:
        return "channelwise" if _reduces_only_spatial(node) else "unknown"
    if t in _RESHAPES:
        return "reshape"
    if t in _ORDER_FREE_METHODS or t is getattr:  # sizes, ndim, dtype …: metadata, not channel values
        return "order_free"
    return "unknown"


def _role(node: fx.Node, modules: dict) -> str:
    """What a node does to channel order: layer, channelwise(_params), order_free, source, sink or unknown."""
    if node.op in ("placeholder", "get_attr"):
        return "source"
    if node.op == "output":
        return "sink"
    role = _module_role(modules[node.target], node) if node.op == "call_module" else _function_role(node)
    if role == "reshape":  # (N, C, 1, 1) -> (N, C) keeps channel order; anything else mixes
        s_in, s_out = (_shape(node.args[0]) if node.args else None), _shape(node)
        ok = s_in is not None and s_out is not None and len(s_out) == 2 and s_out[1] == s_in[1] \
            and int(np.prod(s_in[2:] or (1,))) == 1
        role = "channelwise" if ok else "unknown"
    return role


def _channel_spaces(gm: fx.GraphModule) -> tuple[_UnionFind, dict, dict]:
    """Union channel tensors joined by channel-wise ops; classify every node's role."""
    modules = dict(gm.named_modules())
    uf, roles = _UnionFind(), {}
    for node in gm.graph.nodes:
        role, c = _role(node, modules), _chan(node)
        if role in ("channelwise", "channelwise_params") and c is not None:
            same = [a for a in node.all_input_nodes if _chan(a) == c]
            if not same:
                role = "unknown"
            for a in same:
                uf.union(a, node)
        roles[node] = role
    return uf, _collect_spaces(uf, roles), modules


def _collect_spaces(uf: _UnionFind, roles: dict) -> dict:
    """Per channel space: its producers, consumers, fixed ends and per-channel parameter holders."""
    spaces: dict = {}

    def space(n):
        root = uf.find(n)
        if root not in spaces:
            spaces[root] = _Space(_chan(n))
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


def _choose_order(sp: _Space, plans: dict) -> tuple[np.ndarray, int]:
    ident = np.arange(sp.channels)
    cands = [ident] + [plans[n.target].row_perm for n in sp.producers if n.target in plans] \
        + [plans[n.target].col_perm for n in sp.consumers if n.target in plans]

    def cost(pi):
        is_id = np.array_equal(pi, ident)
        return (sum(not np.array_equal(plans[n.target].row_perm, pi) for n in sp.producers if n.target in plans)
                + sum(not np.array_equal(plans[n.target].col_perm, pi) for n in sp.consumers if n.target in plans)
                + (0 if is_id else len(sp.fixed_sources) + len(sp.fixed_sinks)))
    costs = [cost(p) for p in cands]
    k = int(np.argmin(costs))
    return cands[k], costs[k]


def _permute_params(m: nn.Module, pi: torch.Tensor) -> None:
    """Reorder every per-channel tensor (dim 0 of the channel count) of a norm / depthwise conv."""
    n = pi.numel()
    for t in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False)):
        if t.dim() >= 1 and t.shape[0] == n:
            t.data = t.data[pi].clone()


def _permute_node_params(gm: fx.GraphModule, node: fx.Node, modules: dict, pi: torch.Tensor, done: set) -> None:
    """Per-channel tensors of a channel-wise node follow ``pi``: a module's own, or the
    ``get_attr`` tensors a functional norm reads (each tensor once)."""
    if node.op == "call_module":
        _permute_params(modules[node.target], pi)
        return
    for a in node.all_input_nodes:
        if a.op == "get_attr" and isinstance(a.target, str) and a.target not in done:
            parent, _, attr = a.target.rpartition(".")
            t = getattr(gm.get_submodule(parent) if parent else gm, attr)
            if isinstance(t, torch.Tensor) and t.dim() >= 1 and t.shape[0] == pi.numel():
                t.data = t.data[pi].clone()
                done.add(a.target)


class _IndexInserter:
    """Inserts :class:`ChannelIndex` modules into a graph and records why."""

    def __init__(self, gm: fx.GraphModule, result: "ExportResult"):
        self.gm, self.result, self.count = gm, result, 0

    def after(self, node: fx.Node, index: np.ndarray, why: str) -> None:
        """Reindex ``node``'s output for all its users."""
        with self.gm.graph.inserting_after(node):
            new = self.gm.graph.call_module(self._module(index, why), (node,))
        node.replace_all_uses_with(new, delete_user_cb=lambda u: u is not new)
        new.meta = dict(node.meta)

    def before(self, node: fx.Node, user: fx.Node, index: np.ndarray, why: str) -> None:
        """Reindex one input ``node`` of one ``user``."""
        with self.gm.graph.inserting_before(user):
            new = self.gm.graph.call_module(self._module(index, why), (node,))
        user.replace_input_with(node, new)
        new.meta = dict(node.meta)

    def _module(self, index: np.ndarray, why: str) -> str:
        name = f"permopt_index_{self.count}"
        self.count += 1
        self.gm.add_submodule(name, ChannelIndex(index))
        self.result.index_modules.append(f"{name}: {why}")
        return name


def _layer_nodes(graph: fx.Graph, spaces: dict) -> list[fx.Node]:
    producers = {n for sp in spaces.values() for n in sp.producers}
    nodes = [n for n in graph.nodes if n in producers]
    seen = set()
    for n in nodes:
        if n.target in seen:
            raise ValueError(f"layer {n.target!r} is called more than once; shared layers cannot be exported")
        seen.add(n.target)
    return nodes


def _rebuild_layers(gm: fx.GraphModule, layer_nodes: list, modules: dict, plans: dict, order_of: Any,
                    result: "ExportResult") -> None:
    """Pruned layers become grouped modules; dense ones absorb their spaces' orders in their weights."""
    for n in layer_nodes:
        m = modules[n.target]
        pi_out, pi_in = order_of(n), order_of(n.args[0])
        if n.target in plans:
            lp = plans[n.target]
            parent, _, attr = n.target.rpartition(".")
            setattr(gm.get_submodule(parent) if parent else gm, attr, grouped_module(m, lp))
            if np.array_equal(pi_in, lp.col_perm):
                result.folded.append(f"{n.target}: input permutation folded upstream")
            if np.array_equal(pi_out, lp.row_perm):
                result.folded.append(f"{n.target}: output permutation folded downstream")
            continue
        with torch.no_grad():
            m.weight.data = m.weight.data[torch.as_tensor(pi_out)][:, torch.as_tensor(pi_in)].clone()
            if m.bias is not None:
                m.bias.data = m.bias.data[torch.as_tensor(pi_out)].clone()


def _insert_index_modules(inserter: _IndexInserter, spaces: dict, orders: dict, plans: dict) -> None:
    """Explicit index modules wherever a space's order could not be matched."""
    for root, sp in spaces.items():
        pi = orders[root]
        inv = np.argsort(pi)
        for n in sp.producers:
            if n.target in plans and not np.array_equal(plans[n.target].row_perm, pi):
                inserter.after(n, np.argsort(plans[n.target].row_perm)[pi], f"after {n.target} (output order)")
        for n in sp.consumers:
            if n.target in plans and not np.array_equal(plans[n.target].col_perm, pi):
                inserter.before(n.args[0], n, inv[plans[n.target].col_perm], f"before {n.target} (input order)")
        if not np.array_equal(pi, np.arange(sp.channels)):
            for s in sp.fixed_sources:
                inserter.after(s, pi, f"after {s.name} (fixed source)")
            for a, user in sp.fixed_sinks:
                inserter.before(a, user, inv, f"before {user.name} (fixed sink)")


def export(model: nn.Module, plan: Plan, example_inputs: Any) -> ExportResult:
    """Build the grouped model for ``plan``; the input model is left untouched.

    Masks on ``model`` (from :func:`apply_masks`) are baked into the copy first. Returns an
    :class:`ExportResult` whose ``model`` is a ``torch.fx.GraphModule`` (or, when the model
    cannot be traced, a copy with each pruned layer wrapped in index modules).
    """
    check_plan(model, plan)
    work = remove_masks(copy.deepcopy(model), bake=True)
    plans = plan.pruned()
    gm = trace_or_none(work, example_inputs, "each grouped layer is wrapped in channel-index modules instead")
    if gm is None:
        return _export_untraced(work, plans)
    uf, spaces, modules = _channel_spaces(gm)
    result = ExportResult(gm)
    orders = {root: _choose_order(sp, plans)[0] for root, sp in spaces.items()}
    order_of = lambda n: orders[uf.find(n)]  # noqa: E731
    _rebuild_layers(gm, _layer_nodes(gm.graph, spaces), modules, plans, order_of, result)
    permuted: set = set()
    for root, sp in spaces.items():  # channel-wise modules and functional norms follow their space's order
        for n in sp.params:
            _permute_node_params(gm, n, modules, torch.as_tensor(orders[root]), permuted)
    _insert_index_modules(_IndexInserter(gm, result), spaces, orders, plans)
    gm.graph.lint()
    gm.recompile()
    return result


def _export_untraced(work: nn.Module, plans: dict) -> ExportResult:
    result = ExportResult(work)
    for name, lp in plans.items():
        m = work.get_submodule(name)
        wrapped = nn.Sequential(ChannelIndex(lp.col_perm), grouped_module(m, lp), ChannelIndex(np.argsort(lp.row_perm)))
        parent, _, attr = name.rpartition(".")
        setattr(work.get_submodule(parent) if parent else work, attr, wrapped)
        result.index_modules += [f"{name}: input index (untraced model)", f"{name}: output index (untraced model)"]
    return result
