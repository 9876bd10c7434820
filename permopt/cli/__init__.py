"""The ``permopt`` command line: solve, compare, search, prune, bench.

Every error is one line on stderr and exit code 2 (``--debug`` shows the traceback);
outputs are checked before any long work starts. ``permopt --help`` does not import torch.
"""
from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from .. import __version__
from ..compare import DEFAULT_COMPARE
from ..coupling import COUPLING_MODES
from ..criteria import DATA_CRITERIA
from ..search.cost import COSTS

#: Criteria ``prune --criterion`` takes (weight ones, then the data-aware ones).
PRUNE_CRITERIA = ("l2", "l1", *DATA_CRITERIA)
from .arguments import add_latency_args, add_model_args, add_problem_args, add_structure_args, positive_int
from .commands import cmd_bench, cmd_compare, cmd_prune, cmd_search, cmd_solve


_EPILOG = """Examples:
  permopt solve W.npy --groups 4 --json sol.json --plot sol.png
  permopt compare W.npy --groups 4 --solvers grps,best,enumerate --time-limit 10
  permopt search --model resnet56 --budget params=0.5 --strategies paper,exact,descent
  permopt prune --model resnet20 --budget params=0.5 --out-dir out
  permopt prune --model tv:resnet50 --groups 4 --out-dir out
  permopt prune --model resnet20 --width 0.5 --out-dir out
  permopt prune --model resnet20 --structure channels --budget latency=0.5 --out-dir out
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
    add_problem_args(p)
    p.add_argument("-s", "--solver", default="auto", help=f"solver name (default auto); one of: {names}")
    p.add_argument("--plot", default=None, help="draw the permuted score matrix and kept blocks to this image")
    p.add_argument("--solver-option", dest="solver_options", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the solver, e.g. node_limit=5000 or effort=2 (repeatable; unknown keys are "
                        "refused with the list the solver takes)")
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("compare", help="compare solvers side by side",
                       description="Run several solvers on one layer and print kept, bound, gap, status and time.")
    add_problem_args(p)
    p.add_argument("--solvers", default=",".join(DEFAULT_COMPARE), help=f"comma-separated solver names; known: {names}")
    p.set_defaults(func=cmd_compare)


def _add_model_parsers(sub: Any, names: str) -> None:
    from ..search import available_strategies

    strategies = ", ".join(available_strategies())
    p = sub.add_parser("search", help="choose G per layer under a budget",
                       description="Search the group configuration of a model (or a saved layer list) under a "
                                   "parameter/MAC budget with one or more strategies; prints a table.")
    add_model_args(p)
    p.add_argument("--space", default=None, help="a saved layer list (.npz from --save-space) instead of a model")
    p.add_argument("--save-space", default=None, help="save the model's layer list to this .npz")
    p.add_argument("--budget", required=True, help="e.g. params=0.5 or params=0.5,macs=0.4 (fractions or counts)")
    p.add_argument("--strategies", default="paper,exact", help=f"comma-separated; known: {strategies}")
    p.add_argument("-s", "--solver", default="auto", help="permutation solver of the cost model (default auto)")
    p.add_argument("--search-time-limit", type=float, default=None, help="optional wall-clock cap per strategy")
    p.add_argument("--json", dest="json_out", default=None, help="write the results as JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("prune", help="prune a model into group convolutions",
                       description="Prune a zoo, torchvision or timm model (or your own): uniform --groups, "
                                   "channels (--width) or a --budget search; writes plan.json, the pruned state dict and report.json; "
                                   "prints the report.")
    add_model_args(p)
    p.add_argument("-g", "--groups", type=int, default=None, help="uniform G for every layer it divides")
    p.add_argument("--budget", default=None, help="e.g. params=0.5, macs=0.4 or latency=0.7 (a fraction of the dense "
                                                  "model's latency measured here); G per layer chosen by --strategy")
    add_structure_args(p)
    p.add_argument("--strategy", default="exact", help=f"search strategy for --budget (default exact); {strategies}")
    p.add_argument("-s", "--solver", default="auto", help=f"permutation solver (default auto); one of: {names}")
    p.add_argument("--search-time-limit", type=float, default=None, help="optional wall-clock cap on the search")
    add_latency_args(p)
    p.add_argument("--coupling", default=None, choices=COUPLING_MODES,
                   help="share one partition per channel space: none, chain (conv-BN-ReLU-conv), full (residual "
                        "streams too) or strict (full, and concatenations pinned): fewer index modules (gathers), "
                        "some kept mass (default: full under a latency budget, else none)")
    p.add_argument("-o", "--out-dir", default="permopt_out", help="output folder (default permopt_out)")
    p.add_argument("--plot", default=None, help="draw G per layer and params before/after to this image")
    p.add_argument("--calibration", default=None,
                   help="unlabelled inputs (.pt tensor or .npy array, N x C x H x W): data-aware scores (the "
                        "hessian criterion), a budget search minimising the output error measured on them, and "
                        "the kept weights refitted to the dense layers' outputs")
    p.add_argument("--criterion", default=None, choices=PRUNE_CRITERIA,
                   help="score per connection: l2 or l1 (weights), activation or hessian (need --calibration); "
                        "default hessian with --calibration, else l2")
    p.add_argument("--cost", default=None, choices=COSTS,
                   help="what a --budget search minimises: mass (pruned weight mass) or data (output error on "
                        "--calibration); default data with --calibration, else mass")
    p.add_argument("--no-reconstruct", dest="reconstruct", action="store_false", default=None,
                   help="with --calibration: keep the masked dense weights instead of refitting them")
    p.add_argument("--distill", type=positive_int, default=0, metavar="STEPS",
                   help="then distil the dense model into the pruned one for STEPS Adam steps on --calibration "
                        "(label-free; only kept weights move)")
    p.set_defaults(func=cmd_prune)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from ..solvers import available

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
    p.add_argument("--runtimes", default=None,
                   help="with --latency: comma-separated runtimes to time in, side by side per runtime "
                        "(the registered ones: see permopt.runtimes; default: --runtime)")
    add_model_args(p)
    add_latency_args(p)
    p.add_argument("--dist", default="normal", help="normal (|N(0,1)|), uniform or lognormal")
    p.add_argument("--repeats", type=positive_int, default=3, help="runs per timing (median)")
    p.add_argument("--json", dest="json_out", default=None, help="write the rows as JSON")
    p.set_defaults(func=cmd_bench)
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
    (r"\bcriterion '(\w+)' needs calibration= ", r"--criterion \1 needs --calibration "),
    (r"\bcost='data' needs calibration= ", "--cost data needs --calibration "),
    (r"\bdistill= needs calibration= ", "--distill needs --calibration "),
    (r"\bsolver='(\w+)' or '(\w+)'", r"SOLVER \1 or SOLVER \2"),
    (r"\bsolver='(\w+)'", r"SOLVER \1"),
]]
#: How each command names the solver: ``compare`` runs a list, ``bench`` one per latency table.
_SOLVER_FLAG = {"compare": "--solvers", "bench": "--solver"}


def in_cli_words(message: str, command: str) -> str:
    """``message`` with the Python argument names it suggests replaced by the flags of this
    command, and advice the command cannot take (a solver option outside ``solve``) left out."""
    for pattern, flag in _CLI_WORDS:
        message = pattern.sub(flag, message)
    message = message.replace("SOLVER ", _SOLVER_FLAG.get(command, "-s") + " ")
    limit = "--time-limit " if command in ("solve", "compare") else "--layer-time-limit "
    if command == "solve":
        message = re.sub(r"\bnode_limit=(?!\d)N?", "--solver-option node_limit=N ", message)
    else:  # only `solve` takes solver options: drop "node_limit=N (reproducible) or"
        message = re.sub(r"\bnode_limit=(?!\d)N?\s*(\([^)]*\))?\s*or\s+", "", message)
    message = re.sub(r"\btime_limit=", limit, message)
    return re.sub(r" +", " ", message).replace(" )", ")").replace(" ,", ",")


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


__all__ = ["main", "build_parser", "in_cli_words"]
