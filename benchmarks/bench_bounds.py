"""How tight are the certified bounds? Per layer size and G: the gap each bound certifies for
the best solution found (max of ``best``, ``local``, the rounded SDP solution where the SDP
runs, ``colgen`` where it can price, and ``enumerate`` where it proves), and the time each bound
takes (``sdp_s``: the ``sdp`` solver, relaxation and rounding; ``colgen_s``: branch and price on
the set-partitioning LP, whose bound is the search's certificate — with enumeration pricing, or
with the pricing tree at the root only where the table is too large, within the tree's limits).

    python benchmarks/bench_bounds.py
    python benchmarks/bench_bounds.py --sizes 64x64g8 --sdp-max 256
    python benchmarks/bench_bounds.py --models tv:resnet50,tv:mobilenet_v2 --out bounds_imagenet

With ``--models``: every grouped layer of the models (convs with groups=1 and linears, random
weights, seed 0) and of the trained digits CNN at G = 4 and 8 where G divides both sides, each
with ``permopt.bound(method="best")`` (top-k, spectral, the Lagrangian spectral bound, and colgen
or the SDP where small enough), its time, and the spectral and Lagrangian gaps alone; the best
known solution is the better of ``best`` and ``local`` (``enumerate`` where it proves). Without
it: the size table (``--sizes``) with the SDP and branch and price per size.

gap = (bound - best kept) / bound. Writes benchmarks/results/<out>.json.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from bench_heuristics import trained_layers
from common import print_table, seeded_models, write_json

import permopt
from permopt.bench import parse_sizes, random_scores
from permopt.bounds import spectral_bound, topk_bound
from permopt.nn.kinds import kind_of
from permopt.problem import GroupingProblem
from permopt.solvers.colgen import pricing_method

SIZES = "16x16g4,24x24g4,32x32g4,32x32g8,64x64g4,64x64g8,128x128g4,128x128g8,256x256g4,256x256g8,512x512g16"


def best_known(problem: GroupingProblem) -> tuple[float, bool]:
    """Largest kept mass found, and whether it is proven optimal."""
    sols = [permopt.solve(problem, solver=s, seed=0) for s in ("best", "local")]
    if min(problem.F, problem.C) <= 16:
        sols.append(permopt.solve(problem, solver="enumerate", time_limit=60))
    top = max(sols, key=lambda s: s.kept)
    return top.kept, any(s.status == "optimal" and s.kept >= top.kept * (1 - 1e-9) for s in sols)


def colgen_applies(problem: GroupingProblem) -> bool:
    """Whether ``colgen`` has a pricer for the problem (enumeration or the tree)."""
    try:
        pricing_method(problem)
    except ValueError:
        return False
    return True


def every_layer(names: str, groups: tuple[int, ...] = (4, 8)) -> list:
    """``(label, scores, G)`` for every groupable layer of the models (random weights, seed 0) with
    ``groups=1`` at each G dividing both of its channel counts."""
    cases = []
    for name, model in seeded_models(names):
        for layer, module in model.named_modules():
            if kind_of(module) is None or getattr(module, "groups", 1) != 1:
                continue
            S = permopt.scores_from_weight(module.weight, "l2")
            cases += [(f"{name}:{layer}", S, G) for G in groups if S.shape[0] % G == 0 and S.shape[1] % G == 0]
    return cases


def layer_row(label: str, S: np.ndarray, G: int) -> dict:
    """One layer's certified gaps: ``best`` bound (and which method gave it), spectral and Lagrangian alone."""
    problem = GroupingProblem(S, G)
    kept, proven = best_known(problem)
    t = time.perf_counter()
    b = permopt.bound(problem, method="best")
    seconds = time.perf_counter() - t
    gap = {k: (v - kept) / v for k, v in b.info["all"].items()}
    return {"case": label, "size": f"{S.shape[0]}x{S.shape[1]}", "G": G, "proven": proven,
            "spectral": gap["spectral"], "lagrangian": gap["lagrangian"], "best": (b.value - kept) / b.value,
            "by": b.method, "bound_s": seconds, "evaluations": b.info.get("lagrangian_evaluations", 0)}


def summary(rows: list[dict]) -> None:
    """The median per (model, shape, G) — the table in docs/benchmarks.md — then per model and G,
    and over all: median and largest certified gap (and the spectral bound's alone), the slowest bound."""
    shapes: dict[tuple, list[dict]] = {}
    for r in rows:
        shapes.setdefault((r["case"].rsplit(":", 1)[0], r["size"], r["G"]), []).append(r)
    table = [{"model": m, "size": size, "G": G, "layers": len(mine),
              **{k: f"{np.median([r[k] for r in mine]):.1%}" for k in ("spectral", "lagrangian", "best")},
              "largest": f"{max(r['best'] for r in mine):.1%}", "by": "/".join(sorted({r["by"] for r in mine})),
              "slowest_s": f"{max(r['bound_s'] for r in mine):.1f}"} for (m, size, G), mine in shapes.items()]
    print_table(table, ["model", "size", "G", "layers", "spectral", "lagrangian", "best", "largest", "by", "slowest_s"])
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(f"{r['case'].rsplit(':', 1)[0]} G={r['G']}", []).append(r)
    groups["the --models layers"] = [r for r in rows if not r["case"].startswith("digits:")]
    groups["all"] = rows
    for key, mine in groups.items():
        gaps, spectral = np.array([r["best"] for r in mine]), np.array([r["spectral"] for r in mine])
        worst = max(mine, key=lambda r: r["best"])
        print(f"{key}: {len(mine)} layers, median gap {np.median(gaps):.1%} (spectral alone {np.median(spectral):.1%}), "
              f"largest {gaps.max():.1%} ({worst['case']} {worst['size']} G={worst['G']}; spectral alone there "
              f"{worst['spectral']:.1%}, at most {spectral.max():.1%}), {int((gaps > 0.15).sum())} over 15%, "
              f"slowest bound {max(r['bound_s'] for r in mine):.1f} s")


