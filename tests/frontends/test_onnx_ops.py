"""Every ONNX op the frontend converts, in tiny models built with onnx.helper: snnc's
interpreter on the imported graph equals onnxruntime on the file (rtol 1e-5, atol 1e-5)."""

import numpy as np
import pytest
from onnx import helper

from onnx_testing import check, make_model
from snnc.compiler import ops

N = "N"  # a dynamic batch axis


def node(op_type, inputs, output="y", name=None, **attrs):
    return helper.make_node(op_type, inputs, [output], name=name or f"{op_type.lower()}_node", **attrs)


def weights(rng, *shape):
    return rng.normal(size=shape).astype(np.float32)


def ops_of(graph):
    return [n.op.NAME for n in graph.nodes if n.op.NAME not in ("input", "output")]


# ----------------------------------------------------------------------------- Conv


CONV_CASES = {
    "pads_strides": dict(pads=[1, 0, 2, 1], strides=[2, 1]),
    "dilations": dict(dilations=[2, 1], pads=[1, 1, 1, 1]),
    "same_upper_stride2": dict(auto_pad="SAME_UPPER", strides=[2, 2]),
    "same_lower_stride2": dict(auto_pad="SAME_LOWER", strides=[2, 2]),
    "same_upper_even_kernel": dict(auto_pad="SAME_UPPER", kernel_shape=[2, 2]),
    "valid": dict(auto_pad="VALID", strides=[1, 2]),
}


