"""Channels-last ONNX models (tf2onnx exports of Keras models, made by
benchmarks/make_tf2onnx_fixtures.py and checked in; and graphs built here in their style):
the NHWC input the model transposes to NCHW becomes a CHW IR input with
``source_layout="HWC"``, so they import equal to onnxruntime fed NHWC data, dump their true
layout, and compile."""

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from onnx_testing import ATOL, RTOL, assert_matches_onnxruntime, make_model, ort_outputs, save
from snnc.compiler import load_model, run_model
from snnc.compiler.api import run_spiking, source_shape
from snnc.compiler.cli import main
from snnc.compiler.datasets import Dataset
from snnc.compiler.driver import compile_model

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "onnx" / "tf2onnx"
MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text())["exports"]
#: exports whose input tf2onnx transposes to NCHW (the MLP flattens its NHWC input as it is)
CONV_EXPORTS = [name for name, e in MANIFEST.items() if "Conv" in e["ops"]]
#: the IR input each export gets: (source_layout, IR shape)
INPUTS = {
    "keras_cnn_opset13": ("HWC", (2, 12, 12)),
    "keras_residual_opset15": ("HWC", (3, 8, 8)),
    "keras_mlp_opset13": ("CHW", (6, 6, 2)),
}
#: SNN outputs after this many steps must pick the float model's class
TIMESTEPS = 64
#: on at least this share of random examples
MIN_AGREEMENT = 0.9


def fixture(name):
    path = FIXTURES / MANIFEST[name]["file"]
    return path, np.load(path.with_suffix(".npz"))


def uniform_batch(data, rng, n: int = 60) -> np.ndarray:
    """Random pixel-like data in [0, 1] in the model's own (NHWC) layout."""
    return rng.uniform(0, 1, size=(n, *data["x"].shape[1:])).astype(np.float32)


def test_manifest_lists_the_three_exports():
    assert set(MANIFEST) == set(INPUTS)
    assert all(e["exporter"].startswith("tf2onnx") for e in MANIFEST.values())
    assert "BatchNormalization" in MANIFEST["keras_residual_opset15"]["ops"]


@pytest.mark.parametrize("name", MANIFEST)
def test_export_matches_onnxruntime_on_nhwc_data(name, rng):
    path, data = fixture(name)
    graph = assert_matches_onnxruntime(path, [data["x"]])
    np.testing.assert_allclose(next(iter(run_model(graph, data["x"]).values())), data["y"], rtol=RTOL, atol=ATOL)
    assert_matches_onnxruntime(path, [rng.normal(size=(7, *data["x"].shape[1:])).astype(np.float32)])
    (node,) = graph.inputs
    assert (node.op.source_layout, node.type.shape) == INPUTS[name]
    assert source_shape(graph, node.name) == data["x"].shape[1:]  # data in the model's own layout


@pytest.mark.parametrize("name", CONV_EXPORTS)
def test_input_transpose_is_absorbed(name):
    graph = load_model(fixture(name)[0])
    (node,) = graph.inputs
    readers = [n for n in graph.nodes if node.name in n.inputs]
    assert {n.op.NAME for n in readers} == {"conv2d"}


@pytest.mark.parametrize("name", CONV_EXPORTS)
def test_dump_shows_the_source_layout(name, capsys):
    assert main(["dump", str(fixture(name)[0])]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "= input(" in line)
    layout, shape = INPUTS[name]
    assert f'source_layout="{layout}"' in line and line.endswith(f"f32[{','.join(map(str, shape))}]")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name", MANIFEST)
def test_compiles_and_the_snn_agrees_with_onnxruntime(name, rng):
    """The default pipeline compiles the export; the float graphs between its passes still
    equal onnxruntime (canonicalize drops an output softmax: the logits before it do), and
    the spiking network picks onnxruntime's class on most random examples."""
    path, data = fixture(name)
    x = uniform_batch(data, rng)
    expected = ort_outputs(path, [x])[0]
    compiled = compile_model(load_model(path), Dataset(x, None, "uniform"))
    assert compiled.spiking.stage == "spiking"
    for record in compiled.records:
        if record.graph.stage == "float":
            ours = next(iter(run_model(record.graph, x).values()))
            if "Softmax" in MANIFEST[name]["ops"]:
                ours = _softmax(ours)
            np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5, err_msg=record.spec.name)
    snn = next(iter(run_spiking(compiled.spiking, x, TIMESTEPS).values()))
    assert np.mean(snn.argmax(1) == expected.argmax(1)) >= MIN_AGREEMENT


def test_cli_compiles_and_runs_on_nhwc_data(tmp_path, rng):
    path, data = fixture("keras_cnn_opset13")
    x = uniform_batch(data, rng)
    np.savez(tmp_path / "calib.npz", x=x)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "compiled"
    assert main(["compile", str(path), "--calib", str(tmp_path / "calib.npz"), "-o", str(out)]) == 0
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    snn = np.load(tmp_path / "y.npy")
    assert np.mean(snn.argmax(1) == ort_outputs(path, [x])[0].argmax(1)) >= MIN_AGREEMENT


# ----------------------------------------------------------------------------- graphs in tf2onnx's style


