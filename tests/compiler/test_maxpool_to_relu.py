"""maxpool_to_relu: the rewritten float graph computes the max pool (against the interpreter's
max_pool2d) for overlapping windows, padding and odd sizes; max pools of possibly negative
inputs are kept with a note; balancing, conversion and the loihi pipeline take the ReLUs."""

import math

import numpy as np
import pytest

from pass_testing import assert_same_outputs, conv, dense, notes, op_names
from snnc.compiler import interpreter, ops
from snnc.compiler.errors import PassError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.passes import PassManager, parse_pipeline
from snnc.compiler.passes.maxpool_relu import maxpool_to_relu
from snnc.compiler.simulate import simulate


def pooled(shape, kernel, stride, pads, before=ops.ReLU()):
    """``max_pool2d(before(x))``."""
    b = GraphBuilder("g")
    r = b.add(before, [b.input("x", shape)], _AFFINE(shape[0]) if isinstance(before, ops.Affine) else None, name="r")
    b.output(b.add(ops.MaxPool2d(kernel, stride, pads), [r], name="pool"))
    return b.build()


def _AFFINE(c):
    return {"scale": np.ones(c, np.float32), "shift": np.zeros(c, np.float32)}


CASES = {
    "2x2_stride2": ((3, 8, 8), (2, 2), (2, 2), (0, 0, 0, 0)),
    "3x3_stride2_overlapping_same": ((2, 9, 7), (3, 3), (2, 2), (1, 1, 1, 1)),
    "3x3_stride2_valid_odd": ((2, 11, 9), (3, 3), (2, 2), (0, 0, 0, 0)),
    "2x2_pad_bottom_right_odd": ((1, 5, 7), (2, 2), (2, 2), (0, 0, 1, 1)),
    "3x2_stride_1x2": ((2, 6, 8), (3, 2), (1, 2), (1, 0, 1, 0)),
    "1x3_rows_only": ((2, 4, 9), (1, 3), (1, 3), (0, 0, 0, 0)),
    "4x5_two_levels_and_a_leftover": ((1, 10, 11), (4, 5), (3, 2), (2, 1, 1, 2)),
    "1x1_stride2_selection": ((2, 5, 5), (1, 1), (2, 2), (0, 0, 0, 0)),
}