@pytest.mark.parametrize("attrs", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv_padding_and_strides(attrs, tmp_path, rng):
    kernel = attrs.get("kernel_shape", [3, 3])
    model = make_model(
        [node("Conv", ["x", "w", "b"], **attrs)],
        {"x": [N, 2, 7, 6]},
        ["y"],
        {"w": weights(rng, 4, 2, *kernel), "b": weights(rng, 4)},
    )
    check(model, tmp_path, rng)


@pytest.mark.parametrize("groups", [2, 4])
def test_conv_groups_without_bias(groups, tmp_path, rng):
    model = make_model(
        [node("Conv", ["x", "w"], group=groups, pads=[1, 1, 1, 1])],
        {"x": [N, 4, 5, 5]},
        ["y"],
        {"w": weights(rng, 8, 4 // groups, 3, 3)},
    )
    graph = check(model, tmp_path, rng)
    assert graph.node("conv_node").op.groups == groups


# ----------------------------------------------------------------------------- Gemm, MatMul


@pytest.mark.parametrize(
    "attrs, c_shape",
    [({}, (5,)), ({"transB": 1}, (1, 5)), ({"alpha": 0.5, "beta": 2.0}, ()), ({"transB": 1, "alpha": 1.5}, None)],
)
def test_gemm(attrs, c_shape, tmp_path, rng):
    b = weights(rng, 5, 6) if attrs.get("transB") else weights(rng, 6, 5)
    inits = {"b": b} | ({} if c_shape is None else {"c": weights(rng, *c_shape)})
    model = make_model(
        [node("Gemm", ["x", "b"] + (["c"] if c_shape is not None else []), **attrs)], {"x": [N, 6]}, ["y"], inits
    )
    assert ops_of(check(model, tmp_path, rng)) == ["dense"]


@pytest.mark.parametrize("bias_first", [False, True])
def test_matmul_then_add_is_one_dense_layer(bias_first, tmp_path, rng):
    add_inputs = ["bias", "m"] if bias_first else ["m", "bias"]
    model = make_model(
        [node("MatMul", ["x", "w"], "m"), node("Add", add_inputs)],
        {"x": [N, 6]},
        ["y"],
        {"w": weights(rng, 6, 4), "bias": weights(rng, 4)},
    )
    assert ops_of(check(model, tmp_path, rng)) == ["dense"]


def test_matmul_without_bias_and_add_read_twice(tmp_path, rng):
    # the MatMul result is read by the Add and by an output: no fusion, the Add is an affine
    model = make_model(
        [node("MatMul", ["x", "w"], "m"), node("Add", ["m", "bias"])],
        {"x": [N, 6]},
        ["y", "m"],
        {"w": weights(rng, 6, 4), "bias": weights(rng, 1, 4)},
    )
    assert ops_of(check(model, tmp_path, rng)) == ["dense", "affine"]


# ----------------------------------------------------------------------------- activations


def test_relu_and_leaky_relu(tmp_path, rng):
    model = make_model(
        [node("Relu", ["x"], "r"), node("LeakyRelu", ["x"], "l", alpha=0.2)], {"x": [N, 3, 4]}, ["r", "l"]
    )
    graph = check(model, tmp_path, rng)
    assert graph.node("leakyrelu_node").op.negative_slope == pytest.approx(0.2)


def test_sigmoid_tanh_and_hard_sigmoid(tmp_path, rng):
    nodes = [
        node("Sigmoid", ["x"], "s"),
        node("Tanh", ["x"], "t"),
        node("HardSigmoid", ["x"], "h", alpha=0.3, beta=0.4),
        node("HardSigmoid", ["x"], "d", name="default"),  # alpha=0.2, beta=0.5
    ]
    graph = check(make_model(nodes, {"x": [N, 3, 4]}, ["s", "t", "h", "d"]), tmp_path, rng)
    assert graph.node("hardsigmoid_node").op == ops.ReLU(max_value=1.0)
    assert [n.op.NAME for n in graph.nodes].count("affine") == 2


CLIP_CASES = {
    "relu6_inputs": (13, (0.0, 6.0), ops.ReLU(max_value=6.0)),
    "relu6_attributes": (9, (0.0, 6.0), ops.ReLU(max_value=6.0)),
    "min_zero_only": (13, (0.0, None), ops.ReLU()),
    "max_only": (13, (None, 0.5), ops.ReLU(max_value=0.5, negative_slope=1.0)),
    "general_bounds": (13, (-0.5, 1.0), None),
    "general_bounds_attributes": (7, (-1.0, 0.25), None),
}


@pytest.mark.parametrize("opset, bounds, op", CLIP_CASES.values(), ids=CLIP_CASES.keys())
def test_clip(opset, bounds, op, tmp_path, rng):
    lo, hi = bounds
    if opset < 11:
        attrs = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
        clip, inits = node("Clip", ["x"], **attrs), {}
    else:
        inits = {k: np.float32(v) for k, v in (("lo", lo), ("hi", hi)) if v is not None}
        clip = node("Clip", ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""])
    graph = check(make_model([clip], {"x": [N, 3, 2, 2]}, ["y"], inits, opset=opset), tmp_path, rng)
    if op is not None:
        assert graph.node("clip_node").op == op
    else:
        assert ops_of(graph) == ["affine", "relu", "affine"]


# ----------------------------------------------------------------------------- BatchNormalization


@pytest.mark.parametrize(
    "opset, shape, attrs", [(7, [N, 3, 4, 4], {"spatial": 1}), (9, [N, 3], {}), (15, [N, 3, 4, 4], {"epsilon": 1e-3})]
)
def test_batch_normalization(opset, shape, attrs, tmp_path, rng):
    stats = {
        "g": weights(rng, 3),
        "b": weights(rng, 3),
        "m": weights(rng, 3),
        "v": rng.uniform(0.5, 2, 3).astype(np.float32),
    }
    model = make_model(
        [node("BatchNormalization", ["x", "g", "b", "m", "v"], **attrs)], {"x": shape}, ["y"], stats, opset=opset
    )
    assert ops_of(check(model, tmp_path, rng)) == ["batch_norm"]


# ----------------------------------------------------------------------------- pooling


POOL_CASES = {
    "avg_pads_excluded": ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])),
    "avg_pads_included": ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 0, 1, 2], count_include_pad=1)),
    "avg_ceil_mode": ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    "avg_ceil_mode_pads": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    "avg_same_upper": ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")),
    "max_pads": ("MaxPool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])),
    "max_ceil_mode": ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    "max_same_lower": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER")),
    "max_valid_stride1": ("MaxPool", dict(kernel_shape=[2, 3], auto_pad="VALID")),
}


@pytest.mark.parametrize("op_type, attrs", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_pooling(op_type, attrs, tmp_path, rng):
    model = make_model([node(op_type, ["x"], **attrs)], {"x": [N, 2, 7, 5]}, ["y"])
    check(model, tmp_path, rng)


def test_max_pool_at_opset_8(tmp_path, rng):
    model = make_model(
        [node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2])], {"x": [N, 2, 6, 6]}, ["y"], opset=8
    )
    check(model, tmp_path, rng)


