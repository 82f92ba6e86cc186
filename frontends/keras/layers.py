"""One converter per Keras layer type, registered by class name in :data:`CONVERTERS`.

A converter takes the :class:`~.context.LayerCall` and the call's input tensors and returns
the output :class:`~.layout.Tensor`, adding IR nodes through ``call.add``. Keras semantics
that matter for exact results are spelled out where they are used: TensorFlow's asymmetric
``same`` padding, Flatten's channels-first rule, kernel layouts and Theano's flipped kernels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from snnc.compiler import ops

from .context import LayerCall
from .layout import Tensor, compose, full_perm, identity, image_perm, inverse, ir_axis, ir_rank, keras_axis, signal_perm

Converter = Callable[[LayerCall, list[Tensor]], Tensor]
CONVERTERS: dict[str, Converter] = {}

ACTIVATIONS = ("linear", "relu", "relu6", "leaky_relu", "hard_sigmoid", "sigmoid", "tanh", "softmax")
#: Keras 3's ``leaky_relu`` activation's default slope (Keras 2 has no such activation name)
LEAKY_RELU_SLOPE = 0.2

#: Layers that do nothing at inference (noise, dropout, regularizers): removed.
INFERENCE_IDENTITIES = (
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
    "GaussianDropout", "GaussianNoise", "ActivityRegularization", "Identity",
)


def converts(*class_names: str):
    def register(fn: Converter) -> Converter:
        for name in class_names:
            CONVERTERS[name] = fn
        return fn

    return register


# ----------------------------------------------------------------------------- helpers


def _single(call: LayerCall, inputs: list[Tensor]) -> Tensor:
    if len(inputs) != 1:
        raise call.malformed(f"takes one input, the config gives it {len(inputs)}")
    return inputs[0]


def _pair(value) -> tuple[int, int]:
    """A Keras size argument (an int or a pair: kernel, stride, dilation, pool size) as two
    positive ints; raises ValueError for anything else."""
    a, b = (value, value) if isinstance(value, int) else value
    a, b = int(a), int(b)
    if a < 1 or b < 1:
        raise ValueError(f"sizes are positive, got {value}")
    return a, b


def _one_axis(call: LayerCall, axis) -> int:
    if isinstance(axis, list):
        if len(axis) != 1:
            raise call.unsupported(f"works over axes {axis}; snnc supports one (channel) axis")
        axis = axis[0]
    return int(axis)


def _constant(value) -> np.ndarray:
    """A number or list from a config, or a serialized NumPy value ``{"class_name":
    "__numpy__", "config": {"value": ...}}`` (Keras 2.12+ .keras configs), as float64."""
    if isinstance(value, dict):
        value = value["config"]["value"]
    return np.asarray(value, dtype=np.float64)


def _number(value) -> float:
    return float(_constant(value))


def relayout(call: LayerCall, x: Tensor, perm: tuple[int, ...]) -> str:
    """An IR value holding the Keras tensor ``x`` with its axes arranged as ``perm`` (which
    may add or drop unit axes, see :mod:`.layout`)."""
    if x.perm == perm:
        return x.value
    if x.ir_rank == ir_rank(perm):
        moved = call.add(ops.Transpose(compose(full_perm(x.perm), inverse(full_perm(perm)))), [x.value], suffix="transpose")
    else:  # through the Keras order, shaped with the target's unit axes in front
        units = (1,) * (ir_rank(perm) - len(perm))
        shaped = call.add(ops.Reshape((*units, *keras_shape_of(call, x))), [keras_order(call, x)], suffix="unit_axes")
        moved = call.add(ops.Transpose(inverse(full_perm(perm))), [shaped], suffix="transpose")
    # reshape to the same shape: resets the layout letters the transpose permuted
    return call.add(ops.Reshape(call.shape(moved)), [moved], suffix="relayout")


def keras_shape_of(call: LayerCall, x: Tensor) -> tuple[int, ...]:
    shape = call.shape(x.value)
    return tuple(shape[p] for p in x.perm)


def keras_order(call: LayerCall, x: Tensor) -> str:
    """A value whose elements are in the Keras tensor's row-major order (to reshape)."""
    if x.perm == identity(x.rank):
        return x.value
    return call.add(ops.Transpose(full_perm(x.perm)), [x.value], suffix="transpose")


