"""Cost-model precompute of a real model: serial vs local processes vs a Dask LocalCluster.

    python benchmarks/bench_scale.py                        # torchvision ResNet-50, random weights
    python benchmarks/bench_scale.py --model tv:resnet18 --solver best

Each run evaluates every (layer, G) pair of the search space once; the table gives wall time,
the ratio to serial, and whether the results are identical to the serial run's (they must be:
work is keyed, not ordered by completion). Writes benchmarks/results/scale.json.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from common import print_table, write_json

from permopt import models
import permopt
from permopt.search import SolverCostModel


def fingerprint(cm: SolverCostModel) -> dict:
    return {f"{k[0]}@{k[1]}": (s.kept, s.row_groups.tobytes().hex()[:32]) for k, s in sorted(cm.solutions.items())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tv:resnet50")
    ap.add_argument("--size", type=int, default=64, help="input height and width")
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    model = models.get(args.model).eval()
    space = permopt.nn.search_space(model, torch.randn(1, 3, args.size, args.size))
    pairs = sum(len(L.candidates) - 1 for L in space.layers)
    print(f"{args.model}: {len(space)} layers, {pairs} (layer, G>1) solves with {args.solver!r}")
    rows, prints = [], {}

    def timed(label, **kw):
        cm = SolverCostModel(args.solver, **kw)
        t = time.perf_counter()
        cm.precompute(space)
        rows.append({"run": label, "wall_s": time.perf_counter() - t, "evaluations": cm.evaluations})
        prints[label] = fingerprint(cm)
        print(rows[-1], flush=True)

    timed("serial")
    timed(f"{args.workers} processes", n_jobs=args.workers)
    import distributed

    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        client.run(lambda: __import__("permopt"))  # workers import permopt before the clock starts
        timed(f"Dask LocalCluster ({args.workers} workers)", executor=client.get_executor())
    for r in rows:
        r["ratio_to_serial"] = r["wall_s"] / rows[0]["wall_s"]
        r["identical_to_serial"] = prints[r["run"]] == prints["serial"]
    print()
    print_table(rows, ["run", "wall_s", "ratio_to_serial", "evaluations", "identical_to_serial"])
    write_json("scale", {"model": args.model, "size": args.size, "solver": args.solver, "pairs": pairs,
                         "rows": rows, "cpus": int(np.asarray(torch.get_num_threads()))})


if __name__ == "__main__":
    main()
