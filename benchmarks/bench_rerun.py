"""Same seed, same result: one calibrated prune of the shipped CIFAR-10 ResNet-20, run in two
processes, must print the same accuracy and the same plan and weight digests.

    python benchmarks/bench_rerun.py

The prune: ``budget={"macs": 0.5}``, 128 calibration images of ``permopt.datasets.cifar10_sample``,
one torch thread; accuracy on the 2,000 shipped test images. Exits 1 when the two runs differ.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys


def one_run() -> str:
    import torch

    import permopt
    from permopt import datasets, models

    torch.set_num_threads(1)
    model = models.get("resnet20", weights="cifar10")
    calib, (x, y) = datasets.cifar10_sample(calibration=128)
    res = permopt.prune(model, x[:1], budget={"macs": 0.5}, calibration=calib, progress=False)
    with torch.no_grad():
        acc = (res.model(x).argmax(1) == y).float().mean().item()
    weights = b"".join(v.numpy().tobytes() for v in res.model.state_dict().values())
    return (f"accuracy {acc:.4f}, plan {hashlib.sha256(res.plan.to_json().encode()).hexdigest()[:12]}, "
            f"weights {hashlib.sha256(weights).hexdigest()[:12]}")


def main() -> int:
    if sys.argv[1:] == ["--one"]:
        print(one_run())
        return 0
    runs = [subprocess.Popen([sys.executable, __file__, "--one"], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [r.communicate()[0].strip().splitlines()[-1] for r in runs]
    for i, out in enumerate(outs):
        print(f"process {i}: {out}")
    print("identical" if outs[0] == outs[1] else "DIFFERENT")
    return 0 if outs[0] == outs[1] else 1


if __name__ == "__main__":
    sys.exit(main())
