"""Are time limits honoured, and do results say when they bit? Wall and CPU time (this
process plus child processes such as CBC) of solvers given a time limit, warm start and model
building included, against the allowance max(1 s, 20% of the limit); a run that used its whole
limit must report status ``time_limit`` (or a proven ``optimal``). The limit is a wall-clock
cap: CP-SAT's 8 workers time-slice every core, so its CPU time is the core count times its wall
time by design (the CPU column says so rather than hide it).

    python benchmarks/bench_limits.py
    python benchmarks/bench_limits.py --limits 1,5 --sizes 48x48g4,128x128g8 --solvers mip,cpsat

Writes benchmarks/results/limits.json. (Timing belongs here, never in the tests.)
"""
from __future__ import annotations

import argparse
import time
import warnings

from common import print_table, write_json

import permopt
from permopt.bench import ENDLESS_WORK, cpu_seconds, parse_sizes, random_scores

def timed_run(S, G: int, solver: str, limit: float) -> dict:
    """One limited solve: wall and CPU seconds, status and gap ("refused" where the solver declines the size)."""
    t, c = time.perf_counter(), cpu_seconds()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SCS: a time-limited solution is inaccurate
            sol = permopt.solve(S, G, solver, time_limit=limit, seed=0, **ENDLESS_WORK.get(solver, {}))
        status, gap = str(sol.status), sol.gap
    except ValueError:
        status, gap = "refused", float("nan")
    wall, cpu = time.perf_counter() - t, cpu_seconds() - c
    allowed = max(1.0, 0.2 * limit)
    used_all = wall >= limit
    return {"solver": solver, "limit_s": limit, "wall_s": wall, "cpu_s": cpu, "over_s": wall - limit,
            "cpu_over_s": cpu - limit, "allowed_over_s": allowed, "ok": wall - limit <= allowed,
            "cpu_ok": cpu - limit <= allowed, "status": status, "gap": gap,
            "says_limit": status in ("time_limit", "optimal", "refused") or not used_all}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--solvers", default="enumerate,cpsat,mip,colgen,auto,sdp,best,soft,local,anneal,alternating")
    ap.add_argument("--sizes", default="32x32g4,48x48g4,64x64g8,128x128g8")
    ap.add_argument("--limits", default="1,2,5")
    ap.add_argument("--out", default="limits", help="results/<out>.json")
    args = ap.parse_args(argv)
    permopt.solve(random_scores("normal", (16, 16)), 4, "mip", time_limit=1)  # warm up imports
    rows = []
    for F, C, G in parse_sizes(args.sizes):
        S = random_scores("normal", (F, C), seed=0)
        for limit in map(float, args.limits.split(",")):
            for solver in args.solvers.split(","):
                rows.append({"size": f"{F}x{C}", "G": G, **timed_run(S, G, solver, limit)})
                print(rows[-1], flush=True)
    print()
    print_table(rows, ["size", "G", "solver", "limit_s", "wall_s", "cpu_s", "over_s", "ok", "cpu_ok", "status",
                       "says_limit"])
    ran = [r for r in rows if r["status"] != "refused"]
    bad, silent = [r for r in ran if not r["ok"]], [r for r in ran if not r["says_limit"]]
    cpu_bad = [r for r in ran if not r["cpu_ok"]]
    print(f"\n{len(ran) - len(bad)} of {len(ran)} runs within max(1 s, 20%) of their limit in wall time (worst "
          f"overrun {max(r['over_s'] for r in ran):.2f} s), {len(ran) - len(cpu_bad)} in CPU time (over: "
          f"{sorted({r['solver'] for r in cpu_bad}) or 'none'}, worst {max(r['cpu_over_s'] for r in ran):.2f} s); "
          f"{len(silent)} used their whole limit without saying time_limit; {len(rows) - len(ran)} refused "
          "(size beyond the solver)")
    write_json(args.out, {"rows": rows})

if __name__ == "__main__":
    main()
