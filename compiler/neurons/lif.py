"""Leaky integrate-and-fire neurons: the ``lif_neuron`` op, its step, rate curve and backend forms."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import ops
from ..errors import PassError
from . import NUMPY, ChipDifference, LoihiForm, NengoNeuron, Neuron, register


@ops.register
@dataclass(frozen=True)
class LifNeuron(ops.Op):
    """Leaky integrate-and-fire neurons, exactly as ``nengo.LIF`` steps them (dt in seconds),
    with input current ``J = gain * u_t + bias``, where ``u_t = x_t`` (``tau_s = 0``: each
    presynaptic spike is a one-step current pulse) or, with a synapse of time constant
    ``tau_s > 0`` seconds, the input lowpass-filtered as a ``nengo.Lowpass(tau_s)`` synapse
    filters it (and Loihi's current decay ``decay_u``): ``u_t = a u_{t-1} + (1 - a) x_{t-1}``,
    ``a = exp(-dt / tau_s)``, ``u_1 = 0`` (Nengo updates a synapse after the step that reads
    it, hence one step of delay). A LIF neuron resets to zero, so the part of a pulse beyond
    the threshold is lost and a spiking input fires it below its mean current's rate; the
    synapse spreads each pulse over steps and gives most of that rate back::

        r  = r - dt ;  dt_eff = clip(dt - r, 0, dt)               (r: refractory time left)
        v  = v - (J - v) * expm1(-dt_eff / tau_rc)
        s  = v > 1 ;  t_s = dt + tau_rc * log1p(-(v - 1) / (J - 1))   where s
        v  = max(v, 0) ;  v = 0 where s ;  r = tau_ref + t_s where s
        y_t = amplitude * s

    The firing rate for constant J > 1 is ``1 / (tau_ref + tau_rc * log1p(1 / (J - 1)))`` Hz
    (Hunsberger & Eliasmith 2015); ``bias = 1`` puts the firing threshold at ``x = 0``."""

    NAME: ClassVar[str] = "lif_neuron"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = ops.SPIKING_STAGES

    tau_rc: float = 0.02
    tau_ref: float = 0.002
    dt: float = 0.001
    gain: float = 1.0
    bias: float = 1.0
    amplitude: float = 1.0
    tau_s: float = 0.0

    def infer_type(self, inputs):
        ops.expect_positive(self, "tau_rc", "dt", "gain", "amplitude")
        for key in ("tau_ref", "tau_s"):
            if getattr(self, key) < 0:
                raise ops.OpTypeError(f"lif_neuron {key} must not be negative, got {getattr(self, key)}")
        return ops.spikes_like(inputs[0])


def soft_lif_rate(x, tau_rc: float, tau_ref: float, sigma: float, xp=NUMPY):
    """THE LIF rate curve, in spikes per second, of a neuron whose input current is ``x``
    above its firing threshold (``x = J - 1``): ``1 / (tau_ref + tau_rc * log1p(1 / rho(x)))``,
    0 where ``rho(x) = 0``. ``sigma = 0``: ``rho(x) = max(x, 0)``, ``nengo.LIFRate``'s curve;
    ``sigma > 0``: the softplus ``rho(x) = sigma * log1p(exp(x / sigma))`` of soft-LIF
    (Hunsberger & Eliasmith 2015), smooth with a bounded derivative, approaching the hard curve
    as ``sigma -> 0``. Evaluated as nengo-dl's ``SoftLIFRate``: linear softplus above ``x /
    sigma = 30``, its asymptote ``log1p(1 / z) ~ -x / sigma - log(sigma)`` below ``-20``; every
    branch is finite everywhere, so TensorFlow's gradients through ``xp.where`` are too (the
    ``snnc.training.SoftLIF`` layer calls this with :func:`~snnc.compiler.neurons.tensorflow_math`)."""
    if sigma == 0:
        firing = x > 0
        safe = xp.where(firing, x, xp.zeros_like(x) + 1.0)
        return xp.where(firing, 1.0 / (tau_ref + tau_rc * xp.log1p(1.0 / safe)), xp.zeros_like(x))
    js = x / sigma
    z = sigma * xp.where(js > 30.0, js, xp.log1p(xp.exp(xp.minimum(js, 30.0))))
    safe = xp.where(js > -20.0, z, xp.zeros_like(z) + 1.0)
    q = xp.where(js > -20.0, xp.log1p(1.0 / safe), -js - math.log(sigma))
    return 1.0 / (tau_ref + tau_rc * q)


def lif_gain(rate_hz: float, tau_rc: float, tau_ref: float) -> float:
    """The input gain at which a LIF neuron with bias 1 fires at ``rate_hz`` for input 1:
    solves ``1 / (tau_ref + tau_rc * log1p(1 / (J - 1))) = rate_hz`` for ``J - 1``."""
    return 1.0 / math.expm1((1.0 / rate_hz - tau_ref) / tau_rc)


@register
class LIF(Neuron):
    """Leaky integrate-and-fire (:class:`LifNeuron`), as ``nengo.LIF``: rates bend towards
    ``1 / tau_ref``, so a ReLU network converted to it loses accuracy."""

    NAME = "lif"
    OP = LifNeuron

    def initial_state(self, p, shape):
        synapse = {"current": np.zeros(shape)} if p.tau_s > 0 else {}
        return {"v": np.zeros(shape), "refractory": np.zeros(shape), **synapse}

    def step(self, p, state, x, xp=NUMPY):
        """``nengo.LIF.step`` (the op's equations) with ``J = gain * u + bias``; returns
        ``({"v": v, "refractory": r[, "current": u_next]}, s)``. The spike time's ``log1p`` is
        evaluated everywhere and kept where ``s`` (elementwise: the same numbers as on the
        spiking neurons alone)."""
        v, ref = state["v"], state["refractory"]
        synapse = {}
        if p.tau_s > 0:
            u = state["current"]
            decay = math.exp(-p.dt / p.tau_s)
            synapse = {"current": decay * u + (1.0 - decay) * x}
            x = u
        j = p.gain * x + p.bias
        ref = ref - p.dt
        dt_eff = xp.clip(p.dt - ref, 0.0, p.dt)
        v = v - (j - v) * xp.expm1(-dt_eff / p.tau_rc)
        spiked = v > 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            t_spike = p.dt + p.tau_rc * xp.log1p(-(v - 1.0) / (j - 1.0))
        zero = xp.zeros_like(v)
        v = xp.where(spiked | (v < 0.0), zero, v)
        ref = xp.where(spiked, p.tau_ref + t_spike, ref)
        return {"v": v, "refractory": ref, **synapse}, spiked

    def rates(self, p, x):
        """``amplitude * dt / (tau_ref + tau_rc * log1p(1 / (J - 1)))`` per step where
        ``J = gain * x + bias > 1``, else 0 (:func:`soft_lif_rate` with ``sigma = 0``)."""
        j = p.gain * np.asarray(x, dtype=np.float64) + p.bias
        return p.amplitude * p.dt * soft_lif_rate(j - 1.0, p.tau_rc, p.tau_ref, 0.0)

    def from_relu(self, *, max_rate, tau_rc=0.02, tau_ref=0.002, dt=0.001, bursts=1, tau_s=0.0, **_):
        """Bias 1 (the threshold at ``a = 0``) and the gain at which ``a = 1`` fires
        ``max_rate`` spikes per step (:func:`lif_gain`), inputs through a synapse ``tau_s``.
        One spike per step at most: no bursts."""
        if bursts != 1:
            raise PassError(f"option bursts={bursts}: lif neurons fire at most once per step; burst spikes need neuron=if")
        rate_hz = max_rate / dt
        if tau_ref > 0 and rate_hz >= 1.0 / tau_ref:
            raise PassError(
                f"max_rate={max_rate} spikes per step is {rate_hz:g} Hz at dt={dt}, at or above a LIF "
                f"neuron's limit 1/tau_ref = {1 / tau_ref:g} Hz; use max_rate < {dt / tau_ref:g}"
            )
        gain = lif_gain(rate_hz, tau_rc, tau_ref)
        return LifNeuron(tau_rc=tau_rc, tau_ref=tau_ref, dt=dt, gain=gain, bias=1.0, amplitude=1.0 / max_rate, tau_s=tau_s)

    def forms(self):
        return {"loihi": loihi_form, "nengo": nengo_form, "loihi_host": loihi_host_form, "nengo_dl": nengo_dl_form}


def loihi_form(op: LifNeuron, bias: np.ndarray, dt: float) -> LoihiForm:
    """A ``lif`` chip population (NengoLoihi's ``configure_lif``) at the op's own ``dt``: ensemble
    gain ``gain * dt`` (the chip counts a spike as ``1/dt``), bias ``gain * b + bias``. The chip's
    refractory period is a whole number of steps, ``round(tau_ref / dt)``: where ``tau_ref`` is
    not a multiple of ``dt`` (e.g. a soft-LIF trained with another ``tau_ref``) that rounding
    is reported as ``differs``."""
    compartments = ops.LoihiCompartments(
        neuron="lif", gain=op.gain * op.dt, amplitude=op.amplitude, dt=op.dt, tau_rc=op.tau_rc, tau_ref=op.tau_ref,
        tau_s=op.tau_s,
    )
    steps = op.tau_ref / op.dt
    if math.isclose(steps, round(steps), rel_tol=1e-9, abs_tol=1e-9):
        return LoihiForm(compartments, op.gain * bias + op.bias, None)
    chip_steps = int(np.round(steps))  # as NengoLoihi rounds it (half to even)
    differs = ChipDifference(
        note=f"on the chip: a refractory period of {chip_steps} steps ({chip_steps * op.dt:g} s; tau_ref={op.tau_ref:g} s "
             f"is {steps:g} steps of dt={op.dt:g} s)",
        refusal=f"Loihi's refractory period is a whole number of steps (this layer: tau_ref={op.tau_ref:g} s, "
                f"{steps:g} steps of dt={op.dt:g} s); use a tau_ref that is a multiple of dt",
    )
    return LoihiForm(compartments, op.gain * bias + op.bias, differs)


def _nengo_lif(op: LifNeuron, amplitude: float) -> NengoNeuron:
    import nengo
    from nengo.dists import Choice

    neuron_type = nengo.LIF(
        tau_rc=op.tau_rc,
        tau_ref=op.tau_ref,
        min_voltage=0,
        amplitude=amplitude,
        initial_state={"voltage": Choice([0.0]), "refractory_time": Choice([0.0])},
    )
    synapse = nengo.Lowpass(op.tau_s) if op.tau_s > 0 else None
    return NengoNeuron(neuron_type, op.gain, op.bias, synapse)


def nengo_form(op: LifNeuron, dt: float) -> NengoNeuron:
    """``nengo.LIF`` (it steps as the op), ensemble gain ``gain`` and bias ``bias``, state
    starting at 0, each spike output as the op's ``amplitude`` (:func:`lif_amplitude`), the
    input through ``nengo.Lowpass(tau_s)`` where ``tau_s > 0``."""
    return _nengo_lif(op, lif_amplitude(op.amplitude, dt))


def loihi_host_form(op: LifNeuron, dt: float) -> NengoNeuron:
    """``nengo.LIF`` for a NengoLoihi host population: its ``amplitude`` is the op's, since
    NengoLoihi scales the chip weights by it (only which neurons spiked reaches the chip)."""
    return _nengo_lif(op, op.amplitude)


def nengo_dl_form() -> None:
    """nengo-dl steps ``nengo.LIF`` with its own TensorFlow builder: nothing to register."""


def lif_amplitude(amplitude: float, dt: float) -> float:
    """The ``nengo.LIF`` amplitude whose spikes are worth ``amplitude``: Nengo outputs
    ``amplitude / dt`` per spike, so this is ``amplitude * dt``, nudged by an ulp where
    needed so that the division gives ``amplitude`` back exactly."""
    scaled = amplitude * dt
    for candidate in (scaled, np.nextafter(scaled, np.inf), np.nextafter(scaled, -np.inf)):
        if candidate / dt == amplitude:
            return float(candidate)
    return scaled
