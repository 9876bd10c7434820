"""Latency budgets end to end: the searched model's estimated and measured latency.

    python benchmarks/bench_latency_budget.py                    # resnet56, mobilenetv2; budgets 0.9, 0.8, 0.75, 0.7
    python benchmarks/bench_latency_budget.py --models resnet56 --budgets 0.8 --repeats 3
    python benchmarks/bench_latency_budget.py --models resnet56 --runtime openvino --batch 1 --budgets 0.6,0.5 --repeats 1 --out latency_budget_openvino

For each model and budget (a fraction of the dense model's latency), ``permopt.prune`` with
``budget={"latency": f}`` and ``coupling="full"``: the layer table is measured anew (fresh cache)
each repeat, the search estimates the pruned model's latency from it, and the dense and the
pruned model are then timed side by side (batch 32, 1 thread, channels-last; ``--runtime``: the
table and the timing in that deployment runtime, each layer timed alone there). A budget below
the measured floor (every layer at its fastest G) is reported as unreachable with that floor.
Writes benchmarks/results/latency_budget.json.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

import torch
from common import print_table, seeded_models, write_json

import permopt
from permopt import models


def one_run(model, shape, budget, coupling, batch, cache, runtime="torch", rounds=15):
    """(estimated ratio, measured ratio, seconds, G counts) of one prune, or the error text."""
    t0 = time.perf_counter()
    try:
        r = permopt.prune(model, torch.randn(batch, *shape), budget={"latency": budget}, coupling=coupling,
                          latency={"batch": batch, "cache_dir": cache, "runtime": runtime, "rounds": rounds},
                          progress=False)
    except ValueError as e:
        return str(e)
    groups = sorted(lp.groups for lp in r.plan.layers.values())
    return (r.plan.meta["estimated_latency_ratio"], r.report.latency_ratio,
            time.perf_counter() - t0, {g: groups.count(g) for g in set(groups)}, r.report.index_modules,
            r.plan.meta.get("latency_runs", []))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet56,mobilenetv2")
    ap.add_argument("--budgets", default="0.9,0.8,0.75,0.7")
    ap.add_argument("--coupling", default="full")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3, help="independent runs (fresh measurements) per budget")
    ap.add_argument("--runtime", default="torch", help="torch (eager, default) or a deployment runtime: openvino, "
                    "onnxruntime, executorch, compile")
    ap.add_argument("--rounds", type=int, default=15, help="timing rounds (medians; default 15)")
    ap.add_argument("--out", default="latency_budget", help="results/<out>.json (default latency_budget)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    for name, model in seeded_models(args.models):
        for budget in map(float, args.budgets.split(",")):
            runs = [one_run(model, models.input_shape(name), budget, args.coupling, args.batch, tempfile.mkdtemp(),
                            args.runtime, args.rounds) for _ in range(args.repeats)]
            ok = [r for r in runs if not isinstance(r, str)]
            row = {"model": name, "runtime": args.runtime, "batch": args.batch, "budget": budget, "runs": len(runs),
                   "met_estimate": len(ok)}
            if ok:
                measured = [r[1] for r in ok]
                row.update(estimated=statistics.median(r[0] for r in ok), measured_median=statistics.median(measured),
                           measured_min=min(measured), measured_max=max(measured),
                           within_budget_plus_0_05=sum(m <= budget + 0.05 for m in measured),
                           seconds=statistics.median(r[2] for r in ok), groups=str(ok[0][3]), index_modules=ok[0][4],
                           searches=statistics.median(max(1, len(r[5])) for r in ok), tries=[r[5] for r in ok])
            else:
                row["error"] = runs[0][:160]
            rows.append(row)
            print(row, flush=True)
    print()
    print_table(rows, ["model", "runtime", "batch", "budget", "runs", "met_estimate", "estimated", "measured_median", "measured_min",
                       "measured_max", "within_budget_plus_0_05", "searches", "seconds", "index_modules"])
    write_json(args.out, {"rows": rows, "batch": args.batch, "coupling": args.coupling})


if __name__ == "__main__":
    main()
