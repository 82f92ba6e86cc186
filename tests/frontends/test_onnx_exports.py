"""Real PyTorch exports (made by benchmarks/make_onnx_fixtures.py, checked in): snnc's
interpreter on the imported graph equals onnxruntime run live on the file, and the CLI
dumps and runs them."""

import json
from pathlib import Path

import numpy as np
import pytest

from onnx_testing import ATOL, RTOL, assert_matches_onnxruntime
from snnc.compiler import load_model, run_model
from snnc.compiler.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "onnx"
MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text())["exports"]

#: IR ops each exported model must import as (BatchNorm stays until fold_batchnorm)
EXPECTED_OPS = {
    "MLP": {"dense", "relu", "softmax"},
    "LeNetBN": {"conv2d", "batch_norm", "relu", "max_pool2d", "reshape", "dense"},
    "ResNetBlock": {"conv2d", "batch_norm", "relu", "add", "global_avg_pool", "reshape", "dense"},
    "ConcatNet": {"affine", "conv2d", "relu", "concat", "avg_pool2d", "pad2d", "reshape", "dense"},
}


def fixture(name):
    path = FIXTURES / MANIFEST[name]["file"]
    return path, np.load(path.with_suffix(".npz"))


@pytest.mark.parametrize("name", MANIFEST)
def test_export_matches_onnxruntime(name):
    path, data = fixture(name)
    graph = assert_matches_onnxruntime(path, [data["x"]])
    ours = next(iter(run_model(graph, data["x"]).values()))
    np.testing.assert_allclose(ours, data["y"], rtol=RTOL, atol=ATOL)  # and the stored output
    ops = {n.op.NAME for n in graph.nodes} - {"input", "output"}
    expected = EXPECTED_OPS[MANIFEST[name]["model"]]
    if MANIFEST[name]["exporter"] == "dynamo":  # its optimizer folds BatchNorm into the convs
        expected = expected - {"batch_norm"}
    assert ops == expected, sorted(ops)


@pytest.mark.parametrize("name", [n for n, e in MANIFEST.items() if e["input_shape"][0] != 1])
def test_dynamic_batch_takes_any_batch_size(name, rng):
    path, data = fixture(name)
    x = rng.normal(size=(7, *data["x"].shape[1:])).astype(np.float32)
    assert_matches_onnxruntime(path, [x])


def test_fixed_batch_of_one_runs_on_batches():
    path, data = fixture("lenet_bn_opset13_batch1")
    x = np.concatenate([data["x"], data["x"] * 0.5, -data["x"]])
    graph = load_model(path)
    batched = next(iter(run_model(graph, x).values()))
    for i in range(3):
        one = next(iter(run_model(graph, x[i : i + 1]).values()))
        np.testing.assert_allclose(batched[i : i + 1], one, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(batched[:1], data["y"], rtol=RTOL, atol=ATOL)


def test_dynamo_export_reads_its_external_data():
    path = FIXTURES / MANIFEST["resnet_block_dynamo"]["file"]
    assert MANIFEST["resnet_block_dynamo"]["external_data"] == [path.name + ".data"]
    graph = load_model(path)
    assert graph.meta["source"]["producer"].startswith("pytorch")


# ----------------------------------------------------------------------------- CLI


def test_cli_dump(capsys):
    path, _ = fixture("lenet_bn_opset11")
    assert main(["dump", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("graph @") and "batch_norm(" in text and "max_pool2d(" in text


def test_cli_run_matches_onnxruntime(tmp_path):
    from onnx_testing import ort_outputs

    path, data = fixture("concat_opset11")
    np.save(tmp_path / "x.npy", data["x"])
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), ort_outputs(path, [data["x"]])[0], rtol=RTOL, atol=ATOL)
