"""Accuracy at a measured latency on CIFAR-10: permopt against Torch-Pruning, side by side.

    python benchmarks/bench_cifar.py --model resnet20                      # the whole benchmark
    python benchmarks/bench_cifar.py --model resnet20 --seeds 0 --steps 0  # one-shot only (minutes)

The trained model comes from the zoo (``models.get(name, weights="cifar10")``, or the training
checkpoint of ``benchmarks/train_cifar.py`` before it is published); the 10,000 test images are
only measured. Calibration: ``--calibration`` unlabelled training images (a seeded choice).

Rows: the dense model; permopt (calibrated: data-aware scores and reconstruction) at uniform G=2,
4, 8, the budget search at uniform G=4's MACs with each ``cost``, channel pruning (``width=0.5``;
``width=0.75`` then G=2), and latency budgets ``--latency-budgets`` (fractions of dense, measured
in torch eager at ``--latency-batch``) met by groups and by channels (``structure="channels"``);
Torch-Pruning (``GroupMagnitudeImportance`` L2, ``GroupTaylorImportance``,
``GroupHessianImportance``; gradients from the dense model's own predictions on the calibration
images, so no labels) at G=4's MACs, uniform and ``global_pruning`` (+ ``isomorphic``), and L2 at
each permopt latency budget's *measured* latency (channel ratio bisected until it runs as fast).
For each: params and MACs ratios, latency ratios measured side by side in every runtime of
``--runtimes`` at every batch of ``--batches`` (one thread, one interleaved session per
runtime and batch), accuracy one-shot, and after the same fine-tuning for everyone: ``--steps``
SGD steps (batch 64, lr 0.01 cosine, augmented labelled training images) per seed of ``--seeds``,
mean and min–max. Writes ``benchmarks/results/cifar_<model>.json`` and, with ``--plot``, the
picture of accuracy against measured latency.
"""
from __future__ import annotations

import argparse
import copy
import math
import re
import time

import numpy as np
import torch
import torch.nn.functional as Fn
from common import print_table, summarise, write_json
from peers import torch_pruning_at, torch_pruning_where
from torch import nn

import cifar
import permopt
from train_cifar import CHECKPOINTS, accuracy
from permopt import models
from permopt.nn import count
from permopt.nn.latency import LatencySetup, LatencyTable


def trained(name: str) -> nn.Module:
    """The zoo's trained weights, or the latest training checkpoint where none is published."""
    if f"{name}:cifar10" in models.available_weights():
        return models.get(name, weights="cifar10")
    model = models.get(name, seed=0)
    model.load_state_dict(torch.load(CHECKPOINTS / f"{name}.pt", weights_only=True)["model"])
    print(f"{name}: no published weights, using the training checkpoint")
    return model.eval()