def row_for(label: str, S: np.ndarray, G: int, sdp_max: int, cut_rounds: int = 0) -> dict:
    problem = GroupingProblem(S, G)
    kept, proven = best_known(problem)
    row = {"case": label, "size": f"{S.shape[0]}x{S.shape[1]}", "G": G, "proven": proven,
           "sdp_rounding_gain": float("nan"), "colgen_pricing": ""}
    priced = None
    if colgen_applies(problem):  # branch and price on the set-partitioning LP
        try:
            priced = permopt.solve(problem, solver="colgen", seed=0)
        except ValueError as e:  # the pricing tree outgrew its work budget
            print(f"colgen: {e}", flush=True)
        if priced is not None:
            kept, row["proven"] = max(kept, priced.kept), proven or priced.status == "optimal"
            row["colgen_pricing"] = priced.info["pricing"]
    relaxed = None
    if S.shape[0] + S.shape[1] <= sdp_max:
        relaxed = permopt.solve(problem, solver="sdp", cut_rounds=cut_rounds)
        row["sdp_rounding_gain"] = relaxed.kept / kept - 1
        kept = max(kept, relaxed.kept)
    for name, fn in (("topk", topk_bound), ("spectral", spectral_bound)):
        t = time.perf_counter()
        value = fn(problem)
        row[name], row[f"{name}_s"] = (value - kept) / value, time.perf_counter() - t
    if relaxed is not None:
        value = relaxed.info["sdp_bound"]
        row["sdp"], row["sdp_s"] = (value - kept) / value, relaxed.time_s
    else:
        row["sdp"], row["sdp_s"] = float("nan"), float("nan")
    row["colgen"], row["colgen_s"] = float("nan"), float("nan")
    if priced is not None:
        row["colgen"], row["colgen_s"] = (priced.upper_bound - kept) / priced.upper_bound, priced.time_s
    row["best"] = min(row[k] for k in ("topk", "spectral", "sdp", "colgen") if np.isfinite(row[k]))
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=None, help=f"size table cases (default {SIZES}; none with --models)")
    ap.add_argument("--sdp-max", type=int, default=256, help="SDP only where rows + columns <= this")
    ap.add_argument("--no-trained", action="store_true", help="skip the trained digits-CNN layers")
    ap.add_argument("--cut-rounds", type=int, default=0, help="rounds of triangle cuts in the SDP (default 0)")
    ap.add_argument("--models", default="", help="comma-separated zoo/tv:/timm: models: every grouped layer (random "
                    "weights) and the trained digits layers at G = 4 and 8, with the best bound and its time")
    ap.add_argument("--max-cases", type=int, default=None, help="only the first this many cases")
    ap.add_argument("--out", default="bounds", help="results/<out>.json (default bounds)")
    args = ap.parse_args(argv)
    if args.models:
        return per_layer(args)
    sizes = parse_sizes(SIZES if args.sizes is None else args.sizes) if args.sizes != "" else []
    cases = [("normal", random_scores("normal", (F, C), 0), G) for F, C, G in sizes]
    if not args.no_trained:
        cases += trained_layers()
    cases = cases[:args.max_cases]
    rows = []
    for label, S, G in cases:
        rows.append(row_for(label, S, G, args.sdp_max, args.cut_rounds))
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    print()
    print_table(rows, ["case", "size", "G", "proven", "topk", "spectral", "sdp", "colgen", "colgen_pricing", "best",
                       "sdp_rounding_gain", "spectral_s", "sdp_s", "colgen_s"])
    for G in sorted({r["G"] for r in rows}):
        small = [r["best"] for r in rows if r["G"] == G and max(map(int, r["size"].split("x"))) <= 256]
        if small:
            print(f"G={G}: median certified gap (layers up to 256 per side) {np.median(small):.2%} over {len(small)}")
    write_json(args.out, {"rows": rows, "cut_rounds": args.cut_rounds})


def per_layer(args: argparse.Namespace) -> None:
    """The ``--models`` run: every grouped layer, one row each, and the summary."""
    cases = every_layer(args.models)
    if not args.no_trained:
        cases += [c for c in trained_layers() if c[2] in (4, 8)]
    rows = []
    for label, S, G in cases[:args.max_cases]:
        rows.append(layer_row(label, S, G))
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    print()
    summary(rows)
    write_json(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
