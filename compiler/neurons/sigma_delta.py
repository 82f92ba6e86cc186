"""Sigma-delta neurons (Voelker, Rasmussen & Eliasmith 2020, ``keras_spiking.SpikingActivation``):
the ``sigma_delta_neuron`` op, its step, rate curve and backend forms."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import ops
from ..errors import PassError
from . import NUMPY, ChipDifference, LoihiForm, NengoNeuron, Neuron, NeuronError, register
from .if_ import IfNeuron, _joined, _per_neuron
from .if_ import loihi_form as if_loihi_form
from .lif import soft_lif_rate

BASES = ("relu", "lif")


@ops.register
@dataclass(frozen=True)
class SigmaDeltaNeuron(ops.Op):
    """Sigma-delta neurons: a quantizer with temporally diffused error over a base activation
    ``f`` with a rate curve, one per element, at each time step ``t``::

        v_t = v_{t-1} + dt * f(gain * x_t)           (v_0 = v_init)
        n_t = clip(floor(v_t), 0, 2^bits - 1)
        v_t = v_t - n_t
        y_t = amplitude * n_t

    ``f`` is ``base``: ``relu`` (``max(z, 0)``) or ``lif`` (the LIF rate curve in Hz of the
    current ``z`` above the threshold, ``nengo.LIFRate`` with bias 1: :func:`~.lif.soft_lif_rate`
    with ``sigma = 0``, ``tau_rc`` and ``tau_ref`` in seconds; ``relu`` ignores them). ``dt`` is
    the seconds per step, which turn the rate into events per step. This is
    ``keras_spiking.SpikingActivationCell.call_inference`` with ``amplitude = 1 / dt``, except
    that ``v_init`` is one deterministic value (0.5 centres the rounding; keras-spiking draws
    it from U[0, 1)) and that an event carries ``bits`` bits: at most ``2^bits - 1`` events per
    step (``bits = 1``: a spike or none). Below the cap the running error ``|sum_t (n_t - dt *
    f(gain * x_t))|`` stays below one event (it is ``|v_t - v_0|``). At the cap the excess
    stays in ``v`` and is sent in later steps, once the input falls below the cap: while the
    cap holds the running error grows with it, and the output's integral catches up with the
    input's afterwards (as an IF burst neuron's membrane keeps its remainder).

    The base activation applies to each step's input (negative input leaves ``v`` alone),
    unlike an integrate-and-fire membrane, which integrates the input and rectifies only its
    output: the two agree for inputs that are never negative."""

    NAME: ClassVar[str] = "sigma_delta_neuron"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = ops.SPIKING_STAGES

    base: str = "relu"
    gain: float = 1.0
    bits: int = 1
    amplitude: float = 1.0
    v_init: float = 0.5
    dt: float = 0.001
    tau_rc: float = 0.02
    tau_ref: float = 0.002

    def infer_type(self, inputs):
        ops.expect_positive(self, "gain", "amplitude", "dt", "tau_rc")
        if self.base not in BASES:
            raise ops.OpTypeError(f"sigma_delta_neuron base must be one of {', '.join(BASES)}, got {self.base!r}")
        if not (isinstance(self.bits, int) and self.bits >= 1):
            raise ops.OpTypeError(f"sigma_delta_neuron bits must be a positive integer (bits per event), got {self.bits!r}")
        if not 0 <= self.v_init < 1:
            raise ops.OpTypeError(f"sigma_delta_neuron v_init must be in [0, 1) (a fraction of one event), got {self.v_init!r}")
        if self.tau_ref < 0:
            raise ops.OpTypeError(f"sigma_delta_neuron tau_ref must not be negative, got {self.tau_ref}")
        return ops.spikes_like(inputs[0])


def base_rate(p, x, xp=NUMPY):
    """``f(gain * x)``, the base activation's rate in events per second (``p.base``)."""
    drive = p.gain * x
    if p.base == "relu":
        return xp.maximum(drive, 0.0)
    return soft_lif_rate(drive, p.tau_rc, p.tau_ref, 0.0, xp)


def max_events(p):
    """The most events per step: ``2^bits - 1`` (a tensor where nengo-dl's ``bits`` is one)."""
    return 2.0**p.bits - 1.0


