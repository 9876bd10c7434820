"""Heuristics against the proven optimum on one small layer.

    python examples/heuristic_vs_exact.py [--size 16] [--groups 4] [--time-limit 30]

Prints a table of kept mass, certified bound (and what certified it: top-k, spectral, the
SDP relaxation or an exact solver), gap, status and time for the paper's heuristics (same,
sort, grps), permopt's heuristics and the exact solvers.
"""
import argparse

import numpy as np

import permopt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--exact", default="enumerate,cpsat,mip", help="comma-separated exact solvers")
    ap.add_argument("--bound", default="best", help="extra certified bound: topk, spectral, sdp or best")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    # a trained-looking layer: conv kernels with a few strong input channels per output channel
    W = rng.standard_normal((args.size, args.size, 3, 3)) * rng.lognormal(0, 0.7, (args.size, args.size, 1, 1))
    problem = permopt.GroupingProblem.from_weight(W, args.groups, "l2", name="demo")
    solvers = ["same", "sort", "grps", "alternating", "local", "anneal", "best"] + args.exact.split(",")
    result = permopt.compare(problem, solvers=[s for s in solvers if s], time_limit=args.time_limit, seed=0,
                             bound=args.bound)
    print(result.table())
    return result


if __name__ == "__main__":
    main()
