from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from ..patches import patch_columns
from ..plan import LayerPlan, Plan
from ..progress import progress_bar
from .calibration import (POSITIONS, CalibrationPass, batches, calibration_pass, check_reiterable, fingerprint,
                          sampled_positions)
from .capture import LayerCall, catching, dry_call, forward_caught
from .graph_pass import node_by_node, peak_bytes, single_input
from .hooks import evaluating
from .inspect import trace_or_none
from .ridge import KEEP, Fitter, GroupEquations, choose_ridge, error, fit_all, group_indices, needs_float64

#: The one-pass reconstruction keeps every batch's activations of the nodes alive at once; a
#: model needing more than this many bytes so is reconstructed layer by layer instead.
WALK_BYTES = 4 * 2**30

#: Fills a layer's :class:`~permopt.nn.ridge.GroupEquations` from the calibration data.
Filler = Callable[[GroupEquations], None]


def reconstruct(dense: nn.Module, masked: nn.Module, plan: Plan, calibration: torch.Tensor | Iterable[Any], *,
                ridge: float | None = None, positions: int = POSITIONS, seed: int = 0,
                batch_size: int = 128, progress: bool = False, graph: fx.GraphModule | None = None,
                dense_pass: CalibrationPass | None = None) -> dict[str, dict[str, Any]]:
    """Refit the kept weights of every grouped layer of ``masked`` (a masked copy of ``dense``
    under ``plan``, changed in place) to reproduce ``dense``'s layer outputs on ``calibration``
    (``positions`` output positions per sample of a convolution, drawn reproducibly from
    ``seed``). ``ridge`` fixes the relative ridge strength instead of choosing it by held-out
    error. ``graph``, ``dense``'s trace, tells which layers feed a BatchNorm and lets the masked
    model run once, node by node (traced here when not given). ``dense_pass``: the
    :func:`calibration_pass` over ``calibration`` that made the statistics, with the targets kept
    (its ``positions``, ``seed`` and ``batch_size`` are then the ones used); without it, one is made here.

    Returns, per layer, the relative output error of the masked weights and of the refitted
    ones on that data (``before`` / ``after``, ``after <= before``), the chosen ``ridge``
    (``inf``: the masked weights were kept) and whether float32 products were not precise
    enough for it (``float64``)."""
    check_reiterable(calibration)
    names = list(plan.pruned())
    if graph is None:
        graph = trace_or_none(dense, next(iter(batches(calibration, batch_size))),
                              "no output shifts are folded into BatchNorms")
    cal = dense_pass
    if cal is None or not set(names) <= set(cal.names):
        cal = calibration_pass(dense, calibration, names, positions=positions, seed=seed, batch_size=batch_size,
                               statistics=False, keep=True)
    norms = batchnorm_after(graph)
    report: dict[str, dict[str, Any]] = {}
    bar = progress_bar(len(names), "reconstructing layers", "layer", progress)

    def refit(name: str, fill: Filler) -> None:
        report[name] = _refit(masked, name, plan.layers[name], fill, ridge, _shifter(masked, name, norms.get(name)))
        if bar:
            bar.update()
    if _one_walk(graph, cal):
        assert graph is not None and cal.inputs is not None and cal.targets is not None
        with torch.no_grad(), evaluating(masked):
            for name, calls in node_by_node(graph, masked, cal.inputs, set(names) - set(report)):
                refit(name, _from_calls(masked, dense, name, calls, cal))
                if len(report) == len(names):
                    break
    for name in names:  # layer by layer: all of them without the walk, any the walk did not reach
        if name not in report:
            refit(name, _from_forwards(dense, masked, name, calibration, cal))
    if bar:
        bar.close()
    too_few = [n for n, r in report.items() if r.pop("too_few")]
    if too_few:
        warnings.warn(f"calibration too small to hold any of it out ({len(too_few)} layer(s), e.g. {too_few[0]!r}: "
                      "every sample fell into one half): those layers keep their masked weights; give more samples",
                      stacklevel=2)
    return report