@register
class SigmaDelta(Neuron):
    """Sigma-delta (:class:`SigmaDeltaNeuron`): graded events of up to ``bits`` bits that
    quantize a base activation per step, the error carried to the next step (hybrid SNNs)."""

    NAME = "sigma_delta"
    OP = SigmaDeltaNeuron
    # convert_to_spiking puts relu-based ones in place of ReLUs; lif-based ones come from
    # models trained with that curve
    LINEAR_RATES = True

    def initial_state(self, p, shape):
        return {"v": np.full(shape, float(p.v_init))}

    def step(self, p, state, x, xp=NUMPY):
        """``v += dt * f(gain * x)``; ``n = clip(floor(v), 0, 2^bits - 1)``; ``v -= n``.
        Returns ``({"v": v}, n)``, float counts."""
        v = state["v"] + p.dt * base_rate(p, x, xp)
        events = xp.clip(xp.floor(v), 0.0, max_events(p))
        return {"v": v - events}, events

    def rates(self, p, x):
        """Per step, ``amplitude * min(dt * f(gain * x), 2^bits - 1)``: the error carried in
        ``v`` stays below one event, so the mean count converges to the mean input."""
        return self.clipped_rates(p, np.asarray(x, dtype=np.float64))

    def clipped_rates(self, p, x, xp=NUMPY):
        """:meth:`rates` on arrays or tensors (nengo-dl's training step)."""
        return p.amplitude * xp.minimum(p.dt * base_rate(p, x, xp), max_events(p))

    def bits_per_event(self, p) -> float:
        return float(p.bits)

    def from_relu(self, *, max_rate, bits=1, v_init=0.5, dt=0.001, bursts=1, **_):
        """Base ``relu``, ``2^bits - 1`` events per step at ``a = 1 / max_rate``: gain
        ``max_rate * (2^bits - 1) / dt`` (in Hz, as keras-spiking's rates) and amplitude ``1 /
        (max_rate * (2^bits - 1))``, so the output saturates where an IF neuron's does and
        each step rounds ``a`` to ``2^bits - 1`` levels (as IF with ``bursts = 2^bits - 1``,
        whose membrane integrates the input instead of its ReLU). ``v`` starts at ``v_init``
        of an event. ``bursts`` is IF's option; sigma-delta events are sized by ``bits``."""
        if max_rate > 1:
            raise PassError(f"option max_rate={max_rate}: a sigma-delta neuron sends at most 2^bits - 1 events per step, "
                            "its saturation at max_rate=1")
        if bursts != 1:
            raise PassError(f"option bursts={bursts} is integrate-and-fire's; sigma-delta events are sized by bits "
                            f"(up to 2^bits - 1 per step): use bits=")
        if not (isinstance(bits, int) and bits >= 1):
            raise PassError(f"option bits={bits} must be a positive integer")
        levels = 2**bits - 1
        return SigmaDeltaNeuron(
            base="relu", gain=max_rate * levels / dt, bits=bits, amplitude=1.0 / (max_rate * levels), v_init=v_init, dt=dt,
        )

    def forms(self):
        return {"loihi": loihi_form, "nengo": nengo_form, "loihi_host": nengo_form, "nengo_dl": nengo_dl_form}


# ----------------------------------------------------------------------------- Loihi


def as_if_neuron(op: SigmaDeltaNeuron) -> IfNeuron:
    """The IF neurons that step as ``op`` (relu base, 1 bit) wherever the input is never
    negative: threshold 1 (one event), gain ``gain * dt``, reset by subtraction, the same start,
    the membrane floored at 0 (where the chip floors it)."""
    return IfNeuron(threshold=1.0, gain=op.gain * op.dt, reset="subtract", v_init=op.v_init, amplitude=op.amplitude, v_min=0.0)


def loihi_form(op: SigmaDeltaNeuron, bias: np.ndarray, dt: float) -> LoihiForm:
    """One-bit relu sigma-delta neurons as the IF neurons :func:`as_if_neuron` (IF's ``loihi``
    form, its differences from the chip included), plus one: the chip integrates negative
    input currents (floored at 0), which sigma-delta neurons ignore. Loihi 1 spikes carry 1
    bit and its compartments have no LIF-rate quantizer: ``bits > 1`` and the ``lif`` base are
    refused."""
    if op.bits > 1:
        raise NeuronError(f"sigma-delta events of {op.bits} bits: Loihi 1 spikes carry 1 bit (graded spikes are Loihi 2); "
                          "convert with convert_to_spiking{bits=1}")
    if op.base != "relu":
        raise NeuronError(f"sigma-delta neurons with base={op.base}: Loihi 1 compartments integrate their input, "
                          "only a relu base is the same")
    form = if_loihi_form(as_if_neuron(op), bias, dt)
    rectified = ChipDifference(
        note="on the chip: negative input currents lower the membrane (floored at 0), where a sigma-delta neuron ignores them",
        refusal="Loihi integrates the input current, negative parts included, where a sigma-delta neuron rectifies each step's input",
    )
    return LoihiForm(form.compartments, form.bias, _joined([d for d in (form.differs, rectified) if d is not None]))


