"""Short label-free fine-tuning: distil the dense model into its masked copy.

The student is the masked model from ``prune(..., mode="mask")`` (or ``apply_plan(...,
mode="mask")``): its weights are ``original * mask``, so the gradient of every pruned entry is
zero and, with Adam and no weight decay, only the kept weights (and the other parameters:
biases, BatchNorm affine) move. Export it afterwards (``permopt.apply_plan(student, plan, x)``)
and the grouped model computes what the fine-tuned masked one does.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as Fn
from torch import nn

from ..limits import validate_count, validate_seed
from ..progress import progress_bar
from .calibration import batches


def _cycle(data: torch.Tensor | Iterable[Any], batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Batches forever: a tensor reshuffled each epoch by ``gen``, an iterable read again."""
    while True:
        if isinstance(data, torch.Tensor):
            yield from data[torch.randperm(len(data), generator=gen)].split(batch_size)
        else:
            yield from batches(data, batch_size)


def distill(student: nn.Module, teacher: nn.Module, data: torch.Tensor | Iterable[Any], *, steps: int = 200,
            lr: float = 1e-4, temperature: float = 1.0, batch_size: int = 64, seed: int | None = 0,
            threads: int | None = 1, progress: bool = True) -> list[float]:
    """Fine-tune ``student`` (changed in place) for ``steps`` Adam steps to match ``teacher``'s
    outputs on unlabelled ``data`` (a tensor, reshuffled each epoch from ``seed``, or a
    re-iterable of batches): the loss is ``T² · KL(softmax(t/T) ‖ softmax(s/T))`` over the last
    dimension. Both models run in eval mode, so BatchNorm keeps its running statistics (small
    calibration sets shift them badly) while its affine parameters train. ``threads`` torch
    threads (default 1: floating-point sums then run in one order, so the same inputs and seed
    give the same weights on any machine; None keeps torch's setting). Returns the loss of
    every step."""
    _check_distill(student, teacher, data, lr, temperature, threads)
    validate_count("steps", steps, 1)
    validate_count("batch_size", batch_size, 1)
    validate_seed(seed)
    params = [p for p in student.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the student has no trainable parameters")
    saved_state = {k: v.detach().clone() for k, v in student.state_dict().items()}  # restored if a loss diverges
    gen = torch.Generator().manual_seed(seed or 0)
    opt = torch.optim.Adam(params, lr=lr)
    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    modes = [(m, m.training) for m in (*student.modules(), *teacher.modules())]
    student.eval()
    teacher.eval()
    losses: list[float] = []
    bar = progress_bar(steps, "distilling", "step", progress)
    try:
        stream = _cycle(data, batch_size, gen)
        for _ in range(steps):
            x = next(stream)
            with torch.no_grad():
                target = Fn.log_softmax(_logits(teacher, x, "teacher") / temperature, dim=-1)
            out = Fn.log_softmax(_logits(student, x, "student", target.shape) / temperature, dim=-1)
            loss = Fn.kl_div(out, target, log_target=True, reduction="batchmean") * temperature ** 2
            if not torch.isfinite(loss):
                student.load_state_dict(saved_state)
                raise FloatingPointError(f"distill: the loss of step {len(losses) + 1} is {float(loss.detach())} (lr={lr!r}; "
                                         f"non-finite inputs or outputs?); the student's weights were restored")
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if bar:
                bar.update()
    finally:
        torch.set_num_threads(saved)
        for m, flag in modes:
            m.training = flag
        if bar:
            bar.close()
    return losses


def _check_distill(student: Any, teacher: Any, data: Any, lr: float, temperature: float, threads: int | None) -> None:
    """Refuse what would ruin the student or fail deep inside torch, naming the argument."""
    for name, model in (("student", student), ("teacher", teacher)):
        if not isinstance(model, nn.Module):
            raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    for name, value in (("lr", lr), ("temperature", temperature)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if threads is not None:
        validate_count("threads", threads, 1)
    if isinstance(data, torch.Tensor):
        if data.numel() == 0 or len(data) == 0:
            raise ValueError(f"data is empty (shape {tuple(data.shape)}): distill needs unlabelled inputs")
        if not data.is_floating_point():
            raise ValueError(f"data must be floating point (the models' inputs), got {data.dtype}")
        if not bool(torch.isfinite(data).all()):
            raise ValueError("data holds NaN or Inf values")
    elif iter(data) is data:
        raise ValueError("data is a one-shot iterator (e.g. a generator): pass a tensor, a list of batches or a "
                         "DataLoader, which can be read again")


def _logits(model: nn.Module, x: Any, who: str, shape: Any = None) -> torch.Tensor:
    """``model(x)``, checked to be one tensor (of ``shape`` when given): raw torch errors otherwise."""
    out = model(x)
    if not isinstance(out, torch.Tensor) or (shape is not None and out.shape != shape):
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"
        want = f" of the teacher's shape {tuple(shape)}" if shape is not None else ""
        raise ValueError(f"the {who} returned {got}: distill needs one logits tensor{want}")
    return out
