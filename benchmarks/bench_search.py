"""Configuration search on ResNet-50-shaped and PreResNet-164-shaped layer lists.

    python benchmarks/bench_search.py [--solver grps] [--budgets 0.25,0.5,0.75]

Layer scores are the L2 criterion of randomly initialised weights (Kaiming uniform, as
PyTorch initialises convs). For each budget (fraction of dense parameters) and strategy:
objective (total normalised pruned mass, lower is better), parameters used, status and
time; the gap of each strategy to the proven optimum of ``exact``. Writes
benchmarks/results/search.json.
"""
from __future__ import annotations

import argparse
import time

import torch

import permopt  # noqa: E402


from permopt import models  # noqa: E402
from common import print_table, write_json  # noqa: E402
from permopt.nn.inspect import common_divisors  # noqa: E402
from permopt.search import LayerSpec, SearchSpace, SolverCostModel, search  # noqa: E402

STRATEGIES = "paper,exact,descent,annealing,genetic,random"


def resnet50_space(min_channels: int = 4, max_groups: int = 64) -> SearchSpace:
    """The 52 groupable convs of ResNet-50 (ImageNet 224×224), random weights."""
    torch.manual_seed(0)
    layers, cin, size = [], 64, 56
    for stage, (width, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 0) else 1
            out = size // stride
            specs = [(f"layer{stage + 1}.{b}.conv1", cin, width, 1, size), (f"layer{stage + 1}.{b}.conv2", width, width, 3, out),
                     (f"layer{stage + 1}.{b}.conv3", width, 4 * width, 1, out)]
            if b == 0:
                specs.append((f"layer{stage + 1}.{b}.downsample", cin, 4 * width, 1, out))
            for name, c, f, k, hw in specs:
                w = torch.nn.Conv2d(c, f, k, bias=False).weight.detach()
                S = w.pow(2).sum((2, 3)).sqrt().numpy()
                cands = [g for g in common_divisors(c, f, min_channels) if g <= max_groups]
                layers.append(LayerSpec(name, S, cands, f * c * k * k, f * c * k * k * hw * hw))
            cin, size = 4 * width, out
    fixed_params = 3 * 64 * 49 + 2048 * 1000 + 1000 + 2 * (64 + sum(L.scores.shape[0] for L in layers))  # stem, fc, BN
    return SearchSpace(layers, fixed_params, 3 * 64 * 49 * 112 * 112 + 2048 * 1000, {"name": "resnet50"})


def preresnet164_space() -> SearchSpace:
    torch.manual_seed(0)
    model = models.get("preresnet164")
    return permopt.nn.search_space(model, torch.randn(2, 3, 32, 32))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--solver", default="grps", help="permutation solver of the cost model")
    ap.add_argument("--budgets", default="0.25,0.5,0.75")
    ap.add_argument("--strategies", default=STRATEGIES)
    args = ap.parse_args(argv)
    rows = []
    for space in (resnet50_space(), preresnet164_space()):
        name = space.meta.get("name", "preresnet164")
        cost = SolverCostModel(args.solver)
        t = time.perf_counter()
        cost.precompute(space)
        print(f"{name}: {len(space)} layers, {sum(len(L.candidates) for L in space.layers)} (layer, G) pairs, "
              f"cost model {time.perf_counter() - t:.1f} s", flush=True)
        for b in map(float, args.budgets.split(",")):
            res = {s: search(space, {"params": b}, s, cost_model=cost, seed=0) for s in args.strategies.split(",")}
            ref = res["exact"].objective if "exact" in res and res["exact"].status == "optimal" else None
            for s, r in res.items():
                rows.append({"model": name, "layers": len(space), "budget": b, "strategy": s, "status": r.status,
                             "objective": r.objective, "params_ratio": r.params / space.dense_params,
                             "time_s": r.time_s,
                             "gap_to_exact": (r.objective - ref) / ref if ref else float("nan")})
                print(rows[-1], flush=True)
    print()
    print_table(rows, ["model", "layers", "budget", "strategy", "status", "objective", "params_ratio", "time_s",
                       "gap_to_exact"])
    write_json("search", {"solver": args.solver, "rows": rows})


if __name__ == "__main__":
    main()
