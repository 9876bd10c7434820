"""The ``permopt`` command line: solve and compare layer problems (more subcommands join as they land)."""
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from .solvers import available

    parser = argparse.ArgumentParser(
        prog="permopt", description="Channel permutations and group configurations for group convolutions.",
        epilog="Examples:\n  permopt solve W.npy --groups 4 --solver grps --json sol.json\n"
               "  permopt compare W.npy --groups 4 --solvers grps,best,enumerate --time-limit 10",
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
    except (ValueError, TypeError, FileNotFoundError, ImportError) as e:
        print(f"permopt {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
