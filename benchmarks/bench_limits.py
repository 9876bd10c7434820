"""Are time limits honoured? Wall time of solvers given a time limit, warm start and model
building included, against the allowance max(1 s, 20% of the limit).

    python benchmarks/bench_limits.py
    python benchmarks/bench_limits.py --limits 1,5 --sizes 48x48g4,128x128g8 --solvers mip,cpsat

Writes benchmarks/results/limits.json. (Timing belongs here, never in the tests.)
"""
from __future__ import annotations

import argparse
import time

from common import print_table, write_json

import permopt
from permopt.bench import parse_sizes, random_scores

#: Heuristics given a work count far beyond the limit, so the cap is what stops them.
HEAVY = {"local": {"iterations": 10**6}, "anneal": {"steps": 10**8}, "alternating": {"restarts": 10**6}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--solvers", default="enumerate,cpsat,mip,local,anneal,alternating")
    ap.add_argument("--sizes", default="32x32g4,48x48g4,64x64g8,128x128g8")
    ap.add_argument("--limits", default="1,2,5")
    args = ap.parse_args(argv)
    permopt.solve(random_scores("normal", (16, 16)), 4, "mip", time_limit=1)  # warm up imports
    rows = []
    for F, C, G in parse_sizes(args.sizes):
        S = random_scores("normal", (F, C), seed=0)
        for limit in map(float, args.limits.split(",")):
            for solver in args.solvers.split(","):
                t = time.perf_counter()
                sol = permopt.solve(S, G, solver, time_limit=limit, seed=0, **HEAVY.get(solver, {}))
                wall = time.perf_counter() - t
                allowed = max(1.0, 0.2 * limit)
                rows.append({"size": f"{F}x{C}", "G": G, "solver": solver, "limit_s": limit, "wall_s": wall,
                             "over_s": wall - limit, "allowed_over_s": allowed, "ok": wall - limit <= allowed,
                             "status": str(sol.status), "gap": sol.gap})
                print(rows[-1], flush=True)
    print()
    print_table(rows, ["size", "G", "solver", "limit_s", "wall_s", "over_s", "ok", "status", "gap"])
    bad = [r for r in rows if not r["ok"]]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} runs within max(1 s, 20%) of their limit; worst overrun "
          f"{max(r['over_s'] for r in rows):.2f} s")
    write_json("limits", {"rows": rows})


if __name__ == "__main__":
    main()
