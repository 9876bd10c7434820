"""Where ``best``'s time goes, against GRPS's, on the heuristics benchmark set (same run).

``best`` = GRPS, then soft annealing (``BEST_SOFT_STEPS`` Sinkhorn steps and one exact
transportation to round them), then ``BEST_SWEEPS`` alternating sweeps (two transportations
each). Each part is timed alone (median of --repeats) next to the whole, so the table shows
whether ``best`` could fit in GRPS's time: a part that alone takes longer than GRPS over the
set rules that out for any variant built from it. ``cheap`` is the cheapest transport-based
variant that skips GRPS (alternating transportation from ``sort``, 2 sweeps), with its kept
mass over GRPS's (``cheap_vs_grps``) next to ``best``'s (``best_vs_grps``).

    python benchmarks/bench_best_parts.py

Writes benchmarks/results/best_parts.json.
"""
from __future__ import annotations

import argparse

import numpy as np
from bench_heuristics import DEFAULT_DISTS, build_cases
from common import print_table, write_json

import permopt
from permopt.bench import timed
from permopt.problem import GroupingProblem
from permopt.solvers.heuristics import BEST_SOFT_STEPS, BEST_SWEEPS, alternate, soft_groups
from permopt.solvers.paper import grps
from permopt.solvers.run import run

PARTS = ("grps", "soft", "sweeps", "best", "cheap")


def part_times(problem: GroupingProblem, repeats: int) -> dict:
    """Seconds of GRPS and ``best`` as solvers (with their Solution, as in bench_heuristics) and of
    ``best``'s soft-annealing and sweep parts alone (each from the previous part's output)."""
    yardstick, t_grps = timed(lambda: run(problem, "grps"), repeats)
    r0 = grps(problem)[0]
    r1, t_soft = timed(lambda: soft_groups(problem, r0, steps=BEST_SOFT_STEPS), repeats)
    _, t_sweeps = timed(lambda: alternate(problem, r1, None, BEST_SWEEPS), repeats)
    best, t_best = timed(lambda: run(problem, "best"), repeats)
    cheap, t_cheap = timed(lambda: run(problem, "alternating", start="sort", sweep_limit=2), repeats)
    return {"grps": t_grps, "soft": t_soft, "sweeps": t_sweeps, "best": t_best, "cheap": t_cheap,
            "best_vs_grps": best.kept / yardstick.kept - 1, "cheap_vs_grps": cheap.kept / yardstick.kept - 1}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dists", default=DEFAULT_DISTS)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    permopt.solve(np.ones((512, 512)), 16, "best")  # warm up lazy imports
    rows = []
    for label, S, G in build_cases(args.dists):
        out = part_times(GroupingProblem(S, G), args.repeats)
        rows.append({"case": label, "size": f"{S.shape[0]}x{S.shape[1]}", "G": G,
                     **{f"{k}_ms": out[k] * 1e3 for k in PARTS}, "best_vs_grps": out["best_vs_grps"],
                     "cheap_vs_grps": out["cheap_vs_grps"]})
        print(rows[-1], flush=True)
    total = {k: sum(r[f"{k}_ms"] for r in rows) for k in PARTS}
    gains = {k: [r[k] for r in rows] for k in ("best_vs_grps", "cheap_vs_grps")}
    rows.append({"case": "total (kept: mean)", "size": "", "G": "", **{f"{k}_ms": total[k] for k in PARTS},
                 **{k: float(np.mean(v)) for k, v in gains.items()}})
    rows.append({"case": "total / grps (kept: min)", "size": "", "G": "",
                 **{f"{k}_ms": total[k] / total["grps"] for k in PARTS},
                 **{k: float(np.min(v)) for k, v in gains.items()}})
    print()
    print_table(rows, ["case", "size", "G"] + [f"{k}_ms" for k in PARTS] + ["best_vs_grps", "cheap_vs_grps"])
    write_json("best_parts", {"rows": rows, "soft_steps": BEST_SOFT_STEPS, "sweeps": BEST_SWEEPS})


if __name__ == "__main__":
    main()
