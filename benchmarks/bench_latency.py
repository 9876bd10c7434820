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
from permopt.nn.kinds import kind_of  # noqa: E402
from permopt.nn.latency import LatencySetup, LatencyTable  # noqa: E402
from permopt.nn.timing import interleaved_medians, without_index_modules  # noqa: E402
from permopt.nn.runtimes import session  # noqa: E402
from permopt.runtimes import available_runtimes, get_runtime  # noqa: E402


def _converts(backend: str) -> bool:
    """Whether ``backend`` is a registered runtime that converts the model (takes contiguous inputs)."""
    return backend in available_runtimes() and not get_runtime(backend).runs_torch


def runner(model, x, backend, fmt):
    """A no-argument callable running a copy of ``model`` in memory format ``fmt`` on ``x`` with ``backend``."""
    if _converts(backend):
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


def layer_breakdown(name, model, shape, plan, G, batch, backend, rounds):
    """Where the time goes in ``backend``: each of ``plan``'s layers dense and at ``G`` inside the
    dense model (torch hooks, OpenVINO's counters; other runtimes: each layer alone), summed by
    output channels per group. The ``all`` row adds the model estimate (dense model minus its layers'
    dense times plus their grouped ones) and the ceiling: that estimate with every layer at the
    faster of dense and ``G`` (what a per-layer choice of G in {1, G} can reach)."""
    runtime = {"torch-1": "torch"}.get(backend, backend)
    setup = LatencySetup(batch=batch, runtime=runtime, memory_format="contiguous", rounds=rounds, cache_dir=None)
    names = list(plan.pruned())
    times, dense = LatencyTable(setup).layers(model, torch.randn(1, *shape), {n: [1, G] for n in names})
    per_group = {n: kind_of(model.get_submodule(n)).channels(model.get_submodule(n))[1] // G  # (in, out)[1]
                 for n in names}
    rows = []
    for c in sorted(set(per_group.values())) + ["all"]:
        mine = [n for n in names if c == "all" or per_group[n] == c]
        d, g = sum(times[n][1] for n in mine), sum(times[n][G] for n in mine)
        row = {"model": name, "G": G, "batch": batch, "backend": backend, "out_per_group": c, "layers": len(mine),
               "dense_ms": 1e3 * d, "grouped_ms": 1e3 * g, "speedup": d / g if g > 0 else None,
               "model_estimate": None, "ceiling": None}
        if c == "all":
            row["model_estimate"] = dense / (dense - d + g)
            row["ceiling"] = dense / (dense - sum(max(times[n][1] - times[n][G], 0.0) for n in names))
        rows.append(row)
    return rows


def peer_summary(rows):
    """Per model, G, batch and backend: permopt's fastest export (any coupling and format) against
    Torch-Pruning's channel-pruned model at the same MACs, timed in the same run."""
    out = []
    for key in dict.fromkeys((r["model"], r["G"], r["batch"], r["backend"]) for r in rows):
        mine = [r for r in rows if (r["model"], r["G"], r["batch"], r["backend"]) == key]
        peers = [r for r in mine if r["coupling"].startswith("torch-pruning")]
        if not peers:
            continue
        ours = min((r for r in mine if r not in peers), key=lambda r: r["exported_ms"])
        peer = min(peers, key=lambda r: r["exported_ms"])
        ratio = ours["exported_ms"] / peer["exported_ms"]
        out.append({**dict(zip(("model", "G", "batch", "backend"), key)),
                    "permopt": f"{ours['coupling']} {ours['format']}", "permopt_ms": ours["exported_ms"],
                    "peer_ms": peer["exported_ms"], "permopt_over_peer": ratio,
                    "verdict": "within 10%" if ratio <= 1.1 else f"permopt {ratio:.2f}x slower"})
    return out


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
    ap.add_argument("--layers", action="store_true",
                    help="also break each model's time down by layer (dense vs G inside the model, summed by "
                         "output channels per group) in every backend except torch-all and compile")
    ap.add_argument("--no-peer", dest="peer", action="store_false",
                    help="skip Torch-Pruning's L2 channel pruning at the same MACs (timed when installed)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rows, layers = [], []
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
                if args.layers:
                    for backend in args.backends.split(","):
                        if backend not in ("torch-all", "compile"):
                            layers += layer_breakdown(name, model, shape, res["none"].plan, G, batch, backend,
                                                      args.rounds)
                for backend, fmt in itertools.product(args.backends.split(","), args.formats.split(",")):
                    if _converts(backend) and fmt != "contiguous":
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
    peers = peer_summary(rows)
    if peers:
        print("\nAt equal MACs: permopt's fastest export against Torch-Pruning's channel-pruned model")
        print_table(peers, ["model", "G", "batch", "backend", "permopt", "permopt_ms", "peer_ms", "permopt_over_peer",
                            "verdict"])
    if layers:
        print("\nBy layer: dense vs G inside the model, summed by output channels per group")
        print_table(layers, ["model", "G", "batch", "backend", "out_per_group", "layers", "dense_ms", "grouped_ms",
                             "speedup", "model_estimate", "ceiling"])
    write_json(args.out, {"rows": rows, "peer": peers, "layers": layers})


if __name__ == "__main__":
    main()
