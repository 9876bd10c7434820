"""Every bad input is a clear error naming what is wrong: solver options and seeds, plan files,
and the command line (exit code 2, one line, never a traceback)."""
import json
import warnings

import numpy as np
import pytest
import torch

import permopt
from permopt import Plan, models
from permopt.cli import main

S = np.abs(np.random.default_rng(0).standard_normal((16, 16)))


@pytest.mark.parametrize("solver, options, error, words", [
    ("soft", {"steps": 0}, ValueError, "steps"),
    ("soft", {"t1": 0}, ValueError, "t1"),
    ("anneal", {"steps": -5}, ValueError, "steps"),
    ("cpsat", {"resolution": 0, "time_limit": 5}, ValueError, "resolution"),
    ("cpsat", {"resolution": 10**18, "time_limit": 5}, ValueError, "resolution"),
    ("cpsat", {"threads": -1, "time_limit": 5}, ValueError, "threads"),
    ("local", {"iterations": -1}, ValueError, "iterations"),
    ("alternating", {"restarts": -3}, ValueError, "restarts"),
    ("best", {"effort": float("nan")}, ValueError, "effort"),
    ("grps", {"seed": -1}, ValueError, "seed"),
    ("grps", {"seed": 2**40}, ValueError, "seed"),
    ("grps", {"seed": 1.5}, TypeError, "seed"),
    ("grps", {"time_limit": 0}, ValueError, "time_limit"),
    ("grps", {"time_limit": float("inf")}, ValueError, "time_limit"),
    ("grps", {"bogus": 1}, TypeError, "accepts"),
    ("enumerate", {"node_limit": 0}, ValueError, "node_limit"),
    ("magic", {}, ValueError, "available"),
])
def test_bad_solver_options_are_named(solver, options, error, words):
    with pytest.raises(error, match=words):
        permopt.solve(S, 4, solver, **options)


def test_starts_and_group_types_are_uniform():
    sol = permopt.solve(S, np.int64(4), "enumerate", start="random", node_limit=50, seed=0)
    assert sol.status in ("optimal", "work_limit")
    assert permopt.compare(S[:8, :8], 2, "grps,enumerate").reference[1] is True  # a comma list, not letters
    with pytest.raises(ValueError, match="unknown solver"):
        permopt.solve(S, 4, "alternating", start="nope")


def test_cpsat_and_mip_refuse_what_they_cannot_finish_without_a_limit():
    big = np.abs(np.random.default_rng(1).standard_normal((24, 24)))
    for solver, options in (("cpsat", {}), ("mip", {"node_limit": None}), ("enumerate", {})):
        with pytest.raises(ValueError, match="too many"):  # mip is bounded by its node limit unless lifted
            permopt.solve(big, 4, solver, **options)


def plan_text(**changes):
    entry = {"name": "a", "groups": 2, "row_groups": [0, 1, 0, 1], "col_groups": [1, 0, 0, 1]}
    entry.update(changes)
    return json.dumps({"layers": {"a": entry}})


@pytest.mark.parametrize("text, words", [
    ("", "not valid JSON"),
    ('{"layers": {"a": ', "not valid JSON"),
    ('{"layers": []}', "'layers' object"),
    ("[1, 2]", "'layers' object"),
    ('{"layers": {"a": 3}}', "JSON object"),
    (json.dumps({"layers": {"a": {"name": "a", "groups": 2}}}), "missing fields"),
    (plan_text(groups="4"), "groups must be int"),
    (plan_text(row_groups=[0, 1, None, 1]), "row_groups must hold integers"),
    (plan_text(row_groups=[0, 1, 0, 10**30]), "row_groups must hold integers|lie in"),
    (plan_text(row_groups=[0.0, 1.0, 0.0, 1.0]), "row_groups must hold integers"),
    (plan_text(row_groups=[0, 0, 0, 1]), "each of the 2 groups"),
    (plan_text(row_groups=[-1, -1, -1, -1]), "at least one"),
    (plan_text(row_groups=[-2, 1, 0, 1]), "lie in"),
    ('{"format": 99, "layers": {}}', "plan format 99"),
    (plan_text(name="b"), "name field says 'b'"),
    (plan_text(extra=1), "unknown fields"),
    ("[" * 100_000, "not valid JSON"),
])
def test_malformed_plans_name_the_file_and_layer(tmp_path, text, words):
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=words) as e:
        Plan.load(path)
    assert "plan.json" in str(e.value)


def test_a_plan_for_another_model_warns_and_wrong_inputs_are_errors():
    torch.manual_seed(0)
    small, big = models.get("resnet20"), models.get("resnet56")
    x = torch.randn(2, 3, 32, 32)
    plan = permopt.prune(small, x, groups=2, solver="grps", progress=False).plan
    with pytest.warns(UserWarning, match="made for a model with other.*all fit this one"):
        permopt.apply_plan(big, plan, x)  # resnet20's layer names and shapes are all in resnet56
    other = permopt.prune(big, x, groups=2, solver="grps", progress=False).plan
    with pytest.raises(ValueError, match="made for another model .* does not fit this one: plan names layer"):
        permopt.apply_plan(small, other, x)  # resnet56's layer1.3 does not exist in resnet20
    masked = permopt.apply_plan(small, plan, x, mode="mask")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same model with masks on is no "other model"
        permopt.apply_plan(masked, plan, x)
    with pytest.raises(ValueError, match="example inputs do not run"):
        permopt.apply_plan(small, plan, torch.randn(2, 5, 32, 32))
    with pytest.raises(ValueError, match="example inputs do not run"):
        permopt.prune(small, torch.randn(2, 5, 32, 32), groups=2, progress=False)


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "good.npy", S)
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    (tmp_path / "dir.npy").mkdir()
    (tmp_path / "afile").write_text("x")
    return tmp_path


@pytest.mark.parametrize("argv", [
    ["solve", "{d}/good.npy", "-g", "4", "--json", "{d}"],
    ["solve", "{d}/good.npy", "-g", "4", "--json", "{d}/nofolder/x.json"],
    ["solve", "{d}/dir.npy", "-g", "4"],
    ["solve", "{d}/text.npy", "-g", "4"],
    ["solve", "{d}/missing.npy", "-g", "4"],
    ["solve", "{d}/good.npy", "-g", "5"],
    ["compare", "{d}/good.npy", "-g", "4", "--solvers", ","],
    ["prune", "--model", "resnet20", "--budget", "garbage"],
    ["prune", "--model", "resnet20", "-g", "2", "--out-dir", "{d}/afile"],
    ["prune", "--model", "resnet20", "-g", "2", "--input-shape", "5,32,32", "--quiet", "--out-dir", "{d}/o"],
    ["prune", "--model-file", "{d}/afile", "--input-shape", "3,32,32", "-g", "2"],
    ["prune", "--model-factory", "nomodule:fn", "--input-shape", "3,32,32", "-g", "2"],
    ["search", "--space", "{d}/good.npy", "--budget", "params=0.5"],
    ["search", "--model", "resnet20", "--budget", "params=0.5", "--strategies", "nope"],
])
def test_cli_errors_are_one_line_and_exit_2(files, argv, capsys):
    assert main([a.format(d=files) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("permopt ") and "error:" in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_cli_bad_shape_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["prune", "--model", "resnet20", "-g", "2", "--input-shape", "3,x"])
    assert e.value.code == 2 and "input-shape" in capsys.readouterr().err
