"""Train the zoo's CIFAR-10 models once, with fixed seeds, resumable epoch by epoch.

    python benchmarks/train_cifar.py --model resnet20 --epochs 40
    python benchmarks/train_cifar.py --model resnet20 --epochs 40 --publish   # weights into the zoo

SGD with Nesterov momentum 0.9, batch 128, weight decay 5e-4, a linear warm-up over the first epoch
then a cosine decay to zero at ``--epochs``; pad-4 crops and flips. Every epoch ends with a
checkpoint in ``benchmarks/checkpoints/<model>.pt`` (weights, momentum, the epoch, the test accuracy
so far), and a run started again picks up after the last finished epoch with the same result it
would have had uninterrupted: the data order and augmentation of epoch ``e`` are drawn from a
generator seeded with ``(seed, e)`` alone. ``--publish`` writes the final weights to
``permopt/models/weights/<model>_cifar10.pt`` with the test accuracy beside them
(``models.get("resnet20", weights="cifar10")`` loads them). The test images are only measured,
never used to choose anything.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cifar  # noqa: E402

from permopt import models  # noqa: E402

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
WEIGHTS = Path(__file__).resolve().parents[1] / "permopt" / "models" / "weights"
BATCH = 128
#: Test accuracy reported by He et al. 2016 (Table 6) on the original CIFAR-10 release.
PUBLISHED = {"resnet20": 0.9125, "resnet56": 0.9303}


def learning_rate(step: int, steps_per_epoch: int, epochs: int, peak: float) -> float:
    """Linear warm-up over the first epoch, then cosine to zero at the last step."""
    if step < steps_per_epoch:
        return peak * (step + 1) / steps_per_epoch
    t = (step - steps_per_epoch) / max(1, (epochs - 1) * steps_per_epoch)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on normalised images ``x``."""
    model.eval()
    hits = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return hits / len(x)


def train_epoch(model, opt, x, y, epoch: int, args) -> float:
    """One epoch over ``x``; returns the mean training loss."""
    model.train()
    gen = torch.Generator().manual_seed(args.seed * 100_003 + epoch)
    order = torch.randperm(len(x), generator=gen)
    steps = len(x) // BATCH  # the last partial batch is dropped: BatchNorm on a few samples is noisy
    total = 0.0
    for s in range(steps):
        idx = order[s * BATCH:(s + 1) * BATCH]
        xb = cifar.augment(x[idx], gen)
        lr = learning_rate(epoch * steps + s, steps, args.epochs, args.lr)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = F.cross_entropy(model(xb), y[idx], label_smoothing=args.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach())
        if args.max_steps and s + 1 >= args.max_steps:
            return total / (s + 1)
    return total / steps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20", choices=["resnet20", "resnet56", "mobilenetv2"])
    p.add_argument("--epochs", type=int, default=40, help="length of the schedule (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate (default 0.1)")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--stop-after", type=int, default=0, help="stop after this many epochs of this run (0: all)")
    p.add_argument("--max-steps", type=int, default=0, help="steps per epoch, for a timing probe (0: all)")
    p.add_argument("--init", type=Path, default=None,
                   help="start from these weights (a warm restart: a second schedule after a finished one)")
    p.add_argument("--publish", action="store_true", help="write the finished weights into the model zoo")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    xtr, ytr = cifar.load("train")
    xte, yte = cifar.load("test")
    xtr, xte = cifar.normalise(xtr), cifar.normalise(xte)
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)

    model = models.get(args.model, seed=args.seed)
    if args.init is not None:
        if not args.init.is_file():
            raise SystemExit(f"--init: {args.init} is not a file")
        model.load_state_dict(torch.load(args.init, weights_only=True))
    decay = [q for n, q in model.named_parameters() if q.ndim > 1]
    no_decay = [q for n, q in model.named_parameters() if q.ndim <= 1]  # BN and biases: no decay
    opt = torch.optim.SGD([{"params": decay, "weight_decay": args.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, momentum=0.9, nesterov=True)
    ckpt_path = CHECKPOINTS / f"{args.model}{'-restart' if args.init else ''}.pt"
    history: list[dict] = []
    start = 0
    if ckpt_path.is_file() and not args.max_steps:
        ckpt = torch.load(ckpt_path, weights_only=True)
        if ckpt["args"]["epochs"] != args.epochs or ckpt["args"]["seed"] != args.seed:
            raise SystemExit(f"{ckpt_path} was trained with epochs={ckpt['args']['epochs']} seed={ckpt['args']['seed']};"
                             f" move it away to start another schedule")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start, history = ckpt["epoch"], ckpt["history"]
        print(f"resuming {args.model} after epoch {start} (test accuracy {history[-1]['test_acc']:.4f})")
    done = 0
    for epoch in range(start, args.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = train_epoch(model, opt, xtr, ytr, epoch, args)
        if args.max_steps:
            wall = time.perf_counter() - t0
            print(f"{args.max_steps} steps: {wall:.1f} s wall, {time.process_time() - c0:.1f} s CPU "
                  f"({wall / args.max_steps * (len(xtr) // BATCH) / 60:.1f} min per epoch)")
            return
        acc = accuracy(model, xte, yte)
        history.append({"epoch": epoch + 1, "loss": round(loss, 4), "test_acc": acc,
                        "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(time.process_time() - c0, 1)})
        print(json.dumps(history[-1]), flush=True)
        CHECKPOINTS.mkdir(exist_ok=True)
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                    "history": history, "args": {**vars(args), "init": str(args.init)}}, tmp)
        tmp.replace(ckpt_path)
        done += 1
        if args.stop_after and done >= args.stop_after:
            break
    if args.publish and history and history[-1]["epoch"] == args.epochs:
        publish(args, model, history)


def publish(args, model: torch.nn.Module, history: list[dict]) -> None:
    """Write the trained weights and their record (schedule, test accuracy) into the zoo."""
    WEIGHTS.mkdir(exist_ok=True)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(state, WEIGHTS / f"{args.model}_cifar10.pt")
    record = {"model": args.model, "dataset": "cifar10", "test_acc": history[-1]["test_acc"],
              "published_acc": PUBLISHED.get(args.model),
              "epochs": args.epochs, "seed": args.seed, "lr": args.lr, "weight_decay": args.weight_decay,
              "label_smoothing": args.label_smoothing, "batch": BATCH,
              "train_wall_s": round(sum(h["wall_s"] for h in history)), "threads": args.threads,
              "torch": torch.__version__}
    if args.init is not None:  # a warm restart: the record names the schedule it started from
        before = args.init.with_suffix(".json")
        record["restarted_from"] = json.loads(before.read_text()) if before.is_file() else str(args.init)
        if isinstance(record["restarted_from"], dict):
            record["train_wall_s"] += record["restarted_from"].get("train_wall_s", 0)
    from permopt.datasets import cifar10_sample

    _, (xs, ys) = cifar10_sample(test=500)  # what tests/test_cifar.py checks the shipped weights against
    record["sample_acc_500"] = accuracy(model, xs, ys)
    (WEIGHTS / f"{args.model}_cifar10.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"published {args.model}: test accuracy {record['test_acc']:.4f}")


if __name__ == "__main__":
    main()
