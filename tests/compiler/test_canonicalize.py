"""canonicalize: before/expected IR for each rewrite, and outputs preserved on random graphs."""

import numpy as np
import pytest

from pass_testing import NETS, TOL, assert_ir, assert_same_outputs, inputs_for, notes, op_names
from snnc.compiler import interpreter, ops
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.passes.canonicalize import canonicalize
from snnc.compiler.text import parse


def test_identity_ops_are_dropped():
    before = parse("""
    graph @g : float {
      %x = input() {shape=[2,2,2]} : f32[2,2,2]
      %same = reshape(%x) {shape=[2,2,2]} : f32[2,2,2]
      %t = transpose(%same) {perm=[0,1,2]} : f32[2,2,2]
      %pad = pad2d(%t) {pads=[0,0,0,0]} : f32[2,2,2]
      %a = affine(%pad) {scale=<2 f32 = [1,1]>, shift=<2 f32 = [0,0]>} : f32[2,2,2]
      %r = relu(%a) : f32[2,2,2]
      %output = output(%r) : f32[2,2,2]
    }
    """)
    assert_ir(canonicalize(before), """
    graph @g : float {
      %x = input() {shape=[2,2,2]} : f32[2,2,2]
      %r = relu(%x) : f32[2,2,2]
      %output = output(%r) : f32[2,2,2]
    }
    """)


def test_ops_that_compute_are_kept():
    text = """
    graph @g : float {
      %x = input() {shape=[2,2,2]} : f32[2,2,2]
      %t = transpose(%x) {perm=[0,2,1]} : f32[2,2,2]@CWH
      %pad = pad2d(%x) {pads=[0,1,0,0]} : f32[2,2,3]
      %a = affine(%x) {scale=<2 f32 = [1,2]>, shift=<2 f32 = [0,0]>} : f32[2,2,2]
      %b = affine(%x) {scale=<2 f32 = [1,1]>, shift=<2 f32 = [0,0.5]>} : f32[2,2,2]
      %output = output(%t) : f32[2,2,2]@CWH
      %output_1 = output(%pad) : f32[2,2,3]
      %output_2 = output(%a) : f32[2,2,2]
      %output_3 = output(%b) : f32[2,2,2]
    }
    """
    assert_ir(canonicalize(parse(text)), text)


def test_reshape_that_relabels_the_layout_is_kept():
    # the ONNX frontend resets the letters of a transposed tensor so a conv reads it as an
    # image: dropping that reshape would leave the conv reading a CWH tensor
    text = """
    graph @g : float {
      %x = input() {shape=[1,3,3]} : f32[1,3,3]
      %t = transpose(%x) {perm=[0,2,1]} : f32[1,3,3]@CWH
      %image = reshape(%t) {shape=[1,3,3]} : f32[1,3,3]
      %c = conv2d(%image) {filters=1, kernel=[2,2], weight=<1x1x2x2 f32 = [1,2,3,4]>, bias=<1 f32 = [0]>} : f32[1,2,2]
      %output = output(%c) : f32[1,2,2]
    }
    """
    assert_ir(canonicalize(parse(text)), text)


def test_keras_flatten_folds_into_the_dense_weights():
    # x is CHW (2,1,2); the Keras model flattened it in HWC order:
    # HWC element k reads CHW element [0, 2, 1, 3][k], so column k of W moves there
    before = parse("""
    graph @g : float {
      %x = input() {shape=[2,1,2]} : f32[2,1,2]
      %hwc = transpose(%x) {perm=[1,2,0]} : f32[1,2,2]@HWC
      %flat = reshape(%hwc) {shape=[4]} : f32[4]
      %d = dense(%flat) {units=1, weight=<1x4 f32 = [1,2,3,4]>, bias=<1 f32 = [0.5]>} : f32[1]
      %output = output(%d) : f32[1]
    }
    """)
    after = canonicalize(before)
    assert_ir(after, """
    graph @g : float {
      %x = input() {shape=[2,1,2]} : f32[2,1,2]
      %flat = reshape(%x) {shape=[4]} : f32[4]
      %d = dense(%flat) {units=1, weight=<1x4 f32 = [1,3,2,4]>, bias=<1 f32 = [0.5]>} : f32[1]
      %output = output(%d) : f32[1]
    }
    """)
    assert notes(after) == [("d", "folded transpose + reshape into the weights: reads %x in CHW order")]
    x = np.arange(4, dtype=np.float32).reshape(1, 2, 1, 2)
    assert interpreter.run(after, x)["output"][0, 0] == pytest.approx(0 * 1 + 1 * 3 + 2 * 2 + 3 * 4 + 0.5)


def test_layout_chain_read_elsewhere_is_not_folded():
    text = """
    graph @g : float {
      %x = input() {shape=[2,1,2]} : f32[2,1,2]
      %hwc = transpose(%x) {perm=[1,2,0]} : f32[1,2,2]@HWC
      %flat = reshape(%hwc) {shape=[4]} : f32[4]
      %d = dense(%flat) {units=1, weight=<1x4 f32 = [1,2,3,4]>, bias=<1 f32 = [0.5]>} : f32[1]
      %output = output(%d) : f32[1]
      %output_1 = output(%flat) : f32[4]
    }
    """
    assert_ir(canonicalize(parse(text)), text)


