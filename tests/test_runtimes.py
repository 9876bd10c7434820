"""Deployment runtimes (OpenVINO, ONNX Runtime, ExecuTorch when installed): the exported model computes there what the
masked model computes in torch, and latency setups say clearly what each runtime can time."""
import builtins
import json

import numpy as np
import pytest
import torch

import permopt
from permopt.nn.latency import LatencySetup, LatencyTable
from permopt.nn.runtimes import _match_layers, openvino_layer_session, session, version


def _outputs(runtime, model, x):
    out = session(model, x, runtime)()
    first = out[0] if isinstance(out, list) else next(iter(out.values()))
    return np.asarray(first)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime", "executorch"])
def test_exports_compute_the_same_in_the_runtime(runtime):
    pytest.importorskip(runtime)
    model, x = permopt.models.get("digits_cnn", seed=0).eval(), torch.randn(2, 1, 8, 8)
    for options in ({"groups": 4, "coupling": "none"}, {"groups": 4, "coupling": "full"}, {"width": 0.5},
                    {"width": 0.5, "groups": 2, "coupling": "full"}):  # grouped, thinner, both
        exported = permopt.prune(model, x, progress=False, **options).model.eval()
        masked = permopt.prune(model, x, mode="mask", progress=False, **options).model.eval()
        with torch.no_grad():
            ref = masked(x).numpy()  # the masked dense model in torch: what the export must compute
        got = _outputs(runtime, exported, x)
        assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()


def test_latency_setups_say_what_a_runtime_can_time():
    assert LatencySetup(runtime="openvino").resolve(None, None).memory_format == "contiguous"
    with pytest.raises(ValueError, match=r"unknown runtime 'tensorrt'; registered: \['torch', 'compile'"):
        LatencySetup(runtime="tensorrt")
    with pytest.raises(ValueError, match="takes contiguous inputs"):
        LatencySetup(runtime="openvino", memory_format="channels_last")


@pytest.mark.slow
def test_layer_tables_are_measured_in_the_runtime_and_cached_under_its_version(tmp_path):
    pytest.importorskip("openvino")
    model = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 1))
    x = torch.randn(1, 16, 8, 8)
    setup = LatencySetup(runtime="openvino", memory_format="contiguous", rounds=3, cache_dir=tmp_path)
    table = LatencyTable(setup)
    times, dense = table.layers(model, x, {"0": [1, 2, 4], "2": [1, 8]})
    assert set(times) == {"0", "2"} and set(times["0"]) == {1, 2, 4} and set(times["2"]) == {1, 8}
    assert dense > 0 and table.measured == 1
    assert all(t >= 0 for ts in times.values() for t in ts.values()) and sum(times["0"].values()) > 0
    assert _measured_by(tmp_path) == {"counters"}  # inside the converted model, not each layer alone
    again = LatencyTable(setup)
    assert again.layers(model, x, {"0": [1, 2, 4], "2": [1, 8]}) == (times, dense) and again.measured == 0
    assert version("openvino").startswith("openvino 20") and version("torch") == f"torch {torch.__version__}"
    eager = LatencyTable(LatencySetup(memory_format="contiguous", rounds=3, cache_dir=tmp_path))
    eager.layers(model, x, {"0": [1, 2, 4], "2": [1, 8]})
    assert eager.measured == 1  # another runtime's table is not reused


def _measured_by(cache_dir):
    return {e["measured_by"] for e in json.loads((cache_dir / LatencyTable.FILE).read_text()).values()}


@pytest.mark.slow
def test_openvino_counters_find_each_layer_in_the_converted_model():
    ov = pytest.importorskip("openvino")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
                                torch.nn.Conv2d(16, 16, 3, padding=1, groups=4), torch.nn.BatchNorm2d(16),
                                torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 1), torch.nn.Flatten(),
                                torch.nn.Linear(16 * 36, 10)).eval()
    for bn in (model[1], model[4]):  # folded into the convolutions by the converter: weights rescaled per row
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(-2.0, 2.0)
    x, names = torch.randn(1, 8, 6, 6), ["0", "3", "6", "8"]
    converted = ov.convert_model(model, example_input=x)
    owner = _match_layers(converted, {n: model.get_submodule(n) for n in names})
    assert sorted(owner.values()) == sorted(names)  # one converted op per layer, each found
    run, read = openvino_layer_session(model, x, names)
    run()
    assert set(read()) == set(names) and all(t >= 0 for t in read().values())
    with pytest.raises(LookupError, match=r"\['2'\]"):  # a ReLU holds no weight to be found by
        openvino_layer_session(model, x, ["0", "2"])


@pytest.mark.slow
def test_openvino_tables_fall_back_to_layers_alone(tmp_path, monkeypatch):
    pytest.importorskip("openvino")

    def unmatched(*args, **kwargs):
        raise LookupError("merged away")
    monkeypatch.setattr("permopt.nn.latency.openvino_layer_session", unmatched)
    model, x = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU()), torch.randn(1, 16, 8, 8)
    setup = LatencySetup(runtime="openvino", memory_format="contiguous", rounds=2, cache_dir=tmp_path)
    times, dense = LatencyTable(setup).layers(model, x, {"0": [1, 4]})
    assert set(times["0"]) == {1, 4} and dense > 0 and _measured_by(tmp_path) == {"alone"}


def test_a_missing_runtime_names_its_extra(monkeypatch):
    real = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("No module named 'openvino'")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(ImportError, match=r"pip install 'permopt\[openvino\]'"):
        session(torch.nn.Conv2d(4, 4, 1), torch.randn(1, 4, 2, 2), "openvino")


@pytest.mark.slow
def test_torch_compile_times_whole_models_in_the_setups_memory_format():
    model, x = permopt.models.get("digits_cnn", seed=0).eval(), torch.randn(2, 1, 8, 8)
    exported = permopt.prune(model, x, groups=4, coupling="full", progress=False).model.eval()
    setup = LatencySetup(runtime="compile", memory_format="channels_last", rounds=2, cache_dir=None)
    t = LatencyTable(setup).models({"dense": model, "exported": exported}, x)
    assert set(t) == {"dense", "exported"} and all(v > 0 for v in t.values())
    assert LatencySetup(runtime="compile").resolve(model, x).memory_format in ("contiguous", "channels_last")
    with torch.no_grad():
        assert torch.allclose(session(exported, x, "compile")(), exported(x), atol=1e-5)


def test_a_runtime_is_one_registration(monkeypatch):
    """A registered runtime times models through its session maker and is a CLI choice."""
    from permopt import runtimes
    from permopt.cli import build_parser

    monkeypatch.setattr(runtimes, "_REGISTRY", dict(runtimes._REGISTRY))  # the registration ends with the test
    calls = []

    def doubled_session(model, x, threads):
        calls.append(threads)
        return lambda: (model(x), model(x))
    runtimes.register_runtime("twice", doubled_session)
    with pytest.raises(ValueError, match="registered already"):
        runtimes.register_runtime("twice", doubled_session)
    with pytest.raises(TypeError, match="'module:function' path"):
        runtimes.register_runtime("bad", "no_colon")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1)).eval()
    t = LatencyTable(LatencySetup(runtime="twice", rounds=2, batch=1, cache_dir=None,
                                  memory_format="contiguous")).models({"a": model}, torch.randn(1, 3, 4, 4))
    assert calls == [1] and t["a"] > 0
    args = build_parser().parse_args(["prune", "--model", "resnet20", "--groups", "2", "--runtime", "twice"])
    assert args.runtime == "twice"
