"""The CLI and the examples (fast settings) run and produce their files."""
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from permopt.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run_example(name, argv):
    old = sys.argv
    sys.argv = [name] + argv
    try:
        return runpy.run_path(str(ROOT / "examples" / name), run_name="example")["main"](argv)
    finally:
        sys.argv = old


def test_cli_solve_compare_and_bench(tmp_path, capsys):
    S = np.abs(np.random.default_rng(0).standard_normal((8, 8)))
    np.save(tmp_path / "s.npy", S)
    torch.save(torch.randn(8, 4, 3, 3), tmp_path / "w.pt")
    assert main(["solve", str(tmp_path / "s.npy"), "-g", "2", "--solver", "enumerate", "--json", str(tmp_path / "o.json")]) == 0
    out = json.loads((tmp_path / "o.json").read_text())
    assert out["status"] == "optimal" and len(out["row_groups"]) == 8
    assert main(["solve", str(tmp_path / "w.pt"), "-g", "4", "--plot", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert main(["compare", str(tmp_path / "s.npy"), "-g", "2", "--solvers", "grps,enumerate",
                 "--json", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["reference_proven"] is True
    assert main(["compare", str(tmp_path / "s.npy"), "-g", "2", "--solvers", "grps,best", "--bound", "sdp",
                 "--json", str(tmp_path / "b.json")]) == 0
    tight = json.loads((tmp_path / "b.json").read_text())
    assert {r["certified_by"] for r in tight["rows"]} == {"sdp"}
    plain = json.loads((tmp_path / "c.json").read_text())
    assert plain["reference"] <= tight["best_bound"] <= plain["rows"][0]["upper_bound"]  # enumerate's optimum
    assert main(["bench", "--sizes", "16x16g4", "--solvers", "grps,best", "--repeats", "1"]) == 0
    assert "grps" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_search_and_prune(tmp_path, capsys):
    assert main(["search", "--model", "resnet20", "--budget", "params=0.5", "--strategies", "paper,exact",
                 "--solver", "grps", "--quiet", "--save-space", str(tmp_path / "space.npz"),
                 "--json", str(tmp_path / "s.json")]) == 0
    res = json.loads((tmp_path / "s.json").read_text())["results"]
    assert res["exact"]["status"] == "optimal" and res["exact"]["objective"] <= res["paper"]["objective"] + 1e-9
    assert main(["search", "--space", str(tmp_path / "space.npz"), "--budget", "params=0.5", "--strategies", "exact",
                 "--solver", "grps", "--quiet"]) == 0
    assert main(["prune", "--model", "resnet20", "--budget", "params=0.5", "--solver", "grps", "--quiet",
                 "--out-dir", str(tmp_path / "out"), "--plot", str(tmp_path / "g.png")]) == 0
    for f in ("plan.json", "pruned_state_dict.pt", "report.json"):
        assert (tmp_path / "out" / f).exists()
    assert (tmp_path / "g.png").stat().st_size > 1000
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    state = torch.load(tmp_path / "out" / "pruned_state_dict.pt", weights_only=True)
    assert any(lp["groups"] > 1 for lp in plan["layers"].values())
    assert all(k in state for k in ("conv1.weight", "fc.weight"))
    assert "total" in capsys.readouterr().out


def test_cli_prunes_channels_and_the_plan_rebuilds_the_thinner_model(tmp_path, capsys):
    import permopt
    from permopt import models
    from permopt.plan import Plan

    assert main(["prune", "--model", "resnet20", "--width", "0.5", "--quiet", "--out-dir", str(tmp_path)]) == 0
    plan = Plan.load(tmp_path / "plan.json")
    assert plan.layers["layer3.0.conv2"].row_groups.tolist().count(-1) == 32  # 64 -> 32 channels
    rebuilt = permopt.apply_plan(models.get("resnet20", seed=0), plan, torch.randn(1, 3, 32, 32))
    rebuilt.load_state_dict(torch.load(tmp_path / "pruned_state_dict.pt", weights_only=True))  # shapes agree
    assert "64->32" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["solve", "missing.npy", "-g", "2"], ["prune", "--model", "resnet20"],
                                  ["prune", "--model", "resnet20", "--width", "2"],
                                  ["prune", "--model", "nope", "-g", "2"], ["search", "--budget", "params=0.5"]])
def test_cli_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(c in out for c in ("solve", "compare", "search", "prune", "bench"))


def test_example_heuristic_vs_exact():
    cmp = run_example("heuristic_vs_exact.py", ["--size", "8", "--groups", "2", "--time-limit", "10"])
    ref, proven = cmp.reference
    assert proven and all(s.kept <= ref * (1 + 1e-9) for s in cmp.solutions.values())


@pytest.mark.slow
def test_example_custom_strategy():
    out = run_example("custom_strategy.py", ["--budget", "0.5"])
    for cost in ("default", "params-weighted"):
        assert out[cost, "exact"].objective <= out[cost, "paper"].objective + 1e-9
        assert out[cost, "exact"].objective <= out[cost, "uniform_largest_fit"].objective + 1e-9


@pytest.mark.slow
def test_example_digits_end_to_end(tmp_path):
    out = run_example("digits_end_to_end.py", ["--epochs", "3", "--finetune", "1", "--json", str(tmp_path / "d.json")])
    assert out["dense_accuracy"] > 0.85
    assert out["budget"]["params_after"] <= 0.5 * out["budget"]["params_before"] + 1
    assert out["budget"]["accuracy_finetuned"] > 0.5
    assert abs(out["budget"]["accuracy_exported"] - out["budget"]["accuracy_finetuned"]) < 0.01
    u = out["uniform"]
    assert u["same"]["mean_kept_ratio"] < u["grps"]["mean_kept_ratio"] < u["auto"]["mean_kept_ratio"]


@pytest.mark.slow
def test_example_calibrated_pruning():
    out = run_example("calibrated_pruning.py", ["--epochs", "3", "--steps", "20", "--calibration", "64"])
    assert out["calibrated"] > out["weights only"] + 0.3  # reconstruction rescues the one-shot model
    assert out["exported"] == out["calibrated + distilled"]
