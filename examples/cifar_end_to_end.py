"""The main job: prune a trained CIFAR-10 ResNet-20 under a latency budget, one-shot, with
calibration data, and measure it on real test images it never saw.

    python examples/cifar_end_to_end.py [--latency 0.7] [--calibration 128] [--test 2000]

The weights (``models.get("resnet20", weights="cifar10")``) and the images
(``permopt.datasets.cifar10_sample``: 256 unlabelled training images for calibration, 2,000
labelled test images) ship with permopt; nothing downloads. Under a latency budget the prune
removes channels (the default structure there: grouped convs run slowly on CPUs): the widest
uniform share of every channel space whose model, timed in torch at batch ``--batch`` on one
thread side by side with the dense model, runs within ``--latency`` of it; the channels that cost
least after the refit go, and every layer that lost inputs is refitted to the dense layers'
outputs on the calibration images. Prints the accuracy of the dense model, of the masked model
right after pruning (one-shot) and of the exported model (a real thinner model), with the
measured latency and MACs ratios.
No labels are used after the dense training.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

import permopt
from permopt import datasets, models


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy on ``x`` (model in eval mode), 500 images at a time."""
    model.eval()
    return sum(int((model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum()) for i in range(0, len(x), 500)) / len(x)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency", type=float, default=0.7, help="latency budget, fraction of dense (default 0.7)")
    ap.add_argument("--calibration", type=int, default=128, help="unlabelled calibration images, 1-256 (default 128)")
    ap.add_argument("--test", type=int, default=2000, help="test images to measure on, 1-2000 (default 2000)")
    ap.add_argument("--batch", type=int, default=32, help="batch the latency is measured at (default 32)")
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    args = ap.parse_args(argv)
    t0, c0 = time.perf_counter(), time.process_time()
    torch.set_num_threads(1)  # the same numbers on any core count
    model = models.get("resnet20", weights="cifar10")
    calib, (x, y) = datasets.cifar10_sample(calibration=args.calibration, test=args.test)
    out: dict = {"dense": accuracy(model, x, y)}
    res = permopt.prune(model, x[:1], budget={"latency": args.latency}, latency={"batch": args.batch},
                        calibration=calib, mode="mask", progress=False)
    out["one-shot"] = accuracy(res.model, x, y)
    exported = permopt.apply_plan(res.model, res.plan, x[:1])  # the real thinner model; computes what the mask does
    out["exported"] = accuracy(exported, x, y)
    pruned = res.plan.pruned()
    out["latency_ratio"] = res.report.latency_ratio
    out["macs_ratio"] = res.report.macs_ratio
    out["wall_s"], out["cpu_s"] = round(time.perf_counter() - t0, 1), round(time.process_time() - c0, 1)
    print(f"ResNet-20 on {len(x)} CIFAR-10 test images, budget latency={args.latency} of dense "
          f"({len(calib)} unlabelled calibration images, {len(pruned)} layers pruned, "
          f"{res.plan.meta.get('structure', 'groups')}: width {res.plan.meta.get('width', {}).get('width', 1):g})")
    print(f"accuracy: dense {out['dense']:.4f} -> one-shot {out['one-shot']:.4f} (exported {out['exported']:.4f})")
    print(f"measured latency x{out['latency_ratio']:.2f} of dense, MACs x{out['macs_ratio']:.2f}; "
          f"{out['wall_s']} s wall, {out['cpu_s']} s CPU")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
