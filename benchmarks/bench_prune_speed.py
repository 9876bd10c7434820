"""How long one prune takes: weights only beside calibrated (statistics + reconstruction), in one run.

    python benchmarks/bench_prune_speed.py                      # every case below
    python benchmarks/bench_prune_speed.py --cases resnet20,tv:resnet18 --threads 2

Per case, one warm-up prune, then each variant ``--repeats`` times, interleaved (weights only,
calibrated, weights only, ...): the median wall and CPU time of each, the calibrated/weights-only
ratio, and where the calibrated prune spent its time (the calibration pass, solving, the
reconstruction), read from a profile of one more calibrated run. The cases and their targets
(issue 38): CIFAR ResNet-20 (trained weights, 256 CIFAR-10 training images) and torchvision
ResNet-18 (random weights, 256 photo crops at 224) calibrated within 2x of weights only;
EfficientNet-Lite2 (pretrained, 256 crops at 260) calibrated within 3 minutes; ResNet-56 and
torchvision ResNet-50 weights only within 3 s and 5 s. Every prune is ``groups=4``, progress off.
Writes benchmarks/results/prune_speed.json.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
import warnings

import torch
from common import print_table, write_json

import permopt
from permopt import models

CASES = ("resnet20", "tv:resnet18", "efficientnet_lite2", "resnet56", "tv:resnet50")
CALIBRATED = {"resnet20", "tv:resnet18", "efficientnet_lite2"}
PARTS = {"calibration pass": "calibration_pass", "solving": "_solve_layers", "reconstruction": "reconstruct",
         "export": "export"}


def build(case: str, n: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor | None]:
    """The model, one example input and ``n`` calibration inputs (None for a weights-only case)."""
    from bench_accuracy import CALIBRATION_PHOTOS, crops, efficientnet_lite2

    if case == "resnet20":
        from permopt.datasets import cifar10_sample

        calib, _ = cifar10_sample(calibration=min(n, 256), test=1)
        return models.get("resnet20", weights="cifar10").eval(), calib[:1], calib
    if case == "efficientnet_lite2":
        calib = crops(CALIBRATION_PHOTOS, n, seed=0, size=260)
        return efficientnet_lite2(), calib[:1], calib
    side = 224 if case.startswith("tv:") else 32
    torch.manual_seed(0)
    model = models.get(case).eval()
    x = torch.randn(1, 3, side, side)
    return model, x, crops(CALIBRATION_PHOTOS, n, seed=0, size=side) if case in CALIBRATED else None


def timed(fn) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def parts(fn) -> dict[str, float]:
    """Cumulative seconds of the named stages in a profile of ``fn()``."""
    prof = cProfile.Profile()
    prof.runcall(fn)
    st = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    out = {}
    for label, func in PARTS.items():
        out[label] = round(sum(v[3] for k, v in st.items() if k[2] == func), 2)
    return out


def run_case(case: str, args: argparse.Namespace) -> dict:
    model, x, calib = build(case, args.calibration)
    variants = {"weights only": lambda: permopt.prune(model, x, groups=4, progress=False)}
    if calib is not None:
        variants["calibrated"] = lambda: permopt.prune(model, x, groups=4, calibration=calib, progress=False)
    for fn in variants.values():
        fn()  # warm-up: first-call costs (imports, allocator) count for neither
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for k, fn in variants.items():
            times[k].append(timed(fn))
    row: dict = {"case": case, "threads": args.threads, "calibration": 0 if calib is None else len(calib)}
    for k, ts in times.items():
        row[f"{k} wall_s"] = round(statistics.median(t[0] for t in ts), 2)
        row[f"{k} cpu_s"] = round(statistics.median(t[1] for t in ts), 2)
    if calib is not None:
        row["ratio (wall)"] = round(row["calibrated wall_s"] / row["weights only wall_s"], 2)
        row["parts"] = parts(variants["calibrated"])
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    p.add_argument("--calibration", type=int, default=256, help="calibration inputs (default 256)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each variant (default 3)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--out", default="prune_speed", help="JSON name in benchmarks/results/")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    rows = []
    for case in args.cases.split(","):
        rows.append(run_case(case, args))
        print(rows[-1], flush=True)
    cols = ["case", "calibration", "weights only wall_s", "weights only cpu_s", "calibrated wall_s",
            "calibrated cpu_s", "ratio (wall)"]
    print_table(rows, cols)
    for r in rows:
        if "parts" in r:
            print(f"{r['case']}: " + ", ".join(f"{k} {v} s" for k, v in r["parts"].items()))
    write_json(args.out, {"rows": rows, "threads": args.threads, "repeats": args.repeats,
                          "torch": torch.__version__})


if __name__ == "__main__":
    main()
