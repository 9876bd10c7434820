"""Prune real architectures (torchvision and timm, random weights) with the default settings.

    python benchmarks/bench_models.py                       # every architecture, groups=4 and params=0.5
    python benchmarks/bench_models.py --models tv:resnet50 --size 224 --modes groups

Per architecture and mode: prune time (one call, progress off), grouped layers, channel-index
modules, params and MACs ratios, and the largest relative difference between the exported
and the masked model's outputs. Writes benchmarks/results/models[_SIZE].json.
"""
from __future__ import annotations

import argparse
import time
import warnings

import torch
from common import print_table, write_json

import permopt
from permopt import models

ARCHITECTURES = ("tv:resnet18,tv:resnet50,tv:mobilenet_v2,tv:mobilenet_v3_small,tv:efficientnet_b0,"
                 "tv:regnet_x_400mf,tv:densenet121,tv:shufflenet_v2_x1_0,tv:googlenet,tv:squeezenet1_0,"
                 "tv:convnext_tiny,tv:vgg11_bn,tv:mnasnet0_5,timm:resnet26d,timm:efficientnet_lite0,"
                 "timm:mixnet_s,timm:rexnet_100")


def build(name: str) -> torch.nn.Module:
    kw = {"aux_logits": False, "init_weights": True} if name == "tv:googlenet" else {}
    torch.manual_seed(0)
    return models.get(name, **kw).eval()


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def measure(name: str, mode: str, x: torch.Tensor) -> dict:
    model = build(name)
    kwargs = {"groups": 4} if mode == "groups" else {"budget": {"params": 0.5}}
    row = {"model": name, "mode": mode}
    t = time.perf_counter()
    try:
        res = permopt.prune(model, x, progress=False, **kwargs)
    except ValueError as e:  # an unreachable budget is reported, not a crash
        row.update(error=str(e)[:160], prune_s=time.perf_counter() - t)
        return row
    row["prune_s"] = time.perf_counter() - t
    masked = permopt.apply_plan(model, res.plan, x, mode="mask")
    with torch.no_grad():
        diff = relative_difference(res.model(x), masked(x))
    r = res.report
    row.update(grouped=len(res.plan.pruned()), index_modules=r.index_modules,
               params_ratio=r.params_after / r.params_before, macs_ratio=r.macs_after / r.macs_before,
               exported_vs_masked=diff)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=ARCHITECTURES)
    ap.add_argument("--size", type=int, default=64, help="input height and width (batch 1)")
    ap.add_argument("--modes", default="groups,budget", help="groups (uniform G=4) and/or budget (params=0.5)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    x = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    rows = []
    for name in args.models.split(","):
        for mode in args.modes.split(","):
            rows.append(measure(name, mode, x))
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    print()
    print_table(rows, ["model", "mode", "prune_s", "grouped", "index_modules", "params_ratio", "macs_ratio",
                       "exported_vs_masked", "error"])
    write_json(f"models_{args.size}", {"size": args.size, "rows": rows})


if __name__ == "__main__":
    main()