def finetune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, seed: int, lr: float = 0.01,
             batch: int = 64) -> nn.Module:
    """``steps`` SGD steps (momentum 0.9, cosine from ``lr``, weight decay 5e-4) on augmented
    labelled images, the batches and augmentation drawn from ``seed``: the same for every model."""
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = Fn.cross_entropy(model(cifar.augment(x[idx], gen)), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def starting_models(dense: nn.Module, calib: torch.Tensor, args: argparse.Namespace) -> dict[str, tuple]:
    """``{row name: (masked or pruned model, plan or None, seconds to make)}``."""
    x = calib[:1]
    out: dict[str, tuple] = {}

    def _add(name: str, make) -> None:
        t0 = time.perf_counter()
        made = make()
        seconds = round(time.perf_counter() - t0, 1)
        out[name] = (made.model, made.plan, seconds) if isinstance(made, permopt.PruneResult) else (made, None, seconds)
        print(f"  {name}: {seconds} s", flush=True)

    common = dict(calibration=calib, mode="mask", progress=False)
    wanted = re.compile(args.only) if args.only else None

    def add(name: str, make) -> None:
        if name.startswith("permopt G=4") or wanted is None or wanted.search(name):  # G=4 sets the MACs
            _add(name, make)
    for G in (2, 4, 8):
        add(f"permopt G={G}", lambda G=G: permopt.prune(dense, x, groups=G, **common))
    g4 = permopt.apply_plan(dense, out["permopt G=4"][1], x)
    g4_macs = count(g4, x).macs / count(dense, x).macs
    for cost in ("mass", "data"):
        add(f"permopt MACs={g4_macs:.3f}, {cost} cost",
            lambda cost=cost: permopt.prune(dense, x, budget={"macs": g4_macs}, cost=cost, **common))
    for width, G in ((0.5, 1), (0.75, 2)):
        add(f"permopt width={width}" + (f" G={G}" if G > 1 else ""),
            lambda w=width, G=G: permopt.prune(dense, x, width=w, groups=G, **common))
    setup = LatencySetup(batch=args.latency_batch, threads=1, rounds=args.rounds).resolve(dense, x)
    for budget in args.latency_budgets:
        for structure in ("groups", "channels"):
            name = f"permopt {'channels ' if structure == 'channels' else ''}latency={budget}"
            try:
                add(name, lambda b=budget, s=structure: permopt.prune(dense, x, budget={"latency": b}, latency=setup,
                                                                      structure=s, **common))
            except ValueError as e:  # unreachable budgets are a result too
                print(f"  {name}: {e}")
    for imp in ("l2", "taylor", "hessian"):
        add(f"torch-pruning {imp}, MACs={g4_macs:.3f}",
            lambda imp=imp: torch_pruning_at(dense, x, g4_macs, imp, calib))
    for imp in ("l2", "taylor"):
        add(f"torch-pruning {imp} global+isomorphic, MACs={g4_macs:.3f}",
            lambda imp=imp: torch_pruning_at(dense, x, g4_macs, imp, calib, global_pruning=True,
                                             isomorphic=True))
    table = LatencyTable(setup)
    for name in [n for n in out if n.startswith("permopt") and "latency=" in n]:
        exported = permopt.apply_plan(out[name][0], out[name][1], x)
        target = _ratio(table, {"dense": dense, "m": exported}, x)["m"]
        add(f"torch-pruning l2 at {name}'s latency ({target:.3f})",
            lambda t=target: torch_pruning_where(dense, x, lambda m: _ratio(table, {"dense": dense, "m": m}, x)["m"]
                                                 <= t, "l2", steps=8))
    return out


def _ratio(table: LatencyTable, named: dict[str, nn.Module], x: torch.Tensor) -> dict[str, float]:
    t = table.models(named, x)
    return {k: v / t["dense"] for k, v in t.items()}


def latency_ratios(dense: nn.Module, finals: dict[str, nn.Module], x: torch.Tensor,
                   args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """``{row: {"torch b1": ratio, ...}}``: every model against dense, one interleaved session per
    runtime and batch."""
    out: dict[str, dict[str, float]] = {k: {} for k in finals}
    for runtime in args.runtimes:
        for batch in args.batches:
            setup = LatencySetup(batch=batch, threads=1, rounds=args.rounds, runtime=runtime).resolve(dense, x)
            r = _ratio(LatencyTable(setup), {"dense": dense, **finals}, x)
            for k in finals:
                out[k][f"{runtime} b{batch}"] = round(r[k], 3)
            print(f"  timed in {runtime} at batch {batch}", flush=True)
    return out


def finetuned_rows(dense: nn.Module, starts: dict, data: tuple, args: argparse.Namespace) -> tuple[list, dict]:
    """Per start and seed: params/MACs ratios, one-shot accuracy, and accuracy after the same
    fine-tuning (the export of the fine-tuned masked model); and each start's last final model."""
    xtr, ytr, xte, yte = data
    x = xtr[:1]
    base = count(dense, x)
    rows, finals = [], {}
    for name, (start, plan, seconds) in starts.items():
        one_shot = accuracy(start, xte, yte)
        for seed in [int(s) for s in args.seeds.split(",")] if args.steps else [None]:
            model = copy.deepcopy(start)
            if seed is not None:
                finetune(model, xtr, ytr, args.steps, seed)
            final = permopt.apply_plan(model, plan, x) if plan is not None else model  # the (fine-tuned) export
            c = count(final, x)
            rows.append({"model": name, "seed": seed, "params_ratio": c.params / base.params,
                         "macs_ratio": c.macs / base.macs, "one_shot": one_shot, "prune_s": seconds,
                         "finetuned": accuracy(final, xte, yte) if seed is not None else one_shot})
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
        finals[name] = final
    return rows, finals


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20", choices=["resnet20", "resnet56", "mobilenetv2"])
    p.add_argument("--calibration", type=int, default=512, help="unlabelled training images (default 512)")
    p.add_argument("--seeds", default="0,1,2", help="fine-tuning seeds (default 0,1,2)")
    p.add_argument("--steps", type=int, default=300, help="fine-tuning steps for every model (0: one-shot only)")
    p.add_argument("--latency-budgets", default="0.7,0.5,0.35", type=lambda s: [float(v) for v in s.split(",")])
    p.add_argument("--latency-batch", type=int, default=32, help="batch of the latency budgets (default 32)")
    p.add_argument("--runtimes", default="torch,openvino", type=lambda s: s.split(","))
    p.add_argument("--batches", default="1,32", type=lambda s: [int(v) for v in s.split(",")])
    p.add_argument("--rounds", type=int, default=15, help="timing rounds (median)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for pruning and fine-tuning")
    p.add_argument("--only", default=None, help="only the rows whose name matches this regular expression "
                   "(permopt G=4 always: it sets the MACs of the peers' rows)")
    p.add_argument("--out", default=None, help="results name (default cifar_<model>)")
    p.add_argument("--plot", default=None, help="also draw accuracy against measured latency to this image")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    xtr, ytr = cifar.load("train")
    xte, yte = cifar.load("test")
    xtr, xte, ytr, yte = cifar.normalise(xtr), cifar.normalise(xte), torch.from_numpy(ytr), torch.from_numpy(yte)
    calib = xtr[torch.from_numpy(np.random.default_rng(0).permutation(len(xtr))[:args.calibration])]
    dense = trained(args.model)
    x = calib[:1]
    times = {"load_s": time.perf_counter() - t_start}
    dense_acc = accuracy(dense, xte, yte)
    print(f"{args.model}: dense test accuracy {dense_acc:.4f}")
    t0 = time.perf_counter()
    starts = starting_models(dense, calib, args)
    times["prune_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows, finals = finetuned_rows(dense, starts, (xtr, ytr, xte, yte), args)
    times["finetune_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    lat = latency_ratios(dense, finals, x, args)
    times["latency_s"] = time.perf_counter() - t0
    summary = summarise(rows, ["model"], ["params_ratio", "macs_ratio", "one_shot", "finetuned"])
    for row in summary:
        row.update(lat[row["model"]])
    cols = ["model", "seeds", "params_ratio", "macs_ratio", *lat[next(iter(lat))], "one_shot", "finetuned"]
    print(f"{args.model} on CIFAR-10 (10,000 test images): dense {dense_acc:.4f}; {args.calibration} calibration "
          f"images; {args.steps} fine-tuning steps per seed; latency x dense, 1 thread")
    print_table(summary, cols)
    times = {k: round(v, 1) for k, v in times.items()}
    print(f"times: {times} (total {time.perf_counter() - t_start:.0f} s)")
    result = {"model": args.model, "dense_accuracy": dense_acc, "rows": rows, "latency": lat, "summary": summary,
              "times": times, "args": {k: v for k, v in vars(args).items()}}
    write_json(args.out or f"cifar_{args.model}", result)
    if args.plot:
        plot(result, args.plot)
    return result


def plot(result: dict, path: str) -> None:
    """Accuracy (one-shot, hollow; fine-tuned, filled) against measured latency at the largest
    batch in torch, one colour per method family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = max(result["latency"][next(iter(result["latency"]))], key=lambda k: (k.startswith("torch "), k))
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for row in result["summary"]:
        family = "permopt" if row["model"].startswith("permopt") else "Torch-Pruning"
        colour = "tab:blue" if family == "permopt" else "tab:orange"
        lat = row[key]
        one, tuned = (float(row[k].split()[0]) for k in ("one_shot", "finetuned"))
        ax.scatter(lat, one, facecolors="none", edgecolors=colour)
        ax.scatter(lat, tuned, color=colour)
        ax.plot([lat, lat], [one, tuned], color=colour, alpha=0.3)
        ax.annotate(row["model"].replace("torch-pruning", "TP"), (lat, tuned), fontsize=6, alpha=0.8)
    ax.axhline(result["dense_accuracy"], color="grey", ls="--", lw=0.8, label="dense")
    ax.scatter([], [], color="tab:blue", label="permopt (filled: fine-tuned, hollow: one-shot)")
    ax.scatter([], [], color="tab:orange", label="Torch-Pruning")
    ax.set_xlabel(f"measured latency, x dense ({key}, 1 thread)")
    ax.set_ylabel("CIFAR-10 test accuracy")
    ax.set_title(f"{result['model']}: accuracy at a measured latency")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
