"""Find the prunable layers of a model and how their channels connect.

:func:`inspect` traces the model with ``torch.fx`` (shapes by ``ShapeProp``); when tracing
fails it falls back to forward hooks, with a warning: layers are still found, but graph
neighbours are unknown, so export wraps each pruned layer in channel-index modules
instead of folding the permutations.
"""
from __future__ import annotations

import io
import warnings
from contextlib import redirect_stderr
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..caller import warn
from ..digest import digest
from .count import Counts, counter, is_counted
from .hooks import as_tuple, evaluating, forward_with_hooks, recording
from .kinds import KINDS, kind_of, layer_macs, own_forward


@dataclass
class LayerInfo:
    """A prunable layer: shapes, candidate group counts and graph neighbours."""

    name: str
    kind: str                      # "conv" or "linear"
    in_channels: int
    out_channels: int
    kernel_size: tuple
    candidates: list[int]          # G values: common divisors with >= min_channels per group
    macs: int = 0                  # dense multiply-accumulates per sample
    params: int = 0                # dense weight + bias parameters
    producers: list[str] = field(default_factory=list)   # layers/ops whose output this layer reads
    consumers: list[str] = field(default_factory=list)   # layers/ops that read this layer's output

    @property
    def weight_params(self) -> int:
        """Dense weight parameter count (what grouping divides by G)."""
        k = 1
        for s in self.kernel_size:
            k *= s
        return self.out_channels * self.in_channels * k


@dataclass
class ModelInfo:
    """Result of :func:`inspect`: prunable layers, skipped layers with reasons, and the traced graph."""

    layers: dict[str, LayerInfo]
    skipped: dict[str, str]
    graph_module: fx.GraphModule | None
    traced: bool
    counts: Counts | None = None  # parameters and MACs, from the same run (see permopt.nn.count)

    def __iter__(self):
        return iter(self.layers.values())

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, name: str) -> LayerInfo:
        try:
            return self.layers[name]
        except KeyError:
            raise KeyError(f"no prunable layer {name!r}; prunable: {list(self.layers)}"
                           + (f"; skipped: {self.skipped}" if name in self.skipped else "")) from None

    def select(self, layers: Iterable[str] | None = None, ignored_layers: Iterable[str] = ()) -> list[str]:
        """Prunable layer names in model order: only ``layers`` (all if None), minus ``ignored_layers``.

        Names the model does not have, or layers that cannot be grouped, are errors naming them.
        """
        if isinstance(layers, str) or isinstance(ignored_layers, str):
            raise TypeError("layers and ignored_layers take a list of names, not a single string")
        names = list(self.layers)
        wanted = None if layers is None else set(layers)
        ignored = set(ignored_layers)
        unknown = ((wanted or set()) | ignored) - set(self.layers) - set(self.skipped)
        if unknown:
            raise KeyError(f"unknown layers {sorted(unknown)}: the model has no such conv/linear layers; groupable: {names}")
        refused = {n: self.skipped[n] for n in (wanted or set()) if n in self.skipped}
        if refused:
            raise ValueError(f"layers that cannot be grouped: {refused}")
        return [n for n in names if (wanted is None or n in wanted) and n not in ignored]


