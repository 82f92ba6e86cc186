"""One converter per ONNX op, registered by op type in :data:`CONVERTERS`.

A converter takes the :class:`~.context.NodeCall` and returns the IR value of the node's
first output (the others, such as Dropout's mask or MaxPool's indices, must be unused).
ONNX's own rules are spelled out where they matter for exact results: ``auto_pad``
placement, pooling ``ceil_mode``, Softmax's flattening before opset 13, broadcasting of
constant operands. Axis arguments count the batch; the IR's axes do not.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from snnc.compiler import ops

from .context import NodeCall
from .fold import PROBE_BATCHES, BatchDependent

Converter = Callable[[NodeCall], str]
CONVERTERS: dict[str, Converter] = {}


def converts(*op_types: str):
    def register(fn: Converter) -> Converter:
        for op_type in op_types:
            CONVERTERS[op_type] = fn
        return fn

    return register


# ----------------------------------------------------------------------------- helpers


def onnx_rank(call: NodeCall, value: str) -> int:
    return call.type(value).rank + 1


def onnx_shape(call: NodeCall, value: str) -> str:
    """``[N,C,H,W]``-style text of a computed tensor's ONNX shape, for messages."""
    return "[" + ",".join(["N", *map(str, call.shape(value))]) + "]"


def _axis(call: NodeCall, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise call.malformed(f"axis {axis} is out of range for a rank-{rank} tensor")
    return axis % rank


def _non_batch_axis(call: NodeCall, axis: int, rank: int) -> int:
    """An ONNX axis argument as an IR axis; the batch axis (0) is unsupported."""
    axis = _axis(call, int(axis), rank)
    if axis == 0:
        raise call.unsupported("works along the batch axis (0); snnc keeps examples independent")
    return axis - 1


def _image(call: NodeCall, what: str) -> str:
    x = call.tensor(0)
    if onnx_rank(call, x) != 4:
        raise call.unsupported(
            f"takes a tensor of shape {onnx_shape(call, x)}; snnc supports {what} of (N, C, H, W) images"
        )
    return x


def _window_input(call: NodeCall, what: str) -> tuple[str, bool]:
    """The input of a windowed op (Conv, pooling) as an IR image, and whether it is a 1-D
    signal ``(N, C, L)``: that one becomes the one-row image ``(C, 1, L)`` (a reshape), so the
    IR's 2-D ops serve it; :func:`_window_output` turns the result back into ``(C, L)``."""
    x = call.tensor(0)
    rank = onnx_rank(call, x)
    if rank == 3:
        channels, length = call.shape(x)
        return call.add(ops.Reshape((channels, 1, length)), [x], suffix="as_image"), True
    if rank != 4:
        raise call.unsupported(
            f"takes a tensor of shape {onnx_shape(call, x)}; snnc supports {what} of (N, C, L) signals "
            "and (N, C, H, W) images"
        )
    return x, False


def _window_output(call: NodeCall, y: str, signal: bool, suffix: str = "as_signal") -> str:
    """A windowed op's one-row image result ``(C, 1, L)`` back as the signal ``(C, L)``."""
    if not signal:
        return y
    channels, _, length = call.shape(y)
    return call.add(ops.Reshape((channels, length)), [y], suffix=suffix)


def _pair(call: NodeCall, name: str, default, signal: bool = False) -> tuple[int, int]:
    """A window attribute (kernel, strides, dilations) as a 2-D pair; a signal's one value
    ``[v]`` is the one-row pair ``(1, v)``."""
    value = tuple(int(v) for v in call.attr(name, default))
    if signal:
        if len(value) != 1:
            raise call.malformed(f"{name}={list(value)}; a 1-D window takes one value")
        return 1, value[0]
    if len(value) != 2:
        raise call.unsupported(f"{name}={list(value)}; snnc supports 1-D and 2-D windows")
    return value


def _same_pads(size: int, kernel: int, stride: int, dilation: int, upper: bool) -> tuple[int, int]:
    """ONNX ``SAME_UPPER``/``SAME_LOWER`` padding of one axis: ``ceil(size / stride)``
    outputs; an odd total puts the extra pixel at the end (upper) or the start (lower)."""
    span = dilation * (kernel - 1) + 1
    total = max((-(-size // stride) - 1) * stride + span - size, 0)
    small, large = total // 2, total - total // 2
    return (small, large) if upper else (large, small)


def _window_pads(call: NodeCall, size, kernel, stride, dilation=(1, 1), signal=False) -> tuple[int, int, int, int]:
    """The ``(top, left, bottom, right)`` padding of a Conv or pooling node (a signal's
    ``[begin, end]`` pads its one row's left and right)."""
    auto_pad = call.attr("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        pads = tuple(int(p) for p in call.attr("pads", (0, 0) if signal else (0, 0, 0, 0)))
        if len(pads) != (2 if signal else 4):
            raise call.malformed(f"pads={list(pads)}; a {1 if signal else 2}-D window takes {2 if signal else 4}")
        if min(pads) < 0:
            raise call.unsupported(f"negative pads {list(pads)} (cropping) are not supported")
        if signal:
            return 0, pads[0], 0, pads[1]
        return pads  # ONNX order (h_begin, w_begin, h_end, w_end) is the IR's
    if auto_pad == "VALID":
        return 0, 0, 0, 0
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        upper = auto_pad == "SAME_UPPER"
        (top, bottom), (left, right) = (_same_pads(*args, upper) for args in zip(size, kernel, stride, dilation))
        return top, left, bottom, right
    raise call.malformed(f"unknown auto_pad {auto_pad!r}")


def _channels(call: NodeCall, x: str) -> int:
    if call.type(x).rank == 0:
        raise call.unsupported(f"takes a tensor of shape {onnx_shape(call, x)}; snnc needs a channel axis (axis 1)")
    return call.shape(x)[0]


def _per_channel(call: NodeCall, constant: np.ndarray, x: str, what: str) -> np.ndarray:
    """A constant that broadcasts against the computed tensor ``x`` (N, C, ...) without
    changing its shape, as one value per channel ``(C,)``. Constants that vary along other
    axes have no IR op."""
    rank, channels = onnx_rank(call, x), _channels(call, x)
    shape = list(constant.shape)
    if constant.ndim > rank:
        raise call.unsupported(f"{what} of shape {shape} adds axes to {onnx_shape(call, x)}")
    full = constant.reshape((1,) * (rank - constant.ndim) + constant.shape)
    if full.shape[0] != 1 or full.shape[1] not in (1, channels) or any(d != 1 for d in full.shape[2:]):
        raise call.unsupported(
            f"{what} of shape {shape} broadcast over {onnx_shape(call, x)}; snnc supports scalars and "
            f"one value per channel (shape [{channels},1,...])"
        )
    return np.broadcast_to(full.reshape(-1).astype(np.float64), (channels,))


def _affine(call: NodeCall, x: str, scale, shift, suffix: str = "") -> str:
    """``x * scale + shift`` with scalars or per-channel vectors."""
    channels = _channels(call, x)
    params = {"scale": np.broadcast_to(scale, (channels,)), "shift": np.broadcast_to(shift, (channels,))}
    return call.add(ops.Affine(), [x], params, suffix=suffix)


def _reshape(call: NodeCall, x: str, shape, suffix: str = "") -> str:
    shape = tuple(int(d) for d in shape)
    return x if shape == call.shape(x) else call.add(ops.Reshape(shape), [x], suffix=suffix)


# ----------------------------------------------------------------------------- layers


@converts("Conv")
def conv(call):
    x, signal = _window_input(call, "convolutions")
    weight = call.constant(1, "weights")
    if weight.ndim != 3 + (not signal):
        dims = 2 - signal
        raise call.malformed(f"weights of shape {list(weight.shape)}; a {dims}-D convolution takes {dims + 2}-D weights")
    if signal:
        weight = weight[:, :, None, :]
    filters = weight.shape[0]
    bias = call.optional_constant(2, "bias")
    kernel = _pair(call, "kernel_shape", weight.shape[2 + signal :], signal)
    if kernel != weight.shape[2:]:
        raise call.malformed(f"kernel_shape={list(call.attr('kernel_shape'))} but the weights are {list(weight.shape)}")
    ones = (1,) * (2 - signal)
    stride, dilation = _pair(call, "strides", ones, signal), _pair(call, "dilations", ones, signal)
    pads = _window_pads(call, call.shape(x)[1:], kernel, stride, dilation, signal)
    op = ops.Conv2d(filters, kernel, stride, pads, dilation, int(call.attr("group", 1)))
    params = {
        "weight": weight.astype(np.float32),
        "bias": np.zeros(filters) if bias is None else bias.astype(np.float32),
    }
    return _window_output(call, call.add(op, [x], params, suffix="image" if signal else ""), signal)


@converts("Gemm")
def gemm(call):
    """``alpha * A @ B' + beta * C`` with A the (N, K) batch and B' = B or B.T."""
    x = call.tensor(0)
    if call.attr("transA", 0):
        raise call.unsupported("transA=1 (examples along axis 1); snnc supports transA=0")
    if onnx_rank(call, x) != 2:
        raise call.unsupported(f"takes a tensor of shape {onnx_shape(call, x)}; Gemm takes (N, K)")
    b = call.constant(1, "matrix B")
    matrix = b.T if call.attr("transB", 0) else b
    units = matrix.shape[1]
    c = call.optional_constant(2, "bias C")
    bias = np.zeros(units) if c is None else float(call.attr("beta", 1.0)) * _vector(call, c, units, "bias C")
    weight = float(call.attr("alpha", 1.0)) * matrix.T.astype(np.float64)
    return call.add(ops.Dense(units), [x], {"weight": weight, "bias": bias})


def _is_bias(c: np.ndarray, units: int) -> bool:
    """Whether ``c`` adds to an (N, units) batch without changing its shape: a scalar,
    ``(units,)`` or ``(1, units)``."""
    return c.ndim <= 2 and (c.ndim < 2 or c.shape[0] == 1) and c.shape[-1:] in ((), (1,), (units,))


def _vector(call: NodeCall, c: np.ndarray, units: int, what: str) -> np.ndarray:
    """A bias (see :func:`_is_bias`) as ``(units,)``."""
    if not _is_bias(c, units):
        raise call.unsupported(f"{what} of shape {list(c.shape)}; snnc supports a scalar or one value per unit")
    return np.broadcast_to(c.reshape(-1).astype(np.float64), (units,))


@converts("MatMul")
def matmul(call):
    """``A @ B`` with A the (N, K) batch; an Add of a constant that only it feeds becomes
    the dense layer's bias (how exporters write ``nn.Linear`` as MatMul + Add)."""
    x = call.tensor(0)
    matrix = call.constant(1, "matrix B")
    if onnx_rank(call, x) != 2 or matrix.ndim != 2:
        raise call.unsupported(
            f"multiplies {onnx_shape(call, x)} by {list(matrix.shape)}; snnc supports (N, K) @ (K, M)"
        )
    return dense_with_bias_add(call, x, matrix)


def dense_with_bias_add(call: NodeCall, x: str, matrix: np.ndarray, wrap=lambda y: y) -> str:
    """``x @ matrix`` as a dense layer, taking in the bias Add that follows, if any (whose
    ONNX value becomes ``wrap(y)``: a sequence converter's TimeTensor)."""
    units = matrix.shape[1]
    add, bias = _bias_add(call, units)
    y = call.add(ops.Dense(units), [x], {"weight": matrix.T, "bias": np.zeros(units) if add is None else bias})
    if add is not None:
        call.model.values[add.output[0]] = wrap(y)  # the Add is done: the conversion loop skips it
    return y


def _bias_add(call: NodeCall, units: int):
    """The Add node that only this node feeds and that adds a bias to it, and the bias as
    ``(units,)``; or ``(None, None)``."""
    readers = call.readers()
    if len(readers) != 1 or readers[0].op_type != "Add" or call.node.output[0] in call.model.graph_outputs:
        return None, None
    add = readers[0]
    other = [call.model.values.get(name) for name in add.input if name != call.node.output[0]]
    if len(other) != 1 or not isinstance(other[0], np.ndarray) or not _is_bias(other[0], units):
        return None, None
    return add, _vector(call, other[0], units, "bias")


@converts("BatchNormalization")
def batch_norm(call):
    x = call.tensor(0)
    if call.attr("training_mode", 0):
        raise call.unsupported("training_mode=1; snnc converts inference models")
    if call.attr("spatial", 1) != 1:
        raise call.unsupported("spatial=0 (statistics per element); snnc supports per-channel statistics")
    channels = _channels(call, x)
    params = {}
    for i, name in enumerate(("gamma", "beta", "mean", "var"), start=1):
        array = call.constant(i, name)
        if array.size != channels:
            raise call.malformed(f"{name} has {array.size} values for {channels} channels")
        params[name] = array.reshape(-1).astype(np.float32)
    return call.add(ops.BatchNorm(epsilon=float(call.attr("epsilon", 1e-5))), [x], params)


# ----------------------------------------------------------------------------- pooling


def _pool_window(call: NodeCall, x: str, signal: bool):
    """Kernel, stride and pads of a pooling node, and the padding ``ceil_mode`` adds at
    the end of each axis (extra windows that overhang the input)."""
    if any(int(d) != 1 for d in call.attr("dilations", ())):
        raise call.unsupported(f"dilations={list(call.attr('dilations'))}; snnc supports undilated pooling")
    kernel = _pair(call, "kernel_shape", (), signal)
    stride = _pair(call, "strides", (1,) * (2 - signal), signal)
    size = call.shape(x)[1:]
    top, left, bottom, right = _window_pads(call, size, kernel, stride, signal=signal)
    extra = (0, 0)
    if call.attr("ceil_mode", 0):
        extra = tuple(_ceil_extra(*args) for args in zip(size, kernel, stride, ((top, bottom), (left, right))))
    return kernel, stride, (top, left, bottom + extra[0], right + extra[1]), extra


def _ceil_extra(size: int, kernel: int, stride: int, pads: tuple[int, int]) -> int:
    """Padding ``ceil_mode=1`` adds at the end of one axis: outputs are
    ``ceil((size + pads - kernel) / stride) + 1``, except that a last window starting past
    the input and its begin padding is dropped (as onnxruntime and PyTorch do)."""
    padded = size + sum(pads)
    out = -(-(padded - kernel) // stride) + 1
    if (out - 1) * stride >= size + pads[0]:
        out -= 1
    return max((out - 1) * stride + kernel - padded, 0)


@converts("AveragePool")
def average_pool(call):
    x, signal = _window_input(call, "pooling")
    kernel, stride, pads, extra = _pool_window(call, x, signal)
    include_pad = bool(call.attr("count_include_pad", 0))
    if include_pad and any(extra):
        raise call.unsupported("ceil_mode=1 with count_include_pad=1 (windows overhanging the padding)")
    y = call.add(ops.AvgPool2d(kernel, stride, pads, include_pad), [x], suffix="image" if signal else "")
    return _window_output(call, y, signal)


@converts("MaxPool")
def max_pool(call):
    x, signal = _window_input(call, "pooling")
    kernel, stride, pads, _ = _pool_window(call, x, signal)
    y = call.add(ops.MaxPool2d(kernel, stride, pads), [x], suffix="image" if signal else "")
    return _window_output(call, y, signal)


@converts("GlobalAveragePool")
def global_average_pool(call):
    x, signal = _window_input(call, "global pooling")
    y = call.add(ops.GlobalAvgPool(keepdims=True), [x], suffix="image" if signal else "")
    return _window_output(call, y, signal)


@converts("GlobalMaxPool")
def global_max_pool(call):
    x, signal = _window_input(call, "global pooling")
    y = call.add(ops.MaxPool2d(call.shape(x)[1:], (1, 1)), [x], suffix="image" if signal else "")
    return _window_output(call, y, signal)


@converts("ReduceMean")
def reduce_mean(call):
    """A mean over H and W (how the dynamo exporter writes ``AdaptiveAvgPool2d(1)``)."""
    x = _image(call, "means over H and W")
    if call.opset < 18:
        axes = call.attr("axes")
    else:
        axes = call.optional_constant(1, "axes")
    axes = None if axes is None else {_axis(call, int(a), 4) for a in np.asarray(axes).reshape(-1)}
    if axes != {2, 3}:
        raise call.unsupported(
            f"averages over axes {sorted(axes or range(4))}; snnc supports a mean over H and W (2, 3)"
        )
    return call.add(ops.GlobalAvgPool(keepdims=bool(call.attr("keepdims", 1))), [x])


# ----------------------------------------------------------------------------- activations


@converts("Relu")
def relu(call):
    return call.add(ops.ReLU(), [call.tensor(0)])


@converts("LeakyRelu")
def leaky_relu(call):
    return call.add(ops.ReLU(negative_slope=float(call.attr("alpha", 0.01))), [call.tensor(0)])


@converts("HardSigmoid")
def hard_sigmoid(call):
    """``max(0, min(1, alpha * x + beta))``: an affine and a relu clipped at 1."""
    alpha, beta = float(call.attr("alpha", 0.2)), float(call.attr("beta", 0.5))
    line = _affine(call, call.tensor(0), alpha, beta, suffix="line")
    return call.add(ops.ReLU(max_value=1.0), [line])


@converts("Sigmoid")
def sigmoid(call):
    return call.add(ops.Sigmoid(), [call.tensor(0)])


@converts("Tanh")
def tanh(call):
    return call.add(ops.Tanh(), [call.tensor(0)])


@converts("Clip")
def clip(call):
    """``min(max(x, lo), hi)``: a ReLU when ``lo = 0``; ``min(x, hi)`` is a ReLU with slope
    1 below zero; any other ``lo`` is ``relu(x - lo, max=hi - lo) + lo``."""
    x = call.tensor(0)
    lo, hi = _clip_bounds(call)
    if lo == 0:
        return call.add(ops.ReLU(max_value=hi), [x])
    if lo is None:
        return x if hi is None else call.add(ops.ReLU(max_value=hi, negative_slope=1.0), [x])
    shifted = _affine(call, x, 1.0, -lo, suffix="shift")
    clipped = call.add(ops.ReLU(max_value=None if hi is None else hi - lo), [shifted], suffix="relu")
    return _affine(call, clipped, 1.0, lo)


def _clip_bounds(call: NodeCall) -> tuple[float | None, float | None]:
    """Clip's bounds (attributes before opset 11, inputs since); None where unbounded."""
    if call.opset < 11:
        lo, hi = call.attr("min"), call.attr("max")
    else:
        lo, hi = (call.optional_constant(i, name) for i, name in ((1, "min"), (2, "max")))
    lo, hi = (None if v is None else float(np.asarray(v).reshape(())) for v in (lo, hi))
    float_max = float(np.finfo(np.float32).max)
    return (None if lo is None or lo <= -float_max else lo), (None if hi is None or hi >= float_max else hi)


@converts("Softmax")
def softmax(call):
    """Before opset 13, Softmax flattens the axes from ``axis`` on into one; snnc supports
    that when at most one of them is longer than 1."""
    x = call.tensor(0)
    rank = onnx_rank(call, x)
    axis = _axis(call, int(call.attr("axis", 1 if call.opset < 13 else -1)), rank)
    covered = range(axis, rank) if call.opset < 13 else (axis,)
    if 0 in covered:
        raise call.unsupported("normalizes over the batch axis; snnc supports a softmax over one axis of each example")
    long_axes = [a for a in covered if call.shape(x)[a - 1] > 1]
    if len(long_axes) > 1:
        raise call.unsupported(f"normalizes over axes {long_axes} together; snnc supports a softmax over one axis")
    readers = call.readers()
    if readers:
        raise call.unsupported(
            f"feeds node {readers[0].name or readers[0].op_type!r} ({readers[0].op_type}); snnc supports "
            "Softmax only as the last op before a model output"
        )
    return call.add(ops.Softmax((long_axes or [covered[-1]])[0] - 1), [x])


# ----------------------------------------------------------------------------- arithmetic


@converts("Add", "Sub", "Mul", "Div")
def arithmetic(call):
    """Elementwise arithmetic with a constant (a scalar or one value per channel) is an
    affine op; ``x + y`` and ``x - y`` of computed tensors of one shape are an add."""
    a, b = call.input(0), call.input(1)
    if isinstance(a, str) and isinstance(b, str):
        return _tensor_arithmetic(call, a, b)
    x, k = (a, call.constant(1, "second operand")) if isinstance(a, str) else (b, call.constant(0, "first operand"))
    c = _per_channel(call, k, x, "the constant operand")
    op, constant_first = call.op_type, not isinstance(a, str)
    if op == "Add":
        return _affine(call, x, 1.0, c)
    if op == "Sub":
        return _affine(call, x, -1.0, c) if constant_first else _affine(call, x, 1.0, -c)
    if op == "Mul":
        return _affine(call, x, c, 0.0)
    if constant_first:
        raise call.unsupported("divides a constant by a computed tensor; snnc supports division by a constant")
    if not np.all(c):
        raise call.unsupported("divides by a constant that has zeros")
    return _affine(call, x, 1.0 / c, 0.0)


def _tensor_arithmetic(call: NodeCall, a: str, b: str) -> str:
    if call.op_type == "Add":
        return call.add(ops.Add(), [a, b])
    if call.op_type == "Sub":
        return call.add(ops.Add(), [a, _affine(call, b, -1.0, 0.0, suffix="negate")])
    raise call.unsupported(f"{call.op_type} of two computed tensors; snnc supports {call.op_type} by a constant")


@converts("Sum")
def sum_(call):
    """The sum of the computed inputs, plus the constant ones as a per-channel shift."""
    inputs = [call.input(i) for i in range(len(call.node.input))]
    tensors = [v for v in inputs if isinstance(v, str)]
    y = tensors[0] if len(tensors) == 1 else call.add(ops.Add(), tensors)
    constants = [call.constant(i, f"input {i}") for i, v in enumerate(inputs) if not isinstance(v, str)]
    if not constants:
        return y
    return _affine(call, y, 1.0, sum(_per_channel(call, k, y, "a constant input") for k in constants), suffix="shift")


# ----------------------------------------------------------------------------- shapes


@converts("Flatten")
def flatten(call):
    """``(d0 * ... * d[axis-1], d[axis] * ...)``: the batch stays the first axis when the
    axes merged into it are all 1 (or, for ``axis=0``, when the batch itself is 1)."""
    x = call.tensor(0)
    rank, shape = onnx_rank(call, x), call.shape(x)
    axis = int(call.attr("axis", 1))
    axis = axis + rank if axis < 0 else axis  # in [-rank, rank]: the rank itself is allowed
    merged = math.prod(shape[: max(axis - 1, 0)])
    if (axis == 0 and not call.model.batch_is_one) or merged != 1:
        raise call.unsupported(f"flattens {onnx_shape(call, x)} at axis {axis}, merging examples into one")
    return _reshape(call, x, (math.prod(shape[max(axis - 1, 0) :]),))


#: the first entry of a Reshape target that is the batch size
BATCH = object()


@converts("Reshape")
def reshape(call):
    x = call.tensor(0)
    target = call.input(1)
    if isinstance(target, str):
        raise call.unsupported("its shape is computed from the model's inputs; snnc needs a constant shape")
    if isinstance(target, BatchDependent):
        head, rest = _batch_head(call, target)
    elif target.ndim != 1 or target.size == 0:
        raise call.unsupported(f"reshapes to shape {target.tolist()}; snnc keeps axis 0 as the batch")
    else:
        head, rest = int(target[0]), [int(d) for d in target[1:]]
    return _reshape(call, x, _reshaped(call, x, head, rest))


def _batch_head(call: NodeCall, target: BatchDependent):
    """A shape computed from the batch size: its first entry must be the batch size and
    the others constants (``x.view(x.size(0), -1)``)."""
    first = target.values[0]
    if (
        first.ndim != 1
        or first.size == 0
        or any(v[0] != batch or not np.array_equal(v[1:], first[1:]) for v, batch in zip(target.values, PROBE_BATCHES))
    ):
        raise call.unsupported("reshapes to a shape computed from the batch size other than (N, ...)")
    return BATCH, [int(d) for d in first[1:]]


def _reshaped(call: NodeCall, x: str, head, rest: list[int]) -> list[int]:
    """The IR shape of Reshape's output: ``rest`` with 0 copied from the input (unless
    ``allowzero``) and -1 inferred; ``head`` must leave the batch where it is."""
    shape, size = call.shape(x), call.type(x).size
    keep_zeros = call.attr("allowzero", 0)
    if not keep_zeros:
        if any(d == 0 and i >= len(shape) for i, d in enumerate(rest)):
            raise call.malformed(f"copies an axis (0) that its input {onnx_shape(call, x)} does not have")
        rest = [shape[i] if d == 0 else d for i, d in enumerate(rest)]
    batch_heads = (BATCH, -1) + ((0,) if not keep_zeros else ()) + ((1,) if call.model.batch_is_one else ())
    if -1 in rest and head != -1:
        known = math.prod(d for d in rest if d != -1)
        rest[rest.index(-1)] = size // known if known and size % known == 0 else -1
    if head not in batch_heads or math.prod(rest) != size or min(rest, default=1) < 1:
        shown = ["N" if head is BATCH else head, *rest]
        raise call.unsupported(
            f"reshapes {onnx_shape(call, x)} to {shown}; snnc supports reshapes that keep axis 0 as the batch"
        )
    return rest


@converts("Squeeze")
def squeeze(call):
    x = call.tensor(0)
    rank, shape = onnx_rank(call, x), call.shape(x)
    axes = _axes_argument(call)
    if axes is None:  # whether the batch goes too depends on the batch size
        raise call.unsupported("squeezes every axis of length 1 (the batch too, when it is 1); snnc needs axes")
    ir_axes = {_non_batch_axis(call, a, rank) for a in axes}
    if any(shape[a] != 1 for a in ir_axes):
        raise call.malformed(
            f"squeezes axes {sorted(a + 1 for a in ir_axes)} of {onnx_shape(call, x)}, not all of length 1"
        )
    return _reshape(call, x, [d for a, d in enumerate(shape) if a not in ir_axes])


@converts("Unsqueeze")
def unsqueeze(call):
    x = call.tensor(0)
    axes = _axes_argument(call)
    if axes is None:
        raise call.malformed("has no axes")
    rank = onnx_rank(call, x) + len(axes)
    ir_axes = {_non_batch_axis(call, a, rank) for a in axes}
    dims = iter(call.shape(x))
    return _reshape(call, x, [1 if a in ir_axes else next(dims) for a in range(rank - 1)])


def _axes_argument(call: NodeCall) -> list[int] | None:
    """Squeeze/Unsqueeze axes: an attribute before opset 13, an optional input since."""
    if call.opset < 13:
        axes = call.attr("axes")
        return None if axes is None else [int(a) for a in axes]
    axes = call.optional_constant(1, "axes")
    return None if axes is None else [int(a) for a in axes.reshape(-1)]


@converts("Transpose")
def transpose(call):
    x = call.tensor(0)
    rank = onnx_rank(call, x)
    perm = [int(p) for p in call.attr("perm", range(rank - 1, -1, -1))]
    if sorted(perm) != list(range(rank)):
        raise call.malformed(f"perm={perm} is not a permutation of {rank} axes")
    if perm[0] != 0:
        raise call.unsupported(f"perm={perm} moves the batch axis; snnc keeps axis 0 as the batch")
    if perm == list(range(rank)):
        return x
    return call.model.transpose(x, tuple(p - 1 for p in perm[1:]), call.name)


@converts("Concat")
def concat(call):
    values = [call.tensor(i) for i in range(len(call.node.input))]
    if len(values) == 1:
        return values[0]
    axis = _non_batch_axis(call, int(call.attr("axis", 1)), onnx_rank(call, values[0]))
    return call.add(ops.Concat(axis), values)


@converts("Pad")
def pad(call):
    x = call.tensor(0)
    mode = call.attr("mode", "constant")
    if mode != "constant":
        raise call.unsupported(f"mode={mode!r}; snnc supports constant padding")
    rank = onnx_rank(call, x)
    pads, value = _pad_arguments(call, rank)
    if len(pads) != 2 * rank:
        raise call.malformed(f"{len(pads)} pads for a rank-{rank} tensor")
    if rank != 4 or any(pads[i] for i in (0, 1, rank, rank + 1)):
        raise call.unsupported(
            f"pads {onnx_shape(call, x)} by {pads}; snnc pads the H and W axes of (N, C, H, W) images"
        )
    if min(pads) < 0:
        raise call.unsupported(f"negative pads {pads} (cropping) are not supported")
    if not any(pads):
        return x
    return call.add(ops.Pad2d((pads[2], pads[3], pads[6], pads[7]), value), [x])


def _pad_arguments(call: NodeCall, rank: int) -> tuple[list[int], float]:
    """Pad's ``(begin..., end...)`` pads over every axis and its value: attributes before
    opset 11, inputs since (with optional ``axes`` since opset 18)."""
    if call.opset < 11:
        return [int(p) for p in call.attr("pads", ())], float(call.attr("value", 0.0))
    given = [int(p) for p in call.constant(1, "pads").reshape(-1)]
    value = call.optional_constant(2, "constant_value")
    axes = call.optional_constant(3, "axes")
    axes = list(range(rank)) if axes is None else [_axis(call, int(a), rank) for a in axes.reshape(-1)]
    if len(given) != 2 * len(axes):
        raise call.malformed(f"{len(given)} pads for {len(axes)} axes")
    pads = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        pads[axis], pads[rank + axis] = given[i], given[len(axes) + i]
    return pads, 0.0 if value is None else float(np.asarray(value).reshape(()))


@converts("Dropout")
def dropout(call):
    training = call.optional_constant(2, "training_mode") if call.opset >= 12 else None
    if training is not None and bool(training):
        raise call.unsupported("training_mode=True; snnc converts inference models")
    return call.tensor(0)


@converts("Identity")
def identity(call):
    return call.tensor(0)
