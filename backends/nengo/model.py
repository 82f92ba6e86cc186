"""What :func:`snnc.backends.nengo.build` returns: the network and the handles to run it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class PresentedInput:
    """A Node's output function that presents one example; the ``nengo.Simulator`` runner
    sets it before each example (nengo-dl feeds the input node's data directly instead).

    A constant input presents :attr:`value` at every step. A sequence (:meth:`present` with
    ``hold``: ``(steps, size)``) holds each input step for ``hold`` simulation steps: step
    ``k = t/dt`` shows input step ``(k - 1) // hold`` (the last one after the sequence ends)."""

    def __init__(self, size: int, dt: float):
        self.dt = dt
        self.value = np.zeros(size)
        self.sequence: np.ndarray | None = None
        self.hold = 1

    def present(self, value: np.ndarray, hold: int | None = None) -> None:
        """Show ``value``: one example, or with ``hold`` a sequence of input steps."""
        if hold is None:
            self.value, self.sequence = value, None
        else:
            self.sequence, self.hold = value, hold

    def __call__(self, t):
        if self.sequence is None:
            return self.value
        k = int(round(t / self.dt))
        return self.sequence[min((k - 1) // self.hold, len(self.sequence) - 1)]


@dataclass(frozen=True)
class OutputProbe:
    """The probe behind a graph output: its value at every step, or, for a readout
    (``running_mean``), the readout's input, averaged over steps ``1..T`` after the run (over
    each input step's window, for sequence inputs). ``host``: the graph's nodes (sigmoid,
    tanh, softmax) applied after that, in order, to the averaged value. ``sequence``: the
    output's ``Output.sequence`` (every input step, or the last)."""

    probe: Any
    shape: tuple[int, ...]
    running_mean: bool
    host: tuple = ()
    sequence: bool = False


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
    ``dt`` is the simulator step in seconds (it matters only for LIF neurons); ``delay`` the
    simulation steps a ``delay`` op spans (one input step: ``T`` for sequence inputs, else 1)."""

    graph: Any
    network: Any
    dt: float
    delay: int = 1
    inputs: dict[str, Any] = field(default_factory=dict)
    presented: dict[str, PresentedInput] = field(default_factory=dict)
    #: whether each input is a sequence (its data ``(N, steps, *shape)``)
    sequence_inputs: dict[str, bool] = field(default_factory=dict)
    outputs: dict[str, OutputProbe] = field(default_factory=dict)
    neurons: dict[str, NeuronProbe] = field(default_factory=dict)
