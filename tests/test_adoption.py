"""What a new user runs into first (issue 28): reproducible CLI runs, a usable pruned model from a
plan, budgets read as written, hints in the caller's vocabulary, lazy subpackages, pictures."""
import itertools
import subprocess
import sys
import warnings
from pathlib import Path

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import permopt
from permopt import models
from permopt.cli import build_parser, in_cli_words, main
from permopt.search import Budget, ConfigProblem, SearchSpace, SolverCostModel, pareto_front, search
from permopt.search.space import LayerSpec

ROOT = Path(__file__).resolve().parent.parent


def test_identical_cli_prunes_write_byte_identical_plans(tmp_path, capsys):
    for k in (1, 2):
        assert main(["prune", "--model", "digits_cnn", "-g", "4", "--quiet", "--out-dir", str(tmp_path / str(k))]) == 0
    assert (tmp_path / "1" / "plan.json").read_bytes() == (tmp_path / "2" / "plan.json").read_bytes()
    assert "random weights (seed 0), 10 classes" in capsys.readouterr().out
    main(["prune", "--model", "digits_cnn", "-g", "4", "--quiet", "--seed", "1", "--out-dir", str(tmp_path / "3")])
    assert (tmp_path / "3" / "plan.json").read_bytes() != (tmp_path / "1" / "plan.json").read_bytes()


def test_seeded_models_repeat_and_leave_the_global_random_state_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    a = models.get("resnet20", seed=3)
    assert torch.equal(torch.rand(3), expected)
    b = models.get("resnet20", seed=3)
    c = models.get("resnet20", seed=4)
    assert all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_class_count_defaults_to_the_models_own():
    assert models.default_classes("resnet20") == 10 and models.default_classes("tv:resnet18") == 1000
    from permopt.cli import build_parser
    from permopt.cli.loading import load_model

    args = build_parser().parse_args(["prune", "--model", "tv:resnet18", "-g", "2"])
    model, x = load_model(args)
    assert model.fc.out_features == 1000 and tuple(x.shape[1:]) == (3, 224, 224)
    args = build_parser().parse_args(["prune", "--model", "tv:resnet18", "-g", "2", "--num-classes", "7"])
    assert load_model(args)[0].fc.out_features == 7


def test_apply_plan_returns_the_model_and_load_pruned_rebuilds_the_saved_one(tmp_path):
    out = tmp_path / "out"
    assert main(["prune", "--model", "digits_cnn", "-g", "4", "--quiet", "--out-dir", str(out)]) == 0
    x = torch.randn(3, 1, 8, 8)
    dense = models.get("digits_cnn", seed=0).eval()
    pruned = permopt.apply_plan(dense, out / "plan.json", x)  # a path is accepted
    assert isinstance(pruned, torch.nn.Module)
    other = models.get("digits_cnn", seed=9).eval()  # any weights: the state dict brings the pruned ones
    loaded = permopt.load_pruned(other, str(out / "plan.json"), out / "pruned_state_dict.pt", x)
    with torch.no_grad():
        assert torch.equal(loaded(x), pruned(x))
        assert not torch.equal(permopt.apply_plan(other, out / "plan.json", x)(x), pruned(x))
    with pytest.raises(ValueError, match="does not fit the dense model under this plan .mode='mask'"):
        permopt.load_pruned(dense, out / "plan.json", out / "pruned_state_dict.pt", x, mode="mask")
    with pytest.raises(ValueError, match="made for another model .*plan has 64x64 channels"):
        permopt.load_pruned(models.get("digits_cnn", widths=(32, 64, 128)), out / "plan.json",
                            out / "pruned_state_dict.pt", x)
    with pytest.raises(ValueError, match="no such file"):
        permopt.load_pruned(dense, out / "plan.json", tmp_path / "nope.pt", x)
    with pytest.raises(TypeError, match="plan must be a Plan or the path"):
        permopt.apply_plan(dense, 42, x)


