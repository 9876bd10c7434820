"""Kept ratio and time of the heuristics on random and trained layers.

    python benchmarks/bench_heuristics.py                 # full table (several minutes)
    python benchmarks/bench_heuristics.py --quick         # small sizes only
    python benchmarks/bench_heuristics.py --solvers same,sort,grps --dists normal   # the paper's table

Times are medians of --repeats runs. Writes benchmarks/results/heuristics[_DISTS].json.
"""
from __future__ import annotations

import argparse

import numpy as np


import permopt  # noqa: E402
from common import print_table, write_json  # noqa: E402
from permopt.bench import parse_sizes, random_scores, solver_table  # noqa: E402

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--solvers", default="same,sort,grps,alternating,soft,local,anneal,best")
    ap.add_argument("--dists", default=DEFAULT_DISTS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=1, help="random matrices per size and distribution")
    ap.add_argument("--quick", action="store_true", help="only the 64x64 and 256x256 sizes")
    args = ap.parse_args(argv)
    solvers = args.solvers.split(",")
    sizes = parse_sizes(SIZES)[:2] if args.quick else parse_sizes(SIZES)
    cases = []
    for dist in args.dists.split(","):
        if dist == "trained":
            cases += trained_layers()
            continue
        cases += [(dist, random_scores(dist, (F, C), seed), G) for F, C, G in sizes for seed in range(args.seeds)]
    permopt.solve(np.ones((512, 512)), 16, "best")  # warm up lazy imports
    rows = solver_table(cases, solvers, args.repeats, echo=lambda line: print(line, flush=True))
    cols = ["case", "size", "G"] + [c for s in solvers for c in (s, f"{s}_s")]
    print()
    print_table(rows, cols)
    if "grps" in solvers:
        print()
        for s in solvers:
            if s == "grps":
                continue
            rel = np.array([r[s] / r["grps"] - 1 for r in rows])
            tr = np.array([r[f"{s}_s"] / r["grps_s"] for r in rows])
            print(f"{s}: kept vs grps mean {rel.mean():+.2%}, min {rel.min():+.2%}; time vs grps median {np.median(tr):.2f}x")
    write_json("heuristics" + ("" if args.dists == DEFAULT_DISTS else "_" + args.dists.replace(",", "_")),
               {"solvers": solvers, "dists": args.dists, "rows": rows})


if __name__ == "__main__":
    main()
