"""Every option of :func:`permopt.prune` in one frozen, typed record, validated once."""
from __future__ import annotations

import json
from concurrent.futures import Executor
from dataclasses import dataclass, fields, replace
from typing import Any, TypedDict

import numpy as np

from ..coupling import validate_coupling
from ..limits import validate_count, validate_seed, validate_time_limit
from ..criteria import DATA_CRITERIA, available_criteria
from ..nn.calibration import POSITIONS, check_reiterable
from ..nn.latency import LatencySetup
from ..parallel import validate_parallel
from ..search import Budget, SolverCostModel, get_strategy
from ..search.cost import COSTS
from ..search.data_cost import DataCostModel
from ..solvers import get as get_solver

#: Channels per group below which a layer is not grouped, by default (thin groups cost accuracy).
MIN_CHANNELS = 4
MODES = ("export", "mask")
#: The criterion used with calibration data when none is named (chosen by measurement:
#: benchmarks/bench_accuracy.py).
DEFAULT_DATA_CRITERION = "hessian"
#: The budget search's cost with calibration data when none is named (benchmarks/bench_accuracy.py).
DEFAULT_DATA_COST = "data"


def default_coupling(coupling: str | None, budget: Budget | None) -> str:
    """``coupling`` if given; else ``"full"`` under a latency budget (gathers would make the
    measured layer table lie: they cost up to half the time in channels-last), ``"none"`` otherwise."""
    if coupling is not None:
        return coupling
    return "full" if budget is not None and budget.latency is not None else "none"


#: What a budget may vary: the groups per layer, or the share of channels kept (see ``structure``).
STRUCTURES = ("groups", "channels")
#: Kept channel counts are multiples of this by default: CPU kernels run a conv at the speed of
#: its channel count rounded up to their vector width (8 floats on AVX2, 16 on AVX-512).
ALIGN = 8


def default_min_channels(min_channels: int | None, budget: Budget | None) -> int:
    """``min_channels`` if given; else 1 under a latency budget (depthwise layers are the fastest
    grouped kernels on CPU: resnet56 with every 3×3 conv depthwise runs at 0.53–0.56 of dense, while
    4 channels per group never get below 0.73; the search spends them only where the budget needs
    them), :data:`MIN_CHANNELS` otherwise."""
    if min_channels is not None:
        return min_channels
    return 1 if budget is not None and budget.latency is not None else MIN_CHANNELS


