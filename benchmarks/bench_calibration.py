"""Data-aware scores: does weighting each input channel by its activation RMS on calibration
data (Wanda-style) keep more accuracy than weights alone, at the same G?

    python benchmarks/bench_calibration.py [--seeds 0,1,2] [--groups 4,8] [--calibration 256]

The digits CNN is trained per seed on scikit-learn's digits (1,347 training images); the
calibration set is the first ``--calibration`` training images (no labels used); accuracy is
measured on the 450 held-out test images, which neither training nor calibration saw, right
after pruning and after BatchNorm re-estimation on the calibration set (no fine-tuning).
Same G and solver for every variant: only the scores differ. Writes
benchmarks/results/calibration.json.
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from common import print_table, write_json

import permopt
from permopt.models.digits import accuracy, trained_digits_cnn
from permopt.nn import recalibrate_bn


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--groups", default="4,8")
    ap.add_argument("--criteria", default="l2,l1")
    ap.add_argument("--calibration", type=int, default=256, help="calibration images (from the training split)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)  # the same numbers on any core count
    rows = []
    for seed in map(int, args.seeds.split(",")):
        model, (xtr, _, xte, yte) = trained_digits_cnn(seed=seed)
        calib = xtr[:args.calibration]
        for G in map(int, args.groups.split(",")):
            for criterion in args.criteria.split(","):
                for data_aware in (False, True):
                    r = permopt.prune(model, xtr[:8], groups=G, criterion=criterion, progress=False,
                                      calibration=calib if data_aware else None)
                    kept = float(np.mean([lp.kept_ratio for lp in r.plan.pruned().values()]))
                    rows.append({"seed": seed, "G": G, "criterion": criterion, "data_aware": data_aware,
                                 "accuracy_pruned": accuracy(r.model, xte, yte),
                                 "accuracy_bn": accuracy(recalibrate_bn(r.model, calib), xte, yte),
                                 "mean_kept_ratio": kept})
    print_table(rows, ["seed", "G", "criterion", "data_aware", "accuracy_pruned", "accuracy_bn", "mean_kept_ratio"])
    summary = []
    for G in sorted({r["G"] for r in rows}):
        for criterion in args.criteria.split(","):
            for aware in (False, True):
                acc = [r["accuracy_bn"] for r in rows if r["G"] == G and r["criterion"] == criterion
                       and r["data_aware"] == aware]
                summary.append({"G": G, "criterion": criterion, "data_aware": aware, "mean_bn": float(np.mean(acc)),
                                "min_bn": float(np.min(acc)), "max_bn": float(np.max(acc)), "seeds": len(acc)})
    print_table(summary, ["G", "criterion", "data_aware", "mean_bn", "min_bn", "max_bn", "seeds"])
    write_json("calibration", {"rows": rows, "summary": summary, "calibration_images": args.calibration})
    return rows


if __name__ == "__main__":
    main()
