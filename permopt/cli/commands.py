"""The ``permopt`` commands: solve, compare, search, prune, bench."""
from __future__ import annotations

import argparse
from dataclasses import replace
import json
import sys
from pathlib import Path
from typing import Any

from .arguments import ints, names, output_dir, output_file, progress, solver_options
from .loading import latency_setup, load_model, load_problem, prune_config


def cmd_solve(args: argparse.Namespace) -> int:
    from ..solving import solve

    json_out, plot = output_file(args.json_out, "--json"), output_file(args.plot, "--plot")
    problem = load_problem(args)
    sol = solve(problem, solver=args.solver, time_limit=args.time_limit, seed=args.seed, bound=args.bound,
              **solver_options(args.solver_options))
    print(f"solver {sol.solver}: status {sol.status}, kept {sol.kept:.6g} of {sol.total:.6g} "
          f"(ratio {sol.kept_ratio:.4f}), upper bound {sol.upper_bound:.6g} "
          f"({sol.info.get('bound_method', '')}), gap {sol.gap:.4f}, {sol.time_s:.3f} s")
    if sol.message:
        print(sol.message)
    if json_out:
        json_out.write_text(sol.to_json(indent=1))
    if plot:
        from ..plot import plot_solution

        plot_solution(problem, sol, plot)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..compare import compare

    json_out = output_file(args.json_out, "--json")
    cmp = compare(load_problem(args), solvers=names(args.solvers, "--solvers"), time_limit=args.time_limit,
                  seed=args.seed, bound=args.bound)
    print(cmp.table())
    if json_out:
        json_out.write_text(cmp.to_json(indent=1))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from ..bench import format_table
    from ..pruning.options import default_min_channels
    from ..search import Budget, SearchSpace, SolverCostModel, get_strategy, search

    budget = Budget.parse(args.budget)
    strategies = names(args.strategies, "--strategies")
    for name in strategies:
        get_strategy(name)
    if "optuna" in strategies:  # its optional dependency, before any work
        from ..search.optuna_search import require_optuna
        require_optuna()
    json_out, save_space = output_file(args.json_out, "--json"), output_file(args.save_space, "--save-space")
    if args.space:
        space = SearchSpace.load(args.space)
    else:
        from ..nn.model_space import search_space

        model, x = load_model(args)
        space = search_space(model, x, min_channels=default_min_channels(args.min_channels, budget),
                             max_groups=args.max_groups, include_linear=args.include_linear)
        if save_space:
            space.save(save_space)
    cost = SolverCostModel(args.solver, time_limit=args.layer_time_limit, seed=args.seed, n_jobs=args.jobs)
    cost.precompute(space, progress=not args.quiet)
    rows, results, missed = [], {}, []
    for name in progress(strategies, "searching", args.quiet):
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


def cmd_prune(args: argparse.Namespace) -> int:
    import torch

    from ..pruning import prune

    config = prune_config(args)
    out = output_dir(args.out_dir)  # created first: --plot may name a file inside it
    plot = output_file(args.plot, "--plot")
    model, x = load_model(args)
    res = prune(model, x, config)
    res.plan.save(out / "plan.json")
    torch.save(res.model.state_dict(), out / "pruned_state_dict.pt")
    (out / "report.json").write_text(json.dumps(res.report.to_dict(), indent=1))
    print(res.report.table())
    print(f"wrote {out / 'plan.json'}, {out / 'pruned_state_dict.pt'}, {out / 'report.json'}")
    if plot:
        from ..plot import plot_report

        what = [f"width={args.width}"] if args.width else []
        what += [f"G={args.groups}"] if args.groups else []
        what += [f"budget {args.budget}" + (" (channels)" if args.structure == "channels" else "")] if args.budget else []
        plot_report(res.report, plot, title=f"{args.model or args.model_factory or args.model_file}: {', '.join(what)}")
        print(f"wrote {plot}")
    return 0


def bench_latency(args: argparse.Namespace, json_out: Path | None) -> int:
    """Dense vs exported latency for each G and coupling, timed side by side in each runtime."""
    from ..bench import format_table
    from ..pruning import prune
    from ..runtimes import available_runtimes

    couplings = names(args.couplings, "--couplings")
    combos = [(G, c) for G in ints(args.groups_list, "--groups-list") for c in couplings]
    configs = [prune_config(args, groups=G, coupling=c, progress=False) for G, c in combos]
    runtimes = names(args.runtimes, "--runtimes") if args.runtimes else [args.runtime]
    unknown = sorted(set(runtimes) - set(available_runtimes()))
    if unknown:
        raise ValueError(f"--runtimes: unknown {unknown}; known: {', '.join(available_runtimes())}")
    setups = [replace(latency_setup(args), runtime=r) for r in runtimes]  # each checked (formats it takes)
    model, x = load_model(args)
    exported, info = {}, {}
    for (G, coupling), config in progress(list(zip(combos, configs)), "pruning", args.quiet):
        r = prune(model, x, config)
        exported[f"G={G} {coupling}"] = r.model
        info[f"G={G} {coupling}"] = (r.report.macs_before / r.report.macs_after, r.report.index_modules)
    rows = []
    for setup in setups:
        rows += _latency_rows(setup.resolve(model, x), model, exported, info, x, args.quiet)
    first = setups[0]
    print(f"batch {first.batch or 2}, {first.threads} thread(s), medians of {first.rounds} interleaved rounds; "
          "speed-up over the dense model in the same runtime")
    print(format_table(rows, ["runtime", "format", "model", "ms", "speedup", "ideal", "index_modules"]))
    if json_out:
        json_out.write_text(json.dumps(rows, indent=1))
    return 0


def _latency_rows(setup: Any, model: Any, exported: dict[str, Any], info: dict[str, tuple[float, int]], x: Any,
                  quiet: bool) -> list[dict[str, Any]]:
    """One row for the dense model and one per export, timed side by side under ``setup``."""
    from ..nn.latency import LatencyTable

    t = LatencyTable(setup).models({"dense": model, **exported}, x, progress=not quiet)
    where = {"runtime": setup.runtime, "format": setup.memory_format}
    rows = [{**where, "model": "dense", "ms": 1e3 * t["dense"], "speedup": 1.0, "ideal": 1.0, "index_modules": 0}]
    return rows + [{**where, "model": k, "ms": 1e3 * t[k], "speedup": t["dense"] / t[k], "ideal": info[k][0],
                    "index_modules": info[k][1]} for k in exported]


def cmd_bench(args: argparse.Namespace) -> int:
    from ..bench import format_table, parse_sizes, random_scores, solver_table

    json_out = output_file(args.json_out, "--json")
    if args.latency:
        return bench_latency(args, json_out)
    solvers = names(args.solvers, "--solvers")
    cases = [(args.dist, random_scores(args.dist, (F, C), args.seed), G) for F, C, G in parse_sizes(args.sizes)]
    rows = solver_table(cases, solvers, args.repeats, args.seed)
    print(format_table(rows, ["size", "G"] + [c for s in solvers for c in (s, f"{s}_s")]))
    if json_out:
        json_out.write_text(json.dumps(rows, indent=1))
    return 0