@pytest.mark.parametrize("op_type, ir_op", [("GlobalAveragePool", "global_avg_pool"), ("GlobalMaxPool", "max_pool2d")])
def test_global_pooling(op_type, ir_op, tmp_path, rng):
    model = make_model([node(op_type, ["x"])], {"x": [N, 3, 4, 5]}, ["y"])
    assert ops_of(check(model, tmp_path, rng)) == [ir_op]


@pytest.mark.parametrize("opset, keepdims", [(13, 1), (18, 0)])
def test_reduce_mean_over_h_and_w(opset, keepdims, tmp_path, rng):
    if opset < 18:
        mean, inits = node("ReduceMean", ["x"], axes=[-1, 2], keepdims=keepdims), {}
    else:
        mean, inits = node("ReduceMean", ["x", "axes"], keepdims=keepdims), {"axes": np.array([2, 3])}
    model = make_model([mean], {"x": [N, 3, 4, 5]}, ["y"], inits, opset=opset)
    assert ops_of(check(model, tmp_path, rng)) == ["global_avg_pool"]


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("axis, shape", [(1, [N, 2, 3, 4]), (2, [N, 1, 3, 4]), (-3, [N, 2, 3, 4])])
def test_flatten(axis, shape, tmp_path, rng):
    check(make_model([node("Flatten", ["x"], axis=axis)], {"x": shape}, ["y"]), tmp_path, rng)


@pytest.mark.parametrize("target", [[0, -1], [-1, 24], [0, 4, -1], [0, 0, 12]])
def test_reshape(target, tmp_path, rng):
    model = make_model([node("Reshape", ["x", "s"])], {"x": [N, 2, 3, 4]}, ["y"], {"s": np.array(target, np.int64)})
    check(model, tmp_path, rng)


