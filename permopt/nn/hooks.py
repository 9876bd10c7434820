"""Running a model for what it shows: eval mode without grad, hooks that record each module."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def as_tuple(example_inputs: Any) -> tuple:
    """Example inputs as a tuple of positional arguments."""
    return tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in eval mode without grad, then restore every submodule's own mode
    (``model.train(flag)`` would overwrite submodules the user had set apart)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, flag in modes:
            m.training = flag


@contextmanager
def recording(model: nn.Module, select: Callable[[nn.Module], Any],
              record: Callable[[str, nn.Module, tuple, Any], None]) -> Iterator[None]:
    """Within the block, every call of a module of ``model`` with ``select(module)`` calls
    ``record(name, module, inputs, output)``; the hooks are removed afterwards."""
    handles = []
    for name, m in model.named_modules():
        if select(m):
            def hook(mod, inputs, output, name=name):  # returns None: a returned value would replace the output
                record(name, mod, inputs, output)
            handles.append(m.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def forward_with_hooks(model: nn.Module, example_inputs: Any, select: Callable[[nn.Module], Any],
                       record: Callable[[str, nn.Module, tuple, Any], None]) -> None:
    """One eval-mode, no-grad forward pass calling ``record(name, module, inputs, output)`` for
    every module with ``select(module)``; every module's mode is restored and the hooks removed."""
    with recording(model, select, record), evaluating(model):
        model(*as_tuple(example_inputs))
