"""The registry of runtimes models are timed in: torch eager, torch.compile, and the deployment
runtimes (ONNX Runtime, OpenVINO, ExecuTorch). A runtime is one registration — its session
maker, the extra that installs it, the packages it imports — and every choice of a runtime (the
latency setup, the CLI's ``--runtime``) comes from here. Torch-free: a built-in session maker is
named as ``"module:function"`` and imported only when a model is timed, so the CLI's parser and
``import permopt`` stay light.

    from permopt.runtimes import register_runtime

    def my_session(model, x, threads):      # returns a no-argument callable running model(x)
        ...
    register_runtime("myruntime", my_session, packages=("myruntime",))
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: A session maker: ``(model, inputs, threads) -> callable`` running the model once per call.
SessionMaker = Callable[[Any, Any, int], Callable[[], Any]]


@dataclass(frozen=True)
class Runtime:
    """One registered runtime. ``session``: a :data:`SessionMaker` or its ``"module:function"``
    path; ``extra``: the pip extra that installs it (``pip install 'permopt[extra]'``);
    ``packages``: what it imports (checked before any timing); ``runs_torch``: it runs the torch
    model itself, in the setup's memory format (the others convert the model and take contiguous
    inputs); ``package``: whose version keys cached timings."""

    name: str
    session: SessionMaker | str
    extra: str = ""
    packages: tuple[str, ...] = ()
    runs_torch: bool = False
    package: str = ""

    def maker(self) -> SessionMaker:
        """The session maker, imported on first use for a ``"module:function"`` path."""
        if callable(self.session):
            return self.session
        module, _, function = self.session.partition(":")
        return getattr(importlib.import_module(module), function)

    def install_hint(self) -> str:
        """How to install what the runtime needs."""
        if self.extra:
            return f"pip install 'permopt[{self.extra}]'"
        return f"pip install {' '.join(self.packages)}" if self.packages else "nothing to install"


_REGISTRY: dict[str, Runtime] = {}


def register_runtime(name: str, session: SessionMaker | str, *, extra: str = "", packages: tuple[str, ...] = (),
                     runs_torch: bool = False, package: str | None = None, overwrite: bool = False) -> Runtime:
    """Register a runtime under ``name`` (see :class:`Runtime` for the fields); an existing name is
    refused unless ``overwrite``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a runtime name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"runtime {name!r} is registered already; pass overwrite=True to replace it")
    if not (callable(session) or (isinstance(session, str) and ":" in session)):
        raise TypeError(f"runtime {name!r}: session must be callable or a 'module:function' path, got {session!r}")
    entry = Runtime(name, session, extra, tuple(packages), runs_torch,
                    package if package is not None else (packages[0] if packages else name))
    _REGISTRY[name] = entry
    return entry


def get_runtime(name: str) -> Runtime:
    """The runtime registered as ``name``; a ValueError names the registered ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown runtime {name!r}; registered: {available_runtimes()}")
    return _REGISTRY[name]


def available_runtimes() -> list[str]:
    """The registered runtime names, torch eager first."""
    return sorted(_REGISTRY, key=lambda n: (n != "torch", n))


_NN = "permopt.nn.runtimes"
register_runtime("torch", f"{_NN}:eager_session", runs_torch=True, package="torch")
register_runtime("compile", f"{_NN}:compile_session", runs_torch=True, package="torch")
register_runtime("onnxruntime", f"{_NN}:onnx_session", extra="onnx", packages=("onnx", "onnxscript", "onnxruntime"),
                 package="onnxruntime")
register_runtime("openvino", f"{_NN}:openvino_session", extra="openvino", packages=("openvino",))
register_runtime("executorch", f"{_NN}:executorch_session", extra="executorch", packages=("executorch",))
