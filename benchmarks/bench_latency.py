"""Does the exported model run faster than the dense one? Dense vs exported vs the MACs ideal.

    python benchmarks/bench_latency.py                          # resnet56 and mobilenetv2, G = 2, 4, 8
    python benchmarks/bench_latency.py --models tv:resnet18 --size 224 --groups 4 --batches 1

Per model, G, batch and backend (torch eager with 1 thread and with all threads, ONNX Runtime
with 1 thread): median latency of the dense model, the exported model, and the exported model
with its channel-index modules replaced by identities (wrong outputs, timing only: what the
gathers cost); speed-up = dense / exported; ideal = dense MACs / exported MACs. Variants are
timed interleaved in the same run. Writes benchmarks/results/latency.json.
"""
from __future__ import annotations

import argparse
import warnings

import torch
from common import print_table, write_json

import permopt
from permopt import models
from permopt.latency import interleaved_medians, onnx_session, without_index_modules


def variants(model, exported, x, backend):
    fast = without_index_modules(exported)
    if backend == "onnxruntime":
        return {"dense": onnx_session(model, x), "exported": onnx_session(exported, x),
                "no_index": onnx_session(fast, x)}
    return {"dense": lambda: model(x), "exported": lambda: exported(x), "no_index": lambda: fast(x)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet56,mobilenetv2")
    ap.add_argument("--groups", default="2,4,8")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--backends", default="torch-1,torch-all,onnxruntime")
    ap.add_argument("--size", type=int, default=None, help="input height and width (default: the zoo model's)")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = models.get(name).eval()
        shape = models.input_shape(name) if args.size is None else (3, args.size, args.size)
        for G in map(int, args.groups.split(",")):
            res = permopt.prune(model, torch.randn(1, *shape), groups=G, solver="best", progress=False)
            ideal = res.report.macs_before / res.report.macs_after
            for batch in map(int, args.batches.split(",")):
                x = torch.randn(batch, *shape)
                for backend in args.backends.split(","):
                    threads = 1 if backend in ("torch-1", "onnxruntime") else torch.get_num_threads()
                    try:
                        t = interleaved_medians(variants(model, res.model, x, backend), args.rounds, threads=threads)
                    except Exception as e:  # a backend that cannot run this model is reported, not fatal
                        print(f"{name} G={G} {backend}: {type(e).__name__}: {e}")
                        continue
                    rows.append({"model": name, "G": G, "batch": batch, "backend": backend,
                                 "dense_ms": 1e3 * t["dense"], "exported_ms": 1e3 * t["exported"],
                                 "speedup": t["dense"] / t["exported"], "speedup_no_index": t["dense"] / t["no_index"],
                                 "ideal": ideal, "index_modules": res.report.index_modules})
                    print(rows[-1], flush=True)
    print()
    print_table(rows, ["model", "G", "batch", "backend", "dense_ms", "exported_ms", "speedup", "speedup_no_index",
                       "ideal", "index_modules"])
    write_json("latency", {"rows": rows})


if __name__ == "__main__":
    main()
