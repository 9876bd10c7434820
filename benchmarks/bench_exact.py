"""How far the exact solvers get: time to prove optimality, or the gap at the time limit.

    python benchmarks/bench_exact.py                      # all sizes, 60 s per solver (up to ~25 min)
    python benchmarks/bench_exact.py --time-limit 10 --sizes 8x8g2,12x12g3

Random |N(0,1)| scores (seed 0, or --seed). Also reports how close the heuristics come to the
proven optimum. Writes benchmarks/results/exact.json (exact_<solvers>_<limit>.json for other settings).
"""
from __future__ import annotations

import argparse

import numpy as np


import permopt  # noqa: E402
from common import print_table, write_json  # noqa: E402
from permopt.bench import parse_sizes  # noqa: E402

SIZES = "8x8g2,12x12g3,16x16g2,16x16g4,24x24g4,32x32g4,32x32g8,64x64g8"


def run_solvers(problem, solvers, time_limit, label):
    """Each solver's solution, skipping (with a line) those that refuse the layer."""
    sols = {}
    for s in solvers:
        try:
            sols[s] = permopt.solvers.run(problem, s, time_limit=time_limit, seed=0)
        except ValueError as e:  # colgen refuses layers whose pricing table is too large
            print(f"{label} {s}: not applicable ({e})", flush=True)
    return sols


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=SIZES)
    ap.add_argument("--solvers", default="enumerate,cpsat,mip,colgen")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random scores")
    ap.add_argument("--heuristics", default="grps,best,local")
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args(argv)
    rows = []
    for spec in args.sizes.split(","):
        (F, C, G), = parse_sizes(spec)
        S = np.abs(np.random.default_rng(args.seed).standard_normal((F, C)))
        problem = permopt.GroupingProblem(S, G)
        sols = run_solvers(problem, args.solvers.split(","), args.time_limit, spec)
        best_kept = max(s.kept for s in sols.values())
        best_bound = min(s.upper_bound for s in sols.values())
        heur = {h: permopt.solvers.run(problem, h, seed=0).kept for h in args.heuristics.split(",")}
        for name, s in sols.items():
            rows.append({"size": spec, "solver": name, "status": s.status, "time_s": s.time_s,
                         "kept": s.kept, "bound": s.upper_bound, "gap": s.gap,
                         "gap_vs_best_bound": (best_bound - s.kept) / best_bound})
            print(rows[-1], flush=True)
        rows.append({"size": spec, "solver": "(best of all)", "status": "", "time_s": "", "kept": best_kept,
                     "bound": best_bound, "gap": (best_bound - best_kept) / best_bound,
                     **{f"{h}/best": heur[h] / best_kept for h in heur}})
        print(rows[-1], flush=True)
    print()
    print_table(rows, ["size", "solver", "status", "time_s", "kept", "bound", "gap"]
                + [f"{h}/best" for h in args.heuristics.split(",")])
    default = args.solvers == "enumerate,cpsat,mip,colgen" and args.time_limit == 60.0 and args.sizes == SIZES
    name = "exact" if default else f"exact_{args.solvers.replace(',', '_')}_{args.time_limit:g}s"
    write_json(name + (f"_seed{args.seed}" if args.seed else ""),
               {"time_limit": args.time_limit, "solvers": args.solvers, "rows": rows})


if __name__ == "__main__":
    main()
