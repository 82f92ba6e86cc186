"""Helpers for the pass tests: FileCheck-like IR comparison, the float-output check, and a
catalog of small random graphs that exercise what the float passes rewrite."""

from __future__ import annotations

import numpy as np

from snnc.compiler import interpreter, ops
from snnc.compiler.graph import Graph, GraphBuilder
from snnc.compiler.text import parse, print_graph

#: float passes preserve interpreter outputs to this tolerance
TOL = dict(rtol=1e-5, atol=1e-5)


def ir_text(graph: Graph) -> str:
    """The graph's IR text with inline parameters and without the graph's metadata (notes
    and pass records are checked separately)."""
    return print_graph(graph.replace(meta={}), inline_params=True)


def assert_ir(graph: Graph, expected: str) -> None:
    """The graph prints as ``expected`` (IR text with inline parameters; it is parsed and
    printed again, so spacing, attribute order and ``1`` vs ``1.0`` do not matter)."""
    assert ir_text(graph) == ir_text(parse(expected))


def notes(graph: Graph, pass_name: str | None = None) -> list[tuple[str, str]]:
    """``(node, message)`` of each note the passes recorded on the graph."""
    return [(n["node"], n["message"]) for n in graph.meta.get("notes", []) if pass_name in (None, n["pass"])]


def assert_same_outputs(before: Graph, after: Graph, x) -> None:
    want, got = interpreter.run(before, x), interpreter.run(after, x)
    assert want.keys() == got.keys()
    for name in want:
        np.testing.assert_allclose(got[name], want[name], **TOL, err_msg=f"output {name}")


def op_names(graph: Graph) -> list[str]:
    return [n.op.NAME for n in graph.nodes]


# ----------------------------------------------------------------------------- random graphs