# ----------------------------------------------------------------------------- Nengo


def nengo_form(op: SigmaDeltaNeuron, dt: float) -> NengoNeuron:
    """The Nengo neuron type stepping as ``op`` (:func:`nengo_types`; ensemble gain 1 and bias
    0: the type applies the op's gain), each step's output ``amplitude`` times its events.
    Not ``nengo.RegularSpiking(base)``: nengo 3.2's step is the same quantizer without a cap
    (``n = floor(v)`` however large), so it would differ wherever ``2^bits - 1`` is reached."""
    return NengoNeuron(nengo_types()[op.base](op), 1.0, 0.0)


@functools.cache
def nengo_types() -> dict:
    """The ``nengo.neurons.NeuronType`` of each base (defined on first use: imports nengo)."""
    from nengo.dists import Choice
    from nengo.neurons import NeuronType
    from nengo.params import IntParam, NumberParam

    neuron = SigmaDelta()

    class SigmaDeltaNeurons(NeuronType):
        """:class:`SigmaDeltaNeuron` for Nengo: its ``step``, on ``J`` (the ensemble's input)."""

        state = {"voltage": Choice([0.5])}
        spiking = True
        negative = False
        base = ""

        gain = NumberParam("gain", low=0, low_open=True)
        bits = IntParam("bits", low=1)
        amplitude = NumberParam("amplitude", low=0, low_open=True)
        dt = NumberParam("dt", low=0, low_open=True)
        tau_rc = NumberParam("tau_rc", low=0, low_open=True)
        tau_ref = NumberParam("tau_ref", low=0)

        def __init__(self, op):
            super().__init__(initial_state={"voltage": Choice([op.v_init])})
            self.gain, self.bits, self.amplitude, self.dt = op.gain, op.bits, op.amplitude, op.dt
            self.tau_rc, self.tau_ref = op.tau_rc, op.tau_ref

        def rates(self, x, gain, bias):
            return neuron.rates(self, self.current(x, gain, bias))

        def step(self, dt, J, output, voltage):
            # the op's dt, not the simulator's (the builder checks that they agree)
            state, events = neuron.step(self, {"v": voltage}, J)
            voltage[...] = state["v"]
            output[...] = events * self.amplitude

    class SigmaDeltaRelu(SigmaDeltaNeurons):
        """Relu base."""

        base = "relu"

    class SigmaDeltaLif(SigmaDeltaNeurons):
        """LIF-rate base."""

        base = "lif"

    return {"relu": SigmaDeltaRelu, "lif": SigmaDeltaLif}


@functools.cache
def nengo_dl_form() -> None:
    """Register the TensorFlow builders of :func:`nengo_types` with nengo-dl (imports it): the
    same :meth:`SigmaDelta.step` on tensors, parameters per neuron where merged populations
    differ. (nengo-dl's own ``RegularSpiking`` builder has no cap either.)"""
    from nengo_dl.neuron_builders import SimNeuronsBuilder, TFNeuronBuilder

    from . import tensorflow_math

    xp, neuron = tensorflow_math(), SigmaDelta()

    class SigmaDeltaBuilder(TFNeuronBuilder):
        spiking = True

        def build_pre(self, signals, config):
            super().build_pre(signals, config)
            names = ("gain", "bits", "amplitude", "dt", "tau_rc", "tau_ref")
            params = {name: _per_neuron(self.ops, name, signals.dtype) for name in names}
            self.params = type("SigmaDeltaParams", (), {**params, "base": self.ops[0].neurons.base})

        def step(self, J, dt, voltage):
            state, events = neuron.step(self.params, {"v": voltage}, J, xp)
            return events * self.params.amplitude, state["v"]

        def training_step(self, J, dt, **state):
            """The rate curve, for training through nengo-dl."""
            return neuron.clipped_rates(self.params, J, xp)

    for neuron_type in nengo_types().values():
        SimNeuronsBuilder.TF_NEURON_IMPL[neuron_type] = SigmaDeltaBuilder
