"""Neuron types that step exactly as snnc's spiking ops.

``nengo.SpikingRectifiedLinear`` rectifies its input current and may emit several spikes in
one step, so it cannot reproduce :class:`~snnc.compiler.ops.IfNeuron`, whose membrane is
unbounded below and which fires at most once per step. :class:`IFSubtract` and
:class:`IFZero` are that neuron for Nengo. They work in snnc's units, not Nengo's: the
membrane integrates ``gain * J`` per step (not ``J * dt``) and a spike is worth
``amplitude`` (not ``amplitude / dt``), so the numbers equal the interpreter's for any ``dt``.

:class:`~snnc.compiler.ops.LifNeuron` steps exactly as ``nengo.LIF``; only its spike value
needs a conversion (:func:`lif_amplitude`).
"""

from __future__ import annotations

import nengo
import numpy as np
from nengo.dists import Choice
from nengo.neurons import NeuronType
from nengo.params import NumberParam


class IFNeurons(NeuronType):
    """Integrate-and-fire neurons, at most one spike per step::

        v += gain * J ;  s = v >= threshold ;  reset(v, s) ;  output = amplitude * s

    with ``v`` starting at ``v_init``; subclasses say how a spike resets the membrane.
    ``J`` is the ensemble's input current (use ensemble gain 1 and bias 0: the neuron
    applies its own ``gain``)."""

    state = {"voltage": Choice([0.0])}
    spiking = True
    negative = False

    threshold = NumberParam("threshold", low=0, low_open=True)
    gain = NumberParam("gain", low=0, low_open=True)
    amplitude = NumberParam("amplitude", low=0, low_open=True)

    def __init__(self, threshold=1.0, gain=1.0, v_init=0.0, amplitude=1.0):
        super().__init__(initial_state={"voltage": Choice([v_init])})
        self.threshold = threshold
        self.gain = gain
        self.amplitude = amplitude

    def rates(self, x, gain, bias):
        """Mean spikes per step for a constant current (``gain``, ``bias``: the ensemble's):
        ``amplitude * clip(self.gain * J / threshold, 0, 1)``."""
        j = self.current(x, gain, bias)
        return self.amplitude * np.clip(self.gain * j / self.threshold, 0.0, 1.0)

    def step(self, dt, J, output, voltage):
        voltage += self.gain * J
        spiked = voltage >= self.threshold
        self.reset(voltage, spiked)
        output[:] = spiked * self.amplitude

    def reset(self, voltage, spiked):
        raise NotImplementedError


class IFSubtract(IFNeurons):
    """Reset by subtraction: ``v -= threshold`` where a neuron spiked (Rueckauer et al. 2017)."""

    def reset(self, voltage, spiked):
        np.subtract(voltage, self.threshold, out=voltage, where=spiked)


class IFZero(IFNeurons):
    """Reset to zero: ``v = 0`` where a neuron spiked."""

    def reset(self, voltage, spiked):
        voltage[spiked] = 0.0


IF_RESETS = {"subtract": IFSubtract, "zero": IFZero}


def lif_amplitude(amplitude: float, dt: float) -> float:
    """The ``nengo.LIF`` amplitude whose spikes are worth ``amplitude``: Nengo outputs
    ``amplitude / dt`` per spike, so this is ``amplitude * dt``, nudged by an ulp where
    needed so that the division gives ``amplitude`` back exactly."""
    scaled = amplitude * dt
    for candidate in (scaled, np.nextafter(scaled, np.inf), np.nextafter(scaled, -np.inf)):
        if candidate / dt == amplitude:
            return float(candidate)
    return scaled


def if_neuron_type(op) -> IFNeurons:
    """The neuron type that steps as the ``if_neuron`` op ``op`` (give its ensemble gain 1
    and bias 0: the neuron applies the op's gain itself)."""
    return IF_RESETS[op.reset](op.threshold, op.gain, op.v_init, op.amplitude)


def lif_neuron_type(op, amplitude: float) -> nengo.LIF:
    """``nengo.LIF`` stepping as the ``lif_neuron`` op ``op`` (give its ensemble gain
    ``op.gain`` and bias ``op.bias``), membrane and refractory time starting at 0, each
    spike output as ``amplitude / dt``."""
    return nengo.LIF(
        tau_rc=op.tau_rc,
        tau_ref=op.tau_ref,
        min_voltage=0,
        amplitude=amplitude,
        initial_state={"voltage": Choice([0.0]), "refractory_time": Choice([0.0])},
    )