def test_plans_record_the_method_auto_used_and_the_report_the_models_kept_ratio():
    model = models.get("digits_cnn", seed=0)
    res = permopt.prune(model, torch.randn(2, 1, 8, 8), groups=4, progress=False)
    methods = {lp.method for lp in res.plan.pruned().values()}
    assert methods and methods <= {"enumerate", "colgen", "best"}
    assert all(lp.solver == "auto" for lp in res.plan.pruned().values())
    assert permopt.Plan.from_json(res.plan.to_json()).to_json() == res.plan.to_json()
    rows = res.report.layers
    weights = np.array([r["params_before"] for r in rows], float)
    expected = sum(r["kept_ratio"] * w for r, w in zip(rows, weights)) / weights.sum()
    assert res.report.kept_ratio == pytest.approx(expected) and 0 < expected < 1
    assert "kept x" in res.report.table() and res.report.to_dict()["kept_ratio"] == res.report.kept_ratio


def test_layers_keeping_little_of_their_mass_are_named_in_a_warning():
    model, x = models.get("digits_cnn", seed=0), torch.randn(2, 1, 8, 8)
    with pytest.warns(UserWarning, match=r"2 grouped layer\(s\) keep less than 5% .*features\.7 \(G=64, kept 0\.0"):
        permopt.prune(model, x, groups=64, min_channels=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        permopt.prune(model, x, groups=2, progress=False)


def test_budgets_tell_fractions_from_counts():
    assert Budget.parse("params=0.5").params == 0.5 and Budget.parse("params=250000").params == 250000
    with pytest.raises(ValueError, match="neither a fraction .* nor an absolute count"):
        Budget.parse("params=1.5")
    with pytest.raises(ValueError, match="neither a fraction"):
        Budget(macs=2.5)
    model = models.get("digits_cnn", seed=0)
    dense = sum(p.numel() for p in model.parameters())
    with pytest.warns(UserWarning, match="absolute count.*constrains nothing"):
        permopt.prune(model, torch.randn(2, 1, 8, 8), budget={"params": dense + 10}, progress=False)


def test_search_exits_nonzero_when_the_budget_is_missed(tmp_path, capsys):
    assert main(["search", "--model", "digits_cnn", "--budget", "params=0.6", "--quiet"]) == 0
    assert main(["search", "--model", "digits_cnn", "--budget", "params=0.05", "--quiet",
                 "--strategies", "paper"]) == 1
    assert "not met by paper" in capsys.readouterr().err


def test_errors_reaching_the_cli_name_its_flags(capsys):
    msg = ("budget cannot be met; to reach further try include_linear=True (Linear layers are left dense); "
           "a larger max_groups (now 8); a smaller min_channels; pass node_limit= (reproducible) or time_limit=, "
           "or use solver='best' or 'auto'")
    solve, prune = in_cli_words(msg, "solve"), in_cli_words(msg, "prune")
    for flag in ("--include-linear", "--max-groups", "--min-channels", "-s best or -s auto"):
        assert flag in solve and flag in prune
    assert "--solver-option node_limit=N" in solve and "--time-limit" in solve
    assert "--layer-time-limit" in prune and "node_limit" not in prune and "--solver-option" not in prune
    assert "--solvers best or --solvers auto" in in_cli_words(msg, "compare")
    # every flag the advice names is one the command accepts
    subparsers = next(a for a in build_parser()._actions if a.choices and "solve" in a.choices).choices
    limit = ("enumerate: about 10^11.0 partitions of 24 items into 4 groups are too many to finish without a "
             "limit; pass node_limit=N (reproducible) or time_limit= (it then returns the best solution and a "
             "certified bound), or use solver='best' or 'auto'")
    budget = "budget cannot be met; try include_linear=True; a larger max_groups (now 8); a smaller min_channels"
    for command, message in [(c, limit) for c in ("solve", "compare", "search", "prune")] + [("prune", budget)]:
        accepted = {o for a in subparsers[command]._actions for o in a.option_strings}
        named = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", in_cli_words(message, command)))
        assert named and named <= accepted, (command, named - accepted)
    assert main(["prune", "--model", "resnet20", "--quiet"]) == 2
    assert "--groups G (uniform) or --budget SPEC" in capsys.readouterr().err


def test_solver_options_from_the_cli(tmp_path, capsys):
    np.save(tmp_path / "S.npy", np.abs(np.random.default_rng(0).standard_normal((24, 24))))
    assert main(["solve", str(tmp_path / "S.npy"), "-g", "4", "-s", "enumerate",
                 "--solver-option", "node_limit=50"]) == 0
    assert "work_limit" in capsys.readouterr().out
    assert main(["solve", str(tmp_path / "S.npy"), "-g", "4", "-s", "enumerate", "--solver-option", "nodes"]) == 2
    assert "is not KEY=VALUE" in capsys.readouterr().err


def test_model_factory_from_the_working_directory_and_python_m(tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text("import torch\n\ndef build():\n    return torch.nn.Sequential("
                                 "torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert main(["prune", "--model-factory", "mypkg.nets:build", "--input-shape", "3,16,16", "-g", "2",
                 "--quiet", "--out-dir", str(tmp_path / "out")]) == 0
    done = subprocess.run([sys.executable, "-m", "permopt", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("permopt ")


@pytest.mark.slow
def test_subpackages_load_on_attribute_access():
    code = "import permopt, torch; print(permopt.nn.count(torch.nn.Conv2d(4, 4, 1), torch.randn(1, 4, 2, 2)).params)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "20"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        permopt.nothing  # noqa: B018


def test_recalibrate_bn_takes_an_iterable_of_batches_like_a_tensor():
    from permopt.nn import recalibrate_bn

    x = torch.randn(300, 1, 8, 8)
    a = recalibrate_bn(models.get("digits_cnn", seed=0), x, batch_size=128)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(300)), batch_size=128)
    b = recalibrate_bn(models.get("digits_cnn", seed=0), loader)
    c = recalibrate_bn(models.get("digits_cnn", seed=0), iter(x.split(128)))
    for m in (b, c):
        assert all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), m.state_dict().values()))
    with pytest.raises(TypeError, match="batch 0 is a str"):
        recalibrate_bn(models.get("digits_cnn"), ["not a tensor"])
    with pytest.raises(ValueError, match="held no batches"):
        recalibrate_bn(models.get("digits_cnn"), [])


