"""Small benchmarking helpers shared by ``permopt bench``, ``benchmarks/`` and the limit tests."""
from __future__ import annotations

import re
import resource
import statistics
import time
from typing import Any, Callable

import numpy as np

from .problem import GroupingProblem
from .solvers import run

DISTRIBUTIONS = {
    "normal": lambda rng, shape: np.abs(rng.standard_normal(shape)),
    "uniform": lambda rng, shape: rng.random(shape),
    "lognormal": lambda rng, shape: rng.lognormal(0.0, 1.5, shape),
}


#: Heuristic options whose work counts outlast any short limit, so the clock is what stops them.
ENDLESS_WORK: dict[str, dict[str, Any]] = {
    "local": {"iterations": 10**6}, "anneal": {"steps": 10**8}, "alternating": {"restarts": 10**6},
    "best": {"effort": 1000}, "soft": {"steps": 10**5}}


def cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (CBC runs as one)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def parse_sizes(spec: str) -> list[tuple[int, int, int]]:
    """``"64x64g4,2048x512g32"`` → ``[(64, 64, 4), (2048, 512, 32)]``."""
    out = []
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)x(\d+)g(\d+)\s*", part)
        if not m:
            raise ValueError(f"size {part!r} must look like 64x64g4 (F x C g G)")
        F, C, G = map(int, m.groups())
        out.append((F, C, G))
    return out


def random_scores(dist: str, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Random non-negative scores from a named distribution (|N(0,1)|, U(0,1), lognormal σ=1.5)."""
    try:
        return DISTRIBUTIONS[dist](np.random.default_rng(seed), shape)
    except KeyError:
        raise ValueError(f"unknown distribution {dist!r}; known: {sorted(DISTRIBUTIONS)}") from None


def timed(fn: Callable[[], Any], repeats: int = 3) -> tuple[Any, float]:
    """Run ``fn`` ``repeats`` times; return (last result, median seconds)."""
    times, out = [], None
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def solver_table(cases: list[tuple[str, np.ndarray, int]], solvers: list[str], repeats: int = 3, seed: int = 0,
                 echo: Callable[[str], None] | None = None) -> list[dict]:
    """For each ``(label, S, G)`` case: every solver's kept ratio and median time."""
    rows = []
    for label, S, G in cases:
        problem = GroupingProblem(S, G)
        row: dict[str, Any] = {"case": label, "size": f"{S.shape[0]}x{S.shape[1]}", "G": G}
        for s in solvers:
            sol, t = timed(lambda: run(problem, s, seed=seed), repeats)
            row[s], row[f"{s}_s"] = sol.kept_ratio, t
        rows.append(row)
        if echo:
            echo(label + " " + row["size"] + f" G={G} " + " ".join(f"{s}={row[s]:.4f}/{row[s + '_s']:.3f}s" for s in solvers))
    return rows


def format_table(rows: list[dict], columns: list[str]) -> str:
    """Rows as an aligned Markdown table."""
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
    return "\n".join(lines)
