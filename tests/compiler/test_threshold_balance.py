"""threshold_balance: before/expected IR on hand-computable calibration data, outputs
preserved on random graphs, balanced activations = original / recorded scale, and errors."""

import numpy as np
import pytest

from pass_testing import NETS, assert_ir, assert_same_outputs, inputs_for, notes
from snnc.compiler import interpreter, ops
from snnc.compiler.errors import DataError, PassError
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.compiler.passes.fold_batchnorm import fold_batchnorm
from snnc.compiler.passes.threshold_balance import threshold_balance
from snnc.compiler.text import parse

MLP = """
graph @g : float {
  %x = input() {shape=[2]} : f32[2]
  %d1 = dense(%x) {units=2, weight=<2x2 f32 = [1,0,0,1]>, bias=<2 f32 = [0,0]>} : f32[2]
  %r = relu(%d1) : f32[2]
  %d2 = dense(%r) {units=1, weight=<1x2 f32 = [1,1]>, bias=<1 f32 = [0.5]>} : f32[1]
  %output = output(%d2) : f32[1]
}
"""
# relu activations on it: [4, 1], [2, 0], [1, 2]
CALIBRATION = np.float32([[4, 1], [2, -1], [1, 2]])


def test_method_max_divides_by_the_largest_activation():
    after = threshold_balance(parse(MLP), calibration=CALIBRATION, method="max")
    assert_ir(after, """
    graph @g : float {
      %x = input() {shape=[2]} : f32[2]
      %d1 = dense(%x) {units=2, weight=<2x2 f32 = [0.25,0,0,0.25]>, bias=<2 f32 = [0,0]>} : f32[2]
      %r = relu(%d1) : f32[2] meta {"scale": 4.0, "calibration": {"max": 4.0, "above_scale": 0.0}}
      %d2 = dense(%r) {units=1, weight=<1x2 f32 = [4,4]>, bias=<1 f32 = [0.5]>} : f32[1]
      %output = output(%d2) : f32[1]
    }
    """)
    assert dict(after.meta) == {"threshold_balance": {"method": "max", "per_channel": False, "examples": 3}}


def test_per_channel_scales():
    after = threshold_balance(parse(MLP), calibration=CALIBRATION, method="max", per_channel=True)
    assert_ir(after, """
    graph @g : float {
      %x = input() {shape=[2]} : f32[2]
      %d1 = dense(%x) {units=2, weight=<2x2 f32 = [0.25,0,0,0.5]>, bias=<2 f32 = [0,0]>} : f32[2]
      %r = relu(%d1) : f32[2] meta {"scale": [4.0, 2.0], "calibration": {"max": 4.0, "above_scale": 0.0}}
      %d2 = dense(%r) {units=1, weight=<1x2 f32 = [4,2]>, bias=<1 f32 = [0.5]>} : f32[1]
      %output = output(%d2) : f32[1]
    }
    """)


def test_percentile_of_the_positive_activations():
    # positive activations 4, 1, 2, 1, 2: the median is 2, and 1 of the 6 activations is above it
    after = threshold_balance(parse(MLP), calibration=CALIBRATION, method="percentile", p=50)
    relu = after.node("r")
    assert dict(relu.meta) == {"scale": 2.0, "calibration": {"max": 4.0, "above_scale": 1 / 6}}
    np.testing.assert_array_equal(after.node("d1").params["weight"], np.float32([[0.5, 0], [0, 0.5]]))
    assert dict(after.meta)["threshold_balance"] == {"method": "percentile", "p": 50.0, "per_channel": False, "examples": 3}


