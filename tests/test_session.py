"""The pruning session (issue 38): one trace and one read of the calibration data per prune,
however many plans it makes; prune() and apply_plan() agree with the session's own methods."""
import importlib

import pytest
import torch

import permopt
from permopt.pruning import PruningSession

inspect_module = importlib.import_module("permopt.nn.inspect")  # the module (permopt.nn.inspect is its function)


class Reads(list):
    """Calibration batches that count the batches read (``iter`` alone reads nothing)."""

    read = 0

    def __iter__(self):
        for batch in super().__iter__():
            Reads.read += 1
            yield batch


@pytest.fixture
def traces(monkeypatch):
    """The number of ``torch.fx`` traces made so far (every trace goes through nn.inspect.trace)."""
    made = []
    real = inspect_module.trace

    def counted(*a, **k):
        made.append(1)
        return real(*a, **k)
    monkeypatch.setattr(inspect_module, "trace", counted)
    Reads.read = 0
    return made


def _model():
    return permopt.models.get("digits_cnn", seed=0).eval(), torch.randn(40, 1, 8, 8)


@pytest.mark.parametrize("options", [
    {"groups": 4},
    {"groups": 4, "calibration": True},
    {"groups": 2, "calibration": True, "mode": "mask"},
    {"budget": "params=0.6", "calibration": True},  # the data cost: statistics with the full gram
    {"budget": "params=0.6", "calibration": True, "coupling": "full"},
    {"width": 0.5, "calibration": True},  # channels removed: their consumers' refit from the one pass
    {"width": 0.75, "groups": 2, "calibration": True},
    {"budget": "macs=0.5", "structure": "channels", "calibration": True},  # a bisection of widths, one pass
])
def test_a_prune_traces_once_and_reads_the_calibration_once(traces, options):
    model, x = _model()
    data = Reads(x.split(16)) if options.pop("calibration", False) else None
    res = permopt.prune(model, x[:2], calibration=data, progress=False, **options)
    assert len(traces) == 1
    assert Reads.read == (3 if data is not None else 0)  # 40 samples in batches of 16: one pass
    assert res.plan.meta["config"]["calibration"] == ({"type": "Reads"} if data is not None else None)


def test_apply_plan_with_calibration_traces_once_and_reads_once(traces):
    model, x = _model()
    plan = permopt.prune(model, x[:2], groups=4, progress=False).plan
    traces.clear()
    out = permopt.apply_plan(model, plan, x[:2], calibration=Reads(x.split(16)))
    assert len(traces) == 1 and Reads.read == 3
    session = PruningSession(model, x[:2], groups=1, mode="mask", calibration=x.split(16), include_linear=True,
                             min_channels=1)
    again, _ = session.apply(plan.__class__.from_json(plan.to_json()), "export")
    with torch.no_grad():
        assert torch.equal(out(x), again(x))  # the same refit, from a session or from apply_plan


def test_a_session_plans_twice_from_one_analysis_and_one_pass(traces):
    model, x = _model()
    data = Reads(x.split(16))
    session = PruningSession(model, x[:2], groups=4, calibration=data)
    a, b = session.plan(), session.plan(permopt.PruneConfig.make(session.config, groups=2))
    assert len(traces) == 1 and Reads.read == 3
    assert {lp.groups for lp in a.plan.pruned().values()} == {4} and {lp.groups for lp in b.plan.pruned().values()} == {2}
    res = session.prune()
    again = permopt.prune(model, x[:2], groups=4, calibration=x.split(16), progress=False)
    for r in (res, again):
        del r.plan.meta["config"]  # the calibration's type differs (a tuple of batches, Reads), nothing else
    assert res.plan.to_json() == again.plan.to_json()


def test_the_saved_plan_records_the_config():
    model, x = _model()
    res = permopt.prune(model, x[:2], budget={"params": 0.6}, seed=3, progress=False)
    config = permopt.Plan.from_json(res.plan.to_json()).meta["config"]
    assert config["budget"] == str(permopt.search.Budget(params=0.6)) and config["seed"] == 3
    assert config["groups"] is None and config["solver"] == "auto"


def test_distillation_is_a_prune_option_and_export_matches_mask():
    model, x = _model()
    runs = {mode: permopt.prune(model, x[:2], groups=2, calibration=x, distill=5, mode=mode, seed=1, progress=False)
            for mode in ("export", "mask")}
    meta = runs["export"].plan.meta["distill"]
    assert meta["steps"] == 5 and meta["last_loss"] <= meta["first_loss"] * 10
    with torch.no_grad():
        a, b = runs["export"].model(x), runs["mask"].model(x)
    assert (a - b).norm() <= 1e-2 * b.norm()  # the same 5 Adam steps on the grouped and on the masked model
    with pytest.raises(ValueError, match="distill= needs calibration="):
        permopt.prune(model, x[:2], groups=2, distill=5)


def test_the_walk_sizes_a_trace_with_non_tensor_nodes():
    """Shapes and sizes in a trace hold no activations: the memory estimate counts the tensors
    (a model reading ``x.shape`` was refused the one-pass walk and took one pass per layer)."""
    from permopt.nn.graph_pass import peak_bytes
    from permopt.nn.inspect import trace

    class Sized(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return y.reshape(y.shape[0], -1)

    g = trace(Sized(), torch.randn(2, 3, 4, 4))
    assert any(n.meta.get("tensor_meta") is None and n.op != "output" for n in g.graph.nodes)
    # the conv's output and its reshape alive together (a view counted as its own tensor: on the safe side)
    assert peak_bytes(g, 10) == 10 * (8 * 16 + 8 * 16) * 4


def test_a_plan_cannot_change_what_the_session_analysed():
    model, x = _model()
    session = PruningSession(model, x[:2], groups=4, calibration=x)
    with pytest.raises(ValueError, match=r"plan\(config\) changes \['positions'\]"):
        session.plan(permopt.PruneConfig.make(session.config, positions=8))
    with pytest.raises(ValueError, match=r"changes \['calibration'\]"):
        session.plan(permopt.PruneConfig.make(session.config, calibration=x.clone()))
    assert session.plan(permopt.PruneConfig.make(session.config, solver="best")).plan.meta["solver"] == "best"
