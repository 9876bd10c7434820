"""Deployment runtimes (OpenVINO, ONNX Runtime, ExecuTorch when installed): the exported model computes there what the
masked model computes in torch, and latency setups say clearly what each runtime can time."""
import builtins

import numpy as np
import pytest
import torch

import permopt
from permopt.nn.latency import LatencySetup, LatencyTable
from permopt.nn.runtimes import session, version


def _outputs(runtime, model, x):
    out = session(model, x, runtime)()
    first = out[0] if isinstance(out, list) else next(iter(out.values()))
    return np.asarray(first)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime", "executorch"])
def test_grouped_exports_compute_the_same_in_the_runtime(runtime):
    pytest.importorskip(runtime)
    model, x = permopt.models.get("digits_cnn", seed=0).eval(), torch.randn(2, 1, 8, 8)
    for coupling in ("none", "full"):
        exported = permopt.prune(model, x, groups=4, coupling=coupling, progress=False).model.eval()
        masked = permopt.prune(model, x, groups=4, coupling=coupling, mode="mask", progress=False).model.eval()
        with torch.no_grad():
            ref = masked(x).numpy()  # the masked dense model in torch: what the export must compute
        got = _outputs(runtime, exported, x)
        assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()


def test_latency_setups_say_what_a_runtime_can_time():
    assert LatencySetup(runtime="openvino").resolve(None, None).memory_format == "contiguous"
    with pytest.raises(ValueError, match="runtime must be 'torch' or one of"):
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
    assert dense > 0 and times["0"][1] > 0 and table.measured == 1  # a call's own cost is taken off: >= 0
    assert all(t >= 0 for ts in times.values() for t in ts.values())
    again = LatencyTable(setup)
    assert again.layers(model, x, {"0": [1, 2, 4], "2": [1, 8]}) == (times, dense) and again.measured == 0
    assert version("openvino").startswith("openvino 20") and version("torch") == f"torch {torch.__version__}"
    eager = LatencyTable(LatencySetup(memory_format="contiguous", rounds=3, cache_dir=tmp_path))
    eager.layers(model, x, {"0": [1, 2, 4], "2": [1, 8]})
    assert eager.measured == 1  # another runtime's table is not reused


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
