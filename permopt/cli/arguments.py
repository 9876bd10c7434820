"""Argument types, output checks and the shared argument groups of the ``permopt`` command line."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..bounds import METHODS
from ..progress import progress_bar
from ..runtimes import available_runtimes


def names(spec: str, what: str) -> list[str]:
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise ValueError(f"{what} needs at least one name")
    return names


def shape(spec: str) -> tuple[int, ...]:
    """argparse type for C,H,W."""
    try:
        shape = tuple(int(v) for v in spec.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r} is not a comma-separated list of sizes like 3,224,224") from None
    if not shape or any(v < 1 for v in shape):
        raise argparse.ArgumentTypeError(f"{spec!r}: every size must be a positive int")
    return shape


def positive_int(spec: str) -> int:
    """argparse type for counts that must be at least 1 (classes, repeats, batch sizes …)."""
    try:
        v = int(spec)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{spec!r} must be at least 1")
    return v


def ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in names(text, what)]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None
    if any(v < 1 for v in values):
        raise ValueError(f"{what} must be positive, got {text!r}")
    return values


#: Image formats ``--plot`` writes (matplotlib's common ones).
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def output_file(path: str | None, what: str) -> Path | None:
    """An output file path whose folder exists and is writable, and which is not a folder itself:
    checked before any work, so a typo does not cost a finished run. A ``--plot`` needs a known
    image suffix and matplotlib."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {path!r} is a directory; give a file name")
    if not p.parent.is_dir():
        raise ValueError(f"{what} {path!r}: folder {str(p.parent)!r} does not exist")
    existed = p.exists()
    try:  # a real open: permission bits say nothing to root or on special file systems
        with open(p, "a"):
            pass
    except OSError as e:
        raise ValueError(f"{what} {path!r} is not writable here ({e.strerror})") from None
    if not existed:
        p.unlink()
    if what == "--plot":
        if p.suffix.lower() not in PLOT_SUFFIXES:
            raise ValueError(f"--plot {path!r}: unknown image type {p.suffix!r}; use one of {', '.join(PLOT_SUFFIXES)}")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError("--plot needs matplotlib: pip install 'permopt[plot]'") from None
    return p


def output_dir(path: str) -> Path:
    """The ``--out-dir`` folder, created (with its parents) and checked writable before any work,
    so that an output file inside it (``--plot out/plan.png``) can be checked too."""
    from ..io import writable_folder

    return writable_folder(path, "--out-dir")


def solver_options(items: list[str]) -> dict[str, Any]:
    """``--solver-option KEY=VALUE`` pairs; a value is read as a Python literal (5000, 0.5, True)
    where it is one, else kept as text."""
    import ast

    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise ValueError(f"--solver-option {item!r} is not KEY=VALUE (e.g. node_limit=5000)")
        try:
            out[key.strip()] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = text.strip()
    return out


def progress(items: list, desc: str, quiet: bool) -> Any:
    """``items``, advancing a progress bar as each is taken, unless ``--quiet``."""
    bar = progress_bar(len(items), desc, "run", not quiet and len(items) > 1)
    for item in items:
        yield item
        if bar:
            bar.update()
    if bar:
        bar.close()


def add_problem_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("matrix", help="score matrix .npy (F, C) or weight tensor .npy/.pt (F, C[, kh, kw])")
    p.add_argument("-g", "--groups", type=int, required=True, help="number of groups G (divides F and C)")
    p.add_argument("--criterion", default=None,
                   help="criterion turning a weight into scores: l2, l1 (default: l2 for 4-D, none for 2-D)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="optional wall-clock cap per solver in seconds (breaks reproducibility when it bites)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--bound", choices=METHODS, default=None,
                   help="a stronger certified bound to compute (lagrangian: the spectral bound with optimised "
                        "multipliers, any width, under a minute at 2048x512; sdp: the semidefinite relaxation; "
                        "colgen: the set-partitioning LP, groups of up to 1e10 subsets, seconds to minutes; best: "
                        "the tightest that applies; every solution already has the top-k and spectral bounds)")
    p.add_argument("--json", dest="json_out", default=None, help="write the result as JSON to this file")


def add_model_args(p: argparse.ArgumentParser) -> None:
    from .. import models

    p.add_argument("--model", default=None,
                   help=f"a zoo model ({', '.join(models.available())}), or tv:NAME (torchvision) / timm:NAME "
                        "with random weights")
    p.add_argument("--model-factory", default=None, help="MODULE:FUNCTION returning the model (use --weights)")
    p.add_argument("--weights", default=None, help="state dict (.pt) to load into the model (loaded safely)")
    p.add_argument("--model-file", default=None,
                   help="a whole model saved with torch.save; unpickling runs code from the file, so it needs "
                        "--trust-model-file")
    p.add_argument("--trust-model-file", action="store_true", help="allow --model-file to be unpickled")
    p.add_argument("--input-shape", type=shape, default=None,
                   help="per-sample input shape C,H,W (default: the zoo model's; 3,224,224 for tv:/timm:)")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="classes of a --model (default: the model's own, 10 for the zoo, 1000 for tv:/timm:)")
    p.add_argument("--min-channels", type=positive_int, default=None,
                   help="at least this many channels per group (default 4; 1 under a latency budget: depthwise)")
    p.add_argument("--max-groups", type=positive_int, default=64,
                   help="largest G considered by a budget search (default 64)")
    p.add_argument("--include-linear", action="store_true", help="also group Linear layers")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the solvers, the search and a --model's random weights (default 0): identical "
                        "commands write identical plans")
    p.add_argument("--layer-time-limit", type=float, default=None,
                   help="optional wall-clock cap per layer solve (breaks reproducibility when it bites)")
    p.add_argument("--jobs", type=positive_int, default=None,
                   help="solve layers on this many local processes (same results)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_structure_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--width", type=float, default=None,
                   help="channel pruning: keep this share of the channels of every channel space that can lose "
                        "them (the same channels leave every layer sharing them); with --groups the kept channels "
                        "are then grouped")
    p.add_argument("--align", type=positive_int, default=8,
                   help="kept channel counts are multiples of this (default 8: a CPU vector of floats)")
    p.add_argument("--structure", default=None, choices=("groups", "channels"),
                   help="what a --budget varies: groups (G per layer) or channels (the widest uniform --width "
                        "whose model meets the budget, counted or measured); default channels under a latency "
                        "budget (grouped convs run slowly on CPUs), else groups")


def add_latency_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--latency-batch", type=positive_int, default=32,
                   help="batch size for latency measurements (default 32)")
    p.add_argument("--latency-threads", type=positive_int, default=1,
                   help="threads when timing, torch's or the runtime's (default 1)")
    p.add_argument("--latency-rounds", type=positive_int, default=15,
                   help="interleaved timing rounds (medians; default 15)")
    p.add_argument("--memory-format", default="auto", choices=("auto", "channels_last", "contiguous"),
                   help="memory format models are timed (and, under a latency budget, delivered) in; auto: the "
                        "faster for the dense model, measured (default)")
    p.add_argument("--latency-cache", default=None, help="folder caching measured layer tables (default: none)")
    p.add_argument("--runtime", default="torch",
                   choices=available_runtimes(),
                   help="where models are timed: torch eager (default), torch.compile, ONNX Runtime, "
                        "OpenVINO or ExecuTorch with XNNPACK; under a latency budget the layer table is measured "
                        "there too (eager and OpenVINO: inside the model; other runtimes: each layer alone) and the pruned "
                        "model is timed there")
