"""Export: replace pruned layers by real grouped layers and fold the permutations away.

A grouped layer built from a plan reads its input channels group by group (group 0's
channels first) and writes its outputs the same way; within a group any order will do, since
the block's weights follow it. Channel order only matters where channels mix, so tensors
joined by channel-wise operations form one *channel space* (:mod:`permopt.nn.channel_order`) that
shares one order ``π``. For each space the export picks the ``π`` that needs the fewest
index modules:

* a dense producer (conv/linear) or consumer adapts for free (permute its weight rows or
  columns, its bias), and so do BatchNorm and depthwise convs inside the space;
* a pruned producer or consumer fits when ``π`` lists its groups in contiguous blocks, in
  group order (:func:`fits`) — layers whose partitions were solved jointly
  (:mod:`permopt.coupling`) all fit one ``π``; model inputs, outputs, concatenations and
  unknown operations need ``π`` = identity; every mismatch gets an explicit
  :class:`ChannelIndex` module.

The result computes exactly what the masked dense model computes.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from ..plan import LayerPlan, Plan
from .inspect import trace_or_none
from .kinds import KINDS, kind_of, set_submodule
from .channel_order import Space, analyse
from .mask import is_masked, remove_masks
from .modules import ChannelIndex


@dataclass
class ExportResult:
    """The exported model and what happened to each permutation."""

    model: nn.Module
    folded: list[str] = field(default_factory=list)       # permutations absorbed by neighbours
    index_modules: list[str] = field(default_factory=list)  # explicit ChannelIndex modules inserted

    def summary(self) -> str:
        return f"{len(self.folded)} permutations folded, {len(self.index_modules)} index modules"


def fits(labels: np.ndarray, order: np.ndarray, groups: int) -> bool:
    """Whether channels listed in ``order`` run through the groups ``0, 1, …`` in contiguous blocks
    (a grouped layer can read or write that order with its weights permuted within blocks); an
    order listing a removed channel (label ``-1``) fits no layer."""
    return bool(np.array_equal(labels[order], np.repeat(np.arange(groups), order.size // groups)))


def positions(order: np.ndarray, n: int) -> np.ndarray:
    """``(n,)``: where each of ``n`` channels sits in ``order`` (a selection of them), -1 if absent."""
    pos = np.full(n, -1, np.int64)
    pos[order] = np.arange(order.size)
    return pos


def grouped_module(m: Any, lp: LayerPlan, row_order: np.ndarray | None = None,
                   col_order: np.ndarray | None = None) -> nn.Module:
    """A real grouped layer holding the kept blocks of ``m``: it reads its input channels in
    ``col_order`` and writes its outputs in ``row_order`` (default: the plan's ``col_perm`` and
    ``row_perm``; any order that :func:`fits` the plan's groups will do)."""
    G = lp.groups
    row_order = lp.row_perm if row_order is None else np.asarray(row_order)
    col_order = lp.col_perm if col_order is None else np.asarray(col_order)
    if not (fits(lp.row_groups, row_order, G) and fits(lp.col_groups, col_order, G)):
        raise ValueError(f"layer {lp.name!r}: the channel orders do not list the plan's groups in contiguous blocks")
    rows, cols = np.split(row_order, G), np.split(col_order, G)
    W = m.weight.detach()
    blocks = [W[torch.as_tensor(r)][:, torch.as_tensor(c)] for r, c in zip(rows, cols)]
    bias = m.bias.detach()[torch.as_tensor(row_order)] if m.bias is not None else None
    kind = kind_of(m)
    if kind is None:
        raise TypeError(f"layer {lp.name!r} is a {type(m).__name__}, not a groupable layer kind")
    new: Any = kind.grouped(m, G, blocks)
    if bias is not None:
        new.bias.data.copy_(bias)
    return new.to(W.dtype).train(m.training)


def check_hooks(model: nn.Module, names: Any) -> None:
    """Refuse to export layers that carry a user's hooks: the grouped module that replaces a layer
    would not call them, and its channels come in another order, so the export would silently
    compute something else than the model with its hooks."""
    for name in names:
        m = model.get_submodule(name)
        kinds = [what for what, table in (("forward ", m._forward_hooks), ("forward pre-", m._forward_pre_hooks),
                                          ("backward ", m._backward_hooks)) if table]
        if kinds:
            which = " and ".join(kinds)
            raise ValueError(f"layer {name!r} has {which}hook(s), which its grouped export would drop; "
                             f"remove them before exporting, keep the layer dense (ignored_layers=[{name!r}]) or "
                             "prune with mode='mask'")


def check_plan(model: nn.Module, plan: Plan) -> None:
    """Raise a clear error when a plan does not fit the model's layers."""
    for name, lp in plan.pruned().items():
        try:
            m: Any = model.get_submodule(name)
        except AttributeError:
            raise KeyError(f"plan names layer {name!r}, which the model does not have") from None
        kind = kind_of(m)
        if kind is None:
            raise TypeError(f"layer {name!r} is a {type(m).__name__}; only Conv2d and Linear (and the other "
                            f"kinds in permopt.nn.kinds: {', '.join(k.name for k in KINDS)}) can be grouped")
        if kind.spatial and m.groups != 1:
            raise ValueError(f"layer {name!r} is already grouped (groups={m.groups}"
                             f"{', depthwise' if m.groups == m.in_channels else ''}); it cannot be regrouped")
        F, C = m.weight.shape[:2]
        if (lp.row_groups.size, lp.col_groups.size) != (F, C):
            raise ValueError(f"layer {name!r}: plan has {lp.row_groups.size}x{lp.col_groups.size} channels, "
                             f"the layer {F}x{C}")


def _kept_channels(sp: Space, plans: dict) -> np.ndarray:
    """The channels of ``sp`` that every layer reading or writing it keeps — one set for all of
    them, and all channels where a model input, output or unknown operation needs them; else a
    ValueError naming the layers that disagree."""
    sides = [(n.target, plans[n.target].row_groups) for n in sp.producers if n.target in plans]
    sides += [(n.target, plans[n.target].col_groups) for n in sp.consumers if n.target in plans]
    sides += [(n.target, np.zeros(sp.channels)) for n in sp.producers + sp.consumers if n.target not in plans]
    kept = [(name, np.flatnonzero(labels >= 0)) for name, labels in sides]
    if not kept or all(k.size == sp.channels for _, k in kept):
        return np.arange(sp.channels)
    first, ref = kept[0]
    other = next((name for name, k in kept if not np.array_equal(k, ref)), None)
    if other is not None:
        raise ValueError(f"the plan removes different channels of one channel space in layers {first!r} and "
                         f"{other!r}: coupled layers (a residual add, a BatchNorm between them) must remove the same")
    if sp.fixed_sources or sp.fixed_sinks:
        raise ValueError(f"the plan removes channels at layer {first!r} from a channel space that a model input, "
                         "output, concatenation or unknown operation reads in full")
    return ref


def _choose_order(sp: Space, plans: dict) -> tuple[np.ndarray, int]:
    """The space's order needing the fewest index modules (its kept channels in their order, or a
    pruned layer's order); removed channels are left out."""
    ident = _kept_channels(sp, plans)
    writers = [plans[n.target] for n in sp.producers if n.target in plans]
    readers = [plans[n.target] for n in sp.consumers if n.target in plans]
    cands = [ident] + [lp.row_perm for lp in writers] + [lp.col_perm for lp in readers]

    def cost(pi):
        return (sum(not fits(lp.row_groups, pi, lp.groups) for lp in writers)
                + sum(not fits(lp.col_groups, pi, lp.groups) for lp in readers)
                + (0 if np.array_equal(pi, np.arange(sp.channels)) else len(sp.fixed_sources) + len(sp.fixed_sinks)))
    costs = [cost(p) for p in cands]
    k = int(np.argmin(costs))
    return cands[k], costs[k]


#: Module attributes holding a channel count, set to the kept count where channels are removed.
_CHANNEL_ATTRS = ("num_features", "in_channels", "out_channels", "groups", "in_features", "out_features")


def _permute_params(m: nn.Module, pi: torch.Tensor, n: int) -> None:
    """Reorder (and, where ``pi`` selects fewer than ``n``, shrink) every per-channel tensor (dim 0
    of the channel count ``n``) of a norm / depthwise conv, and its channel-count attributes."""
    for t in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False)):
        if t.dim() >= 1 and t.shape[0] == n:
            t.data = t.data[pi].clone()
    if pi.numel() != n:
        for attr in _CHANNEL_ATTRS:
            if getattr(m, attr, None) == n:
                setattr(m, attr, pi.numel())


