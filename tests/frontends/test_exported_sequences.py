"""Recurrent and 1-D models from real exporters (files checked in, made by
benchmarks/make_torch_fixtures.py and benchmarks/make_tf2onnx_fixtures.py): PyTorch's
``nn.RNN(relu, batch_first=True)`` (1 and 2 layers; a Linear on the last step or on every
step) and ``Conv1d`` classifier, and tf2onnx's Keras ``Conv1D`` and ``SimpleRNN``.

The data rule: users give snnc their data as the model takes them. The PyTorch RNNs take
``(N, steps, features)`` (``batch_first``: the ONNX input is batch first, the model
transposes it to the RNN's time-major layout itself), and so does snnc, with any number of
steps; outputs come batch first too, ``(N, steps, ...)`` for every step. Each import equals
onnxruntime on the file and the exporter's own saved outputs. tf2onnx writes a Keras
recurrent layer as a ``Loop``, which snnc refuses in one line naming the node.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from onnx_testing import ort_outputs
from error_testing import raises
from snnc.compiler import load_model, run_model
from snnc.compiler.api import run_spiking
from snnc.compiler.cli import main
from snnc.compiler.datasets import Dataset
from snnc.compiler.driver import compile_model
from snnc.compiler.errors import UnsupportedError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "onnx"
TOL = dict(rtol=1e-5, atol=1e-5)


def manifest(folder: str) -> dict:
    return json.loads((FIXTURES / folder / "MANIFEST.json").read_text())["exports"]


TORCH = manifest("torch")
TF2ONNX = manifest("tf2onnx_1d")
RNNS = [name for name, e in TORCH.items() if "RNN" in e["ops"]]
#: exports snnc converts: (folder, name)
CONVERTED = [("torch", name) for name in TORCH] + [("tf2onnx_1d", "keras_conv1d_opset13")]


def fixture(folder: str, name: str):
    path = FIXTURES / folder / f"{name}.onnx"
    return path, np.load(path.with_suffix(".npz"))


def single_output(outputs: dict) -> np.ndarray:
    (y,) = outputs.values()
    return y


def test_manifests_list_what_the_exporters_wrote():
    assert set(RNNS) == {"rnn_last_opset13", "rnn2_last_opset17", "rnn_steps_opset14", "rnn2_steps_opset13"}
    assert {TORCH[name]["opset"] for name in RNNS} == {13, 14, 17}
    for name in RNNS:  # batch first, dynamic batch and steps; zero state from the batch size
        assert TORCH[name]["input_shape"] == ["N", "steps", 3]
        assert {"Transpose", "RNN", "Squeeze", "Shape", "ConstantOfShape"} <= set(TORCH[name]["ops"])
    assert "Loop" in TF2ONNX["keras_simple_rnn_opset13"]["ops"]
    assert {"Unsqueeze", "Conv", "Squeeze"} <= set(TF2ONNX["keras_conv1d_opset13"]["ops"])


@pytest.mark.parametrize("folder, name", CONVERTED)
def test_matches_the_exporter_and_onnxruntime(folder, name):
    path, data = fixture(folder, name)
    ours = single_output(run_model(load_model(path), data["x"]))
    np.testing.assert_allclose(ours, data["y"], **TOL)  # onnxruntime where the file was made
    np.testing.assert_allclose(ours, ort_outputs(path, [data["x"]])[0], **TOL)
    if "torch" in data:
        np.testing.assert_allclose(ours, data["torch"], **TOL)


@pytest.mark.parametrize("name", RNNS)
def test_rnns_take_batch_first_sequences_of_any_length(name, rng):
    """The IR input is a sequence of feature vectors; data go in ``(N, steps, features)``
    as PyTorch's ``batch_first`` model takes them, with any batch size and number of steps."""
    path, data = fixture("torch", name)
    graph = load_model(path)
    (node,) = graph.inputs
    assert node.op.sequence and node.type.shape == (data["x"].shape[-1],)
    x = rng.normal(size=(3, 11, data["x"].shape[-1])).astype(np.float32)
    ours = single_output(run_model(graph, x))
    theirs = ort_outputs(path, [x])[0]
    assert ours.shape == theirs.shape == ((3, 11, 2) if "steps" in name else (3, 2))
    np.testing.assert_allclose(ours, theirs, **TOL)


def test_cli_runs_an_export_on_batch_first_data(tmp_path):
    path, data = fixture("torch", "rnn2_steps_opset13")
    np.save(tmp_path / "x.npy", data["x"])
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), data["y"], **TOL)


def test_tf2onnx_loop_is_refused_by_node(tmp_path, capsys):
    path, _ = fixture("tf2onnx_1d", "keras_simple_rnn_opset13")
    raises(UnsupportedError, path, "Loop (nodes 'keras_simple_rnn/simple_rnn/while_loop')", "ONNX RNN node")
    assert main(["dump", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("snnc: error: ") and "Loop" in err[0]


@pytest.mark.parametrize("name", ["rnn_last_opset13", "rnn_steps_opset14"])
def test_the_spiking_rnn_approaches_the_float_one_as_t_grows(name, rng):
    """Compiled with the default pipeline (calibrated on the data), the SNN's outputs
    approach the float model's: the relative error falls as the steps per input step T grow."""
    path, _ = fixture("torch", name)
    graph = load_model(path)
    x = rng.uniform(0, 1, (40, 7, 3)).astype(np.float32)
    expected = single_output(run_model(graph, x))
    compiled = compile_model(graph, Dataset(x, None, "uniform"))
    errors = []
    for timesteps in (4, 16, 64):
        snn = single_output(run_spiking(compiled.spiking, x, timesteps))
        assert snn.shape == expected.shape
        errors.append(np.abs(snn - expected).mean() / np.abs(expected).mean())
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.03, errors
