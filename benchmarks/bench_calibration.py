"""Calibration data at the same G: data-aware scores (each input channel weighted by its
activation RMS, Wanda-style) and layer-wise reconstruction (the kept weights refitted to the
dense layers' outputs), against weights alone.

    python benchmarks/bench_calibration.py [--seeds 0,1,2] [--groups 4,8] [--calibration 256]

The digits CNN is trained per seed on scikit-learn's digits (1,347 training images); the
calibration set is the first ``--calibration`` training images (no labels used); accuracy is
measured on the 450 held-out test images, which neither training nor calibration saw, right
after pruning and after BatchNorm re-estimation on the calibration set (no fine-tuning); mean
(min-max) over the seeds.
Same G and solver for every variant: only the scores differ. Writes
benchmarks/results/calibration.json.
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from common import print_table, summarise, write_json

import permopt
from permopt.models.digits import accuracy, trained_digits_cnn
from permopt.nn import recalibrate_bn


#: (data-aware scores, reconstruction) per variant.
VARIANTS = [(False, False), (True, False), (False, True), (True, True)]


def _name(data_aware: bool, refit: bool) -> str:
    return "+".join(["weights"] + ["data-aware"] * data_aware + ["reconstructed"] * refit)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--groups", default="4,8")
    ap.add_argument("--criteria", default="l2")
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
                for data_aware, refit in VARIANTS:
                    r = permopt.prune(model, xtr[:8], groups=G, criterion=criterion, progress=False,
                                      calibration=calib if data_aware or refit else None, data_aware=data_aware,
                                      reconstruct=refit)
                    kept = float(np.mean([lp.kept_ratio for lp in r.plan.pruned().values()]))
                    rows.append({"seed": seed, "G": G, "criterion": criterion, "variant": _name(data_aware, refit),
                                 "accuracy_pruned": accuracy(r.model, xte, yte),
                                 "accuracy_bn": accuracy(recalibrate_bn(r.model, calib), xte, yte),
                                 "mean_kept_ratio": kept})
    print_table(rows, ["seed", "G", "criterion", "variant", "accuracy_pruned", "accuracy_bn", "mean_kept_ratio"])
    summary = summarise(sorted(rows, key=lambda r: r["G"]), ["G", "criterion", "variant"],
                        ["accuracy_pruned", "accuracy_bn"])
    print_table(summary, ["G", "criterion", "variant", "accuracy_pruned", "accuracy_bn", "seeds"])
    write_json("calibration", {"rows": rows, "summary": summary, "calibration_images": args.calibration})
    return rows


if __name__ == "__main__":
    main()
