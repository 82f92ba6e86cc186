"""fold_batchnorm: before/expected IR (values chosen so the folded weights are exact), and
outputs preserved on random graphs."""

import numpy as np
import pytest

from pass_testing import NETS, assert_ir, assert_same_outputs, batch_norm, conv, dense, inputs_for, notes, op_names
from snnc.compiler import ops
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.passes.fold_batchnorm import fold_batchnorm
from snnc.compiler.text import parse


def test_conv_and_batch_norm_fold():
    # s = gamma / sqrt(var + eps) = [2, 0.5];  W' = W * s;  b' = beta + (b - mean) * s
    before = parse("""
    graph @g : float {
      %x = input() {shape=[2,3,3]} : f32[2,3,3]
      %conv = conv2d(%x) {filters=2, kernel=[1,1], weight=<2x2x1x1 f32 = [1,-1,2,0.5]>, bias=<2 f32 = [1,0.5]>} : f32[2,3,3]
      %bn = batch_norm(%conv) {epsilon=0.0, gamma=<2 f32 = [2,1]>, beta=<2 f32 = [0,1]>, mean=<2 f32 = [0.5,1.5]>, var=<2 f32 = [1,4]>} : f32[2,3,3]
      %r = relu(%bn) : f32[2,3,3]
      %output = output(%r) : f32[2,3,3]
    }
    """)
    after = fold_batchnorm(before)
    assert_ir(after, """
    graph @g : float {
      %x = input() {shape=[2,3,3]} : f32[2,3,3]
      %conv = conv2d(%x) {filters=2, kernel=[1,1], weight=<2x2x1x1 f32 = [2,-2,1,0.25]>, bias=<2 f32 = [1,0.5]>} : f32[2,3,3]
      %r = relu(%conv) : f32[2,3,3]
      %output = output(%r) : f32[2,3,3]
    }
    """)
    assert notes(after) == []


def test_dense_and_batch_norm_fold():
    # s = [2, -1] (a negative gamma flips the unit)
    before = parse("""
    graph @g : float {
      %x = input() {shape=[3]} : f32[3]
      %d = dense(%x) {units=2, weight=<2x3 f32 = [1,2,3,4,5,6]>, bias=<2 f32 = [0,1]>} : f32[2]
      %bn = batch_norm(%d) {epsilon=0.0, gamma=<2 f32 = [1,-2]>, beta=<2 f32 = [0.5,0]>, mean=<2 f32 = [1,0]>, var=<2 f32 = [0.25,4]>} : f32[2]
      %output = output(%bn) : f32[2]
    }
    """)
    assert_ir(fold_batchnorm(before), """
    graph @g : float {
      %x = input() {shape=[3]} : f32[3]
      %d = dense(%x) {units=2, weight=<2x3 f32 = [2,4,6,-4,-5,-6]>, bias=<2 f32 = [-1.5,-1]>} : f32[2]
      %output = output(%d) : f32[2]
    }
    """)


def test_affine_after_a_dense_folds():
    before = parse("""
    graph @g : float {
      %x = input() {shape=[2]} : f32[2]
      %d = dense(%x) {units=1, weight=<1x2 f32 = [1,2]>, bias=<1 f32 = [1]>} : f32[1]
      %a = affine(%d) {scale=<1 f32 = [2]>, shift=<1 f32 = [0.5]>} : f32[1]
      %output = output(%a) : f32[1]
    }
    """)
    assert_ir(fold_batchnorm(before), """
    graph @g : float {
      %x = input() {shape=[2]} : f32[2]
      %d = dense(%x) {units=1, weight=<1x2 f32 = [2,4]>, bias=<1 f32 = [2.5]>} : f32[1]
      %output = output(%d) : f32[1]
    }
    """)


