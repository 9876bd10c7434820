"""Issue 26's measurements in one run: what each fix changed, on the issue's own reproductions.

    python benchmarks/bench_reliability.py
    python benchmarks/bench_reliability.py --parts mip,colgen --out reliability_mip_colgen

Parts (``--parts``, all by default):

* ``mip``: CBC on the heavy-tailed 8×8 G=2 layer (``exponential ** 8``, seed 50018) against the
  brute-force optimum, seeds 0–19 for each start: how often CBC claims optimal with its bound
  below the optimum, the worst kept mass, the least certified bound permopt reports (never below
  the optimum), and whether seed 0 repeats.
* ``tall``: ``auto`` and ``enumerate`` on tall layers (2×8000 … 100000×4): who solved, status, time.
* ``best_bound``: ``bound(method="best")`` against the spectral and SDP bounds from 64×64 to
  128×128 (gap to the ``best`` heuristic's kept mass, seconds).
* ``colgen``: branch and price on 32×32 G=8 layers of three score distributions, seeds 0–3: nodes,
  CPU seconds, status, certified gap, the root LP gap over ``best`` and the scores' coefficient
  of variation (why flat layers are hard).
* ``sdp_limit``: the ``sdp`` solver and ``bound(method="sdp")`` at 256×256 G=16 under 1 s and 3 s
  limits: wall and CPU seconds, status.

Writes benchmarks/results/reliability.json (or --out). Timing lives here, never in the tests.
"""
from __future__ import annotations

import argparse
import time
import warnings
from itertools import combinations

import numpy as np

from common import print_table, write_json

import permopt
from permopt.bench import cpu_seconds

PARTS = ("mip", "tall", "best_bound", "colgen", "sdp_limit")


def _brute_force_two_groups(S: np.ndarray) -> float:
    """Optimum of an 8×8 G=2 layer by trying every half of the rows and of the columns."""
    F, C = S.shape
    best = 0.0
    for rows in combinations(range(F), F // 2):
        r = np.zeros(F, dtype=bool)
        r[list(rows)] = True
        gain = S[r].sum(axis=0) - S[~r].sum(axis=0)  # a column in group A keeps S[r, c], else S[~r, c]
        best = max(best, float(S[~r].sum() + np.sort(gain)[::-1][:C // 2].sum()))
    return best


def mip_rows(seeds: int = 20) -> list[dict]:
    S = np.random.default_rng(50018).exponential(1.0, (8, 8)) ** 8
    opt = _brute_force_two_groups(S)
    rows = []
    for start in ("same", None):
        sols = [permopt.solve(S, 2, "mip", seed=seed, **({"start": start} if start else {})) for seed in range(seeds)]
        again = permopt.solve(S, 2, "mip", seed=0, **({"start": start} if start else {}))
        false = [s for s in sols if s.info["solver_claims_optimal"] and s.info["solver_bound"] < opt * (1 - 1e-12)]
        rows.append({"start": start or "default", "seeds": seeds, "cbc_claims_optimal": sum(
                         s.info["solver_claims_optimal"] for s in sols),
                     "claims_below_optimum": len(false),
                     "worst_cbc_bound_vs_opt": f"{min(s.info['solver_bound'] for s in sols) / opt - 1:.2e}",
                     "worst_kept_vs_opt": f"{min(s.kept for s in sols) / opt - 1:.2e}",
                     "least_certified_bound_vs_opt": f"{min(s.upper_bound for s in sols) / opt - 1:.2e}",
                     "statuses": ",".join(sorted({str(s.status) for s in sols})),
                     "seed0_repeats": bool(np.array_equal(again.row_groups, sols[0].row_groups))})
    return rows


def tall_rows() -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for F, C, G in ((2, 8000, 2), (8000, 2, 2), (4, 100_000, 2), (100_000, 4, 4), (2, 1_000_000, 2)):
        S = rng.random((F, C))
        for solver, opts in (("auto", {}), ("enumerate", {"node_limit": 100})):
            if solver == "enumerate" and max(F, C) > 10_000:
                continue
            t = time.perf_counter()
            sol = permopt.solve(S, G, solver, **opts)
            rows.append({"shape": f"{F}x{C}", "G": G, "solver": solver, "ran": sol.info.get("delegate", solver),
                         "status": str(sol.status), "kept_ratio": sol.kept_ratio, "s": time.perf_counter() - t})
    return rows


def best_bound_rows() -> list[dict]:
    rows = []
    for F, C, G in ((64, 64, 8), (96, 96, 8), (128, 64, 8), (128, 128, 8)):
        S = np.abs(np.random.default_rng(0).standard_normal((F, C)))
        kept = permopt.solve(S, G, "best").kept
        row = {"size": f"{F}x{C}", "G": G}
        for method in ("spectral", "sdp", "best"):
            b = permopt.bound(S, G, method=method)
            row[method], row[f"{method}_s"] = (b.value - kept) / b.value, b.time_s
        row["best_ran"] = permopt.bound(S, G, method="best").method
        rows.append(row)
    return rows


def colgen_rows() -> list[dict]:
    rows = []
    for dist in ("normal", "lognormal", "uniform"):
        for seed in range(4):
            rng = np.random.default_rng(seed)
            S = {"normal": lambda: np.abs(rng.standard_normal((32, 32))),
                 "lognormal": lambda: rng.lognormal(0, 1, (32, 32)), "uniform": lambda: rng.random((32, 32))}[dist]()
            c = cpu_seconds()
            sol = permopt.solve(S, 8, "colgen", seed=0)
            cpu = cpu_seconds() - c
            root = permopt.bound(S, 8, method="colgen").value
            best = permopt.solve(S, 8, "best").kept
            rows.append({"dist": dist, "seed": seed, "cv": float(S.std() / S.mean()), "status": str(sol.status),
                         "nodes": sol.info.get("nodes"), "cpu_s": cpu, "gap": sol.gap,
                         "root_lp_gap_over_best": (root - best) / root})
    return rows


def sdp_limit_rows() -> list[dict]:
    S = np.abs(np.random.default_rng(0).standard_normal((256, 256)))
    rows = []
    for limit in (1.0, 3.0):
        for what, run in (("sdp solver", lambda: permopt.solve(S, 16, "sdp", time_limit=limit)),
                          ("bound sdp", lambda: permopt.bound(S, 16, method="sdp", time_limit=limit))):
            t, c = time.perf_counter(), cpu_seconds()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SCS: a time-limited solution is inaccurate
                out = run()
            rows.append({"what": what, "limit_s": limit, "wall_s": time.perf_counter() - t,
                         "cpu_s": cpu_seconds() - c, "status": str(getattr(out, "status", out.info.get("sdp_status")))})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    ap.add_argument("--out", default="reliability", help="results/<out>.json")
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        ap.error(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    builders = {"mip": mip_rows, "tall": tall_rows, "best_bound": best_bound_rows, "colgen": colgen_rows,
                "sdp_limit": sdp_limit_rows}
    results = {}
    for part in parts:
        results[part] = builders[part]()
        print(f"\n{part}")
        print_table(results[part], list(results[part][0]))
    write_json(args.out, results)


if __name__ == "__main__":
    main()
