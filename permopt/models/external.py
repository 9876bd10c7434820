"""torchvision and timm architectures by name, with random weights (nothing is downloaded).

    from permopt import models
    net = models.get("tv:resnet50")           # torchvision.models.get_model("resnet50", weights=None)
    net = models.get("timm:resnet26d")        # timm.create_model("resnet26d", pretrained=False)

torchvision's wheel on the package index is built against the CUDA torch; next to the CPU
build of torch its compiled operators (``torchvision::nms`` and friends) fail to load and
``import torchvision`` raises in ``torchvision/_meta_registrations.py``, which registers
fake kernels for those operators. The model definitions are pure Python and need none of
them, so :func:`import_torchvision` retries the import with that one module replaced by an
empty stand-in, and warns. Only the detection operators (``torchvision.ops.nms``,
``roi_align`` …) stay unusable; classification models, and timm on top of them, work.
"""
from __future__ import annotations

import sys
import types
import warnings
from typing import Any

_META = "torchvision._meta_registrations"


def import_torchvision() -> Any:
    """``import torchvision``, working around a compiled-operator mismatch (see the module docstring)."""
    try:
        import torchvision
        return torchvision
    except ImportError as e:
        raise ImportError("torchvision is not installed: pip install 'permopt[models]'") from e
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
        reason = str(e)
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]  # drop the half-imported package before retrying
    sys.modules[_META] = types.ModuleType(_META)
    import torchvision
    warnings.warn(f"torchvision's compiled operators do not load next to this torch build ({reason}); "
                  "using its pure-Python model definitions only (detection ops such as nms are unavailable)",
                  RuntimeWarning, stacklevel=2)
    return torchvision


def import_timm() -> Any:
    """``import timm`` (after :func:`import_torchvision`, which timm imports)."""
    import_torchvision()
    try:
        import timm
    except ImportError as e:
        raise ImportError("timm is not installed: pip install 'permopt[models]'") from e
    return timm


def build(name: str, **kwargs: Any) -> Any:
    """Build ``tv:NAME`` (torchvision) or ``timm:NAME`` with random weights; ``kwargs`` go to the constructor."""
    source, _, arch = name.partition(":")
    if source == "tv":
        tv = import_torchvision()
        try:
            return tv.models.get_model(arch, weights=None, **kwargs)
        except ValueError:
            raise ValueError(f"unknown torchvision model {arch!r}; available: {tv.models.list_models()}") from None
    if source == "timm":
        timm = import_timm()
        if not timm.is_model(arch):
            raise ValueError(f"unknown timm model {arch!r}; see timm.list_models()")
        return timm.create_model(arch, pretrained=False, **kwargs)
    raise ValueError(f"model name {name!r} must start with tv: or timm:")
