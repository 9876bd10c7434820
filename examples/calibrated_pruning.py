"""Prune with calibration data, then distil: no labels anywhere after the dense training.

    python examples/calibrated_pruning.py [--groups 4] [--calibration 256] [--steps 200]

A digits CNN is trained on scikit-learn's digits; the calibration set is the first
``--calibration`` training images, used without their labels. Prints test accuracy (the 450
held-out images) of: the dense model; ``G`` everywhere from the weights alone; the same with
calibration (data-aware scores, layer-wise reconstruction); that model after ``--steps``
steps of distillation from the dense model on the calibration images; and its export (real
grouped convolutions), which computes what the distilled masked model does.
"""
from __future__ import annotations

import argparse

import torch

import permopt
from permopt.models.digits import accuracy, trained_digits_cnn


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--calibration", type=int, default=256, help="unlabelled training images")
    ap.add_argument("--steps", type=int, default=200, help="distillation steps")
    ap.add_argument("--epochs", type=int, default=8, help="dense training epochs")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # the same numbers on any machine
    model, (xtr, _, xte, yte) = trained_digits_cnn(epochs=args.epochs)
    calib, x = xtr[:args.calibration], xtr[:8]
    out = {"dense": accuracy(model, xte, yte)}
    out["weights only"] = accuracy(permopt.prune(model, x, groups=args.groups, progress=False).model, xte, yte)
    res = permopt.prune(model, x, groups=args.groups, calibration=calib, mode="mask", progress=False)
    out["calibrated"] = accuracy(res.model, xte, yte)
    permopt.nn.distill(res.model, model, calib, steps=args.steps, lr=1e-3, progress=False)
    out["calibrated + distilled"] = accuracy(res.model, xte, yte)
    exported = permopt.apply_plan(res.model, res.plan, x)  # the distilled masked model, as grouped convs
    out["exported"] = accuracy(exported, xte, yte)
    for name, acc in out.items():
        print(f"{name:24s} {acc:.4f}")
    return out


if __name__ == "__main__":
    main()
