"""What a layer really computes: the arguments of the convolution or linear call inside its
``forward``, caught with a ``TorchFunctionMode``.

Reading ``module.padding`` is not enough: ``padding_mode="reflect"`` pads before the call,
EfficientNet's ``Conv2dStaticSamePadding`` and timm's ``Conv2dSame`` pad inside their own
``forward``. Catching the call sees the tensor the weights actually multiply, so the patch
rows below are right for all of them.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import nn
from torch.overrides import TorchFunctionMode

_CONVS = {torch.conv1d: 1, torch.conv2d: 2, torch.conv3d: 3}
_LINEAR = Fn.linear


@dataclass
class LayerCall:
    """One call of a layer's weights: the input they multiply (padding not yet applied), the
    call's output, and its geometry (empty tuples for a linear layer)."""

    x: torch.Tensor
    y: torch.Tensor
    stride: tuple[int, ...] = ()
    padding: Any = ()
    dilation: tuple[int, ...] = ()
    kernel: tuple[int, ...] = ()

    @property
    def spatial(self) -> bool:
        return bool(self.kernel)

    def positions(self) -> int:
        """Output positions per sample (rows per sample of a linear layer's input)."""
        if self.spatial:
            return int(np.prod(self.y.shape[2:]))
        return int(np.prod(self.x.shape[1:-1])) if self.x.dim() > 2 else 1

    def rows(self, take: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs (M, C·k), outputs (M, F))``: one row per sample and kept output position
        (``take``: flat position indices, default all); input columns run channel-major, kernel
        offsets inside, as ``weight.reshape(F, -1)``."""
        if not self.spatial:
            x, y = self.x.reshape(self.x.shape[0], -1, self.x.shape[-1]), self.y.reshape(self.y.shape[0], -1,
                                                                                         self.y.shape[-1])
            if take is not None:
                x, y = x[:, take], y[:, take]
            return x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
        out_shape = self.y.shape[2:]
        flat = torch.arange(int(np.prod(out_shape))) if take is None else take
        idx = torch.unravel_index(flat, tuple(out_shape))
        v = _patches(self._padded(), self.kernel, self.stride, self.dilation)  # (N, C, *out, *k), a view
        a = v[(slice(None), slice(None), *idx)]  # type: ignore[index]  # (N, C, P, *k): only the taken positions materialise
        a = a.movedim(2, 1).reshape(a.shape[0] * a.shape[2], -1)
        b = self.y.flatten(2)[:, :, flat].transpose(1, 2).reshape(-1, self.y.shape[1])
        return a, b

    def _padded(self) -> torch.Tensor:
        pad = self.padding
        if isinstance(pad, str):
            if pad == "valid":
                return self.x
            total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel)]  # "same" (stride 1)
            return Fn.pad(self.x, [p for t in reversed(total) for p in (t // 2, t - t // 2)])
        if any(pad):
            return Fn.pad(self.x, [p for q in reversed(pad) for p in (q, q)])
        return self.x


def _patches(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...],
             dilation: tuple[int, ...]) -> torch.Tensor:
    """``(N, C, *out, *kernel)`` view of the patches a convolution multiplies."""
    for i, (k, s, d) in enumerate(zip(kernel, stride, dilation)):
        x = x.unfold(2 + i, d * (k - 1) + 1, s)
        if d > 1:
            x = x[..., ::d]
    return x  # each unfold put its window axis last: (N, C, *out, *kernel)


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * n


class _Catcher(TorchFunctionMode):
    """Records the first convolution / linear call made while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.call: LayerCall | None = None

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.call is None and (func in _CONVS or func is _LINEAR):
            self.call = _layer_call(func, args, kwargs, out)
        return out


def _layer_call(func: Any, args: tuple, kwargs: dict, out: torch.Tensor) -> LayerCall:
    x, w = args[0], args[1]
    if func is _LINEAR:
        return LayerCall(x.detach(), out.detach())
    n = _CONVS[func]
    names = ("bias", "stride", "padding", "dilation", "groups")
    given = dict(zip(names, args[2:]), **kwargs)
    if int(given.get("groups", 1)) != 1:
        raise ValueError("a grouped convolution call was caught where a dense one was expected")
    pad = given.get("padding", 0)
    return LayerCall(x.detach(), out.detach(), _tuple(given.get("stride", 1), n),
                     pad if isinstance(pad, str) else _tuple(pad, n), _tuple(given.get("dilation", 1), n),
                     tuple(w.shape[2:]))


class Caught(Exception):
    """Raised out of a forward by :func:`catching` with ``stop=True`` once every layer was caught."""


@contextmanager
def catching(model: nn.Module, names: list[str], stop: bool = False) -> Iterator[dict[str, LayerCall]]:
    """Within the block, each forward of ``model`` fills the yielded dict with the
    :class:`LayerCall` of every layer in ``names`` (the last call of each). The hooks are
    removed afterwards, also when the forward raises. A layer whose forward made no such call
    is missing from the dict. With ``stop``, the forward is cut short by :class:`Caught` as
    soon as every layer was caught (what runs after them is not needed). Run the model with
    :func:`forward_caught`."""
    calls: dict[str, LayerCall] = {}
    handles = []
    for name in names:
        m = model.get_submodule(name)
        catcher = _Catcher()

        def enter(mod: nn.Module, inputs: tuple, catcher: _Catcher = catcher) -> None:
            catcher.call = None
            catcher.__enter__()

        def leave(mod: nn.Module, inputs: tuple, output: Any, name: str = name, catcher: _Catcher = catcher) -> None:
            catcher.__exit__(None, None, None)
            if catcher.call is not None:
                calls[name] = catcher.call
                if stop and len(calls) == len(names):
                    raise Caught
        handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave, always_call=True)]
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


def forward_caught(model: nn.Module, x: torch.Tensor, calls: dict[str, LayerCall], names: list[str],
                   batch: int) -> None:
    """``model(x)`` under :func:`catching` (``calls`` is its dict, emptied first; with
    ``stop=True`` the forward ends once the layers were caught). A ValueError names calibration
    batch number ``batch`` when the model cannot run it, or the first of ``names`` it did not call."""
    calls.clear()
    try:
        model(x)
    except Caught:
        pass
    except (RuntimeError, TypeError, ValueError) as e:  # say which data, not just where torch failed
        raise ValueError(f"calibration batch {batch} ({tuple(x.shape)}, {x.dtype}) does not run through the model: "
                         f"{type(e).__name__}: {e}") from e
    missing = [n for n in names if n not in calls]
    if missing:
        raise ValueError(f"layer {missing[0]!r} did not run on the calibration data")