def _tiny_space(rng, n_layers):
    layers = []
    for k in range(n_layers):
        cands = sorted(set([1] + list(rng.choice([2, 4, 8], size=rng.integers(1, 4), replace=False))))
        layers.append(LayerSpec(f"l{k}", np.abs(rng.standard_normal((8, 8))), cands, 64 * int(rng.integers(1, 6)),
                                64 * int(rng.integers(1, 6)), int(rng.integers(0, 20))))
    return SearchSpace(layers, fixed_params=5, fixed_macs=7)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), n_layers=st.integers(1, 5), resource=st.sampled_from(["params", "macs"]))
def test_exact_pareto_front_equals_brute_force(seed, n_layers, resource):
    sp = _tiny_space(np.random.default_rng(seed), n_layers)
    problem = ConfigProblem(sp, SolverCostModel("grps"), Budget(params=0.5))
    front = pareto_front(problem, resources=(resource,), resolution=1e-9)
    every = []
    for choice in itertools.product(*[range(len(L.candidates)) for L in sp.layers]):
        obj, use = problem.totals(list(choice))
        every.append((float(use[problem.RESOURCES.index(resource)]), obj))
    exact = sorted({(u, o) for u, o in every if not any(u2 <= u and o2 <= o and (u2, o2) != (u, o)
                                                        for u2, o2 in every)})
    found = sorted((p[resource], p["objective"]) for p in front)
    assert len(found) == len(exact)
    for (u, o), (eu, eo) in zip(found, exact):
        assert u == eu and o == pytest.approx(eo, rel=1e-12, abs=1e-12)


