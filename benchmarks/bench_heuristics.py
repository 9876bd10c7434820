"""Kept ratio and time of the heuristics on random and trained layers, against GRPS and KaHIP.

    python benchmarks/bench_heuristics.py                 # full table (a few minutes)
    python benchmarks/bench_heuristics.py --quick         # small sizes only
    python benchmarks/bench_heuristics.py --solvers same,sort,grps --dists normal   # the paper's table
    python benchmarks/bench_heuristics.py --peers kahip:FAST,kahip:STRONG            # graph-partitioning peer

Times are medians of --repeats runs, every solver on every case in the same run, so ratios
are side by side. The summary gives each solver's kept mass relative to GRPS (mean and min
over cases) and its total time over the set as a multiple of GRPS's total. KaHIP
(``pip install kahip``) runs on cases up to --peer-max-entries scores. Writes
benchmarks/results/heuristics[_DISTS].json.
"""
from __future__ import annotations

import argparse

import numpy as np
from common import print_table, write_json

import permopt
from permopt.bench import parse_sizes, random_scores, solver_table, timed
from permopt.problem import GroupingProblem
from peers import KAHIP_MODES, kahip_available, kahip_groups

SIZES = "64x64g4,256x256g8,512x512g16,2048x512g32"
DEFAULT_DISTS = "normal,uniform,lognormal,trained"


def trained_layers():
    """Conv layers of a DigitsCNN trained for a few epochs on load_digits, as (name, scores, G)."""
    import torch

    from permopt.models.digits import trained_digits_cnn

    model, _ = trained_digits_cnn(epochs=5, widths=(64, 128, 128))
    out = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1:
            S = permopt.scores_from_weight(m.weight, "l2")
            for G in (4, 8, 16):
                out.append((f"digits:{name}", S, G))
    return out


def add_peers(rows, cases, peers, max_entries, repeats=1):
    """KaHIP columns (kept ratio and time) on the cases small enough for it; NaN elsewhere."""
    for row, (_, S, G) in zip(rows, cases):
        problem = GroupingProblem(S, G)
        for peer in peers:
            mode = peer.split(":")[1]
            if S.size > max_entries:
                row[peer], row[f"{peer}_s"] = float("nan"), float("nan")
                continue
            (r, c), t = timed(lambda: kahip_groups(problem, mode), repeats)
            row[peer], row[f"{peer}_s"] = problem.kept(r, c) / problem.total, t


def summary(rows, names):
    """Per solver: kept vs GRPS (mean, min) and total time vs GRPS's total (on the cases it ran)."""
    lines = []
    for s in names:
        ok = [r for r in rows if np.isfinite(r[s])]
        rel = np.array([r[s] / r["grps"] - 1 for r in ok])
        ratio = sum(r[f"{s}_s"] for r in ok) / sum(r["grps_s"] for r in ok)
        lines.append({"solver": s, "cases": len(ok), "kept_vs_grps_mean": float(rel.mean()),
                      "kept_vs_grps_min": float(rel.min()), "time_vs_grps_total": float(ratio)})
    return lines


def reproducible(cases, solvers) -> bool:
    """Every solver gives identical labels on a second run of every case."""
    for _, S, G in cases:
        for s in solvers:
            a, b = (permopt.solve(S, G, s, seed=0) for _ in range(2))
            if not (np.array_equal(a.row_groups, b.row_groups) and np.array_equal(a.col_groups, b.col_groups)):
                print(f"NOT REPRODUCIBLE: {s} on {S.shape} G={G}")
                return False
    return True


def build_cases(dists: str = DEFAULT_DISTS, quick: bool = False, seeds: int = 1) -> list:
    """The benchmark set: every size for each random distribution (``seeds`` matrices each), and
    the trained digits layers for ``trained``; ``quick`` keeps the two smallest sizes."""
    sizes = parse_sizes(SIZES)[:2] if quick else parse_sizes(SIZES)
    cases = []
    for dist in dists.split(","):
        if dist == "trained":
            cases += trained_layers()
            continue
        cases += [(dist, random_scores(dist, (F, C), seed), G) for F, C, G in sizes for seed in range(seeds)]
    return cases


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--solvers", default="same,sort,grps,alternating,soft,local,anneal,best")
    ap.add_argument("--dists", default=DEFAULT_DISTS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=1, help="random matrices per size and distribution")
    ap.add_argument("--quick", action="store_true", help="only the 64x64 and 256x256 sizes")
    ap.add_argument("--peers", default="kahip:FAST,kahip:STRONG", help="comma-separated kahip:MODE columns "
                    f"(modes {', '.join(KAHIP_MODES)}); empty for none")
    ap.add_argument("--peer-max-entries", type=int, default=512 * 512,
                    help="run peers only on matrices with at most this many scores")
    ap.add_argument("--peer-repeats", type=int, default=1, help="timed runs of each peer (they are slow)")
    args = ap.parse_args(argv)
    solvers = args.solvers.split(",")
    if "grps" not in solvers:
        solvers.insert(0, "grps")
    peers = [p for p in args.peers.split(",") if p]
    if peers and not kahip_available():
        print("kahip is not installed (pip install kahip): peer columns skipped")
        peers = []
    cases = build_cases(args.dists, args.quick, args.seeds)
    permopt.solve(np.ones((512, 512)), 16, "best")  # warm up lazy imports
    rows = solver_table(cases, solvers, args.repeats, echo=lambda line: print(line, flush=True))
    add_peers(rows, cases, peers, args.peer_max_entries, args.peer_repeats)
    names = solvers + peers
    print()
    print_table(rows, ["case", "size", "G"] + [c for s in names for c in (s, f"{s}_s")])
    lines = summary(rows, [s for s in names if s != "grps"])
    print()
    print_table(lines, ["solver", "cases", "kept_vs_grps_mean", "kept_vs_grps_min", "time_vs_grps_total"])
    same = reproducible(cases, ["best"])
    print(f"\nbest reproducible on every case (second run, same seed): {same}")
    write_json("heuristics" + ("" if args.dists == DEFAULT_DISTS else "_" + args.dists.replace(",", "_")),
               {"solvers": solvers, "peers": peers, "dists": args.dists, "rows": rows, "summary": lines,
                "best_reproducible": same})


if __name__ == "__main__":
    main()
