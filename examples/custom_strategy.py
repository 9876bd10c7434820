"""Plug your own configuration-search strategy (and cost model) into permopt.

    python examples/custom_strategy.py [--budget 0.5] [--model resnet20]

A strategy is a function (or a ``permopt.search.Strategy`` subclass) registered by name;
it receives a ``ConfigProblem`` with cost arrays and returns one candidate index per
layer. Here: "uniform_largest_fit", the largest uniform G that fits the budget, compared
with the paper's greedy and the exact knapsack on the same cost model.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

import permopt  # noqa: E402


from permopt import models  # noqa: E402
from permopt.search import SolverCostModel, register_strategy, search  # noqa: E402


@register_strategy("uniform_largest_fit", overwrite=True)
def uniform_largest_fit(problem, *, time_limit=None, seed=None):
    """The smallest uniform G (largest kept mass) that fits the budget; a layer keeps its largest candidate ≤ G."""
    problem.evaluate_all()
    for G in sorted({g for L in problem.space.layers for g in L.candidates}):
        choice = [max(j for j, g in enumerate(L.candidates) if g <= G) for L in problem.space.layers]
        _, use = problem.totals(choice)  # objective, [params, MACs, latency]
        if problem.feasible(use):
            return choice
    return problem.cheapest()


class ParamsWeightedCost:
    """A user cost model (satisfies permopt.search.CostModel): pruned mass weighted by layer size."""

    def __init__(self, base: SolverCostModel):
        self.base = base

    def evaluate(self, layer, groups):
        c = self.base.evaluate(layer, groups)
        return dataclasses.replace(c, pruned=c.pruned * np.log2(layer.weight_params))  # big layers count more


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--budget", type=float, default=0.5)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model = models.get(args.model).eval()
    space = permopt.nn.search_space(model, torch.randn(2, *models.input_shape(args.model)))
    base = SolverCostModel("grps")
    out = {}
    for cost_name, cost in (("default", base), ("params-weighted", ParamsWeightedCost(base))):
        for strategy in ("uniform_largest_fit", "paper", "exact"):
            r = search(space, {"params": args.budget}, strategy, cost_model=cost)
            out[cost_name, strategy] = r
            print(f"{cost_name:>16} {strategy:>20}: objective {r.objective:8.4f}, params {r.params / space.dense_params:.3f} "
                  f"of dense, {r.status}")
    return out


if __name__ == "__main__":
    main()
