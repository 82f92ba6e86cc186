"""Integrate-and-fire neurons: the ``if_neuron`` op, its step, rate curve and backend forms."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import ops
from ..errors import PassError
from . import NUMPY, ChipDifference, LoihiForm, NengoNeuron, Neuron, register

RESETS = ("subtract", "zero")


@ops.register
@dataclass(frozen=True)
class IfNeuron(ops.Op):
    """Integrate-and-fire neurons, one per element, at each time step ``t``::

        v_t = v_{t-1} + gain * x_t                   (v_0 = v_init)
        v_t = max(v_t, v_min)                        (where v_min is given)
        n_t = clip(floor(v_t / threshold), 0, bursts)
        v_t = v_t - n_t * threshold                  (reset="subtract", Rueckauer et al. 2017)
            | 0 where n_t > 0                        (reset="zero")
        y_t = amplitude * n_t

    With ``bursts=1`` (binary spikes) ``n_t = 1 if v_t >= threshold else 0``; ``bursts=G > 1``
    emits up to ``G`` events per step (burst spikes, Li & Zeng 2022), ``log2(G + 1)`` bits per
    event, with reset by subtraction only (a reset to zero would drop the rest of a burst).

    Without ``v_min`` the membrane is not bounded below, so negative input cancels earlier
    positive input: right for a constant input, whose mean current is all that matters, but
    with inputs that change over time (sequences) a stretch of negative input would hold the
    neuron silent long after the input turned positive. ``v_min = 0`` (Loihi's ``vmin``)
    makes each stretch's rate the ReLU of its own input. Over T steps the mean output
    approaches ``amplitude * gain * relu(x) / threshold``, capped at ``amplitude * bursts``.
    ``v_init`` is one value, or one per channel (the first axis; ``calibrate``'s potential
    correction moves each channel's start)."""

    NAME: ClassVar[str] = "if_neuron"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = ops.SPIKING_STAGES

    threshold: float = 1.0
    gain: float = 1.0
    reset: str = "subtract"
    v_init: float | tuple[float, ...] = 0.0
    amplitude: float = 1.0
    v_min: float | None = None
    bursts: int = 1

    def infer_type(self, inputs):
        ops.expect_positive(self, "threshold", "gain", "amplitude")
        if not (isinstance(self.bursts, int) and self.bursts >= 1):
            raise ops.OpTypeError(f"if_neuron bursts must be a positive integer (events per step), got {self.bursts!r}")
        if self.bursts > 1 and self.reset != "subtract":
            raise ops.OpTypeError(f"if_neuron bursts={self.bursts} needs reset=subtract (a reset to zero drops the rest of a burst)")
        starts = self.v_init if isinstance(self.v_init, tuple) else (self.v_init,)
        if isinstance(self.v_init, tuple) and len(starts) != inputs[0].shape[0]:
            raise ops.OpTypeError(f"if_neuron has {len(starts)} v_init values for {inputs[0].shape[0]} channels")
        if self.v_min is not None and not self.v_min <= min(*starts, 0.0):
            raise ops.OpTypeError(f"if_neuron v_min={self.v_min:g} must be at most 0 and at most v_init={min(starts):g}")
        if self.reset not in RESETS:
            raise ops.OpTypeError(f"if_neuron reset must be one of {', '.join(RESETS)}, got {self.reset!r}")
        return ops.spikes_like(inputs[0])


def qcfs(x, levels: int, threshold: float, shift: float, xp=NUMPY):
    """THE quantization-clip-floor-shift activation (Bu et al. 2022; the ``qcfs`` op):
    ``threshold * clip(floor(x * levels / threshold + shift) / levels, 0, 1)``. An IF neuron
    with this ``threshold``, reset by subtraction and membrane starting at ``shift * threshold``
    fires ``floor(x * T / threshold + shift)`` spikes (clipped to ``[0, T]``) in ``T`` steps of
    constant input ``x``, so its mean output is this activation exactly where ``T = levels``
    (``snnc.training.QCFS`` calls this with :func:`~snnc.compiler.neurons.tensorflow_math`)."""
    return threshold * xp.clip(xp.floor(x * (levels / threshold) + shift) / levels, 0.0, 1.0)


def initial_membrane(v_init, shape: tuple[int, ...]) -> np.ndarray:
    """The membrane at ``t = 0`` for a batch ``shape = (B, C, ...)``: ``v_init`` everywhere, or
    ``v_init[c]`` in channel ``c`` (a tuple), float64."""
    start = np.asarray(v_init, dtype=np.float64)
    if start.ndim:
        start = start.reshape(-1, *([1] * (len(shape) - 2)))
    return np.array(np.broadcast_to(start, shape))


def describe_start(v_init) -> str:
    """``v_init`` for messages: the value, or the range of the per-channel values."""
    if isinstance(v_init, tuple):
        return f"{min(v_init):g}..{max(v_init):g} per channel"
    return f"{v_init:g}"


def _scaled(gain, x):
    # gain 1 (the usual) skips a multiplication; 1 * x == x exactly, so results do not change
    return x if isinstance(gain, (int, float)) and gain == 1 else gain * x


@register
class IF(Neuron):
    """Integrate-and-fire (:class:`IfNeuron`): linear rates, hence the neuron for ReLU networks."""

    NAME = "if"
    OP = IfNeuron
    LINEAR_RATES = True

    def initial_state(self, p, shape):
        return {"v": initial_membrane(p.v_init, shape)}

    def step(self, p, state, x, xp=NUMPY):
        """``v += gain * x``; ``v = max(v, v_min)`` where ``v_min`` is given; ``n =
        clip(floor(v / threshold), 0, bursts)``; ``v -= n * threshold`` (subtract) or ``v = 0``
        (zero) where ``n > 0``. Returns ``({"v": v}, n)``: with ``bursts=1`` the booleans ``v >=
        threshold`` (the same ``n``: ``v / threshold`` rounds to below 1 exactly when ``v <
        threshold``), else float counts."""
        v = state["v"] + _scaled(p.gain, x)
        if p.v_min is not None:
            v = xp.maximum(v, p.v_min)
        if isinstance(p.bursts, int) and p.bursts == 1:
            spiked = v >= p.threshold
            if p.reset == "subtract":
                v = xp.where(spiked, v - p.threshold, v)
            else:
                v = xp.where(spiked, xp.zeros_like(v), v)
            return {"v": v}, spiked
        events = xp.clip(xp.floor(v / p.threshold), 0.0, p.bursts)
        return {"v": v - events * p.threshold}, events

    def rates(self, p, x):
        """Per step, ``amplitude * clip(gain * x / threshold, 0, bursts)`` (reset by subtraction
        keeps the remainder); reset to zero (``bursts=1`` only) drops it, so a spike every
        ``ceil(threshold / (gain * x))`` steps: ``amplitude / ceil(threshold / (gain * x))``
        where ``x > 0``."""
        x = np.asarray(x, dtype=np.float64)
        if p.reset == "subtract":
            return self.linear_rates(p, x)
        out = np.zeros_like(x)
        drive = p.gain * x
        out[drive > 0] = p.amplitude / np.ceil(p.threshold / drive[drive > 0])
        return out

    def linear_rates(self, p, x, xp=NUMPY):
        """``amplitude * clip(gain * x / threshold, 0, bursts)``: the rate curve with reset by
        subtraction, and a differentiable stand-in for both resets (nengo-dl's training step)."""
        return p.amplitude * xp.clip(p.gain * x / p.threshold, 0.0, p.bursts)

    def bits_per_event(self, p) -> float:
        """``log2(bursts + 1)``: an event is one of ``0 .. bursts`` spikes."""
        return math.log2(p.bursts + 1)

    def from_relu(self, *, max_rate, threshold=1.0, reset="subtract", v_init=0.5, v_min=None, bursts=1, **_):
        """Gain ``threshold * max_rate * bursts`` and amplitude ``1 / (max_rate * bursts)``: ``a``
        fires ``max_rate * bursts * a`` events per step, each worth ``1 / (max_rate * bursts)``,
        so the output still saturates at ``a = 1 / max_rate`` while each step resolves ``bursts``
        times finer (up to ``bursts`` events per step: BrainCog's burst neuron, a threshold
        ``bursts`` times lower); over T steps the rounding error of the rate code is at most
        ``1 / (max_rate * bursts * T)``. The membrane starts at ``v_init`` times the threshold
        and is floored at ``v_min`` times it (None: unbounded)."""
        if max_rate > 1:
            raise PassError(f"option max_rate={max_rate}: an integrate-and-fire neuron fires at most once per step")
        if bursts > 1 and reset != "subtract":
            raise PassError(f"option bursts={bursts} needs reset=subtract (a reset to zero drops the rest of a burst)")
        return IfNeuron(
            threshold=threshold, gain=threshold * max_rate * bursts, reset=reset, v_init=v_init * threshold,
            amplitude=1.0 / (max_rate * bursts), v_min=None if v_min is None else v_min * threshold, bursts=bursts,
        )

    def forms(self):
        return {"loihi": loihi_form, "nengo": nengo_form, "loihi_host": nengo_form, "nengo_dl": nengo_dl_form}


# ----------------------------------------------------------------------------- Loihi


def loihi_form(op: IfNeuron, bias: np.ndarray, dt: float) -> LoihiForm:
    """A ``relu`` chip population (NengoLoihi's ``configure_relu``: threshold ``1/dt``, no
    leak): ensemble gain ``gain / threshold``, bias ``gain * b / (threshold * dt)`` for the
    input's constant part ``b``. The chip resets to zero and starts at zero, its membrane
    floored at zero (``vmin = 0``), and fires one spike per step at most; other resets,
    starts and floors, and burst spikes, are reported as ``differs``. Bursts of up to ``G``
    spikes become single spikes worth ``G`` of them (gain ``/ G``, amplitude ``* G``): the
    chip keeps the layer's range and loses its finer steps."""
    gain = op.gain / (op.threshold * op.bursts)
    compartments = ops.LoihiCompartments(neuron="relu", gain=gain, amplitude=op.amplitude * op.bursts, dt=dt)
    differs = []
    if op.bursts > 1:
        differs.append(ChipDifference(
            note=f"on the chip: one spike per step at most, worth {op.bursts} of the graph's (bursts={op.bursts})",
            refusal=f"Loihi fires one spike per step at most (this layer: bursts={op.bursts}); convert with convert_to_spiking{{bursts=1}}",
        ))
    if op.reset != "zero" or op.v_init not in (0, 0.0) or op.v_min not in (None, 0):
        floor = "" if op.v_min in (None, 0) else f", v_min={op.v_min:g}"
        differs.append(ChipDifference(
            note=f"on the chip: reset to zero from zero (the spiking graph has reset={op.reset}, v_init={describe_start(op.v_init)}{floor})",
            refusal=(
                f"Loihi resets the membrane to zero and starts it at zero (this layer: reset={op.reset}, "
                f"v_init={describe_start(op.v_init)}); convert with convert_to_spiking{{reset=zero,v_init=0}}"
            ),
        ))
    return LoihiForm(compartments, gain * bias / dt, _joined(differs))


def _joined(differs: list[ChipDifference]) -> ChipDifference | None:
    """The differences as one (notes and refusals joined by ``; ``), or None."""
    if not differs:
        return None
    return ChipDifference("; ".join(d.note for d in differs), "; ".join(d.refusal for d in differs))


# ----------------------------------------------------------------------------- Nengo


def nengo_form(op: IfNeuron, dt: float):
    """The Nengo neuron type stepping as ``op`` (:func:`nengo_types`), in snnc's units: each
    step outputs ``amplitude`` times its count of spikes for any ``dt``; ensemble gain 1 and
    bias 0 (the type applies the op's gain)."""
    return NengoNeuron(nengo_types()[op.reset](op), 1.0, 0.0)


@functools.cache
def nengo_types() -> dict:
    """The ``nengo.neurons.NeuronType`` of each reset (defined on first use: imports nengo).
    ``nengo.SpikingRectifiedLinear`` rectifies its input and may fire several times per step,
    so it cannot be this neuron."""
    from nengo.dists import Choice
    from nengo.neurons import NeuronType
    from nengo.params import IntParam, NumberParam

    neuron = IF()

    class IFNeurons(NeuronType):
        """:class:`IfNeuron` for Nengo: its ``step``, on ``J`` (the ensemble's current)."""

        state = {"voltage": Choice([0.0])}
        spiking = True
        negative = False
        reset = ""

        threshold = NumberParam("threshold", low=0, low_open=True)
        gain = NumberParam("gain", low=0, low_open=True)
        amplitude = NumberParam("amplitude", low=0, low_open=True)
        bursts = IntParam("bursts", low=1)

        def __init__(self, op):
            per_channel = isinstance(op.v_init, tuple)
            super().__init__(initial_state={"voltage": Choice([0.0 if per_channel else op.v_init])})
            self.threshold, self.gain, self.amplitude = op.threshold, op.gain, op.amplitude
            self.v_min, self.bursts = op.v_min, op.bursts
            self.channel_starts = op.v_init if per_channel else None

        def make_state(self, n_neurons, rng=np.random, dtype=None):
            """Per-channel starts: the ensemble's neurons are the population's in CHW order."""
            state = super().make_state(n_neurons, rng=rng, dtype=dtype)
            if self.channel_starts is not None:
                starts = np.repeat(self.channel_starts, n_neurons // len(self.channel_starts))
                state["voltage"][...] = starts
            return state

        def rates(self, x, gain, bias):
            return neuron.rates(self, self.current(x, gain, bias))

        def step(self, dt, J, output, voltage):
            state, spiked = neuron.step(self, {"v": voltage}, J)
            voltage[...] = state["v"]
            output[...] = spiked * self.amplitude

    class IFSubtract(IFNeurons):
        """Reset by subtraction."""

        reset = "subtract"

    class IFZero(IFNeurons):
        """Reset to zero."""

        reset = "zero"

    return {"subtract": IFSubtract, "zero": IFZero}


@functools.cache
def nengo_dl_form() -> None:
    """Register the TensorFlow builders of :func:`nengo_types` with nengo-dl (imports it):
    the same :meth:`IF.step` on tensors, parameters per neuron where merged populations differ."""
    import tensorflow as tf
    from nengo_dl.neuron_builders import SimNeuronsBuilder, TFNeuronBuilder

    from . import tensorflow_math

    xp, neuron = tensorflow_math(), IF()

    class IFBuilder(TFNeuronBuilder):
        spiking = True

        def build_pre(self, signals, config):
            super().build_pre(signals, config)
            params = {name: _per_neuron(self.ops, name, signals.dtype) for name in ("threshold", "gain", "amplitude")}
            floors = [op.neurons.v_min for op in self.ops]
            # unbounded populations merged with floored ones take a floor of -inf
            params["v_min"] = None if all(f is None for f in floors) else _per_neuron(self.ops, "v_min", signals.dtype, none=-np.inf)
            # a Python int where all agree, so bursts=1 steps as binary spikes
            bursts = {op.neurons.bursts for op in self.ops}
            params["bursts"] = bursts.pop() if len(bursts) == 1 else _per_neuron(self.ops, "bursts", signals.dtype)
            self.params = type("IFParams", (), {**params, "reset": self.ops[0].neurons.reset})

        def step(self, J, dt, voltage):
            state, spiked = neuron.step(self.params, {"v": voltage}, J, xp)
            return tf.cast(spiked, J.dtype) * self.params.amplitude, state["v"]

        def training_step(self, J, dt, **state):
            """The rate curve, for training through nengo-dl."""
            return neuron.linear_rates(self.params, J, xp)

    for neuron_type in nengo_types().values():
        SimNeuronsBuilder.TF_NEURON_IMPL[neuron_type] = IFBuilder


def _per_neuron(sim_ops, attr: str, dtype, none: float | None = None):
    """A neuron parameter across a merged group of nengo ops: a scalar when all are equal, else
    one value per neuron ``(1, n)``; ``none`` stands for a parameter that is None. (nengo-dl's
    ``op_constant`` merges values that are only ``allclose``; the spikes must not depend on that.)"""
    import tensorflow as tf

    values = [getattr(op.neurons, attr) for op in sim_ops]
    values = [none if v is None else v for v in values]
    if all(v == values[0] for v in values):
        return tf.constant(values[0], dtype=dtype)
    per_neuron = np.concatenate([np.full(op.J.shape[0], v) for op, v in zip(sim_ops, values)])
    return tf.constant(per_neuron[None, :], dtype=dtype)