def _one_walk(graph: fx.GraphModule | None, cal: CalibrationPass) -> bool:
    """Whether the masked model can run once node by node: traced, one input, the batches and
    targets kept, and the live activations within :data:`WALK_BYTES`."""
    if graph is None or cal.inputs is None or cal.targets is None or not single_input(graph):
        return False
    peak = peak_bytes(graph, sum(len(x) for x in cal.inputs))
    return peak is not None and peak <= WALK_BYTES


def batchnorm_after(graph: fx.GraphModule | None) -> dict[str, str]:
    """``{layer: BatchNorm}`` for every module call in the model's trace ``graph`` whose only user
    is a BatchNorm with running statistics (empty for an untraceable model, None)."""
    if graph is None:
        return {}
    modules = dict(graph.named_modules())
    calls: dict[str, int] = {}
    for node in graph.graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    out = {}
    for node in graph.graph.nodes:
        users = list(node.users)
        if node.op == "call_module" and len(users) == 1 and users[0].op == "call_module":
            bn = modules.get(str(users[0].target))
            # a BatchNorm applied after two layers cannot take both layers' offsets: neither gets it
            if isinstance(bn, nn.modules.batchnorm._BatchNorm) and bn.track_running_stats \
                    and calls[str(users[0].target)] == 1:
                out[str(node.target)] = str(users[0].target)
    return out


def _shifter(masked: nn.Module, name: str, norm: str | None) -> Callable[[torch.Tensor], None] | None:
    """Where a fitted per-channel output offset goes: the layer's bias, else the running mean of
    the BatchNorm it feeds (``BN(z + c)`` with mean ``μ`` is ``BN(z)`` with mean ``μ − c``), else
    nowhere (None: the regression has no intercept)."""
    m: Any = masked.get_submodule(name)
    target: Any
    if m.bias is not None:
        target, sign = m.bias, 1.0
    elif norm is not None:
        target, sign = masked.get_submodule(norm).running_mean, -1.0
    else:
        return None

    def shift(offsets: torch.Tensor) -> None:
        with torch.no_grad():
            target.add_(sign * offsets.to(target.dtype))
    return shift


def _add(eq: GroupEquations, call: LayerCall, take: torch.Tensor | None, b: torch.Tensor,
         halves: np.random.Generator, bias: torch.Tensor | None) -> None:
    """Add a batch: the inputs of ``call`` and the dense outputs ``b`` (minus the bias) at the
    taken positions, each sample in a random half (drawn from ``halves``): calibration data sorted
    by class or source would make even/odd halves differ in kind, and the held-out ridge too timid."""
    samples = int(call.x.shape[0])
    fold = torch.as_tensor(halves.integers(0, 2, samples))
    b = (b if bias is None else b - bias.detach().to(b.dtype)).reshape(samples, -1, b.shape[-1])
    G, Fg = eq.outputs.shape
    for f in (0, 1):
        picked = torch.nonzero(fold == f)[:, 0]
        if len(picked):
            y = b[picked][:, :, eq.outputs.reshape(-1)]  # (S_f, P, G·F_g)
            eq.add(call.grouped_rows(take, picked, eq.channels), y.reshape(-1, G, Fg).transpose(0, 1), f)


def _halves(cal: CalibrationPass, name: str) -> np.random.Generator:
    return cal.rng(name, 1)


def _from_calls(masked: nn.Module, dense: nn.Module, name: str, calls: list[tuple[tuple, dict]],
                cal: CalibrationPass) -> Filler:
    """Rows from the layer's calls in the node-by-node walk (caught before the call is made)."""
    module, bias = masked.get_submodule(name), getattr(dense.get_submodule(name), "bias", None)
    targets = cal.targets[name] if cal.targets is not None else []

    def fill(eq: GroupEquations) -> None:
        halves = _halves(cal, name)
        for (args, kwargs), (take, b) in zip(calls, targets):
            _add(eq, dry_call(module, args, kwargs), take, b, halves, bias)
    return fill


