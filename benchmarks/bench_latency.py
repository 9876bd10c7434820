"""Does the exported model run faster than the dense one? Dense vs exported vs the MACs ideal.

    python benchmarks/bench_latency.py                          # resnet56 and mobilenetv2, G = 2, 4, 8
    python benchmarks/bench_latency.py --models tv:resnet18 --size 224 --groups 4 --batches 1

Per model, G, batch, backend (torch eager with 1 thread and with all threads, torch.compile
and ONNX Runtime with 1 thread) and memory format (contiguous, channels-last): median latency
of the dense model, the exported model under each coupling mode (none, chain, full: how many gathers remain, and the mean kept ratio they
cost), and the uncoupled export with its channel-index modules replaced by identities (wrong
outputs, timing only: what the gathers cost); speed-up = dense / exported; ideal = dense MACs
/ exported MACs. With Torch-Pruning installed (the ``bench`` extra), its L2 channel pruning at
the export's MACs is timed alongside as the peer. Variants are timed interleaved in the same run. Writes
benchmarks/results/latency.json.
"""
from __future__ import annotations

import argparse
import copy
import itertools
import os
import warnings

os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # no compile worker pool timing alongside

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import print_table, seeded_models, write_json  # noqa: E402

import permopt  # noqa: E402
from permopt import models  # noqa: E402
from permopt.nn import count  # noqa: E402
from permopt.nn.latency import LatencySetup, interleaved_medians, without_index_modules  # noqa: E402
from permopt.nn.runtimes import RUNTIMES, TORCH_RUNTIMES, session  # noqa: E402


def runner(model, x, backend, fmt):
    """A no-argument callable running a copy of ``model`` in memory format ``fmt`` on ``x`` with ``backend``."""
    if backend in RUNTIMES and backend not in TORCH_RUNTIMES:
        return session(model, x, backend)
    setup = LatencySetup(memory_format=fmt, cache_dir=None)
    model, x = setup.apply(copy.deepcopy(model)), setup.inputs(x)
    if backend == "compile":
        return session(model, x, "compile")
    return lambda: model(x)


def variants(model, exported, x, backend, fmt, peer=None):
    """Dense, every coupling's export, the uncoupled export without its gathers (timing only),
    and the Torch-Pruning ``peer`` at the same MACs when given."""
    out = {"dense": runner(model, x, backend, fmt)}
    out.update({f"exported_{c}": runner(m, x, backend, fmt) for c, m in exported.items()})
    out["no_index"] = runner(without_index_modules(exported["none"]), x, backend, fmt)
    if peer is not None:
        out["peer"] = runner(peer, x, backend, fmt)
    return out


def peer_at(model, x, macs_ratio):
    """Torch-Pruning's L2 channel pruning at ``macs_ratio`` (None when it is not installed)."""
    try:
        import torch_pruning  # noqa: F401
    except ImportError:
        return None
    from peers import torch_pruning_at

    return torch_pruning_at(model, x, macs_ratio, "l2")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet56,mobilenetv2")
    ap.add_argument("--groups", default="2,4,8")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--backends", default="torch-1,torch-all,compile,onnxruntime,openvino",
                    help="torch-1 / torch-all (eager, 1 or all threads), compile (torch.compile, 1 thread), "
                         "onnxruntime, openvino, executorch (XNNPACK; 1 thread)")
    ap.add_argument("--couplings", default="none,chain,full", help="coupling modes to export (none is always timed)")
    ap.add_argument("--formats", default="contiguous,channels_last",
                    help="memory formats of weights and inputs (ONNX Runtime runs contiguous only)")
    ap.add_argument("--size", type=int, default=None, help="input height and width (default: the zoo model's)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--out", default="latency", help="results file name in benchmarks/results (default latency)")
    ap.add_argument("--no-peer", dest="peer", action="store_false",
                    help="skip Torch-Pruning's L2 channel pruning at the same MACs (timed when installed)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    for name, model in seeded_models(args.models):
        shape = models.input_shape(name) if args.size is None else (3, args.size, args.size)
        for G in map(int, args.groups.split(",")):
            couplings = ["none"] + [c for c in args.couplings.split(",") if c != "none"]
            res = {c: permopt.prune(model, torch.randn(1, *shape), groups=G, solver="best", coupling=c, progress=False)
                   for c in couplings}
            ideal = res["none"].report.macs_before / res["none"].report.macs_after
            peer = peer_at(model, torch.randn(1, *shape), 1 / ideal) if args.peer else None
            peer_ideal = None if peer is None else count(model, torch.randn(1, *shape)).macs / count(
                peer, torch.randn(1, *shape)).macs
            for batch in map(int, args.batches.split(",")):
                x = torch.randn(batch, *shape)
                for backend, fmt in itertools.product(args.backends.split(","), args.formats.split(",")):
                    if backend in RUNTIMES and backend not in TORCH_RUNTIMES and fmt != "contiguous":
                        continue
                    threads = 1 if backend != "torch-all" else torch.get_num_threads()
                    try:
                        t = interleaved_medians(variants(model, {c: r.model for c, r in res.items()}, x, backend, fmt,
                                                         peer), args.rounds, threads=threads)
                    except Exception as e:  # a backend that cannot run this model is reported, not fatal
                        print(f"{name} G={G} {backend}: {type(e).__name__}: {str(e)[:200]}")
                        continue
                    for c, r in res.items():
                        rows.append({"model": name, "G": G, "batch": batch, "backend": backend, "format": fmt,
                                     "coupling": c,
                                     "dense_ms": 1e3 * t["dense"], "exported_ms": 1e3 * t[f"exported_{c}"],
                                     "speedup": t["dense"] / t[f"exported_{c}"],
                                     "speedup_no_index": t["dense"] / t["no_index"] if c == "none" else None,
                                     "ideal": ideal, "index_modules": r.report.index_modules,
                                     "mean_kept_ratio": r.plan.meta.get("coupling", {}).get(
                                         "mean_kept_ratio", float(np.mean([lp.kept_ratio for lp in r.plan.pruned().values()])))})
                        print(rows[-1], flush=True)
                    if peer is not None:
                        rows.append({"model": name, "G": G, "batch": batch, "backend": backend, "format": fmt,
                                     "coupling": "torch-pruning L2", "dense_ms": 1e3 * t["dense"],
                                     "exported_ms": 1e3 * t["peer"], "speedup": t["dense"] / t["peer"],
                                     "speedup_no_index": None, "ideal": peer_ideal, "index_modules": 0,
                                     "mean_kept_ratio": None})
                        print(rows[-1], flush=True)
    print()
    print_table(rows, ["model", "G", "batch", "backend", "format", "coupling", "dense_ms", "exported_ms", "speedup",
                       "speedup_no_index", "ideal", "index_modules", "mean_kept_ratio"])
    write_json(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