def test_relu_after_max_pool_moves_before_it():
    before = parse("""
    graph @g : float {
      %x = input() {shape=[1,2,2]} : f32[1,2,2]
      %pool = max_pool2d(%x) {kernel=[2,2], stride=[2,2]} : f32[1,1,1]
      %r = relu(%pool) {max_value=6.0} : f32[1,1,1]
      %output = output(%r) : f32[1,1,1]
    }
    """)
    after = canonicalize(before)
    assert_ir(after, """
    graph @g : float {
      %x = input() {shape=[1,2,2]} : f32[1,2,2]
      %r = relu(%x) {max_value=6.0} : f32[1,2,2]
      %pool = max_pool2d(%r) {kernel=[2,2], stride=[2,2]} : f32[1,1,1]
      %output = output(%pool) : f32[1,1,1]
    }
    """)
    assert notes(after) == [("r", "moved before %pool (max pooling commutes with relu) so the pool gates spikes")]


@pytest.mark.parametrize(
    "relu",
    [
        "relu(%pool) {negative_slope=-0.5}",  # not monotone: max and relu do not commute
        "relu(%pool) {threshold=-1.0}",  # jumps down at x = -1
    ],
)
def test_relu_that_does_not_commute_with_max_stays_after_the_pool(relu):
    text = f"""
    graph @g : float {{
      %x = input() {{shape=[1,2,2]}} : f32[1,2,2]
      %pool = max_pool2d(%x) {{kernel=[2,2], stride=[2,2]}} : f32[1,1,1]
      %r = {relu} : f32[1,1,1]
      %output = output(%r) : f32[1,1,1]
    }}
    """
    before = parse(text)
    after = canonicalize(before)
    assert_ir(after, text)
    assert_same_outputs(before, after, np.array([[[[-4, 1], [0, -1.5]]]], np.float32))


def test_pool_with_other_users_keeps_its_relu_after_it():
    text = """
    graph @g : float {
      %x = input() {shape=[1,2,2]} : f32[1,2,2]
      %pool = max_pool2d(%x) {kernel=[2,2], stride=[2,2]} : f32[1,1,1]
      %r = relu(%pool) : f32[1,1,1]
      %output = output(%r) : f32[1,1,1]
      %output_1 = output(%pool) : f32[1,1,1]
    }
    """
    assert_ir(canonicalize(parse(text)), text)


SOFTMAX = """
graph @g : float {
  %x = input() {shape=[3]} : f32[3]
  %d = dense(%x) {units=2, weight=<2x3 f32 = [1,0,0,0,1,0]>, bias=<2 f32 = [0,0]>} : f32[2]
  %sm = softmax(%d) : f32[2]
  %output = output(%sm) : f32[2]
}
"""


def test_output_softmax_is_removed():
    after = canonicalize(parse(SOFTMAX))
    assert_ir(after, """
    graph @g : float {
      %x = input() {shape=[3]} : f32[3]
      %d = dense(%x) {units=2, weight=<2x3 f32 = [1,0,0,0,1,0]>, bias=<2 f32 = [0,0]>} : f32[2]
      %output = output(%d) : f32[2]
    }
    """)
    assert notes(after) == [("sm", "output softmax removed: spiking inference reads out the layer before it")]


def test_keep_softmax_keeps_it():
    assert_ir(canonicalize(parse(SOFTMAX), keep_softmax=True), SOFTMAX)


def test_dead_nodes_are_dropped_and_inputs_kept():
    before = parse("""
    graph @g : float {
      %x = input() {shape=[2]} : f32[2]
      %unused_input = input() {shape=[3]} : f32[3]
      %dead = relu(%x) : f32[2]
      %dead_too = relu(%dead) : f32[2]
      %r = relu(%x) {max_value=1.0} : f32[2]
      %output = output(%r) : f32[2]
    }
    """)
    assert_ir(canonicalize(before), """
    graph @g : float {
      %x = input() {shape=[2]} : f32[2]
      %unused_input = input() {shape=[3]} : f32[3]
      %r = relu(%x) {max_value=1.0} : f32[2]
      %output = output(%r) : f32[2]
    }
    """)


def test_the_input_graph_is_not_changed():
    before = parse(SOFTMAX)
    again = parse(SOFTMAX)
    canonicalize(before)
    assert before == again


# ----------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("net", NETS)
def test_outputs_are_preserved(net, rng):
    before = NETS[net](rng)
    after = canonicalize(before, keep_softmax=True)
    assert_same_outputs(before, after, inputs_for(before, rng))
    assert "transpose" not in op_names(after)  # every Keras flatten was folded


@pytest.mark.parametrize("net", ["conv_bn", "residual"])
def test_removing_the_softmax_keeps_the_arg_max(net, rng):
    before = NETS[net](rng)
    after = canonicalize(before)
    assert "softmax" not in op_names(after)
    x = inputs_for(before, rng, 64)
    probs, logits = interpreter.run(before, x)["output"], interpreter.run(after, x)["output"]
    np.testing.assert_array_equal(logits.argmax(1), probs.argmax(1))
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(1, keepdims=True), probs, **TOL)


@pytest.mark.parametrize(
    "relu",
    [
        ops.ReLU(),
        ops.ReLU(max_value=0.5),
        ops.ReLU(negative_slope=0.2),
        ops.ReLU(threshold=0.3),
        ops.ReLU(negative_slope=-0.3),
    ],
    ids=["plain", "clipped", "leaky", "thresholded", "negative_slope"],
)
def test_relu_variants_after_padded_max_pool(relu, rng):
    b = GraphBuilder("g")
    x = b.input("x", (2, 5, 5))
    x = b.add(ops.MaxPool2d((3, 3), (2, 2), (1, 1, 1, 1)), [x])
    b.output(b.add(relu, [x]))
    before = b.build()
    after = canonicalize(before)
    moved = op_names(after) == ["input", "relu", "max_pool2d", "output"]
    assert moved == (relu.negative_slope >= 0)
    assert_same_outputs(before, after, rng.normal(size=(16, 2, 5, 5)).astype(np.float32))
