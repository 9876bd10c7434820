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
    call's output (None for a dry call, caught before it ran), and its geometry (empty tuples
    for a linear layer)."""

    x: torch.Tensor
    y: torch.Tensor | None
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
            return int(np.prod(self._out_shape()))
        return int(np.prod(self.x.shape[1:-1])) if self.x.dim() > 2 else 1

    def output_rows(self, take: torch.Tensor | None = None) -> torch.Tensor:
        """``(M, F)``: the call's outputs, one row per sample and kept output position (``take``:
        flat position indices, default all), in the order of :meth:`input_rows`."""
        assert self.y is not None, "a dry call (caught before it ran) has no outputs"
        if not self.spatial:
            y = self.y.reshape(self.y.shape[0], -1, self.y.shape[-1])
            return (y if take is None else y[:, take]).reshape(-1, y.shape[-1])
        flat = torch.arange(self.positions()) if take is None else take
        return self.y.flatten(2)[:, :, flat].transpose(1, 2).reshape(-1, self.y.shape[1])

    def input_rows(self, take: torch.Tensor | None = None) -> torch.Tensor:
        """``(M, C·k)``: the inputs the weights multiply, one row per sample and kept output
        position, columns channel-major with kernel offsets inside (as ``weight.reshape(F, -1)``);
        all a dry call has. Gathered straight from the unpadded input, the zero padding as a mask."""
        channels = torch.arange(self.x.shape[1 if self.spatial else -1])[None]
        return self.grouped_rows(take, None, channels)[0]

    def grouped_rows(self, take: torch.Tensor | None, samples: torch.Tensor | None,
                     channels: torch.Tensor) -> torch.Tensor:
        """``(G, M, C_g·k)``: the input rows of the ``samples`` (default all) at the taken
        positions, the columns of each group's input ``channels`` (``(G, C_g)``) only, groups
        first: one gather and one copy, ready for batched products."""
        G, Cg = channels.shape
        if not self.spatial:
            x = self.x.reshape(self.x.shape[0], -1, self.x.shape[-1])
            x = x if samples is None else x[samples]
            x = (x if take is None else x[:, take])[..., channels.reshape(-1)]  # (S, L, G·C_g)
            return x.reshape(-1, G, Cg).transpose(0, 1).contiguous()
        flat = torch.arange(self.positions()) if take is None else take
        src, valid = self._patch_index(flat)  # (P, k) each
        P, k = src.shape
        x = self.x.flatten(2)
        picked = (slice(None) if samples is None else samples[:, None, None], channels.reshape(-1)[None, :, None],
                  src.reshape(-1)[None, None, :])
        a = x[picked]  # (S, G·C_g, P·k)
        if not bool(valid.all()):
            a = a * valid.reshape(-1).to(a.dtype)
        S = a.shape[0]
        return a.reshape(S, G, Cg, P, k).permute(1, 0, 3, 2, 4).reshape(G, S * P, Cg * k)

    def _pads(self) -> list[tuple[int, int]]:
        """Zero padding before and after each spatial axis."""
        pad = self.padding
        if isinstance(pad, str):
            if pad == "valid":
                return [(0, 0)] * len(self.kernel)
            total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel)]  # "same" (stride 1)
            return [(t // 2, t - t // 2) for t in total]
        return [(int(p), int(p)) for p in pad]

    def _out_shape(self) -> tuple[int, ...]:
        if self.y is not None:
            return tuple(self.y.shape[2:])
        sizes = self.x.shape[2:]
        return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1 for n, (lo, hi), k, s, d in
                     zip(sizes, self._pads(), self.kernel, self.stride, self.dilation))

    def _patch_index(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For output positions ``flat``: the flat input position each kernel offset reads
        (``(P, k)``, kernel axes row-major as in the weight) and whether it lies inside the input
        (outside: zero padding)."""
        sizes = self.x.shape[2:]
        outs = torch.unravel_index(flat, self._out_shape())
        index = torch.zeros(len(flat), 1, dtype=torch.long)
        valid = torch.ones(len(flat), 1, dtype=torch.bool)
        for o, n, (lo, _), k, s, d in zip(outs, sizes, self._pads(), self.kernel, self.stride, self.dilation):
            pos = o[:, None] * s - lo + torch.arange(k)[None, :] * d  # (P, k_d)
            valid = (valid[:, :, None] & (pos >= 0)[:, None, :] & (pos < n)[:, None, :]).flatten(1)
            index = (index[:, :, None] * n + pos.clamp(0, n - 1)[:, None, :]).flatten(1)
        return index, valid


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * n


class Caught(Exception):
    """Raised out of a forward by :func:`catching` with ``stop=True`` once every layer was caught,
    and by a dry catcher before the call it caught."""


class _Catcher(TorchFunctionMode):
    """Records the first convolution / linear call made while it is active; a ``dry`` one raises
    :class:`Caught` instead of making the call."""

    def __init__(self, dry: bool = False) -> None:
        super().__init__()
        self.call: LayerCall | None = None
        self.dry = dry

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        layer = self.call is None and (func in _CONVS or func is _LINEAR)
        if layer and self.dry:
            self.call = _layer_call(func, args, kwargs, None)
            raise Caught
        out = func(*args, **kwargs)
        if layer:
            self.call = _layer_call(func, args, kwargs, out)
        return out


def dry_call(module: nn.Module, args: tuple, kwargs: dict) -> LayerCall:
    """The :class:`LayerCall` of ``module(*args, **kwargs)`` caught before the convolution or
    linear call is made (its output is None): the inputs the weights would multiply, for free."""
    catcher = _Catcher(dry=True)
    try:
        with catcher:
            module(*args, **kwargs)
    except Caught:
        pass
    if catcher.call is None:
        raise ValueError(f"{type(module).__name__} made no convolution or linear call")
    return catcher.call


def _layer_call(func: Any, args: tuple, kwargs: dict, out: torch.Tensor | None) -> LayerCall:
    x, w = args[0], args[1]
    out = None if out is None else out.detach()
    if func is _LINEAR:
        return LayerCall(x.detach(), out)
    n = _CONVS[func]
    names = ("bias", "stride", "padding", "dilation", "groups")
    given = dict(zip(names, args[2:]), **kwargs)
    if int(given.get("groups", 1)) != 1:
        raise ValueError("a grouped convolution call was caught where a dense one was expected")
    pad = given.get("padding", 0)
    return LayerCall(x.detach(), out, _tuple(given.get("stride", 1), n),
                     pad if isinstance(pad, str) else _tuple(pad, n), _tuple(given.get("dilation", 1), n),
                     tuple(w.shape[2:]))


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