def _from_forwards(dense: nn.Module, masked: nn.Module, name: str, data: Any, cal: CalibrationPass) -> Filler:
    """Rows from a read of the data (or of the kept batches) per layer, each forward of the masked
    model cut short at the layer; the targets kept by the pass, or the dense model run again with
    the pass's positions."""
    bias = getattr(dense.get_submodule(name), "bias", None)

    def fill(eq: GroupEquations) -> None:
        halves, rng = _halves(cal, name), cal.rng(name)
        source = cal.inputs if cal.inputs is not None else batches(data, cal.batch_size)
        with catching(dense, [name], stop=True) as d_calls, catching(masked, [name], stop=True) as m_calls, \
                evaluating(dense), evaluating(masked):
            for k, x in enumerate(source):
                if k >= len(cal.prints) or fingerprint(x) != cal.prints[k]:
                    raise ValueError(f"calibration batch {k} differs from the first read of the data: it must give "
                                     "the same batches in the same order each time (a DataLoader without shuffle)")
                forward_caught(masked, x, m_calls, [name], k)  # only the part of the model before the layer runs
                if cal.targets is not None:
                    take, b = cal.targets[name][k]
                else:
                    forward_caught(dense, x, d_calls, [name], k)
                    take = sampled_positions(d_calls[name], rng, cal.positions)
                    b = d_calls[name].output_rows(take)
                _add(eq, m_calls[name], take, b, halves, bias)
    return fill


def _refit(masked: nn.Module, name: str, lp: LayerPlan, fill: Filler, ridge: float | None,
           shift: Callable[[torch.Tensor], None] | None) -> dict[str, Any]:
    """Fit every group of layer ``name`` at once and write the kept weights into the mask's
    original; with ``shift``, the fitted output offsets (one per output channel) go to ``shift``.
    The products are float32 unless their measured rounding is too coarse for the chosen fit."""
    original = masked.get_submodule(name).parametrizations["weight"].original  # type: ignore[union-attr,index]
    W = original.detach().double().reshape(original.shape[0], -1).clone()  # (F, C·k)
    kernel = W.shape[1] // lp.col_groups.size
    channels, outputs = group_indices(lp.row_groups, lp.col_groups, lp.groups)
    columns = torch.as_tensor(patch_columns(channels.numpy(), kernel))  # (G, C_g·k)
    w0 = W[outputs[:, :, None], columns[:, None, :]].transpose(1, 2)  # (G, n, F_g)
    intercept = shift is not None
    for dtype in (torch.float32, torch.float64):
        eq = GroupEquations(channels, outputs, kernel, dtype)
        fill(eq)
        # every sample in one half: no held-out error to choose by, and a refit on a sample or two
        # generalises worse than the masked weights (measured 0.067 -> 0.102 on fresh inputs)
        too_few = min(f.rows for f in eq.folds) == 0
        if ridge is not None:
            rel, fitters = float(ridge), [Fitter(f, w0, intercept) for f in eq.folds]
        elif too_few:
            rel, fitters = KEEP, []
        else:
            rel, fitters = choose_ridge(eq.folds, w0, intercept)
        if not needs_float64(fitters, rel, eq.rounding):
            break
    total = eq.folds[0] + eq.folds[1]
    w, c = fit_all(total, w0, rel, intercept)
    zero = torch.zeros_like(c)
    before, after, energy = error(w0, zero, total), error(w, c, total), float(total.BtB.sum()) or 1.0
    W[outputs[:, :, None], columns[:, None, :]] = w.transpose(1, 2)
    with torch.no_grad():
        original.copy_(W.reshape(original.shape).to(original.dtype))
    if shift is not None:
        offsets = torch.zeros(W.shape[0], dtype=torch.float64)
        offsets[outputs] = c
        shift(offsets)
    return {"before": float(np.sqrt(max(before, 0.0) / energy)), "after": float(np.sqrt(max(after, 0.0) / energy)),
            "ridge": rel, "float64": dtype == torch.float64, "too_few": too_few and ridge is None}
