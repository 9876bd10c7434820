"""The ``permopt`` command line: solve, compare, search, prune, bench.

Every error is one line on stderr and exit code 2 (``--debug`` shows the traceback);
outputs are checked before any long work starts. ``permopt --help`` does not import torch.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .bounds import METHODS
from .compare import DEFAULT_COMPARE
from .coupling import COUPLING_MODES
from .progress import progress_bar


def _names(spec: str, what: str) -> list[str]:
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise ValueError(f"{what} needs at least one name")
    return names


def _shape(spec: str) -> tuple[int, ...]:
    """argparse type for C,H,W."""
    try:
        shape = tuple(int(v) for v in spec.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r} is not a comma-separated list of sizes like 3,224,224") from None
    if not shape or any(v < 1 for v in shape):
        raise argparse.ArgumentTypeError(f"{spec!r}: every size must be a positive int")
    return shape


def _positive_int(spec: str) -> int:
    """argparse type for counts that must be at least 1 (classes, repeats, batch sizes …)."""
    try:
        v = int(spec)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{spec!r} must be at least 1")
    return v


#: Image formats ``--plot`` writes (matplotlib's common ones).
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _output_file(path: str | None, what: str) -> Path | None:
    """An output file path whose folder exists and is writable, and which is not a folder itself:
    checked before any work, so a typo does not cost a finished run. A ``--plot`` needs a known
    image suffix and matplotlib."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {path!r} is a directory; give a file name")
    if not p.parent.is_dir():
        raise ValueError(f"{what} {path!r}: folder {str(p.parent)!r} does not exist")
    existed = p.exists()
    try:  # a real open: permission bits say nothing to root or on special file systems
        with open(p, "a"):
            pass
    except OSError as e:
        raise ValueError(f"{what} {path!r} is not writable here ({e.strerror})") from None
    if not existed:
        p.unlink()
    if what == "--plot":
        if p.suffix.lower() not in PLOT_SUFFIXES:
            raise ValueError(f"--plot {path!r}: unknown image type {p.suffix!r}; use one of {', '.join(PLOT_SUFFIXES)}")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError("--plot needs matplotlib: pip install 'permopt[plot]'") from None
    return p


def _output_dir(path: str) -> Path:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"--out-dir {path!r} is a file; give a folder")
    return p


def _add_problem_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("matrix", help="score matrix .npy (F, C) or weight tensor .npy/.pt (F, C[, kh, kw])")
    p.add_argument("-g", "--groups", type=int, required=True, help="number of groups G (divides F and C)")
    p.add_argument("--criterion", default=None,
                   help="criterion turning a weight into scores: l2, l1 (default: l2 for 4-D, none for 2-D)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="optional wall-clock cap per solver in seconds (breaks reproducibility when it bites)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--bound", choices=METHODS, default=None,
                   help="a stronger certified bound to compute (sdp: the semidefinite relaxation; colgen: the "
                        "set-partitioning LP, groups of up to 1e10 subsets, seconds to minutes; every solution "
                        "already has the top-k and spectral bounds)")
    p.add_argument("--json", dest="json_out", default=None, help="write the result as JSON to this file")


def _problem(args: argparse.Namespace) -> Any:
    from .io import load_scores
    from .problem import GroupingProblem

    return GroupingProblem(load_scores(args.matrix, args.criterion), args.groups, name=Path(args.matrix).stem)


def _options(items: list[str]) -> dict[str, Any]:
    """``--solver-option KEY=VALUE`` pairs; a value is read as a Python literal (5000, 0.5, True)
    where it is one, else kept as text."""
    import ast

    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise ValueError(f"--solver-option {item!r} is not KEY=VALUE (e.g. node_limit=5000)")
        try:
            out[key.strip()] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = text.strip()
    return out


