"""Accuracy against latency, from ``benchmarks/results/accuracy_mnist.json`` (written by
``bench_accuracy.py --part mnist``): one point per model, fine-tuned test accuracy (mean over
the seeds, bar = min–max) against latency as a fraction of dense, with the one-shot accuracy as
a hollow marker below it.

    python benchmarks/plot_accuracy.py [--out docs/img/accuracy_mnist.png]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import RESULTS


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "img" / "accuracy_mnist.png"))
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads((RESULTS / "accuracy_mnist.json").read_text())
    latency = {r["model"]: float(r["latency_ratio"]) for r in data["summary"]}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 5.0), gridspec_kw={"width_ratios": [3, 2]})
    for i, (model, lat) in enumerate(latency.items()):
        runs = [r for r in data["finetuned"] if r["model"] == model]
        tuned = [r["finetuned"] for r in runs]
        mean = sum(tuned) / len(tuned)
        colour = "tab:blue" if model.startswith("permopt") else "tab:red"
        ax.errorbar(lat, mean, yerr=[[mean - min(tuned)], [max(tuned) - mean]], fmt="o", color=colour, capsize=3,
                    label=f"{i + 1}  {model}")
        ax2.scatter(lat, runs[0]["one_shot"], color=colour, facecolors="none")
        ax2.annotate(str(i + 1), (lat, runs[0]["one_shot"]), textcoords="offset points", xytext=(5, -10 * (i % 2)),
                     fontsize=8)
        ax.annotate(str(i + 1), (lat, mean), textcoords="offset points", xytext=(-12, -3), fontsize=8, color=colour)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.16), ncol=2, handlelength=0.8, frameon=False)
    ax.axhline(data["dense_accuracy"], color="grey", ls="--", lw=1)
    ax.text(ax.get_xlim()[0], data["dense_accuracy"], " dense", va="bottom", color="grey", fontsize=8)
    ax.set(xlabel="latency / dense (batch 8, 1 thread)", ylabel="test accuracy after fine-tuning",
           title=f"ResNet-8 on real MNIST: after the same {data['steps']} fine-tuning steps\n"
                 "blue permopt, red Torch-Pruning; mean and min-max over 3 seeds")
    ax.title.set_fontsize(9)
    ax2.set(xlabel="latency / dense", ylabel="test accuracy one-shot", ylim=(0, 1.05),
            title="one-shot (before fine-tuning; numbers as on the left)")
    ax2.title.set_fontsize(9)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
