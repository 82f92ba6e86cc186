"""IR text format: printer/parser round trip (property test) and clear parse errors."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnc.compiler import ops
from snnc.compiler.errors import ParseError, VerificationError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.text import load, parse, print_graph, save

FLOATS = st.floats(-4, 4, allow_nan=False, width=32)
META = st.dictionaries(
    st.sampled_from(["scale", "lambda", "note", "rates", "p"]),
    st.one_of(FLOATS, st.integers(-5, 5), st.text(max_size=5), st.lists(FLOATS, max_size=3)),
    max_size=2,
)


def _array(draw, shape):
    return np.array(draw(st.lists(FLOATS, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))), np.float32).reshape(shape)


def _image_layer(draw, b: GraphBuilder, x: str) -> str:
    """One random op applicable to the CHW image ``x``."""
    c, h, w = b.type_of(x).shape
    kind = draw(st.sampled_from(["conv", "avg", "max", "relu", "bn", "affine", "pad", "add", "concat"]))
    meta = draw(META)
    if kind == "conv":
        groups = draw(st.sampled_from([g for g in (1, c) if c % g == 0]))
        filters = groups * draw(st.integers(1, 2))
        k = draw(st.integers(1, min(3, h, w)))
        op = ops.Conv2d(filters, (k, k), (draw(st.integers(1, 2)),) * 2, tuple(draw(st.lists(st.integers(0, 1), min_size=4, max_size=4))), (1, 1), groups)
        params = {"weight": _array(draw, (filters, c // groups, k, k)), "bias": _array(draw, (filters,))}
        return b.add(op, [x], params, meta=meta)
    if kind in ("avg", "max"):
        k = draw(st.integers(1, min(2, h, w)))
        if kind == "avg":
            op = ops.AvgPool2d((k, k), (k, k), count_include_pad=draw(st.booleans()))
        else:
            op = ops.MaxPool2d((k, k), (k, k))
        return b.add(op, [x], meta=meta)
    if kind == "relu":
        max_value = draw(st.one_of(st.none(), st.floats(0.5, 6, width=32)))
        return b.add(ops.ReLU(max_value=max_value, negative_slope=draw(st.sampled_from([0.0, 0.1]))), [x], meta=meta)
    if kind == "bn":
        var = np.abs(_array(draw, (c,))) + 0.1
        params = {"gamma": _array(draw, (c,)), "beta": _array(draw, (c,)), "mean": _array(draw, (c,)), "var": var}
        return b.add(ops.BatchNorm(epsilon=draw(st.sampled_from([1e-3, 1e-5]))), [x], params, meta=meta)
    if kind == "affine":
        return b.add(ops.Affine(), [x], {"scale": _array(draw, (c,)), "shift": _array(draw, (c,))}, meta=meta)
    if kind == "pad":
        return b.add(ops.Pad2d((1, 0, 0, 1), draw(st.sampled_from([0.0, -1.5]))), [x])
    if kind == "add":
        return b.add(ops.Add(), [x, b.add(ops.ReLU(), [x])])
    return b.add(ops.Concat(0), [x, b.add(ops.ReLU(max_value=1.0), [x])])


@st.composite
def graphs(draw):
    b = GraphBuilder(draw(st.sampled_from(["g", "model_1", "LeNet"])))
    shape = (draw(st.integers(1, 3)), draw(st.integers(2, 6)), draw(st.integers(2, 6)))
    x = b.input("input", shape, source_layout=draw(st.sampled_from(["", "HWC", "CHW"])))
    for _ in range(draw(st.integers(0, 4))):
        x = _image_layer(draw, b, x)
    if draw(st.booleans()):
        x = b.add(ops.GlobalAvgPool(keepdims=False), [x])
    else:
        x = b.add(ops.Transpose((1, 2, 0)), [x])
        x = b.add(ops.Reshape((b.type_of(x).size,)), [x])
    units = draw(st.integers(1, 4))
    n = b.type_of(x).shape[0]
    x = b.add(ops.Dense(units), [x], {"weight": _array(draw, (units, n)), "bias": _array(draw, (units,))})
    if draw(st.booleans()):
        x = b.add(ops.Softmax(), [x])
    b.output(x)
    return b.build(meta=draw(META))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graphs())
def test_round_trip_inline(graph):
    text = print_graph(graph, inline_params=True)
    again = parse(text)
    assert again == graph
    assert print_graph(again, inline_params=True) == text


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(graph=graphs())
def test_round_trip_through_files(graph, tmp_path):
    path = save(graph, tmp_path / "model.ir")
    assert load(path) == graph


def _tiny():
    b = GraphBuilder("tiny")
    x = b.input("input", (2,))
    y = b.add(ops.Dense(1), [x], {"weight": np.ones((1, 2)), "bias": np.zeros(1)}, name="fc")
    b.output(y)
    return b.build()


def test_equality_sees_parameter_changes():
    g = _tiny()
    node = g.node("fc")
    changed = g.replace(nodes=[n if n is not node else node.replace(params={"weight": np.full((1, 2), 2.0), "bias": np.zeros(1)}) for n in g.nodes])
    assert changed != g
    assert print_graph(changed) != print_graph(g)  # the hash in the text shows the change


def test_params_file_must_match_text(tmp_path):
    path = save(_tiny(), tmp_path / "m.ir")
    np.savez(path.with_suffix(".npz"), **{"fc.weight": np.full((1, 2), 3.0, np.float32), "fc.bias": np.zeros(1, np.float32)})
    with pytest.raises(ParseError, match="fc.weight .* does not match"):
        load(path)


@pytest.mark.parametrize(
    "line, message",
    [
        ("%x = frobnicate(%input) : f32[2]", "unknown op 'frobnicate'"),
        ("%x = relu(%nope) {max_value=none, negative_slope=0.0, threshold=0.0} : f32[2]", "input %nope is not defined"),
        ("%x = relu(%input) {max_value=none, negative_slope=0.0, threshold=0.0} : f32[3]", "type is f32\\[3\\] but the op gives f32\\[2\\]"),
        ("%x = relu(%input) {bogus=1} : f32[2]", "bad attributes for relu"),
        ("%x = dense(%input) {units=1, weight=<1x2 f32 #00000000>, bias=<1 f32 = [0.0]>} : f32[1]", "parameter x.weight is not in the parameter file"),
        ("%x = relu(%input) : f32[2] meta {oops", "bad metadata JSON"),
        ("x = relu(%input) : f32[2]", "a node line starts with %name"),
    ],
)
def test_parse_errors_name_the_problem(line, message):
    text = f'graph @g : float {{\n  %input = input() {{shape=[2], dtype="f32", source_layout=""}} : f32[2]\n  {line}\n  %out = output(%x) {{source_layout=""}} : f32[2]\n}}\n'
    with pytest.raises((ParseError, VerificationError), match=message):
        parse(text)


def test_parse_rejects_missing_header_and_brace():
    with pytest.raises(ParseError, match="expected 'graph @name"):
        parse("%x = relu(%y) : f32[1]\n}")
    with pytest.raises(ParseError, match="closing"):
        parse("graph @g : float {\n")