def _cmd_solve(args: argparse.Namespace) -> int:
    from .solving import solve

    json_out, plot = _output_file(args.json_out, "--json"), _output_file(args.plot, "--plot")
    problem = _problem(args)
    sol = solve(problem, solver=args.solver, time_limit=args.time_limit, seed=args.seed, bound=args.bound,
              **_options(args.solver_options))
    print(f"solver {sol.solver}: status {sol.status}, kept {sol.kept:.6g} of {sol.total:.6g} "
          f"(ratio {sol.kept_ratio:.4f}), upper bound {sol.upper_bound:.6g} "
          f"({sol.info.get('bound_method', '')}), gap {sol.gap:.4f}, {sol.time_s:.3f} s")
    if sol.message:
        print(sol.message)
    if json_out:
        json_out.write_text(sol.to_json(indent=1))
    if plot:
        from .plot import plot_solution

        plot_solution(problem, sol, plot)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare

    json_out = _output_file(args.json_out, "--json")
    cmp = compare(_problem(args), solvers=_names(args.solvers, "--solvers"), time_limit=args.time_limit,
                  seed=args.seed, bound=args.bound)
    print(cmp.table())
    if json_out:
        json_out.write_text(cmp.to_json(indent=1))
    return 0


def _load_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """(model, example input) from --model NAME, --model-factory MODULE:FUNCTION, or --model-file."""
    import torch

    from . import models

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
        model = _factory(args.model_factory)()
        shape = args.input_shape
    else:
        model = torch.load(args.model_file, map_location="cpu", weights_only=False)  # trusted by the flag
        shape = args.input_shape
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"the model must be a torch.nn.Module, got {type(model).__name__}")
    if shape is None:
        raise ValueError("--input-shape C,H,W is needed for --model-factory and --model-file")
    if args.weights:
        _load_weights(model, args.weights)
    return model.eval(), torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))