def channel_axis_first(call: LayerCall, x: Tensor, axis: int) -> Tensor:
    """``x`` arranged so that Keras ``axis`` (a config axis argument) is IR axis 0, where
    per-channel ops (batch norm, affine) work."""
    k = keras_axis(axis, x.rank)
    if x.perm[k] == 0:
        return x
    perm = tuple(0 if j == k else j + (j < k) for j in range(x.rank))
    return Tensor(relayout(call, x, perm), perm)


def _data_format(call: LayerCall) -> str:
    data_format = call.config.get("data_format") or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise call.malformed(f"unknown data_format {data_format!r}")
    return data_format


def _image(call: LayerCall, x: Tensor, data_format: str) -> str:
    """The input as an IR image (C, H, W) for a layer with ``data_format``."""
    if x.rank != 3:
        raise call.unsupported(f"takes a rank-{x.rank + 1} tensor; snnc's 2-D layers take images (N, H, W, C)")
    return relayout(call, x, image_perm(data_format))


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's ``same`` padding of one axis: ``ceil(size / stride)`` outputs, and the
    odd pixel of an odd total goes after (bottom/right)."""
    span = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def _window_pads(call: LayerCall, size, kernel, stride, dilation=(1, 1)) -> tuple[int, int, int, int]:
    padding = call.config.get("padding", "valid")
    if padding == "valid":
        return 0, 0, 0, 0
    if padding != "same":
        raise call.unsupported(f"padding {padding!r} is not supported; supported: 'valid', 'same'")
    (top, bottom), (left, right) = (same_padding(*args) for args in zip(size, kernel, stride, dilation))
    return top, left, bottom, right


def _ir_kernel(call: LayerCall, kernel: np.ndarray) -> np.ndarray:
    """Keras kernel ``(kh, kw, in, out)`` -> IR ``(out, in, kh, kw)``. Theano-backend files
    hold kernels for a true convolution: flipped spatially for the IR's cross-correlation."""
    if call.source.flips_kernels:
        kernel = kernel[::-1, ::-1]
    return kernel.transpose(3, 2, 0, 1)


def _weights_and_bias(call: LayerCall, expected: list, units: int) -> list[np.ndarray]:
    """Weights ``expected`` plus the bias if ``use_bias`` (zeros otherwise), bias last."""
    use_bias = call.config.get("use_bias", True)
    arrays = call.weights(*expected, *([("bias", (units,))] if use_bias else []))
    return arrays if use_bias else [*arrays, np.zeros(units, np.float32)]


def activation_name(value) -> str | None:
    # Keras 3 may serialize a built-in activation as {"class_name": "function", "config": "relu"}
    if isinstance(value, dict):
        value = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    return value


def apply_activation(call: LayerCall, x: Tensor, activation, suffix: str, meta: dict | None = None) -> Tensor:
    """``activation`` (a Keras activation config) applied to ``x``; ``meta`` goes on its node."""
    name = activation_name(activation)
    if name in (None, "linear"):
        return x
    if name == "relu":
        op = ops.ReLU()
    elif name == "relu6":
        op = ops.ReLU(max_value=6.0)
    elif name == "leaky_relu":
        op = ops.ReLU(negative_slope=LEAKY_RELU_SLOPE)
    elif name == "hard_sigmoid":
        return _hard_sigmoid(call, x, suffix, meta)
    elif name == "sigmoid":
        op = ops.Sigmoid()
    elif name == "tanh":
        op = ops.Tanh()
    elif name == "softmax":
        op = ops.Softmax(ir_axis(-1, x.perm))
    else:
        raise call.unsupported(
            f"activation {name!r} is not supported; supported activations: {', '.join(ACTIVATIONS)}"
        )
    return Tensor(call.add(op, [x.value], suffix=suffix, meta=meta), x.perm)