def _permute_node_params(gm: fx.GraphModule, node: fx.Node, modules: dict, pi: torch.Tensor, n: int,
                         done: set) -> None:
    """Per-channel tensors of a channel-wise node follow ``pi`` (over ``n`` channels): a module's
    own, or the ``get_attr`` tensors a functional norm reads (each tensor once)."""
    if node.op == "call_module":
        if node.target not in done:  # a module applied in several places is permuted once
            _permute_params(modules[node.target], pi, n)
            done.add(node.target)
        return
    for a in node.all_input_nodes:
        if a.op == "get_attr" and isinstance(a.target, str) and a.target not in done:
            parent, _, attr = a.target.rpartition(".")
            t = getattr(gm.get_submodule(parent) if parent else gm, attr)
            if isinstance(t, torch.Tensor) and t.dim() >= 1 and t.shape[0] == n:
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
            row_in_place, col_in_place = fits(lp.row_groups, pi_out, lp.groups), fits(lp.col_groups, pi_in, lp.groups)
            set_submodule(gm, n.target, grouped_module(m, lp, pi_out if row_in_place else None,
                                                       pi_in if col_in_place else None))
            if col_in_place:
                result.folded.append(f"{n.target}: input permutation folded upstream")
            if row_in_place:
                result.folded.append(f"{n.target}: output permutation folded downstream")
            continue
        F, C = m.weight.shape[:2]
        with torch.no_grad():
            m.weight.data = m.weight.data[torch.as_tensor(pi_out)][:, torch.as_tensor(pi_in)].clone()
            if m.bias is not None:
                m.bias.data = m.bias.data[torch.as_tensor(pi_out)].clone()
        for attr, n_old, n_new in (("out_channels", F, pi_out.size), ("in_channels", C, pi_in.size),
                                   ("out_features", F, pi_out.size), ("in_features", C, pi_in.size)):
            if getattr(m, attr, None) == n_old:
                setattr(m, attr, n_new)