def test_rescale_where_a_residual_shortcut_and_an_output_meet():
    # a = x (scale 2 on this data), s = 2a (scale 4): the shortcut a reaches the add at scale
    # 2 where the add wants 4, and the output wants scale 1
    before = parse("""
    graph @g : float {
      %x = input() {shape=[2]} : f32[2]
      %d1 = dense(%x) {units=2, weight=<2x2 f32 = [1,0,0,1]>, bias=<2 f32 = [0,0]>} : f32[2]
      %a = relu(%d1) : f32[2]
      %d2 = dense(%a) {units=2, weight=<2x2 f32 = [1,0,0,1]>, bias=<2 f32 = [0,0]>} : f32[2]
      %s = add(%d2, %a) : f32[2]
      %c = relu(%s) : f32[2]
      %output = output(%c) : f32[2]
    }
    """)
    x = np.float32([[2, 1], [1, 0.5]])
    after = threshold_balance(before, calibration=x, method="max")
    assert_ir(after, """
    graph @g : float {
      %x = input() {shape=[2]} : f32[2]
      %d1 = dense(%x) {units=2, weight=<2x2 f32 = [0.5,0,0,0.5]>, bias=<2 f32 = [0,0]>} : f32[2]
      %a = relu(%d1) : f32[2] meta {"scale": 2.0, "calibration": {"max": 2.0, "above_scale": 0.0}}
      %d2 = dense(%a) {units=2, weight=<2x2 f32 = [0.5,0,0,0.5]>, bias=<2 f32 = [0,0]>} : f32[2]
      %a_rescale = affine(%a) {scale=<2 f32 = [0.5,0.5]>, shift=<2 f32 = [0,0]>} : f32[2]
      %s = add(%d2, %a_rescale) : f32[2]
      %c = relu(%s) : f32[2] meta {"scale": 4.0, "calibration": {"max": 4.0, "above_scale": 0.0}}
      %c_rescale = affine(%c) {scale=<2 f32 = [4,4]>, shift=<2 f32 = [0,0]>} : f32[2]
      %output = output(%c_rescale) : f32[2]
    }
    """)
    message = "rescaled where scales meet (an add, concat or output)"
    assert notes(after) == [("a", message), ("c", message)]
    assert_same_outputs(before, after, x)


def test_clipped_relu_clips_at_the_scaled_value():
    before = parse(MLP.replace("%r = relu(%d1) :", "%r = relu(%d1) {max_value=3.0} :"))
    after = threshold_balance(before, calibration=CALIBRATION, method="max")
    assert after.node("r").op == ops.ReLU(max_value=1.0)  # the largest activation is the clip, 3
    assert after.node("r").meta["scale"] == 3.0


def test_silent_channels_keep_scale_one_and_are_reported():
    before = parse(MLP.replace("bias=<2 f32 = [0,0]>", "bias=<2 f32 = [0,-10]>"))
    after = threshold_balance(before, calibration=CALIBRATION, method="max", per_channel=True)
    assert after.node("r").meta["scale"] == [4.0, 1.0]
    assert notes(after) == [("r", "1 channel(s) never active on the calibration data; scale 1 kept for them")]


# ----------------------------------------------------------------------------- numerics


def prepared(net, rng):
    """A catalog graph after the passes that run before threshold_balance."""
    return fold_batchnorm(canonicalize(NETS[net](rng), keep_softmax=True))


def relu_names(graph):
    return [n.name for n in graph.nodes if isinstance(n.op, ops.ReLU)]


def scale_of(node, rank):
    return np.reshape(node.meta["scale"], (1, -1) + (1,) * (rank - 1))


CASES = [
    ("conv_bn", "max", False),
    ("conv_bn", "percentile", True),
    ("dense_bn", "percentile", False),
    ("flatten", "max", True),
    ("flatten", "percentile", True),
    ("residual", "max", False),
    ("residual", "percentile", False),
    ("branchy", "max", False),
    ("branchy", "percentile", True),
]


@pytest.mark.parametrize("net, method, per_channel", CASES)
def test_outputs_are_preserved(net, method, per_channel, rng):
    before = prepared(net, rng)
    x = inputs_for(before, rng, 64)
    after = threshold_balance(before, calibration=x[:48], method=method, per_channel=per_channel)
    assert_same_outputs(before, after, x)


@pytest.mark.parametrize("net, method, per_channel", CASES)
def test_balanced_activations_are_the_original_over_the_scale(net, method, per_channel, rng):
    before = prepared(net, rng)
    x = inputs_for(before, rng, 48)
    after = threshold_balance(before, calibration=x, method=method, per_channel=per_channel)
    want, got = interpreter.run(before, x, keep=True), interpreter.run(after, x, keep=True)
    for name in relu_names(before):
        scale = scale_of(after.node(name), want[name].ndim - 1)
        np.testing.assert_allclose(got[name], want[name] / scale, rtol=1e-5, atol=1e-6, err_msg=name)
        if method == "max":  # the largest balanced activation is 1 (per channel where asked)
            axes = (0, *range(2, got[name].ndim)) if per_channel else None
            np.testing.assert_allclose(got[name].max(axis=axes), 1.0, rtol=1e-6)