def hard_sigmoid_line(keras_version: str | None) -> tuple[float, float]:
    """``(slope, offset)`` of the writer's ``hard_sigmoid``, ``clip(slope * x + offset, 0, 1)``:
    Keras 2 uses ``0.2 x + 0.5``; Keras 3 uses ``relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)``.
    A file that does not say which Keras wrote it is read as the installed Keras 2's."""
    return (1 / 6, 0.5) if (keras_version or "").startswith("3.") else (0.2, 0.5)


def _hard_sigmoid(call: LayerCall, x: Tensor, suffix: str, meta: dict | None = None) -> Tensor:
    """``hard_sigmoid`` as an affine and a relu clipped at 1 (what converts to neurons)."""
    slope, offset = hard_sigmoid_line(call.source.keras_version)
    channels = call.shape(x.value)[0]
    params = {"scale": np.full(channels, slope, np.float32), "shift": np.full(channels, offset, np.float32)}
    line = call.add(ops.Affine(), [x.value], params, suffix=f"{suffix}_line" if suffix else "line")
    return Tensor(call.add(ops.ReLU(max_value=1.0), [line], suffix=suffix, meta=meta), x.perm)


def _fused_activation(call: LayerCall, x: Tensor) -> Tensor:
    """The ``activation=`` argument of Dense and convolution layers."""
    name = activation_name(call.config.get("activation"))
    return apply_activation(call, x, name, suffix=name or "")


def _affine(call: LayerCall, x: Tensor, scale: np.ndarray, shift: np.ndarray, axis: int | None) -> Tensor:
    """``x * scale + shift`` with scalars or vectors along Keras ``axis``."""
    scale, shift = scale.reshape(-1), shift.reshape(-1)
    if scale.size == 1 and shift.size == 1:
        channels = call.shape(x.value)[0]
        params = {"scale": np.full(channels, scale[0]), "shift": np.full(channels, shift[0])}
        return Tensor(call.add(ops.Affine(), [x.value], params), x.perm)
    if axis is None:
        raise call.unsupported(
            f"{scale.size} parameters over the whole tensor; snnc supports scalars or one per channel"
        )
    x = channel_axis_first(call, x, axis)
    channels = call.shape(x.value)[0]
    if {scale.size, shift.size} - {1, channels}:
        raise call.malformed(f"parameters of sizes {scale.size} and {shift.size} for {channels} channels")
    params = {"scale": np.broadcast_to(scale, channels), "shift": np.broadcast_to(shift, channels)}
    return Tensor(call.add(ops.Affine(), [x.value], params), x.perm)


# ----------------------------------------------------------------------------- core


@converts(*INFERENCE_IDENTITIES)
def identity_layer(call, inputs):
    return _single(call, inputs)


@converts("Dense")
def dense(call, inputs):
    x = _single(call, inputs)
    if x.rank == 2:  # Keras applies Dense to the last axis of (N, steps, features): at every step
        return _pointwise_dense(call, x, call.config)
    if x.rank != 1:
        raise call.unsupported(
            f"applies to a rank-{x.rank + 1} tensor; snnc's Dense takes vectors or (N, steps, features) (add a Flatten)"
        )
    units = int(call.config["units"])
    kernel, bias = _weights_and_bias(call, [("kernel", (call.shape(x.value)[0], units))], units)
    y = call.add(ops.Dense(units), [x.value], {"weight": kernel.T, "bias": bias})
    return _fused_activation(call, Tensor(y, (0,)))


@converts("Activation")
def activation(call, inputs):
    return apply_activation(call, _single(call, inputs), call.config["activation"], suffix="")


@converts("ReLU")
def relu(call, inputs):
    x = _single(call, inputs)
    max_value = call.config.get("max_value")
    op = ops.ReLU(
        None if max_value is None else _number(max_value),
        _number(call.config.get("negative_slope") or 0.0),
        _number(call.config.get("threshold") or 0.0),
    )
    return Tensor(call.add(op, [x.value]), x.perm)


@converts("LeakyReLU")
def leaky_relu(call, inputs):
    x = _single(call, inputs)
    slope = call.config.get("negative_slope", call.config.get("alpha", 0.3))  # Keras 3 / Keras 2 name
    return Tensor(call.add(ops.ReLU(negative_slope=_number(slope)), [x.value]), x.perm)


