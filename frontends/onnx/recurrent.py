"""Recurrent ONNX models: the ``RNN`` op, its sequence inputs and outputs, and the
Squeeze/Transpose/MatMul/Gather nodes exporters put around them (PyTorch's ``nn.RNN`` with
``batch_first=True`` and a Linear on ``y[:, -1]`` or on every step).

The rule (as in the Keras frontend): a model with an ``RNN`` node takes sequences. Its
inputs are rank 3: ``[seq, batch, features]`` (the RNN's layout 0, what PyTorch's ``nn.RNN``
exports) or ``[batch, seq, features]`` where the model transposes them for its RNN
(``batch_first=True``). Each becomes an IR input of
``(features,)`` with ``sequence=True``, and snnc takes its data batch first,
``(N, steps, features)``, whatever the ONNX layout.

While converting, a tensor with a time axis, or a last-step value whose batch axis is not
axis 0 (the RNN's ``Y_h`` is ``[1, batch, hidden]``), is a :class:`TimeTensor`: the IR value
holds one step of the other axes, in ONNX order. Graph outputs come batch first too:
``(N, steps, other axes)`` for a sequence, ``(N, other axes)`` for a last-step value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from snnc.compiler import ops
from snnc.compiler.errors import UnsupportedError
from snnc.compiler.graph import sanitize_name
from snnc.compiler.types import TensorType

from .context import ModelContext, NodeCall
from .converters import _axes_argument, dense_with_bias_add
from .fold import BatchDependent

#: RNN activations snnc converts (``Affine``: ``alpha * x + beta``)
RNN_ACTIVATIONS = ("Relu", "Affine")


@dataclass(frozen=True)
class TimeTensor:
    """An ONNX tensor whose batch axis is ONNX axis ``batch`` and whose time axis is ONNX axis
    ``time`` (None: the value at the last step). ``value`` is the IR value of one step: the
    other axes, in ONNX order."""

    value: str
    batch: int
    time: int | None = None

    def axes(self, rank_per_step: int) -> list[int]:
        """The ONNX axes ``value`` holds, in order."""
        full = rank_per_step + 1 + (self.time is not None)
        return [a for a in range(full) if a not in (self.batch, self.time)]


def plain_or_timed(value: str, batch: int, time: int | None):
    """A :class:`TimeTensor`, or the IR value itself where ONNX's axes are the IR's (batch
    first, no time axis)."""
    return value if batch == 0 and time is None else TimeTensor(value, batch, time)


SequenceConverter = Callable[[NodeCall], list]
SEQUENCE_CONVERTERS: dict[str, SequenceConverter] = {}


def sequence_converts(*op_types: str):
    def register(fn: SequenceConverter) -> SequenceConverter:
        for op_type in op_types:
            SEQUENCE_CONVERTERS[op_type] = fn
        return fn

    return register


def is_recurrent(nodes) -> bool:
    return any(node.op_type == "RNN" and node.domain in ("", "ai.onnx") for _, node in nodes)


def reads_time(call: NodeCall) -> bool:
    """Whether the node reads a :class:`TimeTensor` (or is an RNN)."""
    return call.op_type == "RNN" or any(isinstance(call.input(i), TimeTensor) for i in range(len(call.node.input)))


def convert_sequence_node(call: NodeCall) -> list:
    """The outputs of a node that reads a sequence (or a last-step value not batch first)."""
    converter = SEQUENCE_CONVERTERS.get(call.op_type)
    if converter is None:
        raise call.unsupported(
            "reads a sequence (or an RNN's state); snnc applies to these: " + ", ".join(sorted(SEQUENCE_CONVERTERS))
        )
    return converter(call)


# ----------------------------------------------------------------------------- inputs


def add_sequence_input(ctx: ModelContext, value, path) -> None:
    """A graph input of a recurrent model: ``[seq, batch, features]`` or, where the model
    moves its batch axis to axis 1 first or its RNN reads batch-first data,
    ``[batch, seq, features]``."""
    from onnx import TensorProto

    if value.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise UnsupportedError(f"{path}: input {value.name!r} does not hold float32; snnc takes float32 inputs")
    dims = value.type.tensor_type.shape.dim
    if len(dims) != 3 or not dims[2].HasField("dim_value") or dims[2].dim_value < 1:
        raise UnsupportedError(
            f"{path}: input {value.name!r} of a recurrent model has {len(dims)} axes; snnc reads sequences "
            "[seq, batch, features] or [batch, seq, features] with a fixed number of features"
        )
    batch_first = any(
        node.op_type == "Transpose" and list(_attr(node, "perm", [])) == [1, 0, 2]
        for node in ctx.readers.get(value.name, [])
    )
    ir_value = ctx.builder.input(sanitize_name(value.name), (dims[2].dim_value,), sequence=True)
    ctx.values[value.name] = TimeTensor(ir_value, batch=0, time=1) if batch_first else TimeTensor(ir_value, batch=1, time=0)


def _attr(node, name: str, default):
    from onnx.helper import get_attribute_value

    for attribute in node.attribute:
        if attribute.name == name:
            return get_attribute_value(attribute)
    return default


# ----------------------------------------------------------------------------- the RNN


@sequence_converts("RNN")
def rnn(call: NodeCall) -> list:
    """``H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)``, ``H_0 = 0``; outputs ``Y`` (every step,
    ``[seq, 1, batch, hidden]``) and ``Y_h`` (the last step, ``[1, batch, hidden]``)."""
    _check_rnn_options(call)
    x = call.input(0)
    if not isinstance(x, TimeTensor) or (x.time, x.batch) != (0, 1):
        raise call.unsupported(
            f"reads X with its time axis at ONNX axis {getattr(x, 'time', None)} and its batch at "
            f"{getattr(x, 'batch', 0)}; an RNN takes [seq, batch, features] computed from the model's inputs"
        )
    weight, recurrent = call.constant(1, "weights W"), call.constant(2, "recurrence weights R")
    hidden, features = int(call.attr("hidden_size", weight.shape[1])), call.shape(x.value)[0]
    if weight.shape != (1, hidden, features) or recurrent.shape != (1, hidden, hidden):
        raise call.malformed(
            f"W has shape {list(weight.shape)} and R {list(recurrent.shape)}; a forward RNN of {features} "
            f"inputs and {hidden} units has [1, {hidden}, {features}] and [1, {hidden}, {hidden}]"
        )
    biases = call.optional_constant(3, "biases B")
    bias = np.zeros(hidden) if biases is None else _bias(call, biases, hidden)
    previous = call.model.builder.delay(TensorType((hidden,)), name=f"{call.name}_previous")
    wx = call.add(ops.Dense(hidden), [x.value], {"weight": weight[0], "bias": bias}, suffix="input")
    rh = call.add(ops.Dense(hidden), [previous], {"weight": recurrent[0], "bias": np.zeros(hidden)}, suffix="recurrent")
    h = _activation(call, call.add(ops.Add(), [wx, rh], suffix="sum"), hidden)
    call.model.builder.close_delay(previous, h)
    one_direction = call.add(ops.Reshape((1, hidden)), [h], suffix="directions")
    return [TimeTensor(one_direction, batch=2, time=0), TimeTensor(one_direction, batch=1)]


def _check_rnn_options(call: NodeCall) -> None:
    if int(call.attr("layout", 0)) != 0:  # (onnxruntime, the reference, has no layout 1 either)
        raise call.unsupported("has layout=1 (batch first); snnc converts layout 0, [seq, batch, features]")
    direction = call.attr("direction", "forward")
    if direction != "forward":
        raise call.unsupported(f"direction={direction!r}; snnc converts forward RNNs")
    if call.attr("clip") is not None:
        raise call.unsupported("clips its cell input (clip=...); snnc converts RNNs without clip")
    if call.has_input(4):
        raise call.unsupported("has sequence_lens; snnc converts RNNs whose sequences all run to the end")
    initial = call.input(5)  # PyTorch: zeros of shape [layers, batch, hidden], batch dependent
    probes = initial.values if isinstance(initial, BatchDependent) else [call.optional_constant(5, "initial_h")]
    if any(h is not None and np.any(h) for h in probes):
        raise call.unsupported("has a nonzero initial_h; snnc converts RNNs that start from zero")


def _bias(call: NodeCall, biases: np.ndarray, hidden: int) -> np.ndarray:
    if biases.shape != (1, 2 * hidden):
        raise call.malformed(f"B has shape {list(biases.shape)}, expected [1, {2 * hidden}] (Wb and Rb)")
    return biases[0, :hidden].astype(np.float64) + biases[0, hidden:]


def _activation(call: NodeCall, total: str, hidden: int) -> str:
    activations = [a.decode() if isinstance(a, bytes) else a for a in call.attr("activations", ["Tanh"])]
    if len(activations) != 1 or activations[0] not in RNN_ACTIVATIONS:
        raise call.unsupported(
            f"activations={activations}; snnc converts RNNs with one of: {', '.join(RNN_ACTIVATIONS)}"
        )
    if activations[0] == "Relu":
        return call.add(ops.ReLU(), [total])
    alpha, beta = call.attr("activation_alpha"), call.attr("activation_beta")
    if alpha is None or beta is None:  # ONNX's Affine defaults are 1 and 0, onnxruntime's 0 and 0
        raise call.unsupported("has an Affine activation without activation_alpha and activation_beta; give both")
    alpha, beta = [float(a) for a in alpha], [float(b) for b in beta]
    if alpha == [1.0] and beta == [0.0]:
        return total
    return call.add(ops.Affine(), [total], {"scale": np.full(hidden, alpha[0]), "shift": np.full(hidden, beta[0])})


# ----------------------------------------------------------------------------- around it


@sequence_converts("Squeeze")
def squeeze(call: NodeCall) -> list:
    """Squeeze of axes other than the batch and time (the RNN's direction axis)."""
    x = call.input(0)
    held = x.axes(len(call.shape(x.value)))
    axes = _axes_argument(call)
    full = len(held) + 1 + (x.time is not None)
    if axes is None:
        raise call.unsupported("squeezes every axis of length 1 (the batch too, when it is 1); snnc needs axes")
    axes = {int(a) % full for a in axes}
    if axes & {x.batch, x.time}:
        raise call.unsupported(f"squeezes the {'batch' if x.batch in axes else 'time'} axis; snnc keeps both")
    shape = call.shape(x.value)
    if any(shape[held.index(a)] != 1 for a in axes):
        raise call.malformed(f"squeezes axes {sorted(axes)}, not all of length 1")
    kept = [d for a, d in zip(held, shape) if a not in axes]
    y = call.add(ops.Reshape(tuple(kept)), [x.value])
    moved = lambda axis: None if axis is None else axis - sum(a < axis for a in axes)  # noqa: E731
    return [plain_or_timed(y, moved(x.batch), moved(x.time))]


@sequence_converts("Transpose")
def transpose(call: NodeCall) -> list:
    """A Transpose moving the batch and time axes (PyTorch's ``batch_first``) and maybe others."""
    x = call.input(0)
    held = x.axes(len(call.shape(x.value)))
    full = len(held) + 1 + (x.time is not None)
    perm = [int(p) for p in call.attr("perm", range(full - 1, -1, -1))]
    if sorted(perm) != list(range(full)):
        raise call.malformed(f"perm={perm} is not a permutation of {full} axes")
    order = [held.index(p) for p in perm if p in held]
    y = x.value if order == sorted(order) else call.model.transpose(x.value, tuple(order), call.name)
    time = None if x.time is None else perm.index(x.time)
    return [plain_or_timed(y, perm.index(x.batch), time)]


@sequence_converts("Gather")
def gather(call: NodeCall) -> list:
    """The last step of a sequence: a scalar index -1 on the time axis (PyTorch's
    ``y[:, -1]``). snnc's sequences have no fixed length, so no other step is named."""
    x, indices = call.input(0), call.input(1)
    full = len(call.shape(x.value)) + 1 + (x.time is not None) if isinstance(x, TimeTensor) else None
    axis = int(call.attr("axis", 0)) % full if full else None
    last = isinstance(indices, np.ndarray) and indices.ndim == 0 and int(indices) == -1
    if not isinstance(x, TimeTensor) or x.time is None or axis != x.time or not last:
        raise call.unsupported(
            "gathers from a sequence other than its last step; snnc converts Gather of a scalar index -1 "
            "on the time axis (y[:, -1])"
        )
    return [plain_or_timed(x.value, x.batch - (x.batch > x.time), None)]


@sequence_converts("MatMul")
def matmul(call: NodeCall) -> list:
    """``x @ W`` on every step of a sequence of vectors (a Linear on all steps), with the
    bias Add that follows."""
    x, matrix = call.input(0), call.input(1)
    per_step = call.shape(x.value) if isinstance(x, TimeTensor) else None
    if per_step is None or len(per_step) != 1 or not isinstance(matrix, np.ndarray) or matrix.shape[:1] != per_step:
        shown = list(matrix.shape) if isinstance(matrix, np.ndarray) else "a computed tensor"
        raise call.unsupported(
            f"multiplies a sequence by {shown}; snnc converts a sequence of vectors [.., K] times a constant [K, M]"
        )
    wrap = lambda y: TimeTensor(y, x.batch, x.time)  # noqa: E731
    return [wrap(dense_with_bias_add(call, x.value, matrix, wrap))]


def output(ctx: ModelContext, name: str, value: TimeTensor) -> None:
    """A graph output that is a sequence (returned ``(N, steps, ...)``) or a last-step value
    whose batch axis is not first (returned ``(N, ...)``)."""
    ctx.builder.output(value.value, name=name, sequence=value.time is not None)
