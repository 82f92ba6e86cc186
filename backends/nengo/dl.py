"""nengo-dl support: the settings under which nengo-dl reproduces the spiking interpreter, and
the neuron types' TensorFlow builders (each neuron's ``nengo_dl`` form in
:mod:`snnc.compiler.neurons`; without one nengo-dl would step a neuron in Python, one example at
a time).

The max-pool gate (:class:`~.gate.MaxGate`) has no TensorFlow builder: nengo-dl runs its
NumPy step once per example of the minibatch, with the state kept per example, inside the
TensorFlow graph. It gives the same results, more slowly (LeNet, 200 images at T=64 on two
CPU cores: 13.7 s with two gates, 8.3 s with average pooling instead)."""

from __future__ import annotations

import nengo_dl

from snnc.compiler import neurons
from snnc.compiler.errors import BuildError

from .model import NengoModel


def configure(model: NengoModel) -> None:
    """nengo-dl settings for ``model``: float64 like the interpreter (float32 rounding would
    move membranes across thresholds), inference only, and only the final spike counts
    kept (not their history); registers the TensorFlow builders of its neuron types."""
    for name, population in model.neurons.items():
        try:
            neurons.form(population.op, "nengo_dl")()
        except neurons.NeuronError as e:
            raise BuildError(f"%{name}: {e}") from None
    with model.network:
        nengo_dl.configure_settings(dtype="float64", inference_only=True, keep_history=True)
    for population in model.neurons.values():
        model.network.config[population.probe].keep_history = False