@converts("Softmax")
def softmax(call, inputs):
    x = _single(call, inputs)
    axis = _one_axis(call, call.config.get("axis", -1))
    return Tensor(call.add(ops.Softmax(ir_axis(axis, x.perm)), [x.value]), x.perm)


@converts("Add")
def add(call, inputs):
    if len(inputs) < 2:
        raise call.malformed(f"adds {len(inputs)} tensor(s); it needs two or more")
    perm = inputs[0].perm
    return Tensor(call.add(ops.Add(), [relayout(call, x, perm) for x in inputs]), perm)


@converts("Concatenate")
def concatenate(call, inputs):
    if len(inputs) < 2:
        raise call.malformed(f"joins {len(inputs)} tensor(s); it needs two or more")
    perm = inputs[0].perm
    axis = ir_axis(int(call.config.get("axis", -1)), perm)
    return Tensor(call.add(ops.Concat(axis), [relayout(call, x, perm) for x in inputs]), perm)


# ----------------------------------------------------------------------------- shapes


@converts("Flatten")
def flatten(call, inputs):
    x = _single(call, inputs)
    if x.rank == 1:
        return x
    if call.config.get("data_format") == "channels_first":
        # Keras >= 2.2.3 flattens channels-first tensors in channels-last order: it first
        # moves axis 1 to the end. Files from before that have no data_format here.
        x = Tensor(x.value, compose(x.perm, (*range(1, x.rank), 0)))
    size = math.prod(call.shape(x.value))
    return Tensor(call.add(ops.Reshape((size,)), [keras_order(call, x)]), (0,))


@converts("Reshape")
def reshape(call, inputs):
    x = _single(call, inputs)
    target = [int(d) for d in call.config["target_shape"]]
    if -1 in target:
        known = math.prod(d for d in target if d != -1)
        target[target.index(-1)] = math.prod(call.shape(x.value)) // known
    y = call.add(ops.Reshape(tuple(target)), [keras_order(call, x)])
    return Tensor(y, identity(len(target)))


@converts("Permute")
def permute(call, inputs):
    # no IR op: the new arrangement is recorded in the tensor's perm
    x = _single(call, inputs)
    return Tensor(x.value, compose(x.perm, tuple(int(d) - 1 for d in call.config["dims"])))


@converts("ZeroPadding2D")
def zero_padding2d(call, inputs):
    data_format = _data_format(call)
    x = _image(call, _single(call, inputs), data_format)
    padding = call.config["padding"]
    if isinstance(padding, int):
        (top, bottom), (left, right) = (padding, padding), (padding, padding)
    elif all(isinstance(p, int) for p in padding):
        (top, bottom), (left, right) = (padding[0],) * 2, (padding[1],) * 2
    else:
        (top, bottom), (left, right) = padding
    y = call.add(ops.Pad2d((int(top), int(left), int(bottom), int(right)), 0.0), [x])
    return Tensor(y, image_perm(data_format))


# ----------------------------------------------------------------------------- convolution


def _conv_geometry(call: LayerCall, x: str, kernel_size):
    stride = _pair(call.config.get("strides", 1))
    dilation = _pair(call.config.get("dilation_rate", 1))
    pads = _window_pads(call, call.shape(x)[1:], kernel_size, stride, dilation)
    return stride, pads, dilation