def _load_weights(model: Any, path: str) -> None:
    """``--weights``: a state dict loaded safely; a mismatch names every missing and unexpected key."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"--weights {path!r}: no such file") from None
    except Exception as e:
        raise ValueError(f"--weights {path!r} is not a readable state dict ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise ValueError(f"--weights {path!r} holds a {type(state).__name__}, not a state dict "
                         "(save model.state_dict())")
    missing, unexpected = sorted(set(model.state_dict()) - set(state)), sorted(set(state) - set(model.state_dict()))
    if missing or unexpected:
        raise ValueError(f"--weights {path!r} does not fit the model: missing keys {missing}, unexpected keys "
                         f"{unexpected}")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:  # shapes: torch lists each mismatch on its own line
        raise ValueError(f"--weights {path!r} does not fit the model: "
                         + "; ".join(line.strip() for line in str(e).splitlines()[1:] if line.strip())) from None


def _factory(spec: str) -> Callable[[], Any]:
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


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from . import models

    p.add_argument("--model", default=None,
                   help=f"a zoo model ({', '.join(models.available())}), or tv:NAME (torchvision) / timm:NAME "
                        "with random weights")
    p.add_argument("--model-factory", default=None, help="MODULE:FUNCTION returning the model (use --weights)")
    p.add_argument("--weights", default=None, help="state dict (.pt) to load into the model (loaded safely)")
    p.add_argument("--model-file", default=None,
                   help="a whole model saved with torch.save; unpickling runs code from the file, so it needs "
                        "--trust-model-file")
    p.add_argument("--trust-model-file", action="store_true", help="allow --model-file to be unpickled")
    p.add_argument("--input-shape", type=_shape, default=None,
                   help="per-sample input shape C,H,W (default: the zoo model's; 3,224,224 for tv:/timm:)")
    p.add_argument("--num-classes", type=_positive_int, default=None,
                   help="classes of a --model (default: the model's own, 10 for the zoo, 1000 for tv:/timm:)")
    p.add_argument("--min-channels", type=_positive_int, default=None,
                   help="at least this many channels per group (default 4; 1 under a latency budget: depthwise)")
    p.add_argument("--max-groups", type=_positive_int, default=64,
                   help="largest G considered by a budget search (default 64)")
    p.add_argument("--include-linear", action="store_true", help="also group Linear layers")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the solvers, the search and a --model's random weights (default 0): identical "
                        "commands write identical plans")
    p.add_argument("--layer-time-limit", type=float, default=None,
                   help="optional wall-clock cap per layer solve (breaks reproducibility when it bites)")
    p.add_argument("--jobs", type=_positive_int, default=None,
                   help="solve layers on this many local processes (same results)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _cmd_search(args: argparse.Namespace) -> int:
    from .bench import format_table
    from .pruning.options import default_min_channels
    from .search import Budget, SearchSpace, SolverCostModel, get_strategy, search

    budget = Budget.parse(args.budget)
    strategies = _names(args.strategies, "--strategies")
    for name in strategies:
        get_strategy(name)
    if "optuna" in strategies:  # its optional dependency, before any work
        from .search.optuna_search import require_optuna
        require_optuna()
    json_out, save_space = _output_file(args.json_out, "--json"), _output_file(args.save_space, "--save-space")
    if args.space:
        space = SearchSpace.load(args.space)
    else:
        from .nn.space import search_space

        model, x = _load_model(args)
        space = search_space(model, x, min_channels=default_min_channels(args.min_channels, budget),
                             max_groups=args.max_groups, include_linear=args.include_linear)
        if save_space:
            space.save(save_space)
    cost = SolverCostModel(args.solver, time_limit=args.layer_time_limit, seed=args.seed, n_jobs=args.jobs)
    cost.precompute(space, progress=not args.quiet)
    rows, results, missed = [], {}, []
    for name in _progress(strategies, "searching", args.quiet):
        r = search(space, args.budget, name, cost_model=cost, seed=args.seed, time_limit=args.search_time_limit)
        results[name] = json.loads(r.to_json())
        if not r.feasible:
            missed.append(name)
        rows.append({"strategy": name, "status": str(r.status), "objective": r.objective, "params": r.params,
                     "params_ratio": r.params / space.dense_params, "macs_ratio": r.macs / space.dense_macs,
                     "time_s": r.time_s})
    print(f"{len(space)} layers, dense {space.dense_params} params / {space.dense_macs} MACs, budget {args.budget}")
    print(format_table(rows, ["strategy", "status", "objective", "params", "params_ratio", "macs_ratio", "time_s"]))
    if json_out:
        json_out.write_text(json.dumps({"budget": args.budget, "results": results}, indent=1))
    if missed:
        print(f"permopt search: budget {args.budget} not met by {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def _progress(items: list, desc: str, quiet: bool) -> Any:
    """``items``, advancing a progress bar as each is taken, unless ``--quiet``."""
    bar = progress_bar(len(items), desc, "run", not quiet and len(items) > 1)
    for item in items:
        yield item
        if bar:
            bar.update()
    if bar:
        bar.close()


def _prune_config(args: argparse.Namespace, **fields: Any) -> Any:
    """The prune options the flags give, as one :class:`~permopt.pruning.PruneConfig` (checked
    here, before the model is loaded); ``fields`` override them."""
    from .pruning import PruneConfig

    budget = getattr(args, "budget", None)
    options = {"groups": getattr(args, "groups", None), "budget": budget,
               "strategy": getattr(args, "strategy", "exact"), "solver": args.solver,
               "include_linear": args.include_linear, "min_channels": args.min_channels,
               "max_groups": args.max_groups, "layer_time_limit": args.layer_time_limit,
               "search_time_limit": getattr(args, "search_time_limit", None), "seed": args.seed,
               "progress": not args.quiet, "n_jobs": args.jobs, "coupling": getattr(args, "coupling", None),
               "latency": _latency_setup(args) if budget and "latency" in budget else None}
    return PruneConfig(**{**options, **fields})


def _cmd_prune(args: argparse.Namespace) -> int:
    import torch

    from .pruning import prune

    config = _prune_config(args)
    out, plot = _output_dir(args.out_dir), _output_file(args.plot, "--plot")
    model, x = _load_model(args)
    res = prune(model, x, config)
    out.mkdir(parents=True, exist_ok=True)
    res.plan.save(out / "plan.json")
    torch.save(res.model.state_dict(), out / "pruned_state_dict.pt")
    (out / "report.json").write_text(json.dumps(res.report.to_dict(), indent=1))
    print(res.report.table())
    print(f"wrote {out / 'plan.json'}, {out / 'pruned_state_dict.pt'}, {out / 'report.json'}")
    if plot:
        from .plot import plot_report

        plot_report(res.report, plot, title=f"{args.model or args.model_factory or args.model_file}: "
                                            f"{'G=' + str(args.groups) if args.groups else args.budget}")
        print(f"wrote {plot}")
    return 0


def _latency_setup(args: argparse.Namespace) -> Any:
    """The --latency-* options as a LatencySetup (no disk cache unless --latency-cache)."""
    from .nn.latency import LatencySetup

    return LatencySetup(batch=args.latency_batch, threads=args.latency_threads, rounds=args.latency_rounds,
                        memory_format=args.memory_format, cache_dir=args.latency_cache)


def _add_latency_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--latency-batch", type=_positive_int, default=32,
                   help="batch size for latency measurements (default 32)")
    p.add_argument("--latency-threads", type=_positive_int, default=1, help="torch threads when timing (default 1)")
    p.add_argument("--latency-rounds", type=_positive_int, default=15,
                   help="interleaved timing rounds (medians; default 15)")
    p.add_argument("--memory-format", default="auto", choices=("auto", "channels_last", "contiguous"),
                   help="memory format models are timed (and, under a latency budget, delivered) in; auto: the "
                        "faster for the dense model, measured (default)")
    p.add_argument("--latency-cache", default=None, help="folder caching measured layer tables (default: none)")


def _bench_latency(args: argparse.Namespace, json_out: Path | None) -> int:
    """Dense vs exported latency for each G and coupling, timed side by side."""
    from .bench import format_table
    from .nn.latency import LatencyTable
    from .pruning import prune

    couplings = _names(args.couplings, "--couplings")
    combos = [(G, c) for G in _ints(args.groups_list, "--groups-list") for c in couplings]
    configs = [_prune_config(args, groups=G, coupling=c, progress=False) for G, c in combos]
    model, x = _load_model(args)
    setup = _latency_setup(args).resolve(model, x)
    exported, info = {}, {}
    for (G, coupling), config in _progress(list(zip(combos, configs)), "pruning", args.quiet):
        r = prune(model, x, config)
        exported[f"G={G} {coupling}"] = r.model
        info[f"G={G} {coupling}"] = (r.report.macs_before / r.report.macs_after, r.report.index_modules)
    t = LatencyTable(setup).models({"dense": model, **exported}, x, progress=not args.quiet)
    rows = [{"model": "dense", "ms": 1e3 * t["dense"], "speedup": 1.0, "ideal": 1.0, "index_modules": 0}]
    rows += [{"model": k, "ms": 1e3 * t[k], "speedup": t["dense"] / t[k], "ideal": info[k][0],
              "index_modules": info[k][1]} for k in exported]
    print(f"batch {setup.batch or 2}, {setup.threads} thread(s), {setup.memory_format}, medians of "
          f"{setup.rounds} interleaved rounds")
    print(format_table(rows, ["model", "ms", "speedup", "ideal", "index_modules"]))
    if json_out:
        json_out.write_text(json.dumps(rows, indent=1))
    return 0


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in _names(text, what)]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None
    if any(v < 1 for v in values):
        raise ValueError(f"{what} must be positive, got {text!r}")
    return values


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import format_table, parse_sizes, random_scores, solver_table

    json_out = _output_file(args.json_out, "--json")
    if args.latency:
        return _bench_latency(args, json_out)
    solvers = _names(args.solvers, "--solvers")
    cases = [(args.dist, random_scores(args.dist, (F, C), args.seed), G) for F, C, G in parse_sizes(args.sizes)]
    rows = solver_table(cases, solvers, args.repeats, args.seed)
    print(format_table(rows, ["size", "G"] + [c for s in solvers for c in (s, f"{s}_s")]))
    if json_out:
        json_out.write_text(json.dumps(rows, indent=1))
    return 0


_EPILOG = """Examples:
  permopt solve W.npy --groups 4 --json sol.json --plot sol.png
  permopt compare W.npy --groups 4 --solvers grps,best,enumerate --time-limit 10
  permopt search --model resnet56 --budget params=0.5 --strategies paper,exact,descent
  permopt prune --model resnet20 --budget params=0.5 --out-dir out
  permopt prune --model tv:resnet50 --groups 4 --out-dir out
  permopt prune --model resnet56 --budget latency=0.8 --coupling full --latency-batch 32
  permopt bench --sizes 64x64g4,512x512g16 --solvers grps,best
  permopt bench --latency --model resnet56 --groups-list 2,4 --couplings none,full

