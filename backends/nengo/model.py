"""What :func:`snnc.backends.nengo.build` returns: the network and the handles to run it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class PresentedInput:
    """A Node's output function that presents one example, unchanged at every step; the
    ``nengo.Simulator`` runner sets :attr:`value` before each example (nengo-dl feeds the
    input node's data directly instead)."""

    def __init__(self, size: int):
        self.value = np.zeros(size)

    def __call__(self, t):
        return self.value


@dataclass(frozen=True)
class OutputProbe:
    """The probe behind a graph output: its value at every step, or, for a readout
    (``running_mean``), the readout's input, averaged over steps ``1..T`` after the run.
    ``host``: the graph's nodes (sigmoid, tanh, softmax) applied after that, in order, to
    the averaged value."""

    probe: Any
    shape: tuple[int, ...]
    running_mean: bool
    host: tuple = ()


@dataclass(frozen=True)
class NeuronProbe:
    """A neuron population and a probe of its accumulated output (the spike count times
    ``spike_value``)."""

    ensemble: Any
    probe: Any
    shape: tuple[int, ...]
    spike_value: float
    op: Any = None  # the population's neuron op


@dataclass
class NengoModel:
    """A spiking ``graph`` as a ``nengo.Network``: the input Nodes (by graph input name, each
    with its :class:`PresentedInput`), a probe per graph output and per neuron population.
    ``dt`` is the simulator step in seconds (it matters only for LIF neurons)."""

    graph: Any
    network: Any
    dt: float
    inputs: dict[str, Any] = field(default_factory=dict)
    presented: dict[str, PresentedInput] = field(default_factory=dict)
    outputs: dict[str, OutputProbe] = field(default_factory=dict)
    neurons: dict[str, NeuronProbe] = field(default_factory=dict)