@converts("Conv2D")
def conv2d(call, inputs):
    data_format = _data_format(call)
    x = _image(call, _single(call, inputs), data_format)
    channels = call.shape(x)[0]
    filters, groups = int(call.config["filters"]), int(call.config.get("groups", 1))
    kh, kw = _pair(call.config["kernel_size"])
    if channels % groups:
        raise call.malformed(f"groups={groups} does not divide its {channels} input channels")
    kernel, bias = _weights_and_bias(call, [("kernel", (kh, kw, channels // groups, filters))], filters)
    op = ops.Conv2d(filters, (kh, kw), *_conv_geometry(call, x, (kh, kw)), groups=groups)
    y = call.add(op, [x], {"weight": _ir_kernel(call, kernel), "bias": bias})
    return _fused_activation(call, Tensor(y, image_perm(data_format)))


def _depthwise(call: LayerCall, x: str, kernel: np.ndarray, bias: np.ndarray, suffix: str = "") -> str:
    """A depthwise convolution as a grouped one: Keras kernel ``(kh, kw, C, M)`` gives
    output channel ``c*M + m`` from input channel ``c`` (weight ``(C*M, 1, kh, kw)``)."""
    kh, kw, channels, multiplier = kernel.shape
    weight = _ir_kernel(call, kernel.reshape(kh, kw, 1, channels * multiplier))
    op = ops.Conv2d(channels * multiplier, (kh, kw), *_conv_geometry(call, x, (kh, kw)), groups=channels)
    return call.add(op, [x], {"weight": weight, "bias": bias}, suffix=suffix)


@converts("DepthwiseConv2D")
def depthwise_conv2d(call, inputs):
    data_format = _data_format(call)
    x = _image(call, _single(call, inputs), data_format)
    channels = call.shape(x)[0]
    multiplier = int(call.config.get("depth_multiplier", 1))
    kh, kw = _pair(call.config["kernel_size"])
    expected = [("depthwise_kernel", (kh, kw, channels, multiplier))]
    kernel, bias = _weights_and_bias(call, expected, channels * multiplier)
    return _fused_activation(call, Tensor(_depthwise(call, x, kernel, bias), image_perm(data_format)))


@converts("SeparableConv2D")
def separable_conv2d(call, inputs):
    data_format = _data_format(call)
    x = _image(call, _single(call, inputs), data_format)
    channels = call.shape(x)[0]
    filters = int(call.config["filters"])
    multiplier = int(call.config.get("depth_multiplier", 1))
    kh, kw = _pair(call.config["kernel_size"])
    expected = [
        ("depthwise_kernel", (kh, kw, channels, multiplier)),
        ("pointwise_kernel", (1, 1, channels * multiplier, filters)),
    ]
    depthwise_kernel, pointwise_kernel, bias = _weights_and_bias(call, expected, filters)
    no_bias = np.zeros(channels * multiplier, np.float32)
    depth = _depthwise(call, x, depthwise_kernel, no_bias, suffix="depthwise")
    y = call.add(ops.Conv2d(filters, (1, 1)), [depth], {"weight": _ir_kernel(call, pointwise_kernel), "bias": bias})
    return _fused_activation(call, Tensor(y, image_perm(data_format)))


# ----------------------------------------------------------------------------- pooling


def _pool(call: LayerCall, inputs, op_type, **attributes) -> Tensor:
    data_format = _data_format(call)
    x = _image(call, _single(call, inputs), data_format)
    size = _pair(call.config["pool_size"])
    stride = _pair(call.config.get("strides") or size)
    pads = _window_pads(call, call.shape(x)[1:], size, stride)
    return Tensor(call.add(op_type(size, stride, pads, **attributes), [x]), image_perm(data_format))


@converts("AveragePooling2D")
def average_pooling2d(call, inputs):
    # TensorFlow's 'same' average pooling divides by the number of real (unpadded) pixels
    return _pool(call, inputs, ops.AvgPool2d, count_include_pad=False)


@converts("MaxPooling2D")
def max_pooling2d(call, inputs):
    return _pool(call, inputs, ops.MaxPool2d)


@converts("GlobalAveragePooling2D")
def global_average_pooling2d(call, inputs):
    data_format = _data_format(call)
    x = _image(call, _single(call, inputs), data_format)
    keepdims = bool(call.config.get("keepdims", False))
    y = call.add(ops.GlobalAvgPool(keepdims), [x])
    return Tensor(y, image_perm(data_format) if keepdims else (0,))


# ----------------------------------------------------------------------------- 1-D signals
#
# A Keras 1-D tensor (steps, channels) is the IR image (C, 1, L) (see .layout), so Conv1D and
# 1-D pooling are their 2-D ops with a window one row high.

#: layers whose rank-2 tensors are 1-D signals: a rank-2 model input feeding them is read as one
SIGNAL_LAYERS = (
    "Conv1D", "AveragePooling1D", "MaxPooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
    "ZeroPadding1D", "TimeDistributed",
)


def _signal(call: LayerCall, x: Tensor, data_format: str) -> str:
    """The input as an IR image with one row, ``(C, 1, L)``, for a 1-D layer."""
    if x.rank != 2:
        raise call.unsupported(f"takes a rank-{x.rank + 1} tensor; snnc's 1-D layers take signals (N, steps, channels)")
    return relayout(call, x, signal_perm(data_format))


def _size(value) -> int:
    """A 1-D size argument (an int or a one-element list) as a positive int."""
    (size,) = (value,) if isinstance(value, int) else value
    if int(size) < 1:
        raise ValueError(f"sizes are positive, got {value}")
    return int(size)


def _row_pads(call: LayerCall, length: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int, int, int]:
    """The ``(top, left, bottom, right)`` pads of a 1-D window over a one-row image; ``causal``
    pads ``dilation * (kernel - 1)`` steps on the left only (Keras Conv1D's causal padding)."""
    if call.config.get("padding") == "causal":
        return 0, dilation * (kernel - 1), 0, 0
    return _window_pads(call, (1, length), (1, kernel), (1, stride), (1, dilation))


@converts("Conv1D")
def conv1d(call, inputs):
    data_format = _data_format(call)
    x = _signal(call, _single(call, inputs), data_format)
    channels, _, length = call.shape(x)
    filters, groups = int(call.config["filters"]), int(call.config.get("groups", 1))
    k, stride = _size(call.config["kernel_size"]), _size(call.config.get("strides", 1))
    dilation = _size(call.config.get("dilation_rate", 1))
    if channels % groups:
        raise call.malformed(f"groups={groups} does not divide its {channels} input channels")
    kernel, bias = _weights_and_bias(call, [("kernel", (k, channels // groups, filters))], filters)
    pads = _row_pads(call, length, k, stride, dilation)
    op = ops.Conv2d(filters, (1, k), (1, stride), pads, (1, dilation), groups=groups)
    y = call.add(op, [x], {"weight": _ir_kernel(call, kernel[None]), "bias": bias})
    return _fused_activation(call, Tensor(y, signal_perm(data_format)))


def _pool1d(call: LayerCall, inputs, op_type, **attributes) -> Tensor:
    data_format = _data_format(call)
    x = _signal(call, _single(call, inputs), data_format)
    size = _size(call.config["pool_size"])
    stride = _size(call.config.get("strides") or size)
    pads = _row_pads(call, call.shape(x)[2], size, stride)
    y = call.add(op_type((1, size), (1, stride), pads, **attributes), [x])
    return Tensor(y, signal_perm(data_format))


@converts("AveragePooling1D")
def average_pooling1d(call, inputs):
    # TensorFlow's 'same' average pooling divides by the number of real (unpadded) steps
    return _pool1d(call, inputs, ops.AvgPool2d, count_include_pad=False)


@converts("MaxPooling1D")
def max_pooling1d(call, inputs):
    return _pool1d(call, inputs, ops.MaxPool2d)


@converts("GlobalAveragePooling1D")
def global_average_pooling1d(call, inputs):
    data_format = _data_format(call)
    x = _signal(call, _single(call, inputs), data_format)
    keepdims = bool(call.config.get("keepdims", False))
    y = call.add(ops.GlobalAvgPool(keepdims), [x])
    return Tensor(y, signal_perm(data_format) if keepdims else (0,))


@converts("GlobalMaxPooling1D")
def global_max_pooling1d(call, inputs):
    # a max pooling window as long as the signal (the IR has no global max op)
    data_format = _data_format(call)
    x = _signal(call, _single(call, inputs), data_format)
    channels, _, length = call.shape(x)
    y = call.add(ops.MaxPool2d((1, length), (1, length)), [x])
    if call.config.get("keepdims", False):
        return Tensor(y, signal_perm(data_format))
    return Tensor(call.add(ops.Reshape((channels,)), [y], suffix="flatten"), (0,))


@converts("ZeroPadding1D")
def zero_padding1d(call, inputs):
    x = _signal(call, _single(call, inputs), "channels_last")  # Keras pads axis 1 of (N, steps, C)
    padding = call.config.get("padding", 1)
    left, right = (padding, padding) if isinstance(padding, int) else padding
    y = call.add(ops.Pad2d((0, int(left), 0, int(right)), 0.0), [x])
    return Tensor(y, signal_perm("channels_last"))


def _pointwise_dense(call: LayerCall, x: Tensor, config: dict) -> Tensor:
    """A Dense (``config``) applied at every step of a signal: a kernel-1 convolution,
    ``y[:, l] = W x[:, l] + b``."""
    x_ir = _signal(call, x, "channels_last")  # Dense acts on the last Keras axis
    units = int(config["units"])
    use_bias = config.get("use_bias", True)
    expected = [("kernel", (call.shape(x_ir)[0], units))] + ([("bias", (units,))] if use_bias else [])
    kernel, *bias = call.weights(*expected)
    bias = bias[0] if use_bias else np.zeros(units, np.float32)
    y = call.add(ops.Conv2d(units, (1, 1)), [x_ir], {"weight": kernel.T[:, :, None, None], "bias": bias})
    name = activation_name(config.get("activation"))
    return apply_activation(call, Tensor(y, signal_perm("channels_last")), name, suffix=name or "")


@converts("TimeDistributed")
def time_distributed(call, inputs):
    from .config import check_not_custom

    x = _single(call, inputs)
    inner = call.config["layer"]
    check_not_custom(inner, str(call.source.path))
    if inner["class_name"] != "Dense":
        raise call.unsupported(f"wraps a {inner['class_name']}; snnc supports TimeDistributed(Dense)")
    if x.rank != 2:
        raise call.unsupported(
            f"applies Dense to a rank-{x.rank + 1} tensor; snnc supports TimeDistributed(Dense) on (N, steps, features)"
        )
    return _pointwise_dense(call, x, inner["config"])


# ----------------------------------------------------------------------------- normalization


@converts("BatchNormalization")
def batch_normalization(call, inputs):
    x = channel_axis_first(call, _single(call, inputs), _one_axis(call, call.config.get("axis", -1)))
    c = (call.shape(x.value)[0],)
    scale, center = call.config.get("scale", True), call.config.get("center", True)
    expected = [("gamma", c)] * scale + [("beta", c)] * center + [("moving_mean", c), ("moving_variance", c)]
    arrays = call.weights(*expected)
    gamma = arrays.pop(0) if scale else np.ones(c, np.float32)
    beta = arrays.pop(0) if center else np.zeros(c, np.float32)
    mean, var = arrays
    op = ops.BatchNorm(_number(call.config.get("epsilon", 1e-3)))
    y = call.add(op, [x.value], {"gamma": gamma, "beta": beta, "mean": mean, "var": var})
    return Tensor(y, x.perm)


@converts("Rescaling")
def rescaling(call, inputs):
    x = _single(call, inputs)
    scale = _constant(call.config.get("scale", 1.0))
    offset = _constant(call.config.get("offset", 0.0))
    return _affine(call, x, scale, offset, axis=-1)


#: Keras's backend epsilon: Normalization divides by max(sqrt(variance), epsilon)
KERAS_EPSILON = 1e-7


@converts("Normalization")
def normalization(call, inputs):
    x = _single(call, inputs)
    axis = call.config.get("axis", -1)
    axes = [] if axis is None else [axis] if isinstance(axis, int) else list(axis)
    if len(axes) > 1:
        raise call.unsupported(f"normalizes over axes {axes}; snnc supports one (channel) axis")
    if call.config.get("mean") is not None:
        mean, variance = _constant(call.config["mean"]), _constant(call.config["variance"])
    else:  # adapted: mean, variance and the sample count are weights
        mean, variance, _ = call.weights(("mean", None), ("variance", None), ("count", None))
        mean, variance = mean.astype(np.float64), variance.astype(np.float64)
    std = np.maximum(np.sqrt(variance), KERAS_EPSILON)
    if call.config.get("invert"):
        return _affine(call, x, std, mean, axes[0] if axes else None)
    return _affine(call, x, 1.0 / std, -mean / std, axes[0] if axes else None)