@pytest.mark.parametrize("form", ["diff", "abs"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rewritten_graph_equals_the_max_pool(case, form, rng):
    shape, kernel, stride, pads = case
    before = pooled(shape, kernel, stride, pads)
    after = maxpool_to_relu(before, form=form)
    assert "max_pool2d" not in op_names(after)
    # one max (one relu, two for form=abs) per pair: k - 1 per axis, ceil(log2 k) deep
    relus = sum(k - 1 for k in kernel) * (1 if form == "diff" else 2)
    assert op_names(after).count("relu") - 1 == relus
    if relus:
        depth = sum(math.ceil(math.log2(k)) for k in kernel)
        assert f"as {relus} relu layer(s), {depth} in series" in notes(after)[0][1]
    # normal inputs: the relu makes a quarter to a half of each window exactly zero (ties);
    # small integers make ties between positive values too
    assert_same_outputs(before, after, rng.normal(size=(6, *shape)).astype(np.float32))
    assert_same_outputs(before, after, rng.integers(-2, 4, size=(6, *shape)).astype(np.float32))


def test_the_note_says_how_many_relu_layers_it_took():
    after = maxpool_to_relu(pooled((2, 9, 9), (3, 3), (2, 2), (1, 1, 1, 1)))
    assert notes(after, "maxpool_to_relu") == [
        ("pool", "max pooling 3x3 stride 2x2 rewritten exactly as 4 relu layer(s), 4 in series (max(a, b) = relu(a - b) + b)")
    ]


def test_the_last_op_keeps_the_max_pools_name():
    after = maxpool_to_relu(pooled((2, 8, 8), (2, 2), (2, 2), (0, 0, 0, 0)))
    assert after.node("pool").op.NAME == "add"
    assert after.node("output").inputs == ("pool",)


@pytest.mark.parametrize(
    "before, why",
    [
        (ops.Affine(), "its input %r may be negative"),
        (ops.ReLU(negative_slope=0.1), "its input %r may be negative"),
        (ops.ReLU(threshold=-0.5), "its input %r may be negative"),
    ],
    ids=["no_relu", "leaky_relu", "negative_threshold"],
)
def test_a_max_pool_of_a_possibly_negative_input_is_kept_with_a_note(before, why, rng):
    graph = pooled((1, 6, 6), (2, 2), (2, 2), (0, 0, 0, 0), before=before)
    after = maxpool_to_relu(graph)
    assert op_names(after) == op_names(graph)
    ((node, message),) = notes(after, "maxpool_to_relu")
    assert node == "pool" and message.startswith("max pooling kept: " + why)
    assert "after a relu" in message


def test_non_negativity_is_followed_through_pooling_padding_and_concat(rng):
    b = GraphBuilder("g")
    r = b.add(ops.ReLU(), [b.input("x", (1, 6, 6))], name="r")
    avg = b.add(ops.AvgPool2d((2, 2), (1, 1)), [r])
    cat = b.add(ops.Concat(0), [avg, b.add(ops.MaxPool2d((2, 2), (1, 1)), [r])])
    b.output(b.add(ops.MaxPool2d((2, 2), (2, 2)), [cat], name="pool"))
    padded = b.add(ops.Pad2d((0, 0, 1, 1), 0.5), [r])
    b.output(b.add(ops.MaxPool2d((3, 3), (2, 2)), [padded], name="pool_pad"), name="output_1")
    graph = b.build()
    after = maxpool_to_relu(graph)
    assert "max_pool2d" not in op_names(after)
    assert_same_outputs(graph, after, rng.normal(size=(4, 1, 6, 6)).astype(np.float32))


def test_unknown_form_is_refused():
    with pytest.raises(PassError, match="option form='max' is not one of diff, abs"):
        maxpool_to_relu(pooled((1, 4, 4), (2, 2), (2, 2), (0, 0, 0, 0)), form="max")


def net(rng, first=ops.ReLU()):
    """conv, relu, an overlapping 3x3 stride-2 'same' max pool, conv, relu, dense."""
    b = GraphBuilder("net")
    x = b.add(first, [conv(b, rng, b.input("x", (1, 8, 8)), 3)], name="relu1")
    x = b.add(ops.MaxPool2d((3, 3), (2, 2), (1, 1, 1, 1)), [x], name="pool")
    x = b.add(ops.ReLU(), [conv(b, rng, x, 4)], name="relu2")
    b.output(dense(b, rng, b.add(ops.Reshape((64,)), [x]), 3))
    return b.build()


def test_threshold_balance_keeps_the_rewritten_graphs_outputs(rng):
    graph = net(rng)
    x = rng.uniform(0, 1, (32, 1, 8, 8)).astype(np.float32)
    for per_channel in ("false", "true"):
        balanced, _ = PassManager(f"maxpool_to_relu,threshold_balance{{per_channel={per_channel}}}").run(graph, calibration=x)
        assert_same_outputs(graph, balanced, x)
        relus = [n for n in balanced.nodes if n.op.NAME == "relu"]
        assert len(relus) == 6 and all("scale" in n.meta for n in relus)


def test_the_spiking_graph_approaches_the_float_max_pool_network(rng):
    """The pool's relus become neurons: the readout approaches the float output as T grows."""
    graph = net(rng)
    x = rng.uniform(0, 1, (32, 1, 8, 8)).astype(np.float32)
    snn, _ = PassManager("maxpool_to_relu,threshold_balance,convert_to_spiking").run(graph, calibration=x)
    assert op_names(snn).count("if_neuron") == 6 and "spike_max_pool2d" not in op_names(snn)
    want = interpreter.run(graph, x)["output"]
    result = simulate(snn, x, [16, 256])
    errors = [np.abs(result.outputs[t]["output"] - want).mean() / np.abs(want).mean() for t in (16, 256)]
    assert errors[1] < errors[0] and errors[1] < 0.02


def test_the_loihi_pipeline_turns_max_pooling_after_a_relu_into_chip_neurons(rng):
    graph = net(rng)
    x = rng.uniform(0, 1, (16, 1, 8, 8)).astype(np.float32)
    assert [s.name for s in parse_pipeline("loihi")][2:4] == ["maxpool_to_relu", "maxpool_to_avgpool"]
    chip, _ = PassManager("loihi").run(graph, calibration=x)
    assert not {"avg_pool2d", "max_pool2d", "spike_max_pool2d"} & set(op_names(chip))
    populations = [n.name for n in chip.nodes if n.op.NAME == "loihi_compartments"]
    assert populations == ["pool_max", "pool_max_1", "pool_max_2", "pool_max_3", "relu2"]


def test_the_loihi_pipeline_averages_a_max_pool_it_cannot_rewrite(rng):
    leaky = net(rng, first=ops.ReLU(negative_slope=0.1))
    x = rng.uniform(0, 1, (16, 1, 8, 8)).astype(np.float32)
    chip, _ = PassManager("loihi").run(leaky, calibration=x)
    said = [m for _, m in notes(chip)]
    assert any(m.startswith("max pooling kept: its input %relu1 may be negative") for m in said)
    assert any(m.startswith("max pooling 3x3 replaced by average pooling") for m in said)


def test_the_loihi_avgpool_pipeline_keeps_the_old_replacement(rng):
    chip, _ = PassManager("loihi_avgpool").run(net(rng), calibration=rng.uniform(0, 1, (16, 1, 8, 8)).astype(np.float32))
    populations = [n.name for n in chip.nodes if n.op.NAME == "loihi_compartments"]
    assert populations == ["relu2"]
