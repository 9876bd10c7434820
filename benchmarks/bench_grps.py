"""GRPS, the yardstick, on every conv layer of torchvision ResNet-50 (random weights), per G.

    python benchmarks/bench_grps.py
    python benchmarks/bench_grps.py --groups 2,4 --model tv:resnet18

The paper reports GRPS (N_S = 10) on all ResNet-50 layers at 1.5 s for G=2 up to 8.4 s for
G=16 (its machine). Here: the summed time of the GRPS algorithm (``iterations=10``, MBM re-pairing
included) over the layers G divides, and of ``best`` side by side, on one thread; medians of
--repeats. Writes benchmarks/results/grps_<model>.json.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from common import print_table, seeded_models, write_json

import permopt
from permopt.limits import single_threaded_blas
from permopt.problem import GroupingProblem
from permopt.solvers.heuristics import best
from permopt.solvers.paper import grps


def layer_scores(model) -> list[np.ndarray]:
    """L2 scores of every dense conv layer with more than one input channel."""
    import torch

    return [permopt.scores_from_weight(m.weight, "l2") for m in model.modules()
            if isinstance(m, torch.nn.Conv2d) and m.groups == 1 and m.in_channels > 1]


def summed_time(fn, problems, repeats: int) -> float:
    """Median over ``repeats`` of the time ``fn`` takes over all ``problems``."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for p in problems:
            fn(p)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tv:resnet50")
    ap.add_argument("--groups", default="2,4,8,16")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    (_, model), = seeded_models(args.model)
    scores = layer_scores(model)
    rows = []
    with single_threaded_blas():
        for G in map(int, args.groups.split(",")):
            problems = [GroupingProblem(S, G) for S in scores if S.shape[0] % G == 0 and S.shape[1] % G == 0]
            kept = {name: sum(p.kept(*fn(p)) for p in problems) for name, fn in (("grps", grps), ("best", best))}
            rows.append({"G": G, "layers": len(problems), "grps_s": summed_time(grps, problems, args.repeats),
                         "best_s": summed_time(best, problems, args.repeats),
                         "best_kept_vs_grps": kept["best"] / kept["grps"] - 1})
            rows[-1]["best_vs_grps_time"] = rows[-1]["best_s"] / rows[-1]["grps_s"]
            print(rows[-1], flush=True)
    print()
    print_table(rows, ["G", "layers", "grps_s", "best_s", "best_vs_grps_time", "best_kept_vs_grps"])
    write_json(f"grps_{args.model.replace(':', '_')}", {"model": args.model, "rows": rows})


if __name__ == "__main__":
    main()
