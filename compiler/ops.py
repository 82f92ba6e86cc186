"""The closed op set of the IR.

Each op is a frozen dataclass of its attributes (plain ints, floats, strings, tuples). Its
parameters (weights) live on the :class:`~snnc.compiler.graph.Node`, not in the op, so ops
compare and hash by value. Every op states its equation, the names and shapes of the
parameters it takes (:meth:`Op.param_shapes`) and its output type (:meth:`Op.infer_type`),
and the compilation stages it may appear in.

Conventions (batch dimension excluded everywhere):

- images are ``CHW``; ``pads`` are ``(top, left, bottom, right)``;
- ``dense`` weights are ``(units, in_features)``: ``y = W x + b``;
- ``conv2d`` weights are ``(filters, in_channels / groups, kh, kw)`` and the op is a
  cross-correlation (as in Keras, ONNX and PyTorch).

Time: a graph is evaluated once per *step*, in node order. An input is either constant (the
same value at every step) or a sequence (``sequence=True``: data ``(N, steps, *shape)``, one
slice per input step). A ``delay`` is the only op whose value crosses a step boundary: it
gives its input's value from one input step earlier, so a graph may contain cycles, each
through a delay (a delay's input may be defined after it; every other input before its user).
An output reads the last input step, or every input step (``sequence=True``).

Spiking graphs: every value is a sequence over simulation steps ``t = 1..T``. A constant input
is presented unchanged at every step; a sequence input holds each of its steps for ``T``
simulation steps (the run lasts ``T * steps``), and a ``delay`` then spans those ``T`` steps (one
simulation step when the inputs are constant), so a recurrent layer's input averaged over an
input step's window is the previous window's rate: the float recurrence in rate terms. Linear
ops (``LINEAR_STAGES``) apply to each step's values, turning spikes into float currents;
stateful ops (neurons, the max-pool gate, the readout, delays) keep state from step to step,
starting from the state their attributes give.

Loihi graphs (after ``lower_loihi``): the chip part of the network is ``loihi_synapses`` and
``loihi_compartments`` nodes, first with NengoLoihi's float parameters (``format="float"``, spiking
stage), then with the chip's integers (``format="int"``, integer stage, after ``quantize_loihi``).
Everything else in such a graph (the input layer that turns analog input into spikes, the
output layer that reads the last chip spikes) runs on the host, in float. The text format, the
verifier and the interpreters find ops through :data:`OPS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar, Sequence

from .types import TensorType

FLOAT, SPIKING, INTEGER = "float", "spiking", "integer"
STAGES = (FLOAT, SPIKING, INTEGER)
#: linear ops: in a spiking graph they act on each time step's values (spikes or currents);
#: in an integer (Loihi) graph they run on the host, in float
LINEAR_STAGES = STAGES
#: stages of the host-side spiking ops (neurons, readout)
SPIKING_STAGES = (SPIKING, INTEGER)

OPS: dict[str, type["Op"]] = {}


class OpTypeError(ValueError):
    """An op applied to inputs it cannot take; the verifier adds the node's name."""


def register(cls):
    """Class decorator: make an op known to the text format, verifier and interpreter, and
    an attribute of this module (ops defined with their neuron type, ``ops.IfNeuron``, too)."""
    OPS[cls.NAME] = cls
    globals().setdefault(cls.__name__, cls)
    return cls


