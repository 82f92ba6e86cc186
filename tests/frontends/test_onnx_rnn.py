"""The ONNX RNN op (forward, Relu or Affine, layout 0) with the Squeeze/Transpose
nodes PyTorch's exporter puts around it, against onnxruntime; and the options snnc refuses,
by node. snnc takes and returns sequences batch first, ``(N, steps, ...)``: the time-major
ONNX tensors are transposed for the comparison."""

import numpy as np
import pytest
from onnx import helper

from error_testing import raises
from onnx_testing import make_model, ort_outputs, save
from snnc.compiler import load_model, run_model
from snnc.compiler.errors import UnsupportedError

F, H, O, STEPS, BATCH = 3, 5, 2, 6, 4
TOL = dict(rtol=1e-5, atol=1e-5)


def rnn_weights(rng, hidden=H, features=F, bias=True):
    weights = {
        "W": rng.normal(0, 0.5, (1, hidden, features)).astype(np.float32),
        "R": rng.normal(0, 0.3, (1, hidden, hidden)).astype(np.float32),
    }
    if bias:
        weights["B"] = rng.normal(0, 0.2, (1, 2 * hidden)).astype(np.float32)
    return weights


def rnn_node(x, prefix, outputs, bias=True, **attributes):
    attributes = {"hidden_size": H, "activations": ["Relu"], **attributes}
    inputs = [x, f"{prefix}W", f"{prefix}R", *([f"{prefix}B"] if bias else [])]
    return helper.make_node("RNN", inputs, outputs, name=prefix.strip("_") or "rnn", **attributes)


def prefixed(weights, prefix):
    return {prefix + k: v for k, v in weights.items()}


def time_major(rng, bias=True, **attributes):
    """PyTorch's ``nn.RNN(nonlinearity='relu')`` export: Y -> Squeeze(1), and Y_h."""
    nodes = [
        rnn_node("x", "", ["y", "y_h"], bias, **attributes),
        helper.make_node("Squeeze", ["y", "axes1"], ["seq"], name="squeeze_y"),
    ]
    init = {**rnn_weights(rng, bias=bias), "axes1": np.array([1], np.int64)}
    return make_model(nodes, {"x": ["T", "N", F]}, ["seq", "y_h"], init)