def test_exact_front_reaches_the_exact_knapsack_optimum():
    sp = permopt.nn.search_space(models.get("resnet20", seed=0), torch.randn(2, 3, 32, 32))
    cost = SolverCostModel("grps")
    problem = ConfigProblem(sp, cost, Budget(params=0.5))
    front = pareto_front(problem)
    best = search(sp, "params=0.5", "exact", cost_model=cost)
    at_budget = min(p["objective"] for p in front if p["params"] <= 0.5 * sp.dense_params)
    assert at_budget == pytest.approx(best.objective, rel=1e-9)
    for p in front:  # real configurations, recomputed
        obj, use = problem.totals([L.candidates.index(p["config"][L.name]) for L in sp.layers])
        assert p["objective"] == pytest.approx(obj) and p["params"] == int(use[0])
    with pytest.raises(ValueError, match="one resource"):
        pareto_front(problem, resources=("params", "macs"), method="exact")


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from permopt.plot import plot_pareto, plot_report, plot_solution

    S = np.abs(np.random.default_rng(0).standard_normal((16, 16)))
    problem = permopt.GroupingProblem(S, 4, name="demo")
    plot_solution(problem, permopt.solve(problem), tmp_path / "s.png")
    res = permopt.prune(models.get("digits_cnn", seed=0), torch.randn(2, 1, 8, 8), groups=4, progress=False)
    plot_report(res.report, tmp_path / "r.png", title="digits_cnn")
    plot_pareto([{"params": 1, "objective": 2.0}, {"params": 2, "objective": 1.0}], tmp_path / "p.png",
                chosen={"params": 2, "objective": 1.0})
    for name in ("s.png", "r.png", "p.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_cli_progress_bars_count_whole_steps(capsys):
    from permopt.cli.arguments import progress

    assert list(progress([1, 2, 3], "x", quiet=False)) == [1, 2, 3]
    err = capsys.readouterr().err
    assert "3/3" in err and "." not in err.split("3/3")[0][-3:]
    assert list(progress([1, 2], "x", quiet=True)) == [1, 2] and capsys.readouterr().err == ""


def test_the_changelog_and_licence_ship():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{permopt.__version__}]" in text and "Keep a Changelog" in text
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_training_gives_the_same_weights_at_any_thread_count():
    from permopt.models.digits import DigitsCNN, load_digits_tensors, train

    xtr, ytr, _, _ = load_digits_tensors()
    weights = []
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        weights.append(train(DigitsCNN((8, 16, 16)), xtr[:256], ytr[:256], epochs=1).state_dict())
        assert torch.get_num_threads() == threads  # restored
    torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(weights[0].values(), weights[1].values()))


def test_weights_that_do_not_fit_name_every_missing_and_unexpected_key(tmp_path, capsys):
    state = models.get("digits_cnn").state_dict()
    state["extra.weight"] = state.pop("classifier.weight")
    torch.save(state, tmp_path / "w.pt")
    assert main(["prune", "--model", "digits_cnn", "--weights", str(tmp_path / "w.pt"), "-g", "2", "--quiet",
                 "--out-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "missing keys ['classifier.weight']" in err and "unexpected keys ['extra.weight']" in err


def test_a_missing_optional_dependency_is_named_before_any_work(monkeypatch, capsys):
    import permopt.search.optuna_search as optuna_search

    def missing():
        raise ImportError("the 'optuna' strategy and NSGA-II fronts need Optuna: pip install 'permopt[scale]'")
    monkeypatch.setattr(optuna_search, "require_optuna", missing)
    monkeypatch.setattr("permopt.cli.commands.load_model", lambda args: pytest.fail("the model was loaded"))
    assert main(["search", "--model", "resnet20", "--budget", "params=0.5", "--strategies", "exact,optuna"]) == 2
    assert "permopt[scale]" in capsys.readouterr().err