def _w(rng, *shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return (rng.normal(size=shape) * (scale or 1.5 / np.sqrt(fan_in))).astype(np.float32)


def dense(b, rng, x, units, name=None):
    n = b.type_of(x).shape[0]
    return b.add(ops.Dense(units), [x], {"weight": _w(rng, units, n), "bias": _w(rng, units, scale=0.2)}, name=name)


def conv(b, rng, x, filters, k=3, pad=1, groups=1, stride=1, name=None):
    c = b.type_of(x).shape[0]
    op = ops.Conv2d(filters, (k, k), (stride, stride), (pad,) * 4, groups=groups)
    params = {"weight": _w(rng, filters, c // groups, k, k), "bias": _w(rng, filters, scale=0.2)}
    return b.add(op, [x], params, name=name)


def batch_norm(b, rng, x, name=None):
    c = b.type_of(x).shape[0]
    params = {
        "gamma": rng.uniform(0.5, 2.0, c).astype(np.float32) * rng.choice([-1, 1], c).astype(np.float32),
        "beta": rng.normal(0, 0.5, c).astype(np.float32),
        "mean": rng.normal(0, 0.5, c).astype(np.float32),
        "var": rng.uniform(0.2, 3.0, c).astype(np.float32),
    }
    return b.add(ops.BatchNorm(1e-3), [x], params, name=name)


def keras_flatten(b, x):
    """Keras ``Flatten`` of a channels-last model, as the frontend writes it."""
    t = b.add(ops.Transpose((1, 2, 0)), [x])
    return b.add(ops.Reshape((b.type_of(t).size,)), [t], name="flatten")


def conv_bn_net(rng) -> Graph:
    """conv+BN, relu after max pool, a grouped conv+BN, dense+BN, an output softmax."""
    b = GraphBuilder("conv_bn")
    x = b.input("input", (3, 8, 8))
    x = b.add(ops.ReLU(), [batch_norm(b, rng, conv(b, rng, x, 4))], name="relu1")
    x = b.add(ops.MaxPool2d((2, 2), (2, 2)), [x], name="pool1")
    x = b.add(ops.ReLU(), [x], name="relu_after_pool")
    x = b.add(ops.ReLU(), [batch_norm(b, rng, conv(b, rng, x, 6, groups=2))], name="relu2")
    x = b.add(ops.GlobalAvgPool(), [x])
    x = b.add(ops.ReLU(), [batch_norm(b, rng, dense(b, rng, x, 8))], name="relu3")
    b.output(b.add(ops.Softmax(), [dense(b, rng, x, 3, name="logits")]))
    return b.build()


def dense_bn_net(rng) -> Graph:
    """dense+BN, a clipped relu, a BN that follows a relu (no layer to fold into), a relu
    with a threshold."""
    b = GraphBuilder("dense_bn")
    x = b.input("input", (10,))
    x = b.add(ops.ReLU(max_value=0.8), [batch_norm(b, rng, dense(b, rng, x, 12))], name="relu1")
    x = batch_norm(b, rng, x, name="bn_after_relu")
    x = b.add(ops.ReLU(threshold=0.1), [dense(b, rng, x, 8)], name="relu2")
    b.output(dense(b, rng, x, 4, name="logits"))
    return b.build()


def flatten_net(rng) -> Graph:
    """A BN straight after the input, conv, avg pool, Keras-style flatten into a dense."""
    b = GraphBuilder("flatten")
    x = b.input("input", (2, 6, 6))
    x = batch_norm(b, rng, x, name="bn_input")
    x = b.add(ops.ReLU(), [conv(b, rng, x, 3, pad=0)], name="relu1")
    x = b.add(ops.AvgPool2d((2, 2), (2, 2)), [x])
    x = b.add(ops.ReLU(), [dense(b, rng, keras_flatten(b, x), 6)], name="relu2")
    b.output(dense(b, rng, x, 3, name="logits"))
    return b.build()


def residual_net(rng) -> Graph:
    """A residual add whose shortcut comes from another relu, a concat along channels,
    padding with a non-zero value, an affine between layers, a Keras flatten, softmax."""
    b = GraphBuilder("residual")
    x = b.input("input", (2, 6, 6))
    a = b.add(ops.ReLU(), [conv(b, rng, x, 4)], name="relu_a")
    r = b.add(ops.ReLU(), [conv(b, rng, a, 4)], name="relu_b")
    s = b.add(ops.Add(), [conv(b, rng, r, 4), a], name="residual")
    c = b.add(ops.ReLU(), [s], name="relu_c")
    x = b.add(ops.Concat(0), [c, r], name="cat")
    affine = {"scale": rng.uniform(0.5, 2, 8).astype(np.float32), "shift": rng.normal(0, 0.3, 8).astype(np.float32)}
    x = b.add(ops.Affine(), [x], affine)
    x = b.add(ops.ReLU(), [conv(b, rng, x, 3, k=2, pad=0, stride=2)], name="relu_d")
    x = b.add(ops.Pad2d((1, 1, 0, 0), 0.25), [x])
    x = b.add(ops.ReLU(), [conv(b, rng, x, 3, pad=0)], name="relu_e")
    x = b.add(ops.ReLU(), [dense(b, rng, keras_flatten(b, x), 5)], name="relu_f")
    b.output(b.add(ops.Softmax(), [dense(b, rng, x, 3, name="logits")]))
    return b.build()


def branchy_net(rng) -> Graph:
    """A relu on the input, one conv read by two relus, a concat of the input with relus,
    an add of three values, outputs in the middle, a concat along H, keepdims pooling."""
    b = GraphBuilder("branchy")
    x = b.input("input", (2, 6, 6))
    c = conv(b, rng, b.add(ops.ReLU(), [x], name="relu_input"), 3)
    r1 = b.add(ops.ReLU(), [c], name="relu1")
    r2 = b.add(ops.ReLU(), [c], name="relu2")
    r3 = b.add(ops.ReLU(), [conv(b, rng, b.add(ops.Concat(0), [x, r1, r2]), 3)], name="relu3")
    r4 = b.add(ops.ReLU(), [b.add(ops.Add(), [r3, r1, conv(b, rng, r2, 3)])], name="relu4")
    x = b.add(ops.GlobalAvgPool(keepdims=True), [b.add(ops.MaxPool2d((2, 2), (2, 2)), [r4])])
    b.output(dense(b, rng, b.add(ops.Reshape((3,)), [x]), 2))
    b.output(r4, name="output_relu4")
    b.output(b.add(ops.Concat(1), [r1, r3]), name="output_rows")
    return b.build()


#: name -> builder; each graph's input is a single array of the graph's input shape
NETS = {
    "conv_bn": conv_bn_net,
    "dense_bn": dense_bn_net,
    "flatten": flatten_net,
    "residual": residual_net,
    "branchy": branchy_net,
}


def inputs_for(graph: Graph, rng, n: int = 32) -> np.ndarray:
    (inp,) = graph.inputs
    return rng.normal(size=(n, *inp.type.shape)).astype(np.float32)
