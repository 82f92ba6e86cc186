"""Integrate-and-fire neurons: the ``if_neuron`` op, its step, rate curve and backend forms."""

from __future__ import annotations

import functools
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
        s_t = 1 if v_t >= threshold else 0           (at most one spike per step)
        v_t = v_t - s_t * threshold                  (reset="subtract", Rueckauer et al. 2017)
            | 0 where s_t                            (reset="zero")
        y_t = amplitude * s_t

    Without ``v_min`` the membrane is not bounded below, so negative input cancels earlier
    positive input: right for a constant input, whose mean current is all that matters, but
    with inputs that change over time (sequences) a stretch of negative input would hold the
    neuron silent long after the input turned positive. ``v_min = 0`` (Loihi's ``vmin``)
    makes each stretch's rate the ReLU of its own input. Over T steps the mean output
    approaches ``amplitude * gain * relu(x) / threshold``, capped at ``amplitude`` (one spike
    per step). ``v_init`` is one value, or one per channel (the first axis; ``calibrate``'s
    potential correction moves each channel's start)."""

    NAME: ClassVar[str] = "if_neuron"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = ops.SPIKING_STAGES

    threshold: float = 1.0
    gain: float = 1.0
    reset: str = "subtract"
    v_init: float | tuple[float, ...] = 0.0
    amplitude: float = 1.0
    v_min: float | None = None

    def infer_type(self, inputs):
        ops.expect_positive(self, "threshold", "gain", "amplitude")
        starts = self.v_init if isinstance(self.v_init, tuple) else (self.v_init,)
        if isinstance(self.v_init, tuple) and len(starts) != inputs[0].shape[0]:
            raise ops.OpTypeError(f"if_neuron has {len(starts)} v_init values for {inputs[0].shape[0]} channels")
        if self.v_min is not None and not self.v_min <= min(*starts, 0.0):
            raise ops.OpTypeError(f"if_neuron v_min={self.v_min:g} must be at most 0 and at most v_init={min(starts):g}")
        if self.reset not in RESETS:
            raise ops.OpTypeError(f"if_neuron reset must be one of {', '.join(RESETS)}, got {self.reset!r}")
        return ops.spikes_like(inputs[0])


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
        """``v += gain * x``; ``v = max(v, v_min)`` where ``v_min`` is given; ``s = v >= threshold``;
        ``v -= threshold`` (subtract) or ``v = 0`` (zero) where ``s``. Returns ``({"v": v}, s)``."""
        v = state["v"] + _scaled(p.gain, x)
        if p.v_min is not None:
            v = xp.maximum(v, p.v_min)
        spiked = v >= p.threshold
        if p.reset == "subtract":
            v = xp.where(spiked, v - p.threshold, v)
        else:
            v = xp.where(spiked, xp.zeros_like(v), v)
        return {"v": v}, spiked

    def rates(self, p, x):
        """Per step, ``amplitude * clip(gain * x / threshold, 0, 1)`` (reset by subtraction keeps
        the remainder); reset to zero drops it, so a spike every ``ceil(threshold / (gain * x))``
        steps: ``amplitude / ceil(threshold / (gain * x))`` where ``x > 0``."""
        x = np.asarray(x, dtype=np.float64)
        if p.reset == "subtract":
            return self.linear_rates(p, x)
        out = np.zeros_like(x)
        drive = p.gain * x
        out[drive > 0] = p.amplitude / np.ceil(p.threshold / drive[drive > 0])
        return out

    def linear_rates(self, p, x, xp=NUMPY):
        """``amplitude * clip(gain * x / threshold, 0, 1)``: the rate curve with reset by
        subtraction, and a differentiable stand-in for both resets (nengo-dl's training step)."""
        return p.amplitude * xp.clip(p.gain * x / p.threshold, 0.0, 1.0)

    def from_relu(self, *, max_rate, threshold=1.0, reset="subtract", v_init=0.5, v_min=None, **_):
        """Gain ``threshold * max_rate``, so ``a`` fires ``max_rate * a`` per step; the membrane
        starts at ``v_init`` times the threshold and is floored at ``v_min`` times it (None:
        unbounded)."""
        if max_rate > 1:
            raise PassError(f"option max_rate={max_rate}: an integrate-and-fire neuron fires at most once per step")
        return IfNeuron(
            threshold=threshold, gain=threshold * max_rate, reset=reset, v_init=v_init * threshold, amplitude=1.0 / max_rate,
            v_min=None if v_min is None else v_min * threshold,
        )

    def forms(self):
        return {"loihi": loihi_form, "nengo": nengo_form, "loihi_host": nengo_form, "nengo_dl": nengo_dl_form}


# ----------------------------------------------------------------------------- Loihi


def loihi_form(op: IfNeuron, bias: np.ndarray, dt: float) -> LoihiForm:
    """A ``relu`` chip population (NengoLoihi's ``configure_relu``: threshold ``1/dt``, no
    leak): ensemble gain ``gain / threshold``, bias ``gain * b / (threshold * dt)`` for the
    input's constant part ``b``. The chip resets to zero and starts at zero, its membrane
    floored at zero (``vmin = 0``); other resets, starts and floors are reported as ``differs``."""
    gain = op.gain / op.threshold
    compartments = ops.LoihiCompartments(neuron="relu", gain=gain, amplitude=op.amplitude, dt=dt)
    differs = None
    if op.reset != "zero" or op.v_init not in (0, 0.0) or op.v_min not in (None, 0):
        floor = "" if op.v_min in (None, 0) else f", v_min={op.v_min:g}"
        differs = ChipDifference(
            note=f"on the chip: reset to zero from zero (the spiking graph has reset={op.reset}, v_init={describe_start(op.v_init)}{floor})",
            refusal=(
                f"Loihi resets the membrane to zero and starts it at zero (this layer: reset={op.reset}, "
                f"v_init={describe_start(op.v_init)}); convert with convert_to_spiking{{reset=zero,v_init=0}}"
            ),
        )
    return LoihiForm(compartments, gain * bias / dt, differs)


# ----------------------------------------------------------------------------- Nengo


def nengo_form(op: IfNeuron, dt: float):
    """The Nengo neuron type stepping as ``op`` (:func:`nengo_types`), in snnc's units: each
    spike outputs ``amplitude`` for any ``dt``; ensemble gain 1 and bias 0 (the type applies
    the op's gain)."""
    return NengoNeuron(nengo_types()[op.reset](op), 1.0, 0.0)


@functools.cache
def nengo_types() -> dict:
    """The ``nengo.neurons.NeuronType`` of each reset (defined on first use: imports nengo).
    ``nengo.SpikingRectifiedLinear`` rectifies its input and may fire several times per step,
    so it cannot be this neuron."""
    from nengo.dists import Choice
    from nengo.neurons import NeuronType
    from nengo.params import NumberParam

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

        def __init__(self, op):
            per_channel = isinstance(op.v_init, tuple)
            super().__init__(initial_state={"voltage": Choice([0.0 if per_channel else op.v_init])})
            self.threshold, self.gain, self.amplitude = op.threshold, op.gain, op.amplitude
            self.v_min = op.v_min
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
