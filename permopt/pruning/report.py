"""The prune report: parameters, MACs, kept ratio and method per layer, before and after."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from ..nn.count import Counts, count
from ..nn.export import ExportResult, export
from ..plan import Plan


@dataclass
class Report:
    """Per-layer and total parameters/MACs before and after, with each layer's G and kept ratio."""

    layers: list[dict]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    index_modules: int = 0
    latency_before: float | None = None  # measured seconds per batch (latency budgets / latency=)
    latency_after: float | None = None

    @property
    def kept_ratio(self) -> float:
        """The whole model's kept ratio: each conv/linear layer's kept ratio (of its criterion mass;
        1 for layers left dense) weighted by its dense parameter count."""
        weights = np.array([r["params_before"] for r in self.layers], float)
        return float(np.dot([r["kept_ratio"] for r in self.layers], weights) / weights.sum()) if weights.sum() else 1.0

    @property
    def params_ratio(self) -> float:
        """Parameters after / before (all parameters, BatchNorm included)."""
        return self.params_after / self.params_before

    @property
    def macs_ratio(self) -> float:
        """MACs after / before."""
        return self.macs_after / self.macs_before

    @property
    def latency_ratio(self) -> float | None:
        """Measured pruned / dense latency (None when latency was not measured)."""
        if self.latency_before is None or self.latency_after is None:
            return None
        return self.latency_after / self.latency_before

    def table(self) -> str:
        """A plain-text table, one row per conv/linear layer plus totals."""
        head = (f"{'layer':<28} {'out->kept':>10} {'G':>3} {'kept':>7} {'method':<16} {'params':>10} {'-> after':>10} "
                f"{'MACs':>12} {'-> after':>12}")
        lines = [head, "-" * len(head)]
        for r in self.layers:
            kept, method = (f"{r['kept_ratio']:.3f}", r["method"][:16]) if r["groups"] > 1 else ("-", "")
            out = r.get("out_channels", 0)
            width = f"{out}->{r['out_kept']}" if out and r["out_kept"] != out else f"{out or ''}"
            lines.append(f"{r['name'][:28]:<28} {width:>10} {r['groups']:>3} {kept:>7} {method:<16} "
                         f"{r['params_before']:>10} {r['params_after']:>10} {r['macs_before']:>12} {r['macs_after']:>12}")
        lines.append("-" * len(head))
        lines.append(f"{'total (all parameters)':<28} {'':>10} {'':>3} {'':>7} {'':<16} {self.params_before:>10} "
                     f"{self.params_after:>10} {self.macs_before:>12} {self.macs_after:>12}")
        lines.append(f"params x{self.params_ratio:.3f}, MACs x{self.macs_ratio:.3f}, "
                     f"kept x{self.kept_ratio:.3f} (layer kept ratios weighted by parameters), "
                     f"{self.index_modules} channel-index modules")
        if self.latency_before and self.latency_after:
            lines.append(f"latency x{self.latency_ratio:.3f} (measured: "
                         f"{1e3 * self.latency_before:.3g} ms dense -> {1e3 * self.latency_after:.3g} ms)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"layers": self.layers, "kept_ratio": self.kept_ratio,
                "params_before": self.params_before, "params_after": self.params_after,
                "macs_before": self.macs_before, "macs_after": self.macs_after, "index_modules": self.index_modules,
                "latency_before": self.latency_before, "latency_after": self.latency_after}


def make_report(model: nn.Module, plan: Plan, example_inputs: Any, exported: ExportResult | None = None,
                before: Counts | None = None, traced: Any = None) -> Report:
    """Counts before (``model``) and after pruning under ``plan``, per layer and total, the after
    counts read off the export (``exported``, or one made here from ``traced``): every conv and
    linear layer (depthwise convs that lost channels with their space included) and every
    parameter (shrunk BatchNorms included); the export also gives the channel-index modules."""
    exported = exported or export(model, plan, example_inputs, traced, refuse_hooks=False)  # counted only
    before = before or count(model, example_inputs)
    after = count(exported.model, example_inputs)
    rows = []
    for name, b in before.layers.items():
        lp = plan.layers.get(name)
        a = after.layers.get(name) or after.layers[f"{name}.1"]  # an untraced export wraps it in index modules
        F, C = getattr(model.get_submodule(name), "weight").shape[:2]
        if lp is not None:
            kf, kc = int((lp.row_groups >= 0).sum()), int((lp.col_groups >= 0).sum())
        else:  # a depthwise conv (one input per group: C == 1) shrinks with its channel space
            kf, kc = int(getattr(_exported_module(exported, name), "out_channels", F)), int(C)
        rows.append({"name": name, "groups": lp.groups if lp else 1, "kept_ratio": lp.kept_ratio if lp else 1.0,
                     "method": lp.method if lp else "dense", "out_kept": kf, "out_channels": F, "in_kept": kc,
                     "in_channels": C, "params_before": b["params"], "params_after": a["params"],
                     "macs_before": b["macs"], "macs_after": a["macs"]})
    return Report(rows, before.params, after.params, before.macs, after.macs, len(exported.index_modules))


def _exported_module(exported: ExportResult, name: str) -> Any:
    try:
        return exported.model.get_submodule(name)
    except AttributeError:
        return None