def _insert_index_modules(inserter: _IndexInserter, spaces: dict, orders: dict, plans: dict) -> None:
    """Explicit index modules wherever a space's order could not be matched."""
    for root, sp in spaces.items():
        pi = orders[root]
        inv = positions(pi, sp.channels)
        for n in sp.producers:
            lp = plans.get(n.target)
            if lp is not None and not fits(lp.row_groups, pi, lp.groups):
                inserter.after(n, positions(lp.row_perm, sp.channels)[pi], f"after {n.target} (output order)")
        for n in sp.consumers:
            lp = plans.get(n.target)
            if lp is not None and not fits(lp.col_groups, pi, lp.groups):
                inserter.before(n.args[0], n, inv[lp.col_perm], f"before {n.target} (input order)")
        if not np.array_equal(pi, np.arange(sp.channels)):
            for s in sp.fixed_sources:
                inserter.after(s, pi, f"after {s.name} (fixed source)")
            for a, user in sp.fixed_sinks:
                inserter.before(a, user, inv, f"before {user.name} (fixed sink)")


def export(model: nn.Module, plan: Plan, example_inputs: Any, traced: fx.GraphModule | None = None, *,
           refuse_hooks: bool = True) -> ExportResult:
    """Build the grouped model for ``plan``; the input model is left untouched.

    Masks on ``model`` (from :func:`apply_masks`) are baked into the copy first. Returns an
    :class:`ExportResult` whose ``model`` is a ``torch.fx.GraphModule`` (or, when the model
    cannot be traced, a copy with each pruned layer wrapped in index modules). ``traced``, the
    trace of an unmasked ``model`` from :func:`permopt.nn.inspect`, is copied instead of tracing
    again. A pruned layer with a user's hooks is refused (:func:`check_hooks`) unless
    ``refuse_hooks=False`` (permopt's own exports for counting and timing a masked model).
    """
    check_plan(model, plan)
    plans = plan.pruned()
    if refuse_hooks:
        check_hooks(model, plans)
    gm: fx.GraphModule | None = None
    if traced is not None and not is_masked(model):
        gm = copy.deepcopy(traced)
    else:
        work = remove_masks(copy.deepcopy(model), bake=True)
        if traced is not None:  # a masked (maybe refitted) copy of the traced model: its weights into the trace
            gm = _with_state(traced, work)
        if gm is None:
            gm = trace_or_none(work, example_inputs, "each grouped layer is wrapped in channel-index modules instead")
        if gm is None:
            return _export_untraced(work, plans)
    assert gm is not None
    uf, spaces, modules = analyse(gm)
    result = ExportResult(gm)
    orders = {root: _choose_order(sp, plans)[0] for root, sp in spaces.items()}
    order_of = lambda n: orders[uf.find(n)]  # noqa: E731
    _rebuild_layers(gm, _layer_nodes(gm.graph, spaces), modules, plans, order_of, result)
    permuted: set = set()
    for root, sp in spaces.items():  # channel-wise modules and functional norms follow their space's order
        for n in sp.params:
            _permute_node_params(gm, n, modules, torch.as_tensor(orders[root]), sp.channels, permuted)
    _insert_index_modules(_IndexInserter(gm, result), spaces, orders, plans)
    gm.graph.lint()
    gm.recompile()
    return result


def _with_state(traced: fx.GraphModule, model: nn.Module) -> fx.GraphModule | None:
    """A copy of ``traced`` holding ``model``'s parameters and buffers (same module names), or
    None when the trace holds a tensor the model does not name."""
    gm = copy.deepcopy(traced)
    missing, _ = gm.load_state_dict(model.state_dict(), strict=False)
    return None if missing else gm


def _export_untraced(work: nn.Module, plans: dict) -> ExportResult:
    result = ExportResult(work)
    removing = next((name for name, lp in plans.items() if lp.removes), None)
    if removing is not None:
        raise ValueError(f"the plan removes channels (layer {removing!r}), which needs the model traced by torch.fx "
                         "to find the layers that share them; this model could not be traced")
    for name, lp in plans.items():
        m = work.get_submodule(name)
        wrapped = nn.Sequential(ChannelIndex(lp.col_perm), grouped_module(m, lp), ChannelIndex(np.argsort(lp.row_perm)))
        set_submodule(work, name, wrapped)
        result.index_modules += [f"{name}: input index (untraced model)", f"{name}: output index (untraced model)"]
    return result
