"""Pictures (optional, needs matplotlib): the permuted score matrix with its kept blocks, and
per-layer prune reports.

Figures are drawn on matplotlib's object API (``Figure`` with the Agg canvas), never through
pyplot, so the process's plotting backend and open figures are left alone.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _figure(figsize: tuple[float, float]) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install 'permopt[plot]'") from e
    return Figure(figsize=figsize)


def plot_solution(problem: Any, solution: Any, path: Any) -> None:
    """Save the score matrix before and after permutation, with the kept blocks outlined."""
    from matplotlib.patches import Rectangle

    S = problem.scores
    P = S[solution.row_perm][:, solution.col_perm]
    fig = _figure((10, 5))
    axes = fig.subplots(1, 2)
    axes[0].imshow(S, cmap="viridis", aspect="auto")
    axes[0].set_title("scores (original order)")
    axes[1].imshow(P, cmap="viridis", aspect="auto")
    fg, cg = problem.rows_per_group, problem.cols_per_group
    for g in range(problem.groups):
        axes[1].add_patch(Rectangle((g * cg - 0.5, g * fg - 0.5), cg, fg, fill=False, ec="red", lw=1.5))
    axes[1].set_title(f"{solution.solver}: kept {solution.kept_ratio:.3f} (G={problem.groups})")
    for ax in axes:
        ax.set_xlabel("input channel")
        ax.set_ylabel("output channel")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_pareto(points: list[dict], path: Any, resource: str = "params", dense: float | None = None,
                chosen: dict | None = None) -> None:
    """Save the Pareto front of pruned mass against ``resource`` (from :func:`permopt.search.pareto_front`)."""
    fig = _figure((7, 5))
    ax = fig.subplots()
    x = np.array([p[resource] for p in points], dtype=float)
    y = np.array([p["objective"] for p in points])
    scale = dense or 1.0
    ax.plot(x / scale, y, "o-", color="tab:blue", label="Pareto front")
    if chosen is not None:
        ax.plot([chosen[resource] / scale], [chosen["objective"]], "*", ms=14, color="tab:red", label="chosen")
    ax.set_xlabel(f"{resource}" + (" (fraction of dense)" if dense else ""))
    ax.set_ylabel("pruned mass (sum of 1 - kept ratio)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_report(report: Any, path: Any, title: str = "") -> None:
    """Save a per-layer picture of a prune report: G chosen, and parameters before/after."""
    rows = report.layers
    names = [r["name"] for r in rows]
    x = np.arange(len(rows))
    fig = _figure((max(8, 0.25 * len(rows)), 7))
    a1, a2 = fig.subplots(2, 1, sharex=True)
    a1.bar(x, [r["groups"] for r in rows], color="tab:blue")
    a1.set_ylabel("groups G")
    a1.set_yscale("log", base=2)
    a1.set_title(title or f"params x{report.params_after / report.params_before:.3f}, "
                          f"MACs x{report.macs_after / report.macs_before:.3f}")
    a2.bar(x - 0.2, [r["params_before"] for r in rows], 0.4, label="before", color="tab:gray")
    a2.bar(x + 0.2, [r["params_after"] for r in rows], 0.4, label="after", color="tab:orange")
    a2.set_ylabel("parameters")
    a2.legend()
    a2.set_xticks(x, names, rotation=90, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