def common_divisors(a: int, b: int, min_channels: int = 1) -> list[int]:
    """G values dividing both ``a`` and ``b`` with at least ``min_channels`` per group on each side (1 always)."""
    return [1] + [d for d in range(2, min(a, b) + 1) if a % d == 0 and b % d == 0
                  and a // d >= min_channels and b // d >= min_channels]


def signature(model: nn.Module) -> str:
    """A short hash of the model's conv and linear layers (names, kinds, weight shapes): a plan
    records it, so applying the plan to another model is noticed."""
    parts = [f"{n}:{layer_kind(m)}:{tuple(m.weight.shape)}" for n, m in model.named_modules() if layer_kind(m)]
    return digest("|".join(parts))[:16]


def layer_kind(m: nn.Module) -> str | None:
    """The name of ``m``'s groupable kind (``"conv"`` for Conv2d, ``"linear"``, … see
    :mod:`permopt.nn.kinds`), else None."""
    kind = kind_of(m)
    return kind.name if kind else None


def _skip_reason(m: Any, include_linear: bool) -> str | None:
    kind, base = kind_of(m), own_forward(m)
    if kind is None and base is not None:
        return (f"a {base.__name__} subclass with its own forward ({type(m).__name__}) that does not honour "
                "groups= (checked on a random input); register a LayerKind for it "
                "(permopt.nn.kinds.register_layer_kind)")
    if kind is None:
        return f"not a groupable layer kind ({', '.join(k.types[0].__name__ for k in KINDS)})"
    if kind.name == "linear" and not include_linear:
        return "Linear layers are opt-in (include_linear=True)"
    if kind.spatial and m.groups != 1:
        if m.groups == m.in_channels:
            return f"depthwise conv (groups={m.groups}): no channel mixing to group"
        return f"already a group conv (groups={m.groups})"
    return None


class _Tracer(fx.Tracer):
    """``torch.fx``'s tracer, with every conv/linear layer a leaf, subclasses with their own
    ``forward`` included (fx would trace into those and hide the layer behind functional calls)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_counted(m) or super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module, example_inputs: Any, count_into: Callable[..., None] | None = None) -> fx.GraphModule:
    """``torch.fx`` trace of ``model`` with shapes propagated from ``example_inputs`` (in eval mode;
    the modes of ``model`` and its submodules are left as they were). ``count_into`` (a record
    from :func:`permopt.nn.count.counter`) sees every counted layer call of that one run."""
    tracer = _Tracer()
    graph = tracer.trace(model)
    gm = fx.GraphModule(tracer.root, graph, model.__class__.__name__)
    with evaluating(gm), recording(gm, is_counted, count_into or (lambda *a: None)):
        try:
            with redirect_stderr(io.StringIO()):  # ShapeProp prints a traceback before it re-raises
                ShapeProp(gm).propagate(*as_tuple(example_inputs))
        except Exception as e:  # the model itself cannot run on these inputs: not a tracing problem
            cause = e.__cause__ or e
            first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
            raise InputError(f"the example inputs do not run through the model ({type(cause).__name__}: "
                             f"{first})") from e
    return gm


class InputError(ValueError):
    """The example inputs do not fit the model (wrong shape, dtype …)."""


def trace_or_none(model: nn.Module, example_inputs: Any, purpose: str,
                  count_into: Callable[..., None] | None = None) -> fx.GraphModule | None:
    """:func:`trace`, or None with a warning when ``torch.fx`` cannot trace the model; inputs the
    model cannot run on are an :class:`InputError`, never a silent fallback."""
    try:
        return trace(model, example_inputs, count_into)
    except InputError:
        raise
    except Exception as e:  # fx cannot trace data-dependent control flow and friends
        warnings.warn(f"torch.fx could not trace the model ({type(e).__name__}: {e}); {purpose}", stacklevel=3)
        return None


def untouchable_layers(gm: fx.GraphModule, modules: dict[str, Any]) -> dict[str, str]:
    """Conv/linear modules that must keep their weights and channel order, with the reason: called
    more than once (shared weights), or a parameter also read outside the module (``F.conv2d(y,
    self.c2.weight)``): grouping or permuting them would break the other use."""
    calls: dict[str, int] = {}
    out: dict[str, str] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and node.target in modules and layer_kind(modules[node.target]):
            calls[node.target] = calls.get(node.target, 0) + 1
        elif node.op == "get_attr" and isinstance(node.target, str):
            owner = node.target.rpartition(".")[0]
            if owner in modules and layer_kind(modules[owner]):
                out[owner] = f"its parameter {node.target} is also used outside the module (kept dense)"
    out.update({n: "module is called more than once in the graph (shared weights; kept dense)"
                for n, k in calls.items() if k > 1})
    out.update(_tied_layers(modules))
    out.update(_parametrized_layers(modules))
    return out


def _parametrized_layers(modules: dict[str, Any]) -> dict[str, str]:
    """Conv/linear modules whose weight a parametrization computes (``weight_norm``,
    ``spectral_norm``; permopt's own mask excepted): their weight cannot be replaced by blocks."""
    out = {}
    for name, m in modules.items():
        plist = getattr(getattr(m, "parametrizations", None), "weight", None)
        if layer_kind(m) and plist is not None and not all(type(p).__name__ == "BlockMask" for p in plist):
            kinds = ", ".join(type(p).__name__ for p in plist)
            out[name] = (f"its weight is computed by a parametrization ({kinds}; kept dense): remove it first with "
                         "torch.nn.utils.parametrize.remove_parametrizations(module, 'weight') to prune it")
    return out


def _tied_layers(modules: dict[str, Any]) -> dict[str, str]:
    """Conv/linear modules holding a parameter object another module holds too (tied weights or
    biases): a refit or a permutation of one would silently change the other."""
    owners: dict[int, list[str]] = {}
    for name, m in modules.items():
        for p in m.parameters(recurse=False):
            owners.setdefault(id(p), []).append(name)
    out = {}
    for names in owners.values():
        for n in names:
            if len(names) > 1 and layer_kind(modules[n]):
                others = ", ".join(o for o in names if o != n)
                out[n] = f"a parameter tied to {others}'s (the same tensor; kept dense)"
    return out


def _hook_shapes(model: nn.Module, example_inputs: Any, count_into: Callable[..., None]) -> dict[str, tuple | None]:
    """Each groupable layer's output shape from one hooked forward pass (which also counts)."""
    shapes: dict[str, tuple | None] = {}

    def record(name: str, mod: nn.Module, inputs: tuple, out: Any) -> None:
        count_into(name, mod, inputs, out)
        if kind_of(mod) is not None:
            shapes.setdefault(name, tuple(out.shape))

    forward_with_hooks(model, example_inputs, is_counted, record)
    return shapes


def inspect(model: nn.Module, example_inputs: Any, *, include_linear: bool = False,
            min_channels: int = 1) -> ModelInfo:
    """List the prunable layers of ``model`` (Conv2d with groups == 1; Linear if ``include_linear``).

    ``example_inputs`` is a tensor or a tuple of tensors accepted by ``model``. Each layer
    comes with its candidate ``G`` (common divisors of its channel counts with at least
    ``min_channels`` per group), dense MACs and parameters, and its graph neighbours.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if min_channels < 1:
        raise ValueError(f"min_channels must be >= 1, got {min_channels}")
    counted, count_into = counter()
    gm = trace_or_none(model, example_inputs, "layers found with forward hooks instead. Graph neighbours are "
                       "unknown, so export will wrap each pruned layer in channel-index modules instead of folding "
                       "permutations.", count_into)

    modules: dict[str, Any] = dict(model.named_modules())
    out_shapes: dict[str, tuple | None] = {}
    producers: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    if gm is not None:
        for node in gm.graph.nodes:
            if node.op == "call_module" and node.target in modules and layer_kind(modules[node.target]):
                meta = node.meta.get("tensor_meta")
                out_shapes[node.target] = tuple(meta.shape) if meta is not None else None
                producers[node.target] = [str(a.target) if a.op == "call_module" else a.name
                                          for a in node.all_input_nodes]
                consumers[node.target] = [str(u.target) if u.op == "call_module" else u.name for u in node.users]
        untouchable = untouchable_layers(gm, modules)
        if untouchable:  # a user expects every conv to be grouped: say which are not, and why
            warn("layers kept dense: " + "; ".join(f"{n}: {why}" for n, why in untouchable.items()))
    else:
        out_shapes = _hook_shapes(model, example_inputs, count_into)
        untouchable = {}

    layers, skipped = {}, {}
    for name, m in modules.items():
        if kind_of(m) is None and own_forward(m) is None:
            continue
        reason = _skip_reason(m, include_linear)
        if reason is None and name in untouchable:
            reason = untouchable[name]
        if reason is None and name not in out_shapes:
            reason = "not called by the forward pass"
        if reason:
            skipped[name] = reason
            continue
        kind = kind_of(m)
        assert kind is not None  # _skip_reason passed it
        C, F = kind.channels(m)
        layers[name] = LayerInfo(name, kind.name, C, F, kind.kernel(m), common_divisors(C, F, min_channels),
                                 layer_macs(m, out_shapes[name]) if out_shapes[name] else 0,
                                 sum(p.numel() for p in m.parameters(recurse=False)),
                                 producers.get(name, []), consumers.get(name, []))
    return ModelInfo(layers, skipped, gm, gm is not None, Counts.of(model, counted))
