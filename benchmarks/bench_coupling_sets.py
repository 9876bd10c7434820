"""Which channels must be removed together: permopt's own trace against Torch-Pruning's
``DependencyGraph``, model by model.

    python benchmarks/bench_coupling_sets.py
    python benchmarks/bench_coupling_sets.py --models resnet20,tv:resnet18

For each model: the coupled channel sets each finds that can lose channels (permopt: channel
spaces with no fixed end, :func:`permopt.pruning.width.removable_spaces`; Torch-Pruning: the
groups of ``get_all_groups`` with the classifier ignored, as a user prunes), each set named by
the conv/linear layers whose output channels it holds; how many sets agree exactly, and the ones
that differ. Timing of both analyses side by side. Writes ``results/coupling_sets.json``.
"""
from __future__ import annotations

import argparse
import time

import torch
from common import print_table, seeded_models, write_json
from torch import nn

from permopt import models
from permopt.nn.channel_order import channel_spaces
from permopt.pruning.width import removable_spaces


def permopt_sets(model: nn.Module, x: torch.Tensor) -> set[frozenset[str]]:
    """Producer sets of the channel spaces that can lose channels."""
    spaces = channel_spaces(model, x)
    assert spaces is not None
    return {frozenset(spaces.producers[s]) for s in removable_spaces(spaces, set())}


def torch_pruning_sets(model: nn.Module, x: torch.Tensor, head: nn.Module | None) -> set[frozenset[str]]:
    """Per Torch-Pruning group, the conv/linear layers whose *output* channels it prunes."""
    import torch_pruning as tp

    names = {m: n for n, m in model.named_modules()}
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=x, verbose=False)
    out = set()
    for group in dg.get_all_groups(ignored_layers=[head] if head is not None else []):
        producers = set()
        for dep, _ in group:
            m = dep.target.module
            if dep.handler in (tp.prune_conv_out_channels, tp.prune_linear_out_channels) \
                    and isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) \
                    and getattr(m, "groups", 1) == 1:
                producers.add(names[m])
        if producers:
            out.add(frozenset(producers))
    return out


def _head(model: nn.Module) -> nn.Module | None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="resnet20,resnet56,mobilenetv2,densenet40,vgg16,preresnet164,tv:resnet18,tv:resnet50,"
                                       "tv:mobilenet_v3_small,tv:efficientnet_b0")
    args = p.parse_args(argv)
    rows, detail = [], {}
    for name, model in seeded_models(args.models):
        x = torch.randn(1, *models.input_shape(name))
        t0 = time.process_time()
        ours = permopt_sets(model, x)
        t1 = time.process_time()
        theirs = torch_pruning_sets(model, x, _head(model))
        t2 = time.process_time()
        rows.append({"model": name, "permopt_sets": len(ours), "torch_pruning_sets": len(theirs),
                     "same": len(ours & theirs), "permopt_cpu_s": round(t1 - t0, 2),
                     "torch_pruning_cpu_s": round(t2 - t1, 2)})
        detail[name] = {"only_permopt": sorted(sorted(s) for s in ours - theirs),
                        "only_torch_pruning": sorted(sorted(s) for s in theirs - ours)}
        print(rows[-1], flush=True)
    print_table(rows, list(rows[0]))
    for name, d in detail.items():
        for side in ("only_permopt", "only_torch_pruning"):
            for s in d[side][:3]:
                print(f"{name}: {side}: {s[:4]}{' ...' if len(s) > 4 else ''}")
    result = {"rows": rows, "differences": detail}
    write_json("coupling_sets", result)
    return result


if __name__ == "__main__":
    main()
