"""The ``permopt`` command line: solve, compare, search, prune, bench."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__


def _add_problem_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("matrix", help="score matrix .npy (F, C) or weight tensor .npy/.pt (F, C[, kh, kw])")
    p.add_argument("-g", "--groups", type=int, required=True, help="number of groups G (divides F and C)")
    p.add_argument("--criterion", default=None,
                   help="criterion turning a weight into scores: l2, l1 (default: l2 for 4-D, none for 2-D)")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per solver (exact solvers stop there)")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--json", dest="json_out", default=None, help="write the result as JSON to this file")


def _problem(args):
    from .io import load_scores
    from .problem import GroupingProblem

    return GroupingProblem(load_scores(args.matrix, args.criterion), args.groups, name=Path(args.matrix).stem)


def _cmd_solve(args) -> int:
    from .solvers import run

    sol = run(_problem(args), args.solver, time_limit=args.time_limit, seed=args.seed)
    print(f"solver {sol.solver}: status {sol.status}, kept {sol.kept:.6g} of {sol.total:.6g} "
          f"(ratio {sol.kept_ratio:.4f}), upper bound {sol.upper_bound:.6g}, gap {sol.gap:.4f}, "
          f"{sol.time_s:.3f} s")
    if sol.message:
        print(sol.message)
    if args.json_out:
        Path(args.json_out).write_text(sol.to_json(indent=1))
    if args.plot:
        from .plot import plot_solution

        plot_solution(_problem(args), sol, args.plot)
    return 0


def _cmd_compare(args) -> int:
    from .compare import compare

    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    cmp = compare(_problem(args), solvers=solvers, time_limit=args.time_limit, seed=args.seed)
    print(cmp.table())
    if args.json_out:
        Path(args.json_out).write_text(cmp.to_json(indent=1))
    return 0


def _load_model(args):
    """(model, example input) from --model NAME [--weights] or --model-file with --input-shape."""
    import torch

    if bool(args.model) == bool(args.model_file):
        raise ValueError("give exactly one of --model NAME (zoo) or --model-file FILE (a torch.save'd module)")
    if args.model:
        from permopt import models

        model = models.get(args.model, num_classes=args.num_classes)
        shape = tuple(args.input_shape) if args.input_shape else models.input_shape(args.model)
        if args.weights:
            model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    else:
        if not args.input_shape:
            raise ValueError("--model-file needs --input-shape C,H,W")
        model = torch.load(args.model_file, map_location="cpu", weights_only=False)  # a pickled module: trust it
        shape = tuple(args.input_shape)
    return model.eval(), torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from permopt import models

    p.add_argument("--model", default=None, help=f"a zoo model: {', '.join(models.available())}")
    p.add_argument("--weights", default=None, help="state dict (.pt) for --model")
    p.add_argument("--model-file", default=None, help="a whole model saved with torch.save (unpickled: trust it)")
    p.add_argument("--input-shape", type=lambda s: [int(v) for v in s.split(",")], default=None,
                   help="per-sample input shape C,H,W (default: the zoo model's)")
    p.add_argument("--num-classes", type=int, default=10, help="classes of a zoo model (default 10)")
    p.add_argument("--min-channels", type=int, default=4, help="at least this many channels per group (default 4)")
    p.add_argument("--include-linear", action="store_true", help="also group Linear layers")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per layer solve")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _cmd_search(args) -> int:
    from .search import SearchSpace, SolverCostModel, search
    from .bench import format_table

    if args.space:
        space = SearchSpace.load(args.space)
    else:
        model, x = _load_model(args)
        space = SearchSpace.from_model(model, x, min_channels=args.min_channels, include_linear=args.include_linear)
        if args.save_space:
            space.save(args.save_space)
    cost = SolverCostModel(args.solver, time_limit=args.time_limit, seed=args.seed)
    cost.precompute(space, progress=not args.quiet)
    rows, results = [], {}
    for name in [s.strip() for s in args.strategies.split(",") if s.strip()]:
        r = search(space, args.budget, name, cost_model=cost, seed=args.seed, time_limit=args.search_time)
        results[name] = json.loads(r.to_json())
        rows.append({"strategy": name, "status": r.status, "objective": r.objective, "params": r.params,
                     "params_ratio": r.params / space.dense_params, "macs_ratio": r.macs / space.dense_macs,
                     "time_s": r.time_s})
    print(f"{len(space)} layers, dense {space.dense_params} params / {space.dense_macs} MACs, budget {args.budget}")
    print(format_table(rows, ["strategy", "status", "objective", "params", "params_ratio", "macs_ratio", "time_s"]))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"budget": args.budget, "results": results}, indent=1))
    return 0


def _cmd_prune(args) -> int:
    import torch

    from .pipeline import prune

    model, x = _load_model(args)
    if (args.groups is None) == (args.budget is None):
        raise ValueError("give exactly one of --groups G or --budget params=0.5")
    res = prune(model, x, groups=args.groups, budget=args.budget, strategy=args.strategy, solver=args.solver,
                include_linear=args.include_linear, min_channels=args.min_channels, time_limit=args.time_limit,
                seed=args.seed, progress=not args.quiet)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res.plan.save(out / "plan.json")
    torch.save(res.model.state_dict(), out / "pruned_state_dict.pt")
    (out / "report.json").write_text(json.dumps(res.report.to_dict(), indent=1))
    print(res.report.table())
    print(f"wrote {out / 'plan.json'}, {out / 'pruned_state_dict.pt'}, {out / 'report.json'}")
    if args.plot:
        from .plot import plot_report

        plot_report(res.report, args.plot, title=f"{args.model or args.model_file}: "
                                                  f"{'G=' + str(args.groups) if args.groups else args.budget}")
        print(f"wrote {args.plot}")
    return 0


def _cmd_bench(args) -> int:
    from .bench import format_table, parse_sizes, random_scores, solver_table

    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    cases = [(args.dist, random_scores(args.dist, (F, C), args.seed), G) for F, C, G in parse_sizes(args.sizes)]
    rows = solver_table(cases, solvers, args.repeats, args.seed)
    print(format_table(rows, ["size", "G"] + [c for s in solvers for c in (s, f"{s}_s")]))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from .solvers import available

    parser = argparse.ArgumentParser(
        prog="permopt", description="Channel permutations and group configurations for group convolutions.",
        epilog="Examples:\n  permopt solve W.npy --groups 4 --solver grps --json sol.json\n"
               "  permopt compare W.npy --groups 4 --solvers grps,best,enumerate --time-limit 10\n"
               "  permopt search --model resnet56 --budget params=0.5 --strategies paper,exact,local\n"
               "  permopt prune --model resnet20 --budget params=0.5 --out-dir out\n"
               "  permopt bench --sizes 64x64g4,512x512g16 --solvers grps,best",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"permopt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = ", ".join(available())

    p = sub.add_parser("solve", help="solve one layer problem", description="Solve one layer's permutation problem.")
    _add_problem_args(p)
    p.add_argument("-s", "--solver", default="grps", help=f"solver name (default grps); one of: {names}")
    p.add_argument("--plot", default=None, help="draw the permuted score matrix and kept blocks to this image")
    p.set_defaults(func=_cmd_solve)

    p = sub.add_parser("compare", help="compare solvers side by side",
                       description="Run several solvers on one layer and print kept, bound, gap, status and time.")
    _add_problem_args(p)
    p.add_argument("--solvers", default="same,sort,grps,alternating,best,auto",
                   help=f"comma-separated solver names; known: {names}")
    p.set_defaults(func=_cmd_compare)

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
    p.add_argument("--solver", default="best", help="permutation solver of the cost model (default best)")
    p.add_argument("--search-time", type=float, default=None, help="seconds per strategy")
    p.add_argument("--json", dest="json_out", default=None, help="write the results as JSON")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("prune", help="prune a model into group convolutions",
                       description="Prune a zoo model or a saved model: uniform --groups or a --budget search; "
                                   "writes plan.json, the pruned state dict and report.json; prints the report.")
    _add_model_args(p)
    p.add_argument("-g", "--groups", type=int, default=None, help="uniform G for every layer it divides")
    p.add_argument("--budget", default=None, help="e.g. params=0.5 (G per layer chosen by --strategy)")
    p.add_argument("--strategy", default="exact", help=f"search strategy for --budget (default exact); {strategies}")
    p.add_argument("-s", "--solver", default="auto", help=f"permutation solver (default auto); one of: {names}")
    p.add_argument("-o", "--out-dir", default="permopt_out", help="output folder (default permopt_out)")
    p.add_argument("--plot", default=None, help="draw G per layer and params before/after to this image")
    p.set_defaults(func=_cmd_prune)

    p = sub.add_parser("bench", help="time solvers on random matrices",
                       description="Kept ratio and median time of solvers on random score matrices.")
    p.add_argument("--sizes", default="64x64g4,256x256g8,512x512g16", help="comma-separated FxCgG")
    p.add_argument("--solvers", default="same,sort,grps,best", help=f"comma-separated; known: {names}")
    p.add_argument("--dist", default="normal", help="normal (|N(0,1)|), uniform or lognormal")
    p.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", default=None, help="write the rows as JSON")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``permopt`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, TypeError, KeyError, FileNotFoundError, ImportError) as e:
        print(f"permopt {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