def test_reshape_to_shape_computed_from_the_batch_size(tmp_path, rng):
    """``x.view(x.size(0), -1)`` with a dynamic batch: Shape -> Gather -> Unsqueeze ->
    Concat -> Reshape, folded at import."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="view"),
    ]
    inits = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64), "minus_one": np.array([-1], np.int64)}
    graph = check(make_model(nodes, {"x": [N, 2, 3, 4]}, {"y": [N, 24]}, inits), tmp_path, rng, batch=4)
    assert ops_of(graph) == ["reshape"] and graph.node("view").op.shape == (24,)


def test_transpose_then_conv_reads_an_image(tmp_path, rng):
    model = make_model(
        [node("Transpose", ["x"], "t", perm=[0, 3, 1, 2]), node("Conv", ["t", "w"])],
        {"x": [N, 5, 6, 2]},
        ["y"],
        {"w": weights(rng, 3, 2, 3, 3)},
    )
    check(model, tmp_path, rng)


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_and_unsqueeze(opset, tmp_path, rng):
    def axes_node(op_type, inputs, output, axes):
        if opset < 13:
            return node(op_type, inputs, output, name=op_type, axes=axes)
        return node(op_type, [*inputs, f"{op_type}_axes"], output, name=op_type)

    nodes = [
        node("GlobalAveragePool", ["x"], "g"),
        axes_node("Squeeze", ["g"], "s", [2, 3]),
        axes_node("Unsqueeze", ["s"], "y", [-1]),
    ]
    inits = {} if opset < 13 else {"Squeeze_axes": np.array([2, 3]), "Unsqueeze_axes": np.array([-1])}
    check(make_model(nodes, {"x": [N, 3, 4, 4]}, ["y"], inits, opset=opset), tmp_path, rng)


@pytest.mark.parametrize("axis", [1, -1])
def test_concat(axis, tmp_path, rng):
    nodes = [node("Relu", ["a"], "ra"), node("Concat", ["ra", "b"], axis=axis)]
    check(make_model(nodes, {"a": [N, 2, 3, 4], "b": [N, 2, 3, 4]}, ["y"]), tmp_path, rng)


# ----------------------------------------------------------------------------- arithmetic


ARITHMETIC_CASES = {
    "add_per_channel": ("Add", ["x", "k"], (1, 3, 1, 1)),
    "add_scalar_first": ("Add", ["k", "x"], ()),
    "sub_constant": ("Sub", ["x", "k"], (3, 1, 1)),
    "sub_from_constant": ("Sub", ["k", "x"], (1,)),
    "mul_per_channel": ("Mul", ["x", "k"], (3, 1, 1)),
    "mul_scalar_first": ("Mul", ["k", "x"], ()),
    "div_per_channel": ("Div", ["x", "k"], (1, 3, 1, 1)),
}


@pytest.mark.parametrize("op_type, inputs, k_shape", ARITHMETIC_CASES.values(), ids=ARITHMETIC_CASES.keys())
def test_arithmetic_with_a_constant_is_affine(op_type, inputs, k_shape, tmp_path, rng):
    k = rng.uniform(0.5, 2.0, size=k_shape).astype(np.float32)
    model = make_model([node(op_type, inputs)], {"x": [N, 3, 2, 2]}, ["y"], {"k": k})
    assert ops_of(check(model, tmp_path, rng)) == ["affine"]


def test_arithmetic_on_vectors(tmp_path, rng):
    nodes = [node("Mul", ["x", "k"], "m"), node("Sub", ["m", "x"])]
    check(make_model(nodes, {"x": [N, 5]}, ["y"], {"k": weights(rng, 5)}), tmp_path, rng)


def test_add_and_sum_of_tensors(tmp_path, rng):
    nodes = [
        node("Add", ["a", "b"], "ab"),
        helper.make_node("Sum", ["ab", "a", "b"], ["s3"], name="sum3"),
        helper.make_node("Sum", ["s3", "k"], ["y"], name="sum_constant"),
    ]
    model = make_model(nodes, {"a": [N, 2, 3], "b": [N, 2, 3]}, ["y"], {"k": weights(rng, 2, 1)})
    assert ops_of(check(model, tmp_path, rng)) == ["add", "add", "affine"]


# ----------------------------------------------------------------------------- the rest


@pytest.mark.parametrize(
    "opset, shape, axis", [(13, [N, 4], -1), (11, [N, 4], None), (11, [N, 4, 1, 1], 1), (13, [N, 2, 5], 1)]
)
def test_softmax(opset, shape, axis, tmp_path, rng):
    attrs = {} if axis is None else {"axis": axis}
    check(make_model([node("Softmax", ["x"], **attrs)], {"x": shape}, ["y"], opset=opset), tmp_path, rng)


@pytest.mark.parametrize("opset", [9, 13, 18])
def test_pad(opset, tmp_path, rng):
    if opset < 11:
        pad, inits = node("Pad", ["x"], pads=[0, 0, 1, 2, 0, 0, 3, 0], value=0.5), {}
    elif opset < 18:
        pad = node("Pad", ["x", "pads", "value"])
        inits = {"pads": np.array([0, 0, 1, 2, 0, 0, 3, 0]), "value": np.float32(-1.0)}
    else:
        pad = node("Pad", ["x", "pads", "", "axes"])
        inits = {"pads": np.array([1, 2, 3, 0]), "axes": np.array([2, -1])}
    graph = check(make_model([pad], {"x": [N, 2, 3, 3]}, ["y"], inits, opset=opset), tmp_path, rng)
    assert graph.node("pad_node").op.pads == (1, 2, 3, 0)


@pytest.mark.parametrize("opset", [7, 13])
def test_dropout_and_identity_are_dropped(opset, tmp_path, rng):
    if opset < 12:
        drop = helper.make_node("Dropout", ["x"], ["d", "mask"], ratio=0.3)
        inits = {}
    else:
        drop = helper.make_node("Dropout", ["x", "ratio"], ["d"])
        inits = {"ratio": np.float32(0.3)}
    nodes = [drop, node("Identity", ["d"], "i"), node("Relu", ["i"])]
    assert ops_of(check(make_model(nodes, {"x": [N, 4]}, ["y"], inits, opset=opset), tmp_path, rng)) == ["relu"]


# ----------------------------------------------------------------------------- constants


def test_weights_reshaped_and_transposed_inside_the_graph_are_folded(tmp_path, rng):
    """As older exporters write: a Reshape of an initializer feeding Conv, a Transpose
    feeding MatMul, a Constant node for the bias, and arithmetic on constants."""
    nodes = [
        helper.make_node("Reshape", ["w_flat", "w_shape"], ["w"]),
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Flatten", ["c"], ["f"], name="flatten"),
        helper.make_node("Transpose", ["m_t"], ["m"], perm=[1, 0]),
        helper.make_node("Constant", [], ["half"], value_float=0.5),
        helper.make_node("Mul", ["m", "half"], ["m_half"]),
        helper.make_node("MatMul", ["f", "m_half"], ["fc"], name="fc"),
        helper.make_node("Constant", [], ["bias"], value=helper.make_tensor("b", 1, [3], [0.1, 0.2, 0.3])),
        helper.make_node("Add", ["fc", "bias"], ["y"], name="bias_add"),
    ]
    inits = {
        "w_flat": weights(rng, 2 * 2 * 3 * 3),
        "w_shape": np.array([2, 2, 3, 3]),
        "m_t": weights(rng, 3, 2 * 2 * 2),
    }
    graph = check(make_model(nodes, {"x": [N, 2, 4, 4]}, ["y"], inits), tmp_path, rng)
    assert ops_of(graph) == ["conv2d", "reshape", "dense"]


def test_constant_shape_of_a_channel_axis_folds(tmp_path, rng):
    # Gather(Shape(x), 1) is the channel count: a constant, whatever the batch size
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["c"], axis=0),
        helper.make_node("Concat", ["minus_one", "c_list"], ["target"], axis=0),
        helper.make_node("Unsqueeze", ["c", "axes"], ["c_list"]),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="view"),
    ]
    inits = {"one": np.array(1, np.int64), "axes": np.array([0]), "minus_one": np.array([-1])}
    # listed out of order on purpose: the frontend sorts nodes as onnx.checker requires
    graph = check(make_model(nodes, {"x": [N, 6, 1]}, {"y": [N, 6]}, inits), tmp_path, rng)
    assert graph.node("view").op.shape == (6,)


# ----------------------------------------------------------------------------- batch, inputs, outputs


def test_fixed_batch_of_one_is_the_batch(tmp_path, rng):
    nodes = [node("Reshape", ["x", "s"], "r"), helper.make_node("Flatten", ["r"], ["y"], axis=0, name="flat0")]
    model = make_model(nodes, {"x": [1, 2, 3, 4]}, ["y"], {"s": np.array([1, 4, -1])})
    graph = check(model, tmp_path, rng)
    assert graph.inputs[0].type.shape == (2, 3, 4)


def test_several_inputs_and_outputs_keep_their_names_and_order(tmp_path, rng):
    nodes = [node("Relu", ["input.1"], "relu_out"), node("Add", ["relu_out", "other"], "sum")]
    model = make_model(nodes, {"input.1": [N, 3], "other": [N, 3]}, ["sum", "relu_out"])
    graph = check(model, tmp_path, rng)
    assert [n.name for n in graph.inputs] == ["input_1", "other"]
    assert [n.name for n in graph.outputs] == ["sum", "relu_out"]


def test_opset_7_model_with_initializers_listed_as_inputs(tmp_path, rng):
    """As exporters of the opset-7 era wrote: IR version 3, every initializer also a graph
    input, BatchNormalization with its ``spatial`` attribute, Reshape to a stored shape."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization", ["c", "g", "beta", "m", "v"], ["bn"], name="bn", spatial=1, epsilon=1e-3
        ),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p", "shape"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    inits = {
        "w": weights(rng, 3, 2, 3, 3),
        "b": weights(rng, 3),
        "g": weights(rng, 3),
        "beta": weights(rng, 3),
        "m": weights(rng, 3),
        "v": rng.uniform(0.5, 2, 3).astype(np.float32),
        "shape": np.array([1, 27]),
        "fc_w": weights(rng, 4, 27),
        "fc_b": weights(rng, 4),
    }
    model = make_model(nodes, {"x": [1, 2, 6, 6]}, ["y"], inits, opset=7)
    model.ir_version = 3
    model.graph.input.extend(
        helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in model.graph.initializer
    )
    graph = check(model, tmp_path, rng)
    assert [n.name for n in graph.inputs] == ["x"]
    assert ops_of(graph) == ["conv2d", "batch_norm", "relu", "max_pool2d", "reshape", "dense"]
