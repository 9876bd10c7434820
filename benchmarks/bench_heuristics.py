"""Kept ratio and time of the heuristics on random and trained layers.

    python benchmarks/bench_heuristics.py                 # full table (several minutes)
    python benchmarks/bench_heuristics.py --quick         # small sizes only
    python benchmarks/bench_heuristics.py --solvers same,sort,grps --dists normal   # the paper's table

Times are medians of --repeats runs. Writes benchmarks/results/heuristics.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import permopt  # noqa: E402
from common import print_table, timed, write_json  # noqa: E402

SIZES = [(64, 64, 4), (256, 256, 8), (512, 512, 16), (2048, 512, 32)]
DISTS = {
    "normal": lambda rng, s: np.abs(rng.standard_normal(s)),
    "uniform": lambda rng, s: rng.random(s),
    "lognormal": lambda rng, s: rng.lognormal(0.0, 1.5, s),
}


def trained_layers():
    """Conv layers of a DigitsCNN trained for a few epochs on load_digits, as (name, scores, G)."""
    from models.digits import trained_digits_cnn

    model, _ = trained_digits_cnn(epochs=5, widths=(64, 128, 128))
    out = []
    for name, m in model.named_modules():
        if isinstance(m, __import__("torch").nn.Conv2d) and m.in_channels > 1:
            S = permopt.scores_from_weight(m.weight, "l2")
            for G in (4, 8, 16):
                out.append((f"digits:{name}", S, G))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--solvers", default="same,sort,grps,alternating,local,anneal,best")
    ap.add_argument("--dists", default="normal,uniform,lognormal,trained")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=1, help="random matrices per size and distribution")
    ap.add_argument("--quick", action="store_true", help="only the 64x64 and 256x256 sizes")
    args = ap.parse_args(argv)
    solvers = args.solvers.split(",")
    sizes = SIZES[:2] if args.quick else SIZES
    cases = []
    for dist in args.dists.split(","):
        if dist == "trained":
            cases += [(name, S, G) for name, S, G in trained_layers()]
            continue
        for F, C, G in sizes:
            for seed in range(args.seeds):
                cases.append((f"{dist}", DISTS[dist](np.random.default_rng(seed), (F, C)), G))
    rows = []
    permopt.solve(np.ones((512, 512)), 16, "best")  # warm up lazy imports
    for label, S, G in cases:
        problem = permopt.GroupingProblem(S, G)
        row = {"case": label, "size": f"{S.shape[0]}x{S.shape[1]}", "G": G}
        for s in solvers:
            sol, t = timed(lambda: permopt.solvers.run(problem, s, seed=0), args.repeats)
            row[s] = sol.kept_ratio
            row[f"{s}_s"] = t
        if "grps" in solvers:
            row["best/grps"] = row.get("best", np.nan) / row["grps"] if "best" in solvers else np.nan
        rows.append(row)
        print(label, row["size"], G, " ".join(f"{s}={row[s]:.4f}/{row[s + '_s']:.3f}s" for s in solvers), flush=True)
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
    write_json("heuristics", {"solvers": solvers, "rows": rows})


if __name__ == "__main__":
    main()