@dataclass(frozen=True)
class PruneConfig:
    """The options of :func:`permopt.prune`, checked once when the record is made, before any tracing or solving: ``budget`` is parsed into a
    :class:`~permopt.search.Budget`, ``latency`` into a :class:`~permopt.nn.latency.LatencySetup`,
    and solver, strategy and coupling names are looked up. ``replace(config, field=value)``
    checks again. :attr:`coupling_mode`, :attr:`min_channels_per_group` and :attr:`latency_setup`
    resolve the defaults that depend on the budget.

    Parameters
    ----------
    groups : uniform ``G`` for every layer it divides; or
    budget : ``{"params": 0.5}``, ``{"macs": 0.4}``, both, or "params=0.5": ``G`` per layer is
        chosen by the search ``strategy`` (default ``exact``). Checked before any solving; a
        budget no configuration meets is an error naming the smallest reachable value.
    strategy : the configuration-search strategy for a ``budget`` (see
        :func:`permopt.search.available_strategies`).
    solver : permutation solver per layer (default ``auto``: exact branch and bound where it is
        cheap and bounded, else the ``best`` heuristic).
    criterion : ``l2``, ``l1``, ``taylor`` (with ``grads``), a callable, or with ``calibration``
        the data-aware ``activation`` (``||W||·rms(x)``) or ``hessian`` (output energy
        ``w_fcᵀ H_cc w_fc``); default :data:`DEFAULT_DATA_CRITERION` with calibration, ``l2``
        without (see :mod:`permopt.nn.calibration`).
    grads : ``{layer name: weight gradient}`` for the ``taylor`` criterion.
    layers, ignored_layers : restrict which layers are grouped.
    include_linear, min_channels, max_groups : which layers and ``G`` are candidates (``min_channels``
        per group: default 4, or 1 under a latency budget, see :func:`default_min_channels`).
    mode : ``export`` (real grouped layers) or ``mask`` (dense layers with masks, for fine-tuning).
    layer_time_limit, search_time_limit : optional wall-clock caps per layer solve and per search.
        Both break reproducibility when they bite; without them the same inputs and ``seed``
        give the same plan.
    progress : tqdm bars.
    executor, n_jobs : where layer solves run: any ``concurrent.futures.Executor`` (a process
        pool, ``distributed.Client(...).get_executor()`` for a Dask cluster) or ``n_jobs`` local
        processes; serial by default. The plan does not depend on it.
    coupling : ``"none"`` (each layer alone), ``"chain"`` (layers joined by BN/activations
        only share a partition) or ``"full"`` (every channel space shares one, residual streams
        included): coupled layers need no index modules (gathers) between them, at some kept
        mass, recorded in ``plan.meta["coupling"]`` (see :mod:`permopt.coupling`). Default:
        ``"full"`` under a latency budget, else ``"none"`` (it costs accuracy before fine-tuning).
        ``"strict"`` also pins spaces that must keep their order (concatenations, model
        inputs/outputs, unknown operations) to contiguous groups: fewer gathers still, more mass lost.
    latency : how latency is measured (:class:`permopt.nn.latency.LatencySetup` or a dict:
        ``batch`` (default: the example inputs'), ``threads`` (1), ``rounds``, ``cache_dir``),
        for a ``budget`` with ``latency`` (a fraction of the dense model's measured latency:
        per-layer times at every G, cached on disk) and for the report: when given or when the
        budget limits latency, the dense and the pruned model are timed side by side (a model
        measured over the latency budget is searched again with the budget lowered by the
        estimate's error, one measured more than 5% under it with the budget raised by half that, at most
        twice in all; the slowest run within the budget is kept; ``plan.meta["latency_runs"]``), and the
        pruned model is returned in the setup's ``memory_format`` (default ``auto``: the format
        that runs the dense model faster, timed here; channels-last on this CPU).
    calibration : unlabelled inputs (a tensor, a list of batches, or a re-iterable such as a
        ``DataLoader`` yielding inputs or ``(input, target)`` pairs; never a one-shot
        generator). It is read once (:func:`permopt.nn.calibration.calibration_pass`): each
        layer's input statistics for the data-aware ``criterion`` and the ``cost``, and the
        dense layers' outputs ``reconstruct`` fits to. Default None: weights only.
    reconstruct : refit the kept weights of every grouped layer on ``calibration``, layer by
        layer in forward order, to reproduce the dense layer's outputs (ridge regression per
        group toward the masked weights, strength chosen by held-out error,
        :mod:`permopt.nn.reconstruct`); ``plan.meta["reconstruction"]`` holds each layer's
        relative output error before and after. Default: True with ``calibration``. BatchNorm
        statistics stay the dense model's (:func:`permopt.nn.recalibrate_bn` re-estimates them).
    positions : output positions of a convolution sampled per calibration sample, for the
        statistics and the reconstruction (drawn reproducibly from ``seed``; default
        :data:`permopt.nn.calibration.POSITIONS`).
    cost : what a ``budget`` search minimises per (layer, G): ``"mass"`` (pruned weight mass,
        the paper's) or ``"data"`` (the share of the layer's output energy lost after
        reconstruction, on the calibration data: :mod:`permopt.search.data_cost`). Default:
        :data:`DEFAULT_DATA_COST` with calibration, ``"mass"`` without.
    width : channel pruning: the share of each channel space's channels kept (in (0, 1]), the
        same channels removed from every layer writing or reading them (residual streams,
        BatchNorms and depthwise convs included), least output energy first
        (:mod:`permopt.pruning.width`); with ``groups`` the kept channels are then grouped.
        Default None: no channels removed.
    align : kept channel counts are rounded to a multiple of this (default :data:`ALIGN`).
    structure : what a ``budget`` varies: ``"groups"`` (``G`` per layer, by the search
        ``strategy``) or ``"channels"`` (the largest uniform ``width`` whose model meets the
        budget, counted or measured on the export: :func:`permopt.pruning.width.width_for_budget`).
        Default: ``"channels"`` under a latency budget (on the CPU runtimes measured, grouped
        convs below 16 channels per group run no faster than dense; CIFAR-10 ResNet-20 at 0.5 of
        dense latency: 0.62 one-shot with channels, 0.28 with groups), where the model has
        channels it can lose; ``"groups"`` otherwise.
    distill : steps of label-free distillation of the pruned model toward the dense one on
        ``calibration`` after the one-shot prune (:func:`permopt.nn.distill`, Adam, seeded by
        ``seed``); default 0: none.
    """

    groups: int | None = None
    budget: Budget | None = None
    strategy: str = "exact"
    solver: str = "auto"
    criterion: Any = None
    grads: dict | None = None
    layers: Any = None
    ignored_layers: Any = ()
    include_linear: bool = False
    min_channels: int | None = None
    max_groups: int | None = 64
    mode: str = "export"
    layer_time_limit: float | None = None
    search_time_limit: float | None = None
    seed: int | None = 0
    progress: bool = True
    executor: Executor | None = None
    n_jobs: int | None = None
    coupling: str | None = None
    latency: LatencySetup | None = None
    calibration: Any = None
    reconstruct: bool | None = None
    positions: int = POSITIONS
    cost: str | None = None
    distill: int = 0
    width: float | None = None
    align: int = ALIGN
    structure: str | None = None

    def __post_init__(self) -> None:
        self._check_structure()
        if (self.groups is None) == (self.budget is None):
            raise ValueError("give exactly one of groups= (uniform G) or budget= (searched G per layer)")
        if self.groups is not None and (isinstance(self.groups, bool) or not isinstance(self.groups, (int, np.integer))
                                        or self.groups < 1):
            raise ValueError(f"groups must be a positive int, got {self.groups!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be 'export' or 'mask', got {self.mode!r}")
        if self.coupling is not None:
            validate_coupling(self.coupling)
        get_solver(self.solver)
        if self.budget is not None:
            get_strategy(self.strategy)
            object.__setattr__(self, "budget", Budget.parse(self.budget))
        if self.latency is not None:
            object.__setattr__(self, "latency", LatencySetup.parse(self.latency))
        if self.min_channels is not None:
            validate_count("min_channels", self.min_channels, 1)
        if self.max_groups is not None:
            validate_count("max_groups", self.max_groups, 1)
        validate_time_limit(self.layer_time_limit)
        validate_time_limit(self.search_time_limit)
        validate_seed(self.seed)
        validate_parallel(self.executor, self.n_jobs)
        check_reiterable(self.calibration)
        validate_count("positions", self.positions, 1)
        if self.reconstruct is not None and not isinstance(self.reconstruct, (bool, np.bool_)):
            raise ValueError(f"reconstruct must be True, False or None (the default), got {self.reconstruct!r}")
        if isinstance(self.criterion, str) and self.criterion not in (*available_criteria(), *DATA_CRITERIA):
            raise ValueError(f"unknown criterion {self.criterion!r}; weight criteria: {available_criteria()}, "
                             f"with calibration: {list(DATA_CRITERIA)}")
        validate_count("distill", self.distill, 0)
        if self.distill and self.calibration is None:
            raise ValueError("distill= needs calibration= (the unlabelled inputs it distils on)")
        if self.reconstruct and self.calibration is None:
            raise ValueError("reconstruct=True needs calibration= (unlabelled inputs to refit the kept weights on)")
        if self.cost is not None and self.cost not in COSTS:
            raise ValueError(f"cost must be one of {COSTS}, got {self.cost!r}")
        if self.calibration is None:
            if self.cost == "data":
                raise ValueError("cost='data' needs calibration= (the output error is measured on it)")
            if isinstance(self.criterion, str) and self.criterion in DATA_CRITERIA:
                raise ValueError(f"criterion {self.criterion!r} needs calibration= (unlabelled inputs)")

    def _check_structure(self) -> None:
        """``structure``, ``width`` and ``align``; ``groups`` becomes 1 for a ``width`` alone."""
        if self.structure is not None and self.structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}, got {self.structure!r}")
        if self.structure == "channels":
            if self.groups not in (None, 1):
                raise ValueError(f"structure='channels' prunes channels only; groups={self.groups!r} groups them too "
                                 "(give width= and groups= without structure= for both)")
            if self.width is None and self.budget is None:
                raise ValueError("structure='channels' needs width= (the share of channels kept) or budget= (the "
                                 "width is then chosen to meet it)")
        if self.width is not None:
            if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not 0 < self.width <= 1:
                raise ValueError(f"width must be a number in (0, 1] (the share of channels kept), got {self.width!r}")
            if self.budget is not None:
                raise ValueError("width= (uniform channel pruning) with budget= is not supported yet: prune the "
                                 "channels with width=, then search the groups of the result with budget=")
            if self.groups is None:
                object.__setattr__(self, "groups", 1)
        validate_count("align", self.align, 1)

    @classmethod
    def make(cls, config: PruneConfig | None = None, **options: Any) -> PruneConfig:
        """``config`` with ``options`` replacing its fields (or a new record from ``options``);
        an unknown option is a TypeError naming the ones there are."""
        unknown = sorted(set(options) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unknown prune option(s) {unknown}; the options are {[f.name for f in fields(cls)]}")
        return replace(config, **options) if config is not None else cls(**options)

    def record(self) -> dict[str, Any]:
        """The options that shape the result, as JSON values, for the saved plan: where and how
        visibly it ran (``executor``, ``n_jobs``, ``progress``) is left out, so a parallel run saves
        the plan a serial one does; data and objects are described, not stored (``calibration`` by
        its shape or type, a callable criterion by its type)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("executor", "n_jobs", "progress"):
                continue
            value = getattr(self, f.name)
            if f.name == "calibration" and value is not None:
                value = {"shape": list(value.shape)} if hasattr(value, "shape") else {"type": type(value).__name__}
            elif f.name in ("budget", "latency") and value is not None:
                value = str(value)
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                value = f"<{type(value).__name__}>"
            out[f.name] = value
        return out

    @property
    def criterion_used(self) -> Any:
        """``criterion``, or its default: :data:`DEFAULT_DATA_CRITERION` with calibration, else ``l2``."""
        if self.criterion is not None:
            return self.criterion
        return DEFAULT_DATA_CRITERION if self.calibration is not None else "l2"

    @property
    def reconstructs(self) -> bool:
        """``reconstruct``, or its default: True exactly when there is calibration data."""
        return self.calibration is not None if self.reconstruct is None else bool(self.reconstruct)

    @property
    def cost_kind(self) -> str:
        """``cost``, or its default: :data:`DEFAULT_DATA_COST` with calibration, else ``"mass"``."""
        if self.cost is not None:
            return self.cost
        return DEFAULT_DATA_COST if self.calibration is not None else "mass"

    @property
    def may_remove_channels(self) -> bool:
        """Whether a plan of this config may remove channels: ``width`` given, or a budget met by
        channels (``structure="channels"``, or its default under a latency budget)."""
        latency_budget = self.budget is not None and self.budget.latency is not None
        return self.width is not None or self.structure == "channels" or self.structure is None and latency_budget

    @property
    def coupling_mode(self) -> str:
        """``coupling``, or its default for this budget (see :func:`default_coupling`)."""
        return default_coupling(self.coupling, self.budget)

    @property
    def min_channels_per_group(self) -> int:
        """``min_channels``, or its default for this budget (see :func:`default_min_channels`)."""
        return default_min_channels(self.min_channels, self.budget)

    @property
    def latency_setup(self) -> LatencySetup | None:
        """How latency is measured: ``latency``, the default setup under a latency budget, else None."""
        if self.latency is not None:
            return self.latency
        return LatencySetup() if self.budget is not None and self.budget.latency is not None else None

    def cost_model(self, weights: dict | None = None, stats: dict | None = None) -> SolverCostModel:
        """The cached cost model a budget search uses (solver, limit, seed, executor): the
        solver's pruned mass, or for ``cost_kind == "data"`` the output error measured from
        ``stats`` (calibration statistics) and ``weights`` (``{layer: (F, C·k) array}``)."""
        options: dict[str, Any] = dict(solver=self.solver, time_limit=self.layer_time_limit, seed=self.seed,
                                       executor=self.executor, n_jobs=self.n_jobs)
        if self.cost_kind == "data":
            if stats is None or weights is None:
                raise ValueError("cost='data' needs the calibration statistics and the layers' weights")
            return DataCostModel(weights, stats, **options)
        return SolverCostModel(**options)


class PruneOptions(TypedDict, total=False):
    """The keywords of :func:`permopt.prune`: the fields of :class:`PruneConfig`, typed as a caller
    may pass them (a budget as a dict or a string, a latency setup as a dict), so that editors
    complete and check them. Each is documented on :class:`PruneConfig`."""

    groups: int | None
    budget: Budget | dict[str, float] | str | None
    strategy: str
    solver: str
    criterion: Any
    grads: dict | None
    layers: Any
    ignored_layers: Any
    include_linear: bool
    min_channels: int | None
    max_groups: int | None
    mode: str
    layer_time_limit: float | None
    search_time_limit: float | None
    seed: int | None
    progress: bool
    executor: Executor | None
    n_jobs: int | None
    coupling: str | None
    latency: LatencySetup | dict[str, Any] | None
    calibration: Any
    reconstruct: bool | None
    positions: int
    cost: str | None
    distill: int
    width: float | None
    align: int
    structure: str | None
