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


# ----------------------------------------------------------------------------- forward folds


def test_forward_fold_into_a_conv_with_zero_padding_pads_with_minus_shift_over_scale():
    # s = [2, 4], t = [1, -2]: W' = W * s[c], b' = b + sum W * t[c], padding -t/s = [-0.5, 0.5]
    before = parse("""
    graph @g : float {
      %x = input() {shape=[2,2,2]} : f32[2,2,2]
      %r = relu(%x) : f32[2,2,2]
      %a = affine(%r) {scale=<2 f32 = [2,4]>, shift=<2 f32 = [1,-2]>} : f32[2,2,2]
      %conv = conv2d(%a) {filters=1, kernel=[1,1], pads=[1,0,0,0], weight=<1x2x1x1 f32 = [1,0.5]>, bias=<1 f32 = [3]>} : f32[1,3,2]
      %output = output(%conv) : f32[1,3,2]
    }
    """)
    after = fold_batchnorm(before)
    assert_ir(after, """
    graph @g : float {
      %x = input() {shape=[2,2,2]} : f32[2,2,2]
      %r = relu(%x) : f32[2,2,2]
      %conv_pad = pad2d(%r) {pads=[1,0,0,0], per_channel=true, values=<2 f32 = [-0.5,0.5]>} : f32[2,3,2]
      %conv = conv2d(%conv_pad) {filters=1, kernel=[1,1], weight=<1x2x1x1 f32 = [2,2]>, bias=<1 f32 = [3]>} : f32[1,3,2]
      %output = output(%conv) : f32[1,3,2]
    }
    """)
    assert notes(after) == [
        ("a", "folded into the next layer(s): %conv"),
        ("conv", "zero padding moved into %conv_pad with the values -shift/scale of the affine folded in"),
    ]


def relu_bn_net(rng, tail: str, channels: int = 4):
    """input -> conv -> relu -> BN -> ``tail`` -> output (random weights)."""
    b = GraphBuilder(f"relu_bn_{tail}")
    x = b.input("input", (3, 8, 8))
    x = b.add(ops.ReLU(), [conv(b, rng, x, channels)], name="relu")
    bn = x = batch_norm(b, rng, x, name="bn")
    if tail == "conv_valid":
        x = conv(b, rng, x, 3, pad=0, name="next")
    elif tail == "conv_same":
        x = conv(b, rng, x, 3, pad=1, name="next")
    elif tail == "grouped_conv_same":
        x = conv(b, rng, x, 4, pad=1, groups=2, name="next")
    elif tail == "flatten_dense":
        x = dense(b, rng, b.add(ops.Reshape((b.type_of(x).size,)), [x], name="flatten"), 5, name="next")
    elif tail == "avgpool_conv":
        x = conv(b, rng, b.add(ops.AvgPool2d((2, 2), (2, 2), (1, 1, 1, 1)), [x]), 3, name="next")
    elif tail == "maxpool_conv":
        x = conv(b, rng, b.add(ops.MaxPool2d((3, 3), (2, 2)), [x]), 3, name="next")
    elif tail == "pad_conv":
        x = conv(b, rng, b.add(ops.Pad2d((1, 2, 0, 1), 0.25), [x]), 3, pad=0, name="next")
    elif tail == "global_pool_dense":
        x = dense(b, rng, b.add(ops.GlobalAvgPool(), [x]), 5, name="next")
    elif tail == "two_convs":
        x = b.add(ops.Add(), [conv(b, rng, x, 3, name="next"), conv(b, rng, bn, 3, pad=0, k=1, name="other")])
    b.output(x)
    return b.build()


FORWARD_TAILS = [
    "conv_valid", "conv_same", "grouped_conv_same", "flatten_dense", "avgpool_conv", "pad_conv", "global_pool_dense",
    "two_convs",
]


@pytest.mark.parametrize("tail", FORWARD_TAILS)
def test_forward_fold_preserves_outputs(tail, rng):
    before = relu_bn_net(rng, tail)
    after = fold_batchnorm(before)
    assert "affine" not in op_names(after) and "batch_norm" not in op_names(after)
    assert ("bn", "folded into the next layer(s): %next" + (", %other" if tail == "two_convs" else "")) in notes(after)
    assert_same_outputs(before, after, inputs_for(before, rng))


def positive_scales(graph):
    """``graph`` with its batch norm's gamma made positive (scale > 0)."""
    nodes = [n.replace(params={**n.params, "gamma": np.abs(n.params["gamma"])}) if n.op.NAME == "batch_norm" else n for n in graph.nodes]
    return graph.replace(nodes=tuple(nodes))