@dataclass(frozen=True)
class Op:
    NAME: ClassVar[str] = ""
    #: number of inputs; ``None`` means ``MIN_ARITY`` or more
    ARITY: ClassVar[int | None] = 1
    MIN_ARITY: ClassVar[int] = 2
    #: stages of compilation in which the op is legal
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = (FLOAT,)
    #: whether it carries state from one time step to the next; whether it is a neuron population
    STATEFUL: ClassVar[bool] = False
    NEURON: ClassVar[bool] = False

    def __post_init__(self):
        # Attributes are plain hashable values: lists become tuples, NumPy scalars Python ones.
        for f in fields(self):
            object.__setattr__(self, f.name, _plain(getattr(self, f.name)))

    def attributes(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def param_shapes(self, inputs: Sequence[TensorType]) -> dict[str, tuple[int, ...]]:
        """The parameters this op needs, by name, with the shape each must have."""
        return {}

    def param_dtypes(self) -> dict[str, str]:
        """Element types the parameters must have, by name (those not named: any float)."""
        return {}

    def infer_type(self, inputs: Sequence[TensorType]) -> TensorType:
        raise NotImplementedError


def _plain(value):
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if hasattr(value, "item") and callable(value.item):  # NumPy scalar
        return value.item()
    return value


def current(t: TensorType) -> TensorType:
    """The type of a weighted sum of ``t``: spikes summed with weights are a float current."""
    return TensorType(t.shape, "f32", t.layout) if t.dtype == "spike" else t


def _expect_rank(t: TensorType, rank: int, op: str) -> None:
    if t.rank != rank:
        raise OpTypeError(f"{op} takes a rank-{rank} input, got {t}")


def _expect_image(t: TensorType, op: str) -> None:
    _expect_rank(t, 3, op)
    if t.layout != "CHW":
        raise OpTypeError(f"{op} takes a CHW image, got layout {t.layout}")


def _window_out(size: int, kernel: int, stride: int, pad_sum: int, dilation: int = 1) -> int:
    span = dilation * (kernel - 1) + 1
    out = (size + pad_sum - span) // stride + 1
    if out <= 0:
        raise OpTypeError(f"window of {span} does not fit input of {size} with padding {pad_sum}")
    return out


def _expect_window(op) -> None:
    """Window sizes, strides and dilations are at least 1; pads are not negative."""
    sizes = [*op.kernel, *op.stride, *getattr(op, "dilation", ())]
    if min(sizes) < 1 or min(op.pads) < 0:
        raise OpTypeError(
            f"{op.NAME} needs kernel, stride and dilation of at least 1 and pads of at least 0, "
            f"got kernel={list(op.kernel)} stride={list(op.stride)} pads={list(op.pads)}"
        )


def _pool_type(op, x: TensorType) -> TensorType:
    _expect_image(x, op.NAME)
    _expect_window(op)
    c, h, w = x.shape
    pt, pl, pb, pr = op.pads
    ho = _window_out(h, op.kernel[0], op.stride[0], pt + pb)
    wo = _window_out(w, op.kernel[1], op.stride[1], pl + pr)
    return TensorType((c, ho, wo), x.dtype, "CHW")


@register
@dataclass(frozen=True)
class Input(Op):
    """A graph input of one example's ``shape``. ``source_layout`` is the layout of the source
    model's input (e.g. ``HWC`` for a channels-last Keras model): data in that layout is
    transposed into the IR's layout at the border. It may omit IR axes of size 1: a Keras 1-D
    signal ``WC`` is the IR image ``CHW`` with ``H = 1``. ``sequence=True``: the data hold a
    sequence per example, ``(N, steps, *shape)``, presented one input step at a time."""

    NAME: ClassVar[str] = "input"
    ARITY: ClassVar[int | None] = 0
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = STAGES

    shape: tuple[int, ...]
    dtype: str = "f32"
    source_layout: str = ""
    sequence: bool = False

    def infer_type(self, inputs):
        return TensorType(self.shape, self.dtype)


@register
@dataclass(frozen=True)
class Output(Op):
    """A graph output, ``y = x``; ``source_layout`` is the layout results are returned in.
    In a graph with sequence inputs, ``sequence=True`` returns the value at every input step,
    ``(N, steps, *shape)``; otherwise the value at the last input step (Keras's
    ``return_sequences=False``)."""

    NAME: ClassVar[str] = "output"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = STAGES

    source_layout: str = ""
    sequence: bool = False

    def infer_type(self, inputs):
        return inputs[0]


@register
@dataclass(frozen=True)
class Dense(Op):
    """Fully connected layer: ``y = W x + b``, ``W: (units, in)``, ``b: (units,)``."""

    NAME: ClassVar[str] = "dense"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = LINEAR_STAGES

    units: int

    def param_shapes(self, inputs):
        return {"weight": (self.units, inputs[0].shape[0]), "bias": (self.units,)}

    def infer_type(self, inputs):
        _expect_rank(inputs[0], 1, self.NAME)
        return TensorType((self.units,), current(inputs[0]).dtype)


@register
@dataclass(frozen=True)
class Conv2d(Op):
    """2-D cross-correlation:
    ``y[f,i,j] = b[f] + sum_{c,u,v} W[f,c,u,v] x_pad[g(f)*C/G + c, i*sh + u*dh, j*sw + v*dw]``
    over the input channels of the filter's group ``g(f)``; ``W: (F, C/G, kh, kw)``."""

    NAME: ClassVar[str] = "conv2d"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = LINEAR_STAGES

    filters: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def param_shapes(self, inputs):
        c = inputs[0].shape[0]
        return {"weight": (self.filters, c // self.groups, *self.kernel), "bias": (self.filters,)}

    def infer_type(self, inputs):
        x = inputs[0]
        _expect_image(x, self.NAME)
        c, h, w = x.shape
        _expect_window(self)
        expect_positive(self, "filters", "groups")
        if c % self.groups or self.filters % self.groups:
            raise OpTypeError(
                f"conv2d groups={self.groups} must divide input channels {c} and filters {self.filters}"
            )
        pt, pl, pb, pr = self.pads
        ho = _window_out(h, self.kernel[0], self.stride[0], pt + pb, self.dilation[0])
        wo = _window_out(w, self.kernel[1], self.stride[1], pl + pr, self.dilation[1])
        return TensorType((self.filters, ho, wo), current(x).dtype, "CHW")


@dataclass(frozen=True)
class _PoolWindow(Op):
    """Fields and output type shared by the pooling ops: one window per output element."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)

    def infer_type(self, inputs):
        return _pool_type(self, inputs[0])


@register
@dataclass(frozen=True)
class AvgPool2d(_PoolWindow):
    """Average over each window. Padded positions count in the divisor only if
    ``count_include_pad`` (Keras ``same`` pooling and ONNX's default exclude them)."""

    NAME: ClassVar[str] = "avg_pool2d"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = LINEAR_STAGES

    count_include_pad: bool = False

    def infer_type(self, inputs):
        return current(_pool_type(self, inputs[0]))


@register
@dataclass(frozen=True)
class MaxPool2d(_PoolWindow):
    """Maximum over each window; padded positions are ``-inf``."""

    NAME: ClassVar[str] = "max_pool2d"


@register
@dataclass(frozen=True)
class GlobalAvgPool(Op):
    """Mean over H and W: ``(C,H,W) -> (C,)``, or ``(C,1,1)`` with ``keepdims``."""

    NAME: ClassVar[str] = "global_avg_pool"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = LINEAR_STAGES

    keepdims: bool = False

    def infer_type(self, inputs):
        x = inputs[0]
        _expect_image(x, self.NAME)
        shape = (x.shape[0], 1, 1) if self.keepdims else (x.shape[0],)
        return TensorType(shape, current(x).dtype)


@register
@dataclass(frozen=True)
class Reshape(Op):
    """Same elements in row-major order, new shape (``flatten`` is ``shape=[n]``)."""

    NAME: ClassVar[str] = "reshape"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = LINEAR_STAGES

    shape: tuple[int, ...]

    def infer_type(self, inputs):
        x = inputs[0]
        if math.prod(self.shape) != x.size:
            raise OpTypeError(f"cannot reshape {x} ({x.size} elements) to {list(self.shape)}")
        return TensorType(self.shape, x.dtype)


@register
@dataclass(frozen=True)
class Transpose(Op):
    """Permute the axes: output axis ``i`` is input axis ``perm[i]``."""

    NAME: ClassVar[str] = "transpose"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = LINEAR_STAGES

    perm: tuple[int, ...]

    def infer_type(self, inputs):
        x = inputs[0]
        if sorted(self.perm) != list(range(x.rank)):
            raise OpTypeError(f"perm {list(self.perm)} is not a permutation of {x.rank} axes")
        shape = tuple(x.shape[p] for p in self.perm)
        layout = "".join(x.layout[p] for p in self.perm)
        return TensorType(shape, x.dtype, layout)


@register
@dataclass(frozen=True)
class Pad2d(Op):
    """Constant padding of H and W: ``pads = (top, left, bottom, right)``. Padded positions of
    channel ``c`` hold ``value``, or with ``per_channel`` the parameter ``values[c]`` (shape
    ``(C,)``; ``value`` is then 0): the padding that makes a per-channel affine folded into
    the next convolution exact (``fold_batchnorm``)."""

    NAME: ClassVar[str] = "pad2d"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = LINEAR_STAGES

    pads: tuple[int, int, int, int]
    value: float = 0.0
    per_channel: bool = False

    def param_shapes(self, inputs):
        return {"values": (inputs[0].shape[0],)} if self.per_channel else {}

    def infer_type(self, inputs):
        x = inputs[0]
        _expect_image(x, self.NAME)
        if self.per_channel and self.value != 0:
            raise OpTypeError("pad2d takes either one value or per-channel values, not both")
        c, h, w = x.shape
        pt, pl, pb, pr = self.pads
        return TensorType((c, h + pt + pb, w + pl + pr), x.dtype, "CHW")


@register
@dataclass(frozen=True)
class BatchNorm(Op):
    """Inference batch norm over axis 0 (channels):
    ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta``."""

    NAME: ClassVar[str] = "batch_norm"

    epsilon: float = 1e-3

    def param_shapes(self, inputs):
        c = (inputs[0].shape[0],)
        return {"gamma": c, "beta": c, "mean": c, "var": c}

    def infer_type(self, inputs):
        return inputs[0]


@register
@dataclass(frozen=True)
class Affine(Op):
    """Elementwise ``y = x * scale + shift`` with per-channel parameters of shape ``(C,)``
    (broadcast over the other axes); frontends expand scalars. Comes from Keras
    Rescaling/Normalization and ONNX Mul/Div/Add/Sub by constants."""

    NAME: ClassVar[str] = "affine"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = LINEAR_STAGES

    def param_shapes(self, inputs):
        c = (inputs[0].shape[0],)
        return {"scale": c, "shift": c}

    def infer_type(self, inputs):
        return current(inputs[0])


@register
@dataclass(frozen=True)
class ReLU(Op):
    """Rectifier as Keras defines it:
    ``y = min(x, max_value)`` where ``x >= threshold``, else ``negative_slope * (x - threshold)``.
    ``max_value=None`` means unbounded (a clipped ReLU has one)."""

    NAME: ClassVar[str] = "relu"

    max_value: float | None = None
    negative_slope: float = 0.0
    threshold: float = 0.0

    def infer_type(self, inputs):
        return inputs[0]


@register
@dataclass(frozen=True)
class SoftLif(Op):
    """A LIF neuron's firing rate, softened (Hunsberger & Eliasmith 2015), elementwise: with
    ``j = x`` the current above the firing threshold (a LIF neuron of gain 1 and bias 1)::

        y = amplitude / (tau_ref + tau_rc * log1p(1 / rho(x)))     where rho(x) > 0, else 0
        rho(x) = sigma * log1p(exp(x / sigma))   (sigma > 0: softplus)  |  max(x, 0)  (sigma = 0)

    in spikes per second times ``amplitude`` (``snnc.training.SoftLIF``; nengo-extras' Keras
    ``SoftLIF``). ``convert_to_spiking`` makes it ``lif_neuron``\s with these ``tau_rc``,
    ``tau_ref`` and ``amplitude``: the rate curve they were trained on, with ``sigma = 0``.
    The formula: :func:`snnc.compiler.neurons.lif.soft_lif_rate`."""

    NAME: ClassVar[str] = "soft_lif"

    tau_rc: float = 0.02
    tau_ref: float = 0.002
    amplitude: float = 1.0
    sigma: float = 0.0

    def infer_type(self, inputs):
        expect_positive(self, "tau_rc", "amplitude")
        if self.tau_ref < 0 or self.sigma < 0:
            raise OpTypeError(f"soft_lif tau_ref and sigma must not be negative, got {self.tau_ref}, {self.sigma}")
        return inputs[0]


@register
@dataclass(frozen=True)
class Qcfs(Op):
    """Quantization-clip-floor-shift activation (Bu et al. 2022), elementwise::

        y = threshold * clip(floor(x * levels / threshold + shift) / levels, 0, 1)

    ``levels`` quantization steps ``L`` up to the trained ``threshold`` (lambda). An
    integrate-and-fire neuron with threshold lambda, membrane starting at ``shift * lambda``
    and reset by subtraction outputs exactly this (as its mean over ``T = L`` steps, where the
    input is constant), which is why ``convert_to_spiking`` keeps lambda and the shift as trained.
    The formula: :func:`snnc.compiler.neurons.if_.qcfs`."""

    NAME: ClassVar[str] = "qcfs"

    levels: int = 8
    threshold: float = 1.0
    shift: float = 0.5

    def infer_type(self, inputs):
        expect_positive(self, "threshold")
        if not (isinstance(self.levels, int) and self.levels >= 1):
            raise OpTypeError(f"qcfs levels must be a positive integer, got {self.levels!r}")
        return inputs[0]


@register
@dataclass(frozen=True)
class SpikingRelu(Op):
    """A ReLU trained for sigma-delta neurons stepping every ``dt`` seconds, by keras-spiking's
    ``SpikingActivation("relu", dt)``. Elementwise (Voelker, Rasmussen & Eliasmith 2020)::

        y = max(x, 0)

    the rate in events per second that keras-spiking trains its spiking neurons on, and its
    rate network (``spiking_aware_training=False``, or a DtScheduler's large dt) computes.
    ``convert_to_spiking`` makes it ``sigma_delta_neuron{base=relu, gain=1, dt, amplitude=1/dt}``:
    each step ``y dt`` events (``floor`` of the running sum) of height ``1 / dt``, keras-spiking's
    spiking form."""

    NAME: ClassVar[str] = "spiking_relu"

    dt: float = 0.001

    def infer_type(self, inputs):
        expect_positive(self, "dt")
        return inputs[0]


#: activations trained for spiking neurons (``snnc.training``, keras-spiking): their scale and
#: dynamics are given by the training, so balancing and calibration keep them
TRAINED_OPS = (SoftLif, Qcfs, SpikingRelu)


@register
@dataclass(frozen=True)
class Delay(Op):
    """The value of the input one input step earlier: ``y_t = x_{t-1}``, ``y_1 = init``.

    The only op whose value crosses a step boundary, so the only op whose input may be
    defined after it (a cycle through it is a recurrence). In a spiking graph it spans one
    input step: ``T`` simulation steps when sequence inputs are held ``T`` steps each, one
    simulation step when the inputs are constant."""

    NAME: ClassVar[str] = "delay"
    STATEFUL: ClassVar[bool] = True
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = STAGES

    init: float = 0.0

    def infer_type(self, inputs):
        return inputs[0]


@register
@dataclass(frozen=True)
class Add(Op):
    """Elementwise sum of two or more inputs of the same type (residual connections)."""

    NAME: ClassVar[str] = "add"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = LINEAR_STAGES
    ARITY: ClassVar[int | None] = None

    def infer_type(self, inputs):
        first = inputs[0]
        for t in inputs[1:]:
            if t.shape != first.shape:
                raise OpTypeError(f"add of different shapes: {', '.join(str(t) for t in inputs)}")
        return current(first)


@register
@dataclass(frozen=True)
class Concat(Op):
    """Join inputs along ``axis`` (0 = channels for images)."""

    NAME: ClassVar[str] = "concat"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = LINEAR_STAGES
    ARITY: ClassVar[int | None] = None

    axis: int = 0

    def infer_type(self, inputs):
        first = inputs[0]
        if not 0 <= self.axis < first.rank:
            raise OpTypeError(f"concat axis {self.axis} out of range for {first}")
        for t in inputs[1:]:
            same = [d for i, d in enumerate(t.shape) if i != self.axis]
            want = [d for i, d in enumerate(first.shape) if i != self.axis]
            if t.rank != first.rank or same != want or t.layout != first.layout:
                raise OpTypeError(
                    f"concat along axis {self.axis} of {', '.join(str(t) for t in inputs)}"
                )
        shape = list(first.shape)
        shape[self.axis] = sum(t.shape[self.axis] for t in inputs)
        dtype = first.dtype if all(t.dtype == first.dtype for t in inputs) else current(first).dtype
        return TensorType(tuple(shape), dtype, first.layout)


@register
@dataclass(frozen=True)
class Softmax(Op):
    """``y = exp(x) / sum(exp(x))`` along ``axis``; only legal just before an output.
    In spiking graphs it runs on the host on the readout's time-averaged value."""

    NAME: ClassVar[str] = "softmax"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = STAGES

    axis: int = 0

    def infer_type(self, inputs):
        x = inputs[0]
        if not 0 <= self.axis < x.rank:
            raise OpTypeError(f"softmax axis {self.axis} out of range for {x}")
        return x


@register
@dataclass(frozen=True)
class Sigmoid(Op):
    """Logistic function ``y = 1 / (1 + exp(-x))``, elementwise. No spiking form: in spiking
    graphs it runs on the host on a readout's time-averaged value."""

    NAME: ClassVar[str] = "sigmoid"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = STAGES

    def infer_type(self, inputs):
        return current(inputs[0])


@register
@dataclass(frozen=True)
class Tanh(Op):
    """Hyperbolic tangent ``y = tanh(x)``, elementwise. No spiking form: in spiking graphs it
    runs on the host on a readout's time-averaged value."""

    NAME: ClassVar[str] = "tanh"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = STAGES

    def infer_type(self, inputs):
        return current(inputs[0])


#: activations that cannot spike: a spiking graph applies them on the host to decoded
#: (time-averaged) values, between a readout and an output
DECODED_OPS = (Softmax, Sigmoid, Tanh)


# ----------------------------------------------------------------------------- spiking ops

def spikes_like(x: TensorType) -> TensorType:
    """The type of a population's events for input ``x``: spikes of the same shape."""
    return TensorType(x.shape, "spike", x.layout)


def expect_positive(op: Op, *names: str) -> None:
    for name in names:
        if not getattr(op, name) > 0:
            raise OpTypeError(f"{op.NAME} {name} must be positive, got {getattr(op, name)}")


# neuron populations (if_neuron, lif_neuron, ...) are defined in compiler/neurons/, one module
# per neuron type, and registered in OPS when that package is loaded (end of this module)


@register
@dataclass(frozen=True)
class SpikeMaxPool2d(_PoolWindow):
    """Spiking max-pool gate: each window passes the growth of its largest accumulated input::

        A_t = sum_{s<=t} x_s                       (per input element; A_0 = 0)
        m_t = max over the window of A_t           (padded positions never win)
        y_t = m_t - m_{t-1}                        (m_0 = 0)

    so ``sum_{s<=t} y_s = m_t``: the output's cumulative sum equals the window's largest
    cumulative input at every step, i.e. ``max_pool2d`` of the accumulated input. On spike
    trains the output's spike count is the largest spike count in the window, exactly, for
    overlapping windows too; when the leading element changes, the output does not count the
    new leader's earlier spikes again (SNN Toolbox's online max passes the current leader's
    ``x_t``, which does). On spikes of one amplitude ``y_t`` is a whole number of spikes
    (0 or 1 for binary spikes, at most ``bursts`` for burst neurons)."""

    NAME: ClassVar[str] = "spike_max_pool2d"
    STATEFUL: ClassVar[bool] = True
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = (SPIKING,)


@register
@dataclass(frozen=True)
class Readout(Op):
    """Time-averaged output: ``y_T = (1/T) sum_{t=1..T} x_t``. On a layer's current this is
    the accumulated membrane of a non-leaky integrator without threshold, divided by T; on
    spikes it is the spike count times the amplitude, divided by T. With sequence inputs the
    average restarts with each input step's window of ``T`` simulation steps.

    ``period > 0`` (bistable networks, docs/bsnn.md): time is cut into cycles of ``period``
    steps, ``k = (t - 1) // period``, and only the steps of the cycles the readout integrates
    count, ``k >= phase`` with ``k - phase`` even (``phase``: the number of bistable layers
    on the longest path before it, so the pipeline has filled)::

        y_T = sum_{t <= T counted} x_t / #{t <= T counted}      (0 while none counted)"""

    NAME: ClassVar[str] = "readout"
    STATEFUL: ClassVar[bool] = True
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = SPIKING_STAGES

    period: int = 0
    phase: int = 0

    def infer_type(self, inputs):
        if self.period < 0 or self.phase < 0 or (self.phase and not self.period):
            raise OpTypeError(f"readout period={self.period} and phase={self.phase}: both at least 0, a phase only with a period")
        return current(inputs[0])

    def counts(self, t: int) -> bool:
        """Whether step ``t`` (from 1) enters the average."""
        if not self.period:
            return True
        cycle = (t - 1) // self.period - self.phase
        return cycle >= 0 and cycle % 2 == 0



# ----------------------------------------------------------------------------- Loihi ops

#: chip neuron models: NengoLoihi's ``configure_relu`` (non-leaky) and ``configure_lif``
CHIP_NEURONS = ("relu", "lif")
#: ``float``: NengoLoihi's float parameters (spiking stage); ``int``: the chip's integers
CHIP_FORMATS = ("float", "int")
SYNAPSE_KINDS = ("dense", "conv")


def _check_choice(op: Op, name: str, choices: tuple[str, ...]) -> None:
    if getattr(op, name) not in choices:
        raise OpTypeError(f"{op.NAME} {name} must be one of {', '.join(choices)}, got {getattr(op, name)!r}")


@register
@dataclass(frozen=True)
class LoihiSynapses(Op):
    """The synapses from one presynaptic population (on the chip, or the host's input layer)
    onto one Loihi compartment population. Spikes arrive one step late, as on the chip: a
    spike at step ``t`` reaches the input accumulator at step ``t + 1``::

        dense: q_t[i]       = sum_j W[i, j] s_{t-1}[j]                  (input flattened, CHW order)
        conv:  q_t[f, y, x] = sum_{c,u,v} K[f, c, u, v] s_{t-1}[c, y*sh + u - pt, x*sw + v - pl]

    (zero outside the input). ``format="float"``: ``weight`` is the NengoLoihi connection
    transform (``W: (units, n_in)``, ``K: (filters, C, kh, kw)``); the chip applies
    ``transform / dt * pre amplitude * post gain`` per spike. ``format="int"``: ``weight`` holds
    the integers the chip adds to the input accumulator per spike (``mantissa << (6 +
    weight_exp)``), by core block: ``W`` rows each belong to one block; conv kernels are stored
    per block, ``K: (blocks, filters, C, kh, kw)``. ``block`` (one per output compartment) says
    which block a compartment is in, ``weight_exp`` (one per block) the weight exponent there.
    The output is the input current, ``f32`` (float) or ``i32`` (int).

    ``delay=1`` (a recurrent synapse, in input steps): the input is a ``delay`` of a chip
    population's spikes, and that delay is the whole latency: ``q_t = W d_t`` with ``d_t =
    s_{t-L}``, so a spike at step ``t`` reaches the accumulator at ``t + L`` (``L = T`` with
    sequence inputs, 1 with constant inputs), where the chip's usual one step would come on
    top. A chip population runs one step behind the spiking graph it was lowered from (host
    spikes reach it a step late), so this latency of exactly ``L`` steps is the graph's
    recurrence; feed-forward synapses keep ``delay=0``."""

    NAME: ClassVar[str] = "loihi_synapses"
    STATEFUL: ClassVar[bool] = True
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = (SPIKING, INTEGER)

    kind: str
    format: str = "float"
    units: int = 0
    filters: int = 0
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    blocks: int = 1
    delay: int = 0

    def out_shape(self, x: TensorType) -> tuple[int, ...]:
        if self.kind == "dense":
            return (self.units,)
        c, h, w = x.shape
        pt, pl, pb, pr = self.pads
        ho = _window_out(h, self.kernel[0], self.stride[0], pt + pb)
        wo = _window_out(w, self.kernel[1], self.stride[1], pl + pr)
        return (self.filters, ho, wo)

    def param_shapes(self, inputs):
        x = inputs[0]
        if self.kind == "dense":
            weight = (self.units, x.size)
        else:
            weight = (self.filters, x.shape[0], *self.kernel)
        if self.format == "float":
            return {"weight": weight}
        if self.kind == "conv":
            weight = (self.blocks, *weight)
        n_out = math.prod(self.out_shape(x))
        return {"weight": weight, "block": (n_out,), "weight_exp": (self.blocks,)}

    def param_dtypes(self):
        if self.format == "float":
            return {"weight": "f32"}
        return {"weight": "i32", "block": "i32", "weight_exp": "i32"}

    def infer_type(self, inputs):
        _check_choice(self, "kind", SYNAPSE_KINDS)
        _check_choice(self, "format", CHIP_FORMATS)
        x = inputs[0]
        if x.dtype != "spike":
            raise OpTypeError(f"loihi_synapses take spikes, got {x}")
        if self.kind == "conv":
            _expect_image(x, self.NAME)
        if self.blocks < 1:
            raise OpTypeError(f"loihi_synapses blocks must be at least 1, got {self.blocks}")
        if self.delay not in (0, 1):
            raise OpTypeError(f"loihi_synapses delay is 0 or 1 input steps, got {self.delay}")
        shape = self.out_shape(x)
        return TensorType(shape, "f32" if self.format == "float" else "i32")


@register
@dataclass(frozen=True)
class LoihiCompartments(Op):
    """A population of Loihi compartments, one per element, whose input is the sum of its
    synapses' currents ``q``. ``format="int"`` steps exactly as NengoLoihi's emulator does
    (papers.md B3), with ``decay(x, d, o) = sign(x) * ((|x| * (4096 - o - d)) >> 12)`` and
    ``wrap_b`` the two's-complement wrap to ``b`` bits plus sign::

        u  = wrap_23(decay(u, decay_u, 1) + wrap_21(q))
        v  = clip(decay(v, decay_v, 0) + wrap_23(u + bias), vmin, vmax)
        v  = 0 where the compartment is refractory
        s  = v > vth ;  v = 0 where s ;  refractory for refract_delay - 1 steps after a spike

    ``format="float"`` holds NengoLoihi's float parameters: the ensemble ``gain`` (folded into
    the synapse weights) and ``bias`` (one per compartment); ``neuron="relu"`` is
    ``configure_relu`` (threshold ``1/dt``, no leak), ``neuron="lif"`` is ``configure_lif``
    (``tau_rc``, ``tau_ref`` in seconds at step ``dt``, threshold 1); ``tau_s > 0`` is the
    synapse NengoLoihi's ``configure_filter(tau_s)`` gives the current (``decay_u = 1 -
    exp(-dt/tau_s)``; 0: none, ``decay_u = 1``). ``format="int"`` holds the
    discretized ``vth``, ``bias`` (``mantissa << exponent``), ``vmin`` and ``vmax`` per
    compartment (each is per core block on the chip), the 12-bit decays and the refractory
    delay. The output spikes are worth ``amplitude`` each on the host. ``vmin`` (float
    format) is the voltage floor in thresholds (``vmin * vth``; NengoLoihi's default 0, the
    chip's range down to ``-(2^23 - 1)``): below zero, negative input cancels earlier
    positive input instead of being lost at the floor."""

    NAME: ClassVar[str] = "loihi_compartments"
    STATEFUL: ClassVar[bool] = True
    NEURON: ClassVar[bool] = True
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = (SPIKING, INTEGER)
    ARITY: ClassVar[int | None] = None
    MIN_ARITY: ClassVar[int] = 1

    neuron: str = "relu"
    format: str = "float"
    gain: float = 1.0
    amplitude: float = 1.0
    dt: float = 0.001
    tau_rc: float = 0.02
    tau_ref: float = 0.0
    tau_s: float = 0.0
    decay_u: int = 0
    decay_v: int = 0
    refract_delay: int = 1
    vmin: float = 0.0

    def param_shapes(self, inputs):
        n = (math.prod(inputs[0].shape),)
        if self.format == "float":
            return {"bias": n}
        return {"vth": n, "bias": n, "vmin": n, "vmax": n}

    def param_dtypes(self):
        if self.format == "float":
            return {"bias": "f32"}
        return {"vth": "i32", "bias": "i32", "vmin": "i32", "vmax": "i32"}

    def infer_type(self, inputs):
        _check_choice(self, "neuron", CHIP_NEURONS)
        _check_choice(self, "format", CHIP_FORMATS)
        expect_positive(self, "gain", "amplitude", "dt")
        if not self.vmin <= 0:
            raise OpTypeError(f"loihi_compartments vmin={self.vmin:g} must be at most 0 (thresholds)")
        if self.tau_s < 0:
            raise OpTypeError(f"loihi_compartments tau_s={self.tau_s:g} must not be negative")
        want = "f32" if self.format == "float" else "i32"
        first = inputs[0]
        for t in inputs:
            if t.dtype != want or t.shape != first.shape:
                raise OpTypeError(
                    f"loihi_compartments ({self.format}) sum {want} synapse currents of one shape, got "
                    + ", ".join(str(t) for t in inputs)
                )
        if self.format == "int":
            if not (0 <= self.decay_u <= 4095 and 0 <= self.decay_v <= 4095):
                raise OpTypeError(f"decays are 12-bit (0..4095), got decay_u={self.decay_u}, decay_v={self.decay_v}")
            if not 1 <= self.refract_delay <= 63:
                raise OpTypeError(f"refract_delay must be 1..63, got {self.refract_delay}")
        return TensorType(first.shape, "spike", first.layout)


#: the ops that run on a Loihi chip; everything else in a Loihi graph runs on the host
CHIP_OPS = (LoihiSynapses, LoihiCompartments)


def __getattr__(name: str):
    """``STATEFUL_OPS`` (ops that carry state from one time step to the next) and
    ``NEURON_OPS`` (neuron populations: what firing-rate statistics and backends count as
    neurons), over the ops registered now (neuron types register theirs: :mod:`.neurons`)."""
    if name == "STATEFUL_OPS":
        return tuple(op for op in OPS.values() if op.STATEFUL)
    if name == "NEURON_OPS":
        return tuple(op for op in OPS.values() if op.NEURON)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