The default solver everywhere is auto: exact branch and bound where it is cheap and bounded,
else the best heuristic. Same inputs and --seed give the same result (zoo, tv: and timm: models
get weights seeded by --seed) unless a time limit bites.

Exit codes: 0 done; 1 a search strategy did not meet the budget; 2 an error (one line; --debug
shows the traceback); 130 interrupted."""


def _add_solve_parsers(sub: Any, names: str) -> None:
    p = sub.add_parser("solve", help="solve one layer problem", description="Solve one layer's permutation problem.")
    _add_problem_args(p)
    p.add_argument("-s", "--solver", default="auto", help=f"solver name (default auto); one of: {names}")
    p.add_argument("--plot", default=None, help="draw the permuted score matrix and kept blocks to this image")
    p.add_argument("--solver-option", dest="solver_options", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the solver, e.g. node_limit=5000 or effort=2 (repeatable; unknown keys are "
                        "refused with the list the solver takes)")
    p.set_defaults(func=_cmd_solve)

    p = sub.add_parser("compare", help="compare solvers side by side",
                       description="Run several solvers on one layer and print kept, bound, gap, status and time.")
    _add_problem_args(p)
    p.add_argument("--solvers", default=",".join(DEFAULT_COMPARE), help=f"comma-separated solver names; known: {names}")
    p.set_defaults(func=_cmd_compare)


def _add_model_parsers(sub: Any, names: str) -> None:
    from .search import available_strategies

    strategies = ", ".join(available_strategies())
    p = sub.add_parser("search", help="choose G per layer under a budget",
                       description="Search the group configuration of a model (or a saved layer list) under a "
                                   "parameter/MAC budget with one or more strategies; prints a table.")
    _add_model_args(p)
    p.add_argument("--space", default=None, help="a saved layer list (.npz from --save-space) instead of a model")
    p.add_argument("--save-space", default=None, help="save the model's layer list to this .npz")
    p.add_argument("--budget", required=True, help="e.g. params=0.5 or params=0.5,macs=0.4 (fractions or counts)")
    p.add_argument("--strategies", default="paper,exact", help=f"comma-separated; known: {strategies}")
    p.add_argument("-s", "--solver", default="auto", help="permutation solver of the cost model (default auto)")
    p.add_argument("--search-time-limit", type=float, default=None, help="optional wall-clock cap per strategy")
    p.add_argument("--json", dest="json_out", default=None, help="write the results as JSON")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("prune", help="prune a model into group convolutions",
                       description="Prune a zoo, torchvision or timm model (or your own): uniform --groups or a "
                                   "--budget search; writes plan.json, the pruned state dict and report.json; "
                                   "prints the report.")
    _add_model_args(p)
    p.add_argument("-g", "--groups", type=int, default=None, help="uniform G for every layer it divides")
    p.add_argument("--budget", default=None, help="e.g. params=0.5, macs=0.4 or latency=0.7 (a fraction of the dense "
                                                  "model's latency measured here); G per layer chosen by --strategy")
    p.add_argument("--strategy", default="exact", help=f"search strategy for --budget (default exact); {strategies}")
    p.add_argument("-s", "--solver", default="auto", help=f"permutation solver (default auto); one of: {names}")
    p.add_argument("--search-time-limit", type=float, default=None, help="optional wall-clock cap on the search")
    _add_latency_args(p)
    p.add_argument("--coupling", default=None, choices=COUPLING_MODES,
                   help="share one partition per channel space: none, chain (conv-BN-ReLU-conv), full (residual "
                        "streams too) or strict (full, and concatenations pinned): fewer index modules (gathers), "
                        "some kept mass (default: full under a latency budget, else none)")
    p.add_argument("-o", "--out-dir", default="permopt_out", help="output folder (default permopt_out)")
    p.add_argument("--plot", default=None, help="draw G per layer and params before/after to this image")
    p.set_defaults(func=_cmd_prune)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from .solvers import available

    parser = argparse.ArgumentParser(
        prog="permopt", description="Channel permutations and group configurations for group convolutions.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"permopt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = ", ".join(available())
    _add_solve_parsers(sub, names)
    _add_model_parsers(sub, names)
    p = sub.add_parser("bench", help="time solvers on random matrices, or a pruned model's latency",
                       description="Kept ratio and median time of solvers on random score matrices; with "
                                   "--latency, a model's dense vs exported latency for each G and coupling, "
                                   "timed side by side.")
    p.add_argument("--sizes", default="64x64g4,256x256g8,512x512g16", help="comma-separated FxCgG")
    p.add_argument("--solvers", default="same,sort,grps,best", help=f"comma-separated; known: {names}")
    p.add_argument("--latency", action="store_true", help="time a model instead: dense vs exported (needs --model)")
    p.add_argument("--groups-list", default="2,4", help="with --latency: G values to export (default 2,4)")
    p.add_argument("--couplings", default="none,full", help="with --latency: coupling modes (default none,full)")
    p.add_argument("--solver", default="best", help="with --latency: permutation solver (default best)")
    _add_model_args(p)
    _add_latency_args(p)
    p.add_argument("--dist", default="normal", help="normal (|N(0,1)|), uniform or lognormal")
    p.add_argument("--repeats", type=_positive_int, default=3, help="runs per timing (median)")
    p.add_argument("--json", dest="json_out", default=None, help="write the rows as JSON")
    p.set_defaults(func=_cmd_bench)
    return parser


#: Python spellings that library messages use, and what a command-line user types instead.
_CLI_WORDS = [(re.compile(p), flag) for p, flag in [
    (r"\binclude_linear=True\b", "--include-linear"),
    (r"\blayer_time_limit\b", "--layer-time-limit"),
    (r"\bsearch_time_limit\b", "--search-time-limit"),
    (r"\bmax_groups\b", "--max-groups"),
    (r"\bmin_channels\b", "--min-channels"),
    (r"\bn_jobs=", "--jobs "),
    (r"\bgroups= \(uniform G\) or budget= ", "--groups G (uniform) or --budget SPEC "),
    (r"\bsolver='(\w+)' or '(\w+)'", r"-s \1 or -s \2"),
    (r"\bsolver='(\w+)'", r"-s \1"),
]]


def in_cli_words(message: str, command: str) -> str:
    """``message`` with the Python argument names it suggests replaced by this CLI's flags
    (``node_limit=`` is a solver option, settable only in ``permopt solve --solver-option``)."""
    for pattern, flag in _CLI_WORDS:
        message = pattern.sub(flag, message)
    limit = "--time-limit " if command in ("solve", "compare") else "--layer-time-limit "
    message = re.sub(r"\btime_limit=", limit, message)
    option = "--solver-option node_limit=N" if command == "solve" else "`permopt solve --solver-option node_limit=N`"
    return re.sub(r"\bnode_limit=(?!\d)", option + " ", message).replace("  ", " ")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``permopt`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"permopt {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one line, never a traceback, unless asked
        if args.debug:
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"permopt {args.command}: error: {in_cli_words(msg, args.command)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
