"""ONNX 1-D ops on (N, C, L) tensors (PyTorch Conv1d, AvgPool1d, MaxPool1d and global
pooling exports) against onnxruntime: each runs as the IR's 2-D op on the one-row image
(C, 1, L)."""

import numpy as np
import pytest
from onnx import helper

from onnx_testing import check, make_model
from snnc.compiler import ops

C, L = 4, 13


def conv1d_model(attrs, weight_shape=(6, C, 3), bias=True, length=L):
    names = ["x", "w", "b"] if bias else ["x", "w"]
    init = {"w": np.random.default_rng(1).normal(size=weight_shape).astype(np.float32)}
    if bias:
        init["b"] = np.random.default_rng(2).normal(size=weight_shape[0]).astype(np.float32)
    node = helper.make_node("Conv", names, ["y"], name="conv", **attrs)
    return make_model([node], {"x": ["N", weight_shape[1] * attrs.get("group", 1), length]}, ["y"], init)


@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"pads": [1, 2], "strides": [2]},
        {"dilations": [2], "pads": [2, 2]},
        {"auto_pad": "SAME_UPPER", "strides": [2]},
        {"auto_pad": "SAME_LOWER", "kernel_shape": [3]},
        {"auto_pad": "VALID"},
    ],
)
def test_conv1d(attrs, tmp_path, rng):
    graph = check(conv1d_model(attrs), tmp_path, rng)
    (conv,) = [n for n in graph.nodes if isinstance(n.op, ops.Conv2d)]
    assert conv.op.kernel == (1, 3) and conv.type.shape[1] == 1


def test_conv1d_groups_without_bias(tmp_path, rng):
    check(conv1d_model({"group": 2}, weight_shape=(6, 2, 3), bias=False), tmp_path, rng)


@pytest.mark.parametrize(
    "op_type, attrs",
    [
        ("AveragePool", {"kernel_shape": [3], "strides": [2]}),
        ("AveragePool", {"kernel_shape": [3], "pads": [1, 1], "count_include_pad": 1}),
        ("AveragePool", {"kernel_shape": [2], "strides": [2], "ceil_mode": 1}),
        ("MaxPool", {"kernel_shape": [2]}),
        ("MaxPool", {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
        ("MaxPool", {"kernel_shape": [2], "strides": [2], "ceil_mode": 1}),
    ],
)
def test_pooling1d(op_type, attrs, tmp_path, rng):
    node = helper.make_node(op_type, ["x"], ["y"], name="pool", **attrs)
    check(make_model([node], {"x": ["N", C, L]}, ["y"]), tmp_path, rng)


@pytest.mark.parametrize("op_type", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pooling1d(op_type, tmp_path, rng):
    node = helper.make_node(op_type, ["x"], ["y"], name="pool")
    check(make_model([node], {"x": ["N", C, L]}, ["y"]), tmp_path, rng)


def test_pytorch_style_conv1d_classifier(tmp_path, rng):
    """Conv1d-ReLU-MaxPool1d-Conv1d-ReLU-AvgPool, Flatten, Gemm: as torch.onnx exports a
    Conv1d classifier; the graph runs in its own (N, C, L) layout."""
    w1 = rng.normal(size=(5, C, 3)).astype(np.float32)
    w2 = rng.normal(size=(6, 5, 3)).astype(np.float32)
    fc = rng.normal(size=(3, 6 * 2)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2], strides=[2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("AveragePool", ["r2"], ["p2"], name="pool2", kernel_shape=[2], strides=[2]),
        helper.make_node("Flatten", ["p2"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1),
    ]
    model = make_model(nodes, {"x": ["N", C, L]}, ["y"], {"w1": w1, "w2": w2, "fc": fc})
    graph = check(model, tmp_path, rng)
    assert graph.inputs[0].type.shape == (C, L)