def batch_first_stacked(rng):
    """``batch_first=True``, two layers: Transpose in, Squeeze between, Transpose out, and
    the last step through Squeeze(0) and a Linear."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2], name="to_time_major"),
        rnn_node("xt", "l0_", ["y0", ""]),
        helper.make_node("Squeeze", ["y0", "axes1"], ["s0"], name="squeeze0"),
        helper.make_node("RNN", ["s0", "l1_W", "l1_R", "", "", "h0"], ["y1", "h1"], hidden_size=H, activations=["Affine"],
                         activation_alpha=[0.5], activation_beta=[0.1], name="l1"),
        helper.make_node("Squeeze", ["y1", "axes1"], ["s1"], name="squeeze1"),
        helper.make_node("Transpose", ["s1"], ["seq"], perm=[1, 0, 2], name="to_batch_first"),
        helper.make_node("Squeeze", ["h1", "axes0"], ["last"], name="squeeze_h"),
        helper.make_node("Gemm", ["last", "fc_W", "fc_B"], ["head"], transB=1, name="fc"),
    ]
    init = {
        **prefixed(rnn_weights(rng), "l0_"),
        **prefixed(rnn_weights(rng, features=H, bias=False), "l1_"),
        "h0": np.zeros((1, BATCH, H), np.float32),  # a zero initial state (sized for the batch)
        "axes0": np.array([0], np.int64),
        "axes1": np.array([1], np.int64),
        "fc_W": rng.normal(0, 0.5, (O, H)).astype(np.float32),
        "fc_B": rng.normal(0, 0.1, O).astype(np.float32),
    }
    return make_model(nodes, {"x": ["N", STEPS, F]}, ["seq", "head"], init)


CASES = {
    "time_major": time_major,
    "time_major_no_bias": lambda rng: time_major(rng, bias=False),
    "identity_affine": lambda rng: time_major(rng, activations=["Affine"], activation_alpha=[1.0], activation_beta=[0.0]),
    "batch_first_stacked": batch_first_stacked,
}


@pytest.mark.parametrize("case", CASES)
def test_matches_onnxruntime(case, tmp_path, rng):
    model = CASES[case](rng)
    path = save(model, tmp_path)
    graph = load_model(path)
    x = rng.uniform(-1, 1, (BATCH, STEPS, F)).astype(np.float32)  # batch first, as snnc takes it
    time_major_input = model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "T"
    theirs = ort_outputs(path, [x.transpose(1, 0, 2) if time_major_input else x])
    ours = list(run_model(graph, x).values())
    for out, a, b in zip(model.graph.output, ours, theirs):
        b = _as_snnc_returns(out.name, b, graph)
        assert a.shape == b.shape, (out.name, a.shape, b.shape)
        np.testing.assert_allclose(a, b, **TOL)


def _as_snnc_returns(name, array, graph):
    """onnxruntime's output in snnc's order: batch first, then (for a sequence) the steps, then
    the other axes (the sizes BATCH, STEPS and the per-step shape tell the axes apart)."""
    node = graph.node(name)
    shape = node.type.shape
    if node.op.sequence:  # find the batch and time axes: the two axes not in the per-step shape
        for b in range(array.ndim):
            for t in range(array.ndim):
                rest = [a for a in range(array.ndim) if a not in (b, t)]
                if b != t and array.shape[b] == BATCH and array.shape[t] == STEPS and tuple(array.shape[a] for a in rest) == shape:
                    return array.transpose(b, t, *rest)
    for b in range(array.ndim):
        rest = [a for a in range(array.ndim) if a != b]
        if array.shape[b] == BATCH and tuple(array.shape[a] for a in rest) == shape:
            return array.transpose(b, *rest)
    raise AssertionError(f"{name}: no batch-first arrangement of {array.shape} matches {shape}")


# ----------------------------------------------------------------------------- refusals


def single_rnn(rng, *extra_inputs, opset=14, **attributes):
    """One RNN whose Y_h is the output; ``extra_inputs``: (name, array) for inputs 3.."""
    init = rnn_weights(rng)
    names = ["x", "W", "R", "B"]
    for name, array in extra_inputs:
        names.append(name)
        if array is not None:
            init[name] = array
    node = helper.make_node("RNN", names, ["", "y_h"], name="rnn", **{"hidden_size": H, "activations": ["Relu"], **attributes})
    inputs = {"x": ["T", "N", F], **({"lens": ["N"]} if "lens" in names else {})}
    return make_model([node], inputs, ["y_h"], init, opset=opset)


REFUSALS = {
    "tanh": (lambda rng: single_rnn(rng, activations=["Tanh"]), ["'Tanh'", "Relu, Affine"]),
    "reverse": (lambda rng: single_rnn(rng, direction="reverse"), ["direction='reverse'", "forward"]),
    "clip": (lambda rng: single_rnn(rng, clip=3.0), ["clip"]),
    "layout1": (lambda rng: single_rnn(rng, layout=1), ["layout=1"]),
    "initial_h": (
        lambda rng: single_rnn(rng, ("", None), ("h0", np.ones((1, BATCH, H), np.float32))), ["nonzero initial_h"]
    ),
    "affine_defaults": (lambda rng: single_rnn(rng, activations=["Affine"]), ["activation_alpha and activation_beta"]),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_name_the_node(case, tmp_path, rng):
    build, fragments = REFUSALS[case]
    raises(UnsupportedError, save(build(rng), tmp_path), "node 'rnn' (RNN)", *fragments)


def test_other_ops_on_a_sequence_are_refused(tmp_path, rng):
    nodes = [rnn_node("x", "", ["y", ""]), helper.make_node("Relu", ["y"], ["out"], name="act")]
    model = make_model(nodes, {"x": ["T", "N", F]}, ["out"], rnn_weights(rng))
    raises(UnsupportedError, save(model, tmp_path), "node 'act' (Relu)", "reads a sequence", "RNN, Squeeze, Transpose")


def _sequence_then(rng, *nodes, extra=None, outputs=("out",)):
    """A time-major RNN (Y squeezed to ``[seq, batch, hidden]`` as ``seq``) followed by ``nodes``."""
    head = [rnn_node("x", "", ["y", ""]), helper.make_node("Squeeze", ["y", "axes1"], ["seq"], name="squeeze_y")]
    init = {**rnn_weights(rng), "axes1": np.array([1], np.int64), **(extra or {})}
    return make_model([*head, *nodes], {"x": ["T", "N", F]}, list(outputs), init)


def _gather(rng, axis: int, index: int):
    node = helper.make_node("Gather", ["seq", "i"], ["out"], axis=axis, name="pick")
    return _sequence_then(rng, node, extra={"i": np.array(index, np.int64)})


SEQUENCE_REFUSALS = {
    "gather_first_step": (lambda rng: _gather(rng, 0, 0), ["node 'pick' (Gather)", "index -1 on the time axis"]),
    "gather_features": (lambda rng: _gather(rng, 2, -1), ["node 'pick' (Gather)", "index -1 on the time axis"]),
    "matmul_by_a_stack_of_matrices": (
        lambda rng: _sequence_then(
            rng,
            helper.make_node("MatMul", ["seq", "M"], ["out"], name="mm"),
            extra={"M": rng.normal(size=(1, H, 2)).astype(np.float32)},
        ),
        ["node 'mm' (MatMul)", "multiplies a sequence by [1, 5, 2]", "a constant [K, M]"],
    ),
}


@pytest.mark.parametrize("case", SEQUENCE_REFUSALS)
def test_sequence_refusals_name_the_node(case, tmp_path, rng):
    build, fragments = SEQUENCE_REFUSALS[case]
    raises(UnsupportedError, save(build(rng), tmp_path), *fragments)


def test_gather_off_a_sequence_is_refused(tmp_path, rng):
    node = helper.make_node("Gather", ["x", "i"], ["out"], axis=1, name="pick")
    model = make_model([node], {"x": ["N", 4]}, ["out"], {"i": np.array(-1, np.int64)})
    raises(UnsupportedError, save(model, tmp_path), "node 'pick' (Gather)", "only on the outputs of an RNN")


def test_batch_sized_initial_state_must_be_zero(tmp_path, rng):
    """PyTorch computes its zero initial state from the batch size (Shape, Gather,
    ConstantOfShape); one filled with ones is refused like a constant nonzero state."""
    from onnx import TensorProto

    def model(fill):
        value = helper.make_tensor("v", TensorProto.FLOAT, [1], [fill])
        nodes = [
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Gather", ["shape", "one"], ["batch"], axis=0),
            helper.make_node("Concat", ["layers", "batch", "hidden"], ["state_shape"], axis=0),
            helper.make_node("ConstantOfShape", ["state_shape"], ["h0"], value=value),
            helper.make_node("RNN", ["x", "W", "R", "B", "", "h0"], ["", "y_h"], name="rnn", hidden_size=H,
                             activations=["Relu"]),
        ]
        init = {
            **rnn_weights(rng),
            "one": np.array([1], np.int64),
            "layers": np.array([1], np.int64),
            "hidden": np.array([H], np.int64),
        }
        return make_model(nodes, {"x": ["T", "N", F]}, ["y_h"], init)

    x = rng.uniform(-1, 1, (BATCH, STEPS, F)).astype(np.float32)
    path = save(model(0.0), tmp_path)
    ours = run_model(load_model(path), x)["y_h"]
    theirs = ort_outputs(path, [x.transpose(1, 0, 2)])[0]  # Y_h: [1, N, H]
    np.testing.assert_allclose(ours, theirs.transpose(1, 0, 2), **TOL)
    raises(UnsupportedError, save(model(1.0), tmp_path, "ones.onnx"), "node 'rnn' (RNN)", "nonzero initial_h")
