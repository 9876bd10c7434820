"""permopt against the peer a user would pick instead: Torch-Pruning's L2 channel pruning at
the same MACs, side by side in one run, with the same fine-tuning budget.

    python benchmarks/bench_peer_digits.py [--seeds 0,1,2] [--groups 4] [--finetune 2] [--calibration 256]

Per seed, a digits CNN is trained on scikit-learn's digits (1,347 training images). Then:
permopt at uniform ``G`` (weights only; and with calibration: data-aware scores plus
layer-wise reconstruction); Torch-Pruning's ``MagnitudePruner`` (L2) with the channel ratio
bisected to the same MACs (permopt's count). Every variant gets BatchNorm re-estimated on
the calibration images (the first ``--calibration`` training images, no labels), then
``--finetune`` epochs of Adam on the training split. Accuracy is on the 450 held-out test
images no step saw. Latency: 1 torch thread, batch 8, interleaved medians of dense, permopt's
export (coupling none and full) and the Torch-Pruning model. Needs ``pip install torch-pruning``.
Writes benchmarks/results/peer_digits.json.
"""
from __future__ import annotations

import argparse
import copy
import warnings

import torch
from common import print_table, summarise, write_json

import permopt
from permopt.models.digits import accuracy, train, trained_digits_cnn
from permopt.nn import count, recalibrate_bn
from permopt.nn.latency import interleaved_medians


def torch_pruning_at(model: torch.nn.Module, x: torch.Tensor, macs_ratio: float) -> torch.nn.Module:
    """A copy of ``model`` channel-pruned by Torch-Pruning (L2) to ``macs_ratio`` of its MACs."""
    import torch_pruning as tp

    dense = count(model, x).macs
    lo, hi = 0.0, 0.95
    for _ in range(14):  # bisect the channel ratio on permopt's own MACs count
        mid = (lo + hi) / 2
        m = copy.deepcopy(model).eval()
        tp.pruner.MagnitudePruner(m, x, importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=mid,
                                  ignored_layers=[m.classifier]).step()
        lo, hi = (mid, hi) if count(m, x).macs > macs_ratio * dense else (lo, mid)
    m = copy.deepcopy(model).eval()
    tp.pruner.MagnitudePruner(m, x, importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=hi,
                              ignored_layers=[m.classifier]).step()
    return m


def finish(model: torch.nn.Module, calib: torch.Tensor, xtr, ytr, xte, yte, epochs: int) -> dict:
    """Accuracy after BatchNorm re-estimation and after the fine-tuning budget (in place)."""
    out = {"accuracy_bn": accuracy(recalibrate_bn(model, calib), xte, yte)}
    train(model, xtr, ytr, epochs=epochs, lr=1e-3)
    out["accuracy_finetuned"] = accuracy(model, xte, yte)
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--finetune", type=int, default=2, help="fine-tuning epochs, the same for every variant")
    ap.add_argument("--calibration", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=31)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    rows = []
    for seed in map(int, args.seeds.split(",")):
        model, (xtr, ytr, xte, yte) = trained_digits_cnn(seed=seed)
        calib, x = xtr[:args.calibration], xtr[:8]
        dense = count(model, x)
        variants = {}
        for name, opts in (("permopt G=%d" % args.groups, {}),
                           ("permopt G=%d reconstructed" % args.groups, {"calibration": calib, "reconstruct": True}),
                           ("permopt G=%d full coupling" % args.groups, {"coupling": "full"})):
            masked = permopt.prune(model, x, groups=args.groups, mode="mask", progress=False, **opts)
            variants[name] = (masked.model, masked.plan)
        ratio = permopt.prune(model, x, groups=args.groups, progress=False).report.macs_after / dense.macs
        variants["torch-pruning L2"] = (torch_pruning_at(model, x, ratio), None)
        timed = {"dense": model}
        for name, (m, plan) in variants.items():
            result = finish(m, calib, xtr, ytr, xte, yte, args.finetune)
            final = permopt.apply_plan(m, plan, x) if plan is not None else m  # the fine-tuned export
            timed[name] = final.eval()
            rows.append({"seed": seed, "model": name, "macs_ratio": count(final, x).macs / dense.macs,
                         "dense_accuracy": accuracy(model, xte, yte), **result})
        batch = torch.randn(8, 1, 8, 8)
        t = interleaved_medians({k: (lambda m=m: m(batch)) for k, m in timed.items()}, args.rounds, threads=1)
        for r in rows[-len(variants):]:
            r["latency_ratio"] = t[r["model"]] / t["dense"]
    print_table(rows, ["seed", "model", "macs_ratio", "dense_accuracy", "accuracy_bn", "accuracy_finetuned",
                       "latency_ratio"])
    summary = summarise(rows, ["model"], ["macs_ratio", "accuracy_bn", "accuracy_finetuned", "latency_ratio"])
    print_table(summary, ["model", "seeds", "macs_ratio", "accuracy_bn", "accuracy_finetuned", "latency_ratio"])
    write_json("peer_digits", {"rows": rows, "summary": summary, "finetune_epochs": args.finetune})
    return rows


if __name__ == "__main__":
    main()
