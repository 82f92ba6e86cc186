"""nengo-dl support: TensorFlow builders for the IF neuron types and the settings under
which nengo-dl reproduces the spiking interpreter. Importing this module registers the
builders (nengo-dl would otherwise step these neurons in Python, one example at a time).

The max-pool gate (:class:`~.gate.MaxGate`) has no TensorFlow builder: nengo-dl runs its
NumPy step once per example of the minibatch, with the state kept per example, inside the
TensorFlow graph. It gives the same results, more slowly (LeNet, 200 images at T=64 on two
CPU cores: 13.7 s with two gates, 8.3 s with average pooling instead)."""

from __future__ import annotations

import nengo_dl
import numpy as np
import tensorflow as tf
from nengo_dl.neuron_builders import SimNeuronsBuilder, TFNeuronBuilder

from .model import NengoModel
from .neurons import IFSubtract, IFZero


def _per_neuron(ops, attr: str, dtype) -> tf.Tensor:
    """A neuron parameter across a merged group of ops: a scalar when all are equal, else
    one value per neuron ``(1, n)``. (nengo-dl's ``op_constant`` merges values that are only
    ``allclose``; the spikes must not depend on that.)"""
    values = [getattr(op.neurons, attr) for op in ops]
    if all(v == values[0] for v in values):
        return tf.constant(values[0], dtype=dtype)
    per_neuron = np.concatenate([np.full(op.J.shape[0], v) for op, v in zip(ops, values)])
    return tf.constant(per_neuron[None, :], dtype=dtype)


class IFBuilder(TFNeuronBuilder):
    """:class:`~.neurons.IFNeurons` in TensorFlow, step for step as the NumPy version::

        v += gain * J ;  s = v >= threshold ;  reset(v, s) ;  output = amplitude * s
    """

    spiking = True

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        self.threshold = _per_neuron(self.ops, "threshold", signals.dtype)
        self.neuron_gain = _per_neuron(self.ops, "gain", signals.dtype)
        self.spike_value = _per_neuron(self.ops, "amplitude", signals.dtype)

    def step(self, J, dt, voltage):
        voltage = voltage + self.neuron_gain * J
        spiked = voltage >= self.threshold
        spikes = tf.cast(spiked, voltage.dtype)
        return spikes * self.spike_value, self.reset(voltage, spiked, spikes)

    def reset(self, voltage, spiked, spikes):
        raise NotImplementedError

    def training_step(self, J, dt, **state):
        """The rate the neurons approach (for training through nengo-dl):
        ``amplitude * clip(gain * J / threshold, 0, 1)``."""
        return self.spike_value * tf.clip_by_value(self.neuron_gain * J / self.threshold, 0.0, 1.0)


class IFSubtractBuilder(IFBuilder):
    def reset(self, voltage, spiked, spikes):
        return voltage - spikes * self.threshold  # v - 0 where no spike: unchanged exactly


class IFZeroBuilder(IFBuilder):
    def reset(self, voltage, spiked, spikes):
        return tf.where(spiked, tf.zeros_like(voltage), voltage)


SimNeuronsBuilder.TF_NEURON_IMPL[IFSubtract] = IFSubtractBuilder
SimNeuronsBuilder.TF_NEURON_IMPL[IFZero] = IFZeroBuilder


def configure(model: NengoModel) -> None:
    """nengo-dl settings for ``model``: float64 like the interpreter (float32 rounding would
    move membranes across thresholds), inference only, and only the final spike counts
    kept (not their history)."""
    with model.network:
        nengo_dl.configure_settings(dtype="float64", inference_only=True, keep_history=True)
    for neurons in model.neurons.values():
        model.network.config[neurons.probe].keep_history = False