def test_batch_norm_not_after_a_layer_becomes_an_affine():
    # scale = gamma / sqrt(var + eps) = [3, 2];  shift = beta - mean * scale = [-3, 0.5]
    before = parse("""
    graph @g : float {
      %x = input() {shape=[2,2,2]} : f32[2,2,2]
      %bn = batch_norm(%x) {epsilon=0.0, gamma=<2 f32 = [3,1]>, beta=<2 f32 = [0,1]>, mean=<2 f32 = [1,0.25]>, var=<2 f32 = [1,0.25]>} : f32[2,2,2]
      %output = output(%bn) : f32[2,2,2]
    }
    """)
    after = fold_batchnorm(before)
    assert_ir(after, """
    graph @g : float {
      %x = input() {shape=[2,2,2]} : f32[2,2,2]
      %bn = affine(%x) {scale=<2 f32 = [3,2]>, shift=<2 f32 = [-3,0.5]>} : f32[2,2,2]
      %output = output(%bn) : f32[2,2,2]
    }
    """)
    assert notes(after) == [
        ("bn", "kept as an affine: its input is not a dense/conv2d, and it cannot fold into the layers after it: %output (output) reads it")
    ]


def test_batch_norm_after_a_shared_layer_becomes_an_affine():
    before = parse("""
    graph @g : float {
      %x = input() {shape=[1]} : f32[1]
      %d = dense(%x) {units=1, weight=<1x1 f32 = [1]>, bias=<1 f32 = [0]>} : f32[1]
      %bn = batch_norm(%d) {epsilon=0.0, gamma=<1 f32 = [2]>, beta=<1 f32 = [1]>, mean=<1 f32 = [0]>, var=<1 f32 = [1]>} : f32[1]
      %output = output(%bn) : f32[1]
      %output_1 = output(%d) : f32[1]
    }
    """)
    after = fold_batchnorm(before)
    assert_ir(after, """
    graph @g : float {
      %x = input() {shape=[1]} : f32[1]
      %d = dense(%x) {units=1, weight=<1x1 f32 = [1]>, bias=<1 f32 = [0]>} : f32[1]
      %bn = affine(%d) {scale=<1 f32 = [2]>, shift=<1 f32 = [1]>} : f32[1]
      %output = output(%bn) : f32[1]
      %output_1 = output(%d) : f32[1]
    }
    """)
    assert notes(after) == [
        ("bn", "kept as an affine: %d has other users, and it cannot fold into the layers after it: %output (output) reads it")
    ]


# ----------------------------------------------------------------------------- numerics


def bn_chain_net(rng):
    """dense -> BN -> affine, and a depthwise conv -> BN -> BN."""
    b = GraphBuilder("bn_chain")
    x = b.input("input", (4, 5, 5))
    x = batch_norm(b, rng, batch_norm(b, rng, conv(b, rng, x, 4, groups=4)))
    x = b.add(ops.GlobalAvgPool(), [b.add(ops.ReLU(), [x])])
    x = batch_norm(b, rng, dense(b, rng, x, 3))
    x = b.add(ops.Affine(), [x], {"scale": np.float32([2, -1, 0.5]), "shift": np.float32([0, 1, -1])})
    b.output(x)
    return b.build()


@pytest.mark.parametrize("net", [*NETS, "bn_chain"])
def test_outputs_are_preserved(net, rng):
    before = bn_chain_net(rng) if net == "bn_chain" else NETS[net](rng)
    after = fold_batchnorm(before)
    assert "batch_norm" not in op_names(after)
    assert_same_outputs(before, after, inputs_for(before, rng))


def test_forward_folds_are_reported(rng):
    # a BN after a relu and a BN on the input fold into the layer after them
    assert notes(fold_batchnorm(NETS["dense_bn"](rng))) == [("bn_after_relu", "folded into the next layer(s): %dense_1")]
    assert notes(fold_batchnorm(NETS["flatten"](rng))) == [("bn_input", "folded into the next layer(s): %conv2d")]
    assert notes(fold_batchnorm(NETS["conv_bn"](rng))) == []
