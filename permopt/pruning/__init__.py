"""One call to prune a model: inspect → (search) → solve per layer → mask or export → report.

The package holds the options (:mod:`.options`: :class:`PruneConfig`), the session that shares
one analysis and one calibration pass among its plans (:mod:`.session`), plan building
(:mod:`.build`), the latency-budget loop (:mod:`.latency_loop`) and the report (:mod:`.report`).
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, Unpack

from torch import nn

from ..nn.export import check_plan
from ..nn.inspect import signature
from ..nn.state import load_state
from ..plan import Plan
from .build import LOW_KEPT_RATIO, BuiltPlan
from .latency_loop import LATENCY_RETRIES, LATENCY_SLACK
from .options import MIN_CHANNELS, MODES, PruneConfig, PruneOptions, default_coupling, default_min_channels
from .report import Report, make_report
from .session import PruneResult, PruningSession


def apply_plan(model: nn.Module, plan: Plan | str | Path, example_inputs: Any, mode: str = "export",
               calibration: Any = None) -> nn.Module:
    """Apply a plan (a :class:`Plan` or the path of a saved ``plan.json``) to a dense model and
    return the new model: ``"export"`` (real grouped layers, permutations folded in; a
    ``torch.fx.GraphModule``) or ``"mask"`` (a masked copy with the dense layers, for
    fine-tuning). The input model is left untouched. A plan made for a different model (its
    recorded signature differs) is applied with a warning. For the export's details (its
    channel-index modules) call :func:`permopt.nn.export` directly. With ``calibration``
    (unlabelled inputs) the kept weights are refitted to the dense layers' outputs first
    (:func:`permopt.nn.reconstruct.reconstruct`).
    """
    own = _as_plan(plan)
    recorded = own.meta.get("model_signature")
    if recorded is not None and recorded != signature(model):
        try:
            check_plan(model, own)
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"this plan was made for another model (its conv/linear layers differ) and does not fit "
                             f"this one: {e.args[0] if e.args else e}") from None
        warnings.warn("this plan was made for a model with other conv/linear layers (names or shapes differ); "
                      f"its {len(own.pruned())} pruned layers all fit this one: applying them", stacklevel=2)
    if mode not in MODES:
        raise ValueError(f"mode must be 'export' or 'mask', got {mode!r}")
    # groups=1 and every layer kind: a session that only applies plans, whatever they group
    # groups=1, every layer kind, mask mode (the export checks the plan's layers for hooks itself):
    # a session that only applies plans, whatever they group
    session = PruningSession(model, example_inputs, groups=1, mode="mask", calibration=calibration,
                             include_linear=True, min_channels=1, progress=False)
    own = copy.deepcopy(own) if calibration is not None else own  # meta is written: not the caller's
    return session.apply(own, mode)[0]


def load_pruned(dense_model: nn.Module, plan: Plan | str | Path, state_dict: dict | str | Path,
                example_inputs: Any, mode: str = "export") -> nn.Module:
    """The pruned model saved by ``permopt prune`` (or ``torch.save(res.model.state_dict())``),
    rebuilt: the dense architecture (any weights), the plan it was pruned with, and the pruned
    model's state dict (a dict or a ``.pt`` path). ``mode`` must be the one the state dict was
    saved from (``export`` for ``permopt prune``'s ``pruned_state_dict.pt``). The model is
    returned in eval mode, as ``permopt prune`` saved it (``models.get()`` builds models in train
    mode, whose BatchNorm would otherwise use batch statistics); call ``.train()`` to fine-tune."""
    model = apply_plan(dense_model, plan, example_inputs, mode)
    what = "the state dict" if isinstance(state_dict, dict) else f"state_dict {str(state_dict)!r}"
    load_state(model, state_dict, what, f"the dense model under this plan (mode={mode!r})")
    return model.eval()


def _as_plan(plan: Plan | str | Path) -> Plan:
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, (str, Path)):
        return Plan.load(plan)
    raise TypeError(f"plan must be a Plan or the path of a plan.json, got {type(plan).__name__}")


def prune(model: nn.Module, example_inputs: Any, config: PruneConfig | None = None,
          **options: Unpack[PruneOptions]) -> PruneResult:
    """Prune ``model`` into group convolutions in one call; ``model`` itself is never changed.
    ``PruningSession(model, example_inputs, config, **options).prune()``: one trace of the model and
    one pass of the calibration data, however many plans a latency budget takes.

    Parameters
    ----------
    model : the dense model (it is never changed).
    example_inputs : inputs for tracing (a tensor or a tuple).
    config : a :class:`PruneConfig` holding the options; keywords given as well replace its
        fields (``prune(model, x, config, seed=3)``).
    **options : the fields of :class:`PruneConfig`, typed by :class:`PruneOptions` (``groups=4``, ``budget={"params": 0.5}``,
        ``solver``, ``coupling``, ``latency`` …), each documented there; all are checked once,
        before any tracing or solving, and an unknown one is a TypeError naming the others.
    """
    return PruningSession(model, example_inputs, config, **options).prune()


__all__ = ["prune", "apply_plan", "load_pruned", "PruningSession", "PruneResult", "PruneConfig", "PruneOptions", "Report",
           "BuiltPlan",
           "make_report", "default_coupling", "default_min_channels", "MIN_CHANNELS", "LOW_KEPT_RATIO",
           "LATENCY_SLACK", "LATENCY_RETRIES"]
