"""Shared helpers for the benchmark scripts: JSON output (timing and tables live in permopt.bench)."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path


from permopt.bench import format_table, timed  # noqa: E402,F401

RESULTS = Path(__file__).resolve().parent / "results"


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Print rows as a Markdown table."""
    print(format_table(rows, columns))


def write_json(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/<name>.json`` with machine facts attached."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                           "platform": platform.platform()}, **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1))
    print(f"wrote {path}")
    return path


def seeded_models(names: str):
    """``(name, model)`` for comma-separated zoo / ``tv:`` / ``timm:`` names, each built in eval
    mode right after ``torch.manual_seed(0)`` (the same random weights in every script)."""
    import torch

    from permopt import models

    for name in names.split(","):
        torch.manual_seed(0)
        yield name, models.get(name).eval()


def summarise(rows: list[dict], by: list[str], values: list[str]) -> list[dict]:
    """One row per distinct ``by`` combination (in first-seen order): the number of runs
    (``seeds``) and each of ``values`` as "mean (min-max)" over them."""
    out = []
    for key in dict.fromkeys(tuple(r[k] for k in by) for r in rows):
        mine = [r for r in rows if tuple(r[k] for k in by) == key]
        row: dict = {**dict(zip(by, key)), "seeds": len(mine)}
        for v in values:
            x = [r[v] for r in mine]
            row[v] = f"{sum(x) / len(x):.3f} ({min(x):.3f}-{max(x):.3f})"
        out.append(row)
    return out