def _channels_last_net(rng, join: str | None):
    """NHWC input -> Transpose(0,3,1,2) -> Conv -> Relu -> Transpose(0,2,3,1) [-> ``join``
    (Add, or Concat along channels) with the NHWC input itself] -> Reshape -> MatMul -> Add."""
    weight = rng.normal(size=(2, 2, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "W"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("Transpose", ["relu"], ["nhwc"], perm=[0, 2, 3, 1]),
    ]
    if join == "Add":
        nodes.append(helper.make_node("Add", ["nhwc", "x"], ["joined"]))
    elif join == "Concat":
        nodes.append(helper.make_node("Concat", ["nhwc", "x"], ["joined"], axis=3))
    size = 4 * 4 * (4 if join == "Concat" else 2)
    nodes += [
        helper.make_node("Reshape", ["joined" if join else "nhwc", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "M"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["y"]),
    ]
    initializers = {
        "W": weight,
        "M": rng.normal(size=(size, 5)).astype(np.float32),
        "shape": np.array([-1, size]),
        "b": rng.normal(size=5).astype(np.float32),
    }
    return make_model(nodes, {"x": ["N", 4, 4, 2]}, ["y"], initializers)


@pytest.mark.parametrize("join", [None, "Add", "Concat"])
def test_channels_last_graph_imports_and_compiles(tmp_path, rng, join):
    """An input read both by the Transpose to NCHW and as it is (NHWC, joined with the conv
    branch) gets one CHW IR input; the NHWC reader reads it transposed back."""
    path = save(_channels_last_net(rng, join), tmp_path)
    x = rng.uniform(0, 1, size=(40, 4, 4, 2)).astype(np.float32)
    graph = assert_matches_onnxruntime(path, [x])
    assert (graph.inputs[0].op.source_layout, graph.inputs[0].type.shape) == ("HWC", (2, 4, 4))
    compiled = compile_model(graph, Dataset(x, None, "uniform"))
    float_out = next(iter(run_model(compiled.float, x).values()))
    np.testing.assert_allclose(float_out, ort_outputs(path, [x])[0], rtol=1e-4, atol=1e-5)


def test_channels_last_sequence_input(tmp_path, rng):
    """A rank-3 ``[N,W,C]`` input transposed to ``[N,C,W]`` gets source_layout ``WC``."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["ncw"], perm=[0, 2, 1]),
        helper.make_node("Relu", ["ncw"], ["relu"]),
        helper.make_node("Flatten", ["relu"], ["flat"]),
        helper.make_node("MatMul", ["flat", "M"], ["y"]),
    ]
    model = make_model(nodes, {"x": ["N", 5, 3]}, ["y"], {"M": rng.normal(size=(15, 4)).astype(np.float32)})
    graph = assert_matches_onnxruntime(save(model, tmp_path), [rng.normal(size=(3, 5, 3)).astype(np.float32)])
    assert (graph.inputs[0].op.source_layout, graph.inputs[0].type.shape) == ("WC", (3, 5))


def test_conv_on_a_transposed_image_compiles(tmp_path, rng):
    """A Conv reading an NCHW tensor whose H and W a Transpose swapped (ONNX axes are
    positional) imports and compiles, its float graph equal to onnxruntime."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["swapped"], perm=[0, 1, 3, 2]),
        helper.make_node("Conv", ["swapped", "W"], ["conv"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("Flatten", ["relu"], ["flat"]),
        helper.make_node("MatMul", ["flat", "M"], ["y"]),
    ]
    inits = {"W": rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "M": rng.normal(size=(96, 5)).astype(np.float32)}
    path = save(make_model(nodes, {"x": ["N", 3, 8, 6]}, ["y"], inits), tmp_path)
    x = rng.uniform(0, 1, size=(20, 3, 8, 6)).astype(np.float32)
    graph = assert_matches_onnxruntime(path, [x])
    compiled = compile_model(graph, Dataset(x, None, "uniform"))
    np.testing.assert_allclose(
        next(iter(run_model(compiled.float, x).values())), ort_outputs(path, [x])[0], rtol=1e-4, atol=1e-5
    )


def test_unoptimized_export_with_transposes_around_each_conv_compiles(tmp_path, rng):
    """tf2onnx without its optimizer wraps each Conv in Transposes to NCHW and back, the
    ReLUs running on NHWC tensors; the spiking network still picks onnxruntime's class."""
    nodes = []
    for i in (1, 2):
        src = "x" if i == 1 else "relu1"
        nodes += [
            helper.make_node("Transpose", [src], [f"nchw{i}"], perm=[0, 3, 1, 2]),
            helper.make_node("Conv", [f"nchw{i}", f"W{i}"], [f"conv{i}"], kernel_shape=[3, 3]),
            helper.make_node("Transpose", [f"conv{i}"], [f"nhwc{i}"], perm=[0, 2, 3, 1]),
            helper.make_node("Relu", [f"nhwc{i}"], [f"relu{i}"]),
        ]
    nodes += [
        helper.make_node("Reshape", ["relu2", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "M"], ["y"]),
    ]
    inits = {
        "W1": (0.3 * rng.normal(size=(4, 3, 3, 3))).astype(np.float32),
        "W2": (0.3 * rng.normal(size=(4, 4, 3, 3))).astype(np.float32),
        "M": rng.normal(size=(64, 10)).astype(np.float32),
        "shape": np.array([-1, 64]),
    }
    path = save(make_model(nodes, {"x": ["N", 8, 8, 3]}, ["y"], inits), tmp_path)
    x = rng.uniform(0, 1, size=(60, 8, 8, 3)).astype(np.float32)
    graph = assert_matches_onnxruntime(path, [x])
    assert graph.inputs[0].op.source_layout == "HWC"
    compiled = compile_model(graph, Dataset(x, None, "uniform"))
    expected = ort_outputs(path, [x])[0]
    np.testing.assert_allclose(next(iter(run_model(compiled.float, x).values())), expected, rtol=1e-4, atol=1e-5)
    snn = next(iter(run_spiking(compiled.spiking, x, TIMESTEPS).values()))
    assert np.mean(snn.argmax(1) == expected.argmax(1)) >= MIN_AGREEMENT
