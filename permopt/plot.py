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
    """Save the score matrix before and after permutation, the kept blocks outlined, with a
    colour bar and the solution's kept ratio, certified bound and gap in the title."""
    from matplotlib.patches import Rectangle

    S = problem.scores
    P = S[solution.row_perm][:, solution.col_perm]
    fig = _figure((11, 5))
    axes = fig.subplots(1, 2)
    vmax = float(S.max()) if S.size and S.max() > 0 else 1.0
    for ax, M, title in ((axes[0], S, "scores, original order"), (axes[1], P, "permuted: kept blocks in red")):
        image = ax.imshow(M, cmap="viridis", aspect="auto", vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("input channel", fontsize=10)
        ax.set_ylabel("output channel", fontsize=10)
    fg, cg = problem.rows_per_group, problem.cols_per_group
    for g in range(problem.groups):
        axes[1].add_patch(Rectangle((g * cg - 0.5, g * fg - 0.5), cg, fg, fill=False, ec="red", lw=1.5))
    fig.colorbar(image, ax=list(axes), label="score (criterion mass)", fraction=0.03, pad=0.02)
    bound = solution.upper_bound / solution.total if solution.total else float("nan")
    fig.suptitle(f"{problem.name or 'layer'} {problem.F}x{problem.C}, G={problem.groups}, {solution.solver}: "
                 f"kept {solution.kept_ratio:.3f} of the mass, certified bound {bound:.3f} "
                 f"({solution.info.get('bound_method', '')}), gap {solution.gap:.1%}, {solution.status}", fontsize=11)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def plot_pareto(points: list[dict], path: Any, resource: str = "params", dense: float | None = None,
                chosen: dict | None = None) -> None:
    """Save the Pareto front of pruned mass against ``resource`` (from :func:`permopt.search.pareto_front`),
    as a staircase (each step a configuration), and ``chosen`` (a search result's point) as a star."""
    fig = _figure((7.5, 5))
    ax = fig.subplots()
    pts = sorted(points, key=lambda p: p[resource])
    scale = dense or 1.0
    x = np.array([p[resource] for p in pts], dtype=float) / scale
    y = np.array([p["objective"] for p in pts])
    ax.step(x, y, where="post", color="tab:blue", lw=1.5, label=f"Pareto front ({len(pts)} configurations)")
    ax.plot(x, y, ".", color="tab:blue", ms=3)
    if chosen is not None:
        ax.plot([chosen[resource] / scale], [chosen["objective"]], "*", ms=15, color="tab:red",
                label=f"chosen: {chosen['objective']:.3f} at {chosen[resource] / scale:.3f}")
    ax.set_xlabel(f"{resource}" + (" (fraction of the dense model)" if dense else ""), fontsize=11)
    ax.set_ylabel("pruned mass (sum over layers of 1 - kept ratio)", fontsize=11)
    ax.legend(fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_report(report: Any, path: Any, title: str = "") -> None:
    """Save a per-layer picture of a prune report, one row per layer (names readable at any
    depth): the share of output channels kept with the channel counts and G written beside it,
    the kept ratio, and parameters before/after."""
    rows = report.layers
    names = [r["name"] for r in rows]
    y = np.arange(len(rows))
    fig = _figure((13, max(4.0, 0.24 * len(rows) + 1.6)))
    a1, a2, a3 = fig.subplots(1, 3, sharey=True, gridspec_kw={"width_ratios": [1, 1, 1.4]})
    share = [r.get("out_kept", 1) / r.get("out_channels", 1) for r in rows]
    a1.barh(y, share, color=["tab:purple" if r["groups"] > 1 else "tab:blue" for r in rows])
    a1.set_xlim(0, 1.45)
    a1.set_xlabel("share of output channels kept (purple: grouped)", fontsize=10)
    for k, (r, w) in enumerate(zip(rows, share)):
        counts = f"{r['out_channels']}->{r['out_kept']}" if w < 1 else f"{r.get('out_channels', '')}"
        a1.text(w, k, f" {counts}" + (f", G={r['groups']}" if r["groups"] > 1 else ""), va="center", fontsize=8)
    kept = [r["kept_ratio"] if r["groups"] > 1 or r.get("out_kept") != r.get("out_channels")
            or r.get("in_kept") != r.get("in_channels") else np.nan for r in rows]
    a2.barh(y, kept, color="tab:green")
    a2.axvline(report.kept_ratio, color="k", ls="--", lw=1, label=f"model {report.kept_ratio:.3f}")
    a2.set_xlim(0, 1)
    a2.set_xlabel("kept ratio (criterion mass) of pruned layers", fontsize=10)
    a2.legend(fontsize=8, loc="lower right")
    a3.barh(y - 0.2, [r["params_before"] for r in rows], 0.4, label="before", color="tab:gray")
    a3.barh(y + 0.2, [r["params_after"] for r in rows], 0.4, label="after", color="tab:orange")
    a3.set_xscale("log")
    a3.set_xlabel("parameters", fontsize=10)
    a3.legend(fontsize=8, loc="lower right")
    a1.set_yticks(y, names, fontsize=8)
    a1.invert_yaxis()  # first layer on top
    for ax in (a1, a2, a3):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title + ("\n" if title else "") + f"params x{report.params_after / report.params_before:.3f}, "
                 f"MACs x{report.macs_after / report.macs_before:.3f}, kept x{report.kept_ratio:.3f}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