def test_forward_fold_through_max_pooling_needs_positive_scales(rng):
    net = relu_bn_net(rng, "maxpool_conv")
    assert np.any(net.node("bn").params["gamma"] < 0)
    after = fold_batchnorm(net)
    assert "affine" in op_names(after)
    assert notes(after) == [("bn", "kept as an affine: its input is not a dense/conv2d, and it cannot fold into the layers "
                             "after it: %max_pool2d max pools, which commutes with the affine only where its scale is positive")]
    assert_same_outputs(net, after, inputs_for(net, rng))

    positive = positive_scales(net)
    folded = fold_batchnorm(positive)
    assert "affine" not in op_names(folded)
    assert_same_outputs(positive, folded, inputs_for(positive, rng))


def test_forward_fold_applies_to_every_reader_or_none(rng):
    b = GraphBuilder("branch")
    x = b.input("input", (2, 5, 5))
    bn = batch_norm(b, rng, b.add(ops.ReLU(), [x]), name="bn")
    b.output(conv(b, rng, bn, 3))
    b.output(b.add(ops.ReLU(), [bn], name="relu_reader"), name="output_relu")
    net = b.build()
    after = fold_batchnorm(net)
    assert "affine" in op_names(after) and after.node("conv2d").params["weight"].tobytes() == net.node("conv2d").params["weight"].tobytes()
    assert notes(after) == [("bn", "kept as an affine: its input is not a dense/conv2d, and it cannot fold into the layers "
                             "after it: %relu_reader (relu) reads it")]
    assert_same_outputs(net, after, inputs_for(net, rng))


def test_input_normalization_folds_into_the_first_conv(rng):
    b = GraphBuilder("normalized")
    x = b.input("input", (3, 6, 6))
    affine = {"scale": np.float32([1 / 0.2, 1 / 0.3, 1 / 0.25]), "shift": np.float32([-2.5, -1.5, -2.0])}
    x = b.add(ops.Affine(), [x], affine, name="normalize")
    b.output(b.add(ops.ReLU(), [conv(b, rng, x, 4, pad=1)]))
    net = b.build()
    after = fold_batchnorm(net)
    assert op_names(after) == ["input", "pad2d", "conv2d", "relu", "output"]
    assert_same_outputs(net, after, inputs_for(net, rng))


def test_forward_and_backward_folds_into_one_conv(rng):
    # relu -> BN -> conv -> BN: the first folds into the conv's input, the second into its output
    b = GraphBuilder("both")
    x = b.input("input", (2, 5, 5))
    x = batch_norm(b, rng, conv(b, rng, batch_norm(b, rng, b.add(ops.ReLU(), [x])), 3))
    b.output(b.add(ops.ReLU(), [x]))
    net = b.build()
    after = fold_batchnorm(net)
    assert op_names(after) == ["input", "relu", "pad2d", "conv2d", "relu", "output"]
    assert_same_outputs(net, after, inputs_for(net, rng))


# ----------------------------------------------------------------------------- Keras


def keras_relu_bn_model(rng):
    """``Conv2D(relu), BatchNormalization(), Conv2D`` (same and valid padding), max pooling
    and a flatten into a dense, with random weights and BN statistics."""
    import tensorflow as tf

    L = tf.keras.layers
    tf.keras.utils.set_random_seed(int(rng.integers(2**31)))
    model = tf.keras.Sequential([
        L.Input((8, 8, 3)),
        L.Conv2D(4, 3, padding="same", activation="relu"),
        L.BatchNormalization(),
        L.Conv2D(5, 3, padding="same", activation="relu"),
        L.BatchNormalization(),
        L.Conv2D(4, 3, activation="relu"),
        L.Flatten(),
        L.BatchNormalization(),
        L.Dense(3),
    ])
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([
                rng.uniform(0.5, 2.0, c).astype(np.float32),
                rng.normal(0, 0.5, c).astype(np.float32),
                rng.normal(0, 0.5, c).astype(np.float32),
                rng.uniform(0.2, 2.0, c).astype(np.float32),
            ])
    return model


@pytest.mark.slow  # TensorFlow and a spiking conversion (~13 s); the interpreter tests above are the fast tier
def test_keras_relu_then_batch_norm_folds_forward(tmp_path, rng):
    from snnc.compiler import load_model, run_model
    from snnc.compiler.passes.manager import PassManager

    model = keras_relu_bn_model(rng)
    model.save(tmp_path / "model.h5")
    graph, _ = PassManager("float").run(load_model(tmp_path / "model.h5"))
    assert "affine" not in op_names(graph) and "batch_norm" not in op_names(graph)
    x = rng.uniform(0, 1, (8, 8, 8, 3)).astype(np.float32)
    (got,) = run_model(graph, x).values()
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-4, atol=1e-4)

    calibration = {graph.inputs[0].name: rng.uniform(0, 1, (16, 3, 8, 8)).astype(np.float32)}
    snn, _ = PassManager("default").run(load_model(tmp_path / "model.h5"), calibration)
    between = [n.name for n in snn.nodes if n.op.NAME == "affine"]
    assert between == [], f"affines left between neurons: {between}"