def test_residual_shortcut_gets_a_rescale(rng):
    before = prepared("residual", rng)
    after = threshold_balance(before, calibration=inputs_for(before, rng), method="max")
    add = after.node("residual")
    shortcut = after.node(add.inputs[1])
    assert shortcut.op == ops.Affine() and shortcut.inputs == ("relu_a",)


def test_softmax_kept_by_canonicalize_is_balanced_through(rng):
    before = prepared("conv_bn", rng)
    assert "softmax" in [n.op.NAME for n in before.nodes]
    x = inputs_for(before, rng)
    assert_same_outputs(before, threshold_balance(before, calibration=x), x)


# ----------------------------------------------------------------------------- errors


def test_batch_norm_must_be_folded_first(rng):
    with pytest.raises(PassError, match=r"%\w+ = batch_norm: run fold_batchnorm before threshold_balance"):
        threshold_balance(NETS["dense_bn"](rng), calibration=np.zeros((2, 10), np.float32))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "mean"}, r"option method='mean' is not one of max, percentile"),
        ({"p": 0.0}, r"option p=0.0 must be in \(0, 100\]"),
        ({"p": 100.5}, r"option p=100.5 must be in \(0, 100\]"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(PassError, match=message):
        threshold_balance(parse(MLP), calibration=CALIBRATION, **options)


def test_calibration_data_is_checked():
    with pytest.raises(DataError, match="the calibration data is empty"):
        threshold_balance(parse(MLP), calibration=np.zeros((0, 2), np.float32))
    with pytest.raises(DataError, match=r"input %x expects examples of shape \[2\], got data of shape \[3, 5\]"):
        threshold_balance(parse(MLP), calibration=np.zeros((3, 5), np.float32))


@pytest.mark.parametrize(
    "net, message",
    [
        ("dense_bn", r"%relu1 = relu: a clipped or thresholded relu needs one scale per layer; use per_channel=false"),
        ("residual", r"%pad2d = pad2d: padding with a non-zero value needs one scale per layer; use per_channel=false"),
    ],
)
def test_per_channel_limits_are_clear_errors(net, message, rng):
    before = prepared(net, rng)
    with pytest.raises(PassError, match=message):
        threshold_balance(before, calibration=inputs_for(before, rng), per_channel=True)


def test_per_channel_scales_cannot_pass_an_unfolded_transpose(rng):
    before = fold_batchnorm(NETS["flatten"](rng))  # Keras flatten still there: no canonicalize
    with pytest.raises(PassError, match=r"%transpose = transpose: cannot carry per-channel scales"):
        threshold_balance(before, calibration=inputs_for(before, rng), per_channel=True)


@pytest.mark.parametrize("net, node", [("dense_bn", "relu1"), ("residual", "pad2d"), ("flatten", "transpose")])
def test_per_channel_auto_falls_back_to_one_scale_per_layer_with_a_note(net, node, rng):
    before = fold_batchnorm(NETS[net](rng)) if net == "flatten" else prepared(net, rng)
    x = inputs_for(before, rng)
    auto = threshold_balance(before, calibration=x, per_channel="auto")
    assert auto == threshold_balance(before, calibration=x, per_channel=False).replace(meta=auto.meta)
    assert auto.meta["threshold_balance"]["per_channel"] is False
    (fallback,) = [name for name, message in notes(auto) if message.startswith("one scale per layer")]
    assert fallback == node
    assert_same_outputs(before, auto, x)


def test_per_channel_auto_is_per_channel_where_the_graph_allows(rng):
    before = prepared("conv_bn", rng)
    x = inputs_for(before, rng)
    auto = threshold_balance(before, calibration=x, per_channel="auto")
    assert auto == threshold_balance(before, calibration=x, per_channel=True)
    assert not [m for _, m in notes(auto) if m.startswith("one scale per layer")]
