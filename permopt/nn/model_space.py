"""A model's search space: its groupable layers' scores, candidate ``G`` and costs (and, for
latency budgets, each layer's measured time at every candidate), as a matrix-only
:class:`~permopt.search.SearchSpace`."""
from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ..criteria import scores_from_weight
from ..problem import about_layer, validate_scores
from ..search.space import LayerSpec, SearchSpace
from ..criteria import DATA_CRITERIA
from .calibration import InputStats, data_scores
from .count import Counts, count
from .inspect import ModelInfo, inspect
from .latency import LatencySetup, LatencyTable


def layer_scores(model: nn.Module, name: str, criterion: Any = "l2", grads: dict | None = None,
                 stats: dict[str, InputStats] | None = None) -> np.ndarray:
    """Scores of layer ``name`` of ``model`` under ``criterion``: a registered weight criterion
    (``taylor`` reads ``grads[name]``) or a data-aware one (``activation``, ``hessian``: see
    :mod:`permopt.nn.calibration`), which reads ``stats[name]`` from
    :func:`~permopt.nn.calibration.layer_statistics`."""
    grads = grads or {}
    if criterion == "taylor" and name not in grads:
        raise ValueError(f"criterion 'taylor' needs grads={{layer name: weight gradient}}; missing {name!r}")
    weight: Any = model.get_submodule(name).weight
    with about_layer(name):  # validated here, so a bad layer stops a prune before any solve
        if isinstance(criterion, str) and criterion in DATA_CRITERIA:
            if stats is None or name not in stats:
                raise ValueError(f"criterion {criterion!r} needs calibration data (calibration=)")
            return validate_scores(data_scores(weight, stats[name], criterion))
        return validate_scores(scores_from_weight(weight, criterion, grads.get(name)))


def search_space(model: nn.Module, example_inputs: Any, *, criterion: Any = "l2", grads: dict | None = None,
                 include_linear: bool = False, min_channels: int = 4, max_groups: int | None = 64,
                 layers: Any = None, ignored_layers: Any = (), info: ModelInfo | None = None,
                 counts: Counts | None = None, latency: Any = None, progress: bool = False,
                 stats: dict[str, InputStats] | None = None) -> SearchSpace:
    """The :class:`~permopt.search.SearchSpace` of a PyTorch model, via :func:`permopt.nn.inspect`
    (scores from ``criterion``).

    ``info`` and ``counts`` (from :func:`permopt.nn.inspect` / :func:`permopt.nn.count`)
    may be passed to avoid tracing the model again. ``latency`` (a
    :class:`permopt.nn.latency.LatencySetup` or a dict of its fields) measures every layer at
    every candidate ``G`` and the dense model, for latency budgets; only powers of two are
    kept (they nest, so coupled layers need no gathers) and a ``G`` that does not run
    faster than the dense layer is dropped. ``stats`` (calibration statistics) serve the
    data-aware criteria (see :func:`layer_scores`).
    """
    info = info or inspect(model, example_inputs, include_linear=include_linear, min_channels=min_channels)
    specs = []
    for name in info.select(layers, ignored_layers):
        L = info[name]
        cands = [g for g in L.candidates if max_groups is None or g <= max_groups]
        if len(cands) >= 2:
            specs.append(LayerSpec(name, layer_scores(model, name, criterion, grads, stats), cands, L.weight_params,
                                   L.macs, L.params - L.weight_params))
    if not specs:
        raise ValueError(f"no selected layer has a G > 1 (with >= {min_channels} channels per group and "
                         f"G <= {max_groups}); groupable layers: {list(info.layers)}")
    fixed_latency, meta = None, {"criterion": criterion if isinstance(criterion, str) else "custom"}
    if latency is not None:
        specs, fixed_latency, meta["memory_format"] = _measure(model, example_inputs, specs, latency, progress)
    counts = counts or count(model, example_inputs)
    searched_params = sum(s.params_at(1) for s in specs)
    searched_macs = sum(s.macs_at(1) for s in specs)
    return SearchSpace(specs, counts.params - searched_params, counts.macs - searched_macs, meta, fixed_latency)


def _measure(model: nn.Module, example_inputs: Any, specs: list[LayerSpec], setup: Any,
             progress: bool) -> tuple[list[LayerSpec], float, str]:
    """Specs with measured latencies (powers of two only; ``G`` no faster than dense dropped;
    layers left with G = 1 only leave the search), the seconds of the rest of the dense model,
    and the memory format."""
    setup = LatencySetup.parse(setup).resolve(model, example_inputs)
    table = LatencyTable(setup)
    # powers of two only: they nest, so coupled spaces always fold and no gather (uncounted in the
    # table, and up to half the time in channels-last) sneaks into the measured estimate
    specs = [LayerSpec(L.name, L.scores, [g for g in L.candidates if g & (g - 1) == 0], L.weight_params, L.macs,
                       L.other_params) for L in specs]
    times, dense = table.layers(model, example_inputs, {L.name: L.candidates for L in specs}, progress)
    out = []
    for L in specs:
        t = times[L.name]
        faster = [g for g in L.candidates if g == 1 or t[g] < t[1]]
        out.append(LayerSpec(L.name, L.scores, faster, L.weight_params, L.macs, L.other_params,
                             {g: t[g] for g in faster}))
    kept = [L for L in out if len(L.candidates) >= 2]
    if not kept:
        raise ValueError("no layer runs faster grouped than dense on this machine (measured), so a latency "
                         "budget cannot be met by grouping")
    # may come out slightly negative through timing noise; the totals stay consistent
    return kept, dense - sum(L.latency_at(1) for L in kept), setup.memory_format
