"""What the command line loads: a layer problem, a model with its weights, the prune options."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable


def load_problem(args: argparse.Namespace) -> Any:
    from ..io import load_scores
    from ..problem import GroupingProblem

    return GroupingProblem(load_scores(args.matrix, args.criterion), args.groups, name=Path(args.matrix).stem)


def load_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """(model, example input) from --model NAME, --model-factory MODULE:FUNCTION, or --model-file."""
    import torch

    from .. import models

    given = [a for a in ("model", "model_factory", "model_file") if getattr(args, a)]
    if len(given) != 1:
        raise ValueError("give exactly one of --model NAME, --model-factory MODULE:FUNCTION or --model-file FILE")
    if args.model_file and not args.trust_model_file:
        raise ValueError("--model-file unpickles arbitrary code; pass --trust-model-file if you trust the file, "
                         "or use --model-factory MODULE:FUNCTION with --weights (a state dict, loaded safely)")
    if args.model:
        classes = args.num_classes or models.default_classes(args.model)
        model = models.get(args.model, seed=args.seed, num_classes=classes)
        shape = args.input_shape or models.input_shape(args.model)
        print(f"model {args.model}: random weights (seed {args.seed}), {classes} classes, input "
              f"{','.join(map(str, shape))}")
    elif args.model_factory:
        model = factory(args.model_factory)()
        shape = args.input_shape
    else:
        model = torch.load(args.model_file, map_location="cpu", weights_only=False)  # trusted by the flag
        shape = args.input_shape
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"the model must be a torch.nn.Module, got {type(model).__name__}")
    if shape is None:
        raise ValueError("--input-shape C,H,W is needed for --model-factory and --model-file")
    if args.weights:
        load_weights(model, args.weights)
    return model.eval(), torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))


def load_weights(model: Any, path: str) -> None:
    """``--weights``: a state dict loaded safely; a mismatch names every missing and unexpected key."""
    from ..nn.state import load_state

    load_state(model, path, f"--weights {path!r}")


def factory(spec: str) -> Callable[[], Any]:
    import importlib

    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"--model-factory {spec!r} must look like package.module:function")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: the user's own package, run from its folder
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"--model-factory {spec!r}: {e}") from None
    if not callable(fn):
        raise TypeError(f"--model-factory {spec!r} is not callable")
    return fn


def latency_setup(args: argparse.Namespace) -> Any:
    """The --latency-* options as a LatencySetup (no disk cache unless --latency-cache)."""
    from ..nn.latency import LatencySetup

    return LatencySetup(batch=args.latency_batch, threads=args.latency_threads, rounds=args.latency_rounds,
                        memory_format=args.memory_format, cache_dir=args.latency_cache, runtime=args.runtime)


def prune_config(args: argparse.Namespace, **fields: Any) -> Any:
    """The prune options the flags give, as one :class:`~permopt.pruning.PruneConfig` (checked
    here, before the model is loaded); ``fields`` override them."""
    from ..pruning import PruneConfig

    budget = getattr(args, "budget", None)
    options = {"groups": getattr(args, "groups", None), "budget": budget,
               "strategy": getattr(args, "strategy", "exact"), "solver": args.solver,
               "include_linear": args.include_linear, "min_channels": args.min_channels,
               "max_groups": args.max_groups, "layer_time_limit": args.layer_time_limit,
               "search_time_limit": getattr(args, "search_time_limit", None), "seed": args.seed,
               "progress": not args.quiet, "n_jobs": args.jobs, "coupling": getattr(args, "coupling", None),
               "latency": latency_setup(args) if budget and "latency" in budget else None,
               "calibration": load_calibration(getattr(args, "calibration", None)),
               "reconstruct": getattr(args, "reconstruct", None), "criterion": getattr(args, "criterion", None),
               "cost": getattr(args, "cost", None), "distill": getattr(args, "distill", 0) or 0,
               "width": getattr(args, "width", None), "align": getattr(args, "align", 8),
               "structure": getattr(args, "structure", None)}
    return PruneConfig(**{**options, **fields})


def load_calibration(path: str | None) -> Any:
    """``--calibration``: a float tensor of unlabelled inputs from a .pt or .npy file (None: none)."""
    if path is None:
        return None
    import torch

    from ..io import load_array

    try:
        data = load_array(path)
    except (FileNotFoundError, ValueError) as e:
        raise ValueError(f"--calibration {path!r}: {e}") from None
    if data.ndim < 2:
        raise ValueError(f"--calibration {path!r} has shape {data.shape}; give a batch of inputs (N, C, ...)")
    return torch.as_tensor(data, dtype=torch.float32)
