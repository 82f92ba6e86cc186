"""Loihi backend: a Loihi graph as a NengoLoihi network, run in NengoLoihi's emulator
(``target="sim"``) or, where Intel's NxSDK is installed, on the chip (``target="loihi"``).

:func:`build` takes a spiking-stage Loihi graph, whose chip populations hold NengoLoihi's
float parameters (``format="float"``), and NengoLoihi splits and discretizes them when its
simulator is built; :func:`discretized` returns the integers it chose, block by block.
The host input layer (linear ops and IF/LIF neurons on the graph input) runs off-chip in
``nengo.Simulator`` with the Nengo backend's neuron types; the output layer (``dense`` on the
last chip spikes, ``readout``) runs on the host too: snnc computes it from the probed chip
spikes after the run.

Timing (read from ``nengo_loihi/simulator.py`` and ``emulator/interface.py``, checked by the
tests). With steps numbered from 1:

- host step ``t``: the host input layer's neurons integrate the input and spike (the
  input and linear ops reach them in the same step, ``synapse=None``). NengoLoihi queues
  their spikes for step ``t`` (``HostSendNode``, ``_host2chip``);
- chip step ``t``: the emulator's ``inject_current`` delivers the host spikes of step
  ``t - 1`` (``SpikeInput.spike_idxs(t - 1)``, only for ``t >= 2``) and the chip spikes of
  step ``t - 1`` (axons read ``compartment.spiked`` from the previous update) to the input
  accumulators, then every compartment updates (papers.md B3; bias acts from step 1).

So every synapse, host to chip and chip to chip, delays spikes by one step, as
``loihi_synapses`` says: a host spike at step ``t`` changes the first chip population's
voltage at step ``t + 1``, and the ``k``-th chip population can first see input at step
``k + 1``. The host output layer reads each chip spike in the step it happens.

NengoLoihi and Nengo are imported when a network is built or run, not when this package is
imported. Building calls ``nengo_loihi.set_defaults()``, which changes Nengo's defaults
(ensemble rates and intercepts, initial voltages) for the rest of the process; every
ensemble snnc builds sets its gain, bias and initial state explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["build", "discretized", "run"]


def build(graph, *, block_shapes: bool = True):
    """Build a spiking-stage Loihi ``graph`` as a ``nengo.Network`` for NengoLoihi; returns a
    :class:`~.builder.BuiltLoihi`, whose ``run`` (the backend interface of
    :mod:`snnc.compiler.backends`) is :func:`run`.

    Each ``loihi_compartments`` node becomes an Ensemble (``nengo.SpikingRectifiedLinear`` or
    ``nengo.LIF`` with the node's amplitude; its gain and bias), split into core blocks by
    ``meta["cores"]["block_shape"]`` when ``block_shapes`` and the node has one; each
    ``loihi_synapses`` node a connection between neurons with ``synapse=None`` (``Dense`` or
    ``Convolution``: explicit pads must equal Nengo's ``"valid"`` or ``"same"``). Probes
    record each chip population's spikes and voltages and the host input layer's spikes.
    Anything the backend cannot build raises :class:`~snnc.compiler.errors.BuildError`
    naming the node.
    """
    from .builder import build_network

    return build_network(graph, block_shapes)


def run(
    built,
    inputs,
    timesteps: Sequence[int],
    *,
    target: str = "sim",
    reset: str | None = None,
    voltage_traces: bool = False,
    progress: bool | None = None,
):
    """``built.run(...)``: run ``built`` on each example of ``inputs`` (IR layout, batched ``(N, *shape)``; one
    array or a dict by input name), presented unchanged for ``max(timesteps)`` steps from
    the initial state; returns a :class:`~.runner.LoihiResult`: per chip population its spikes
    ``(N, T, n)`` and final integer voltages ``(N, n)``, the host input layer's spikes, the
    outputs after each requested T (computed on the host from the chip spikes) and the
    wall time.

    ``target``: ``"sim"`` (NengoLoihi's emulator) or ``"loihi"`` (the chip, with NxSDK).
    ``reset``: how each example starts from the initial state, ``"state"`` (reset the
    emulator in place; the default for ``"sim"``) or ``"rebuild"`` (a new simulator per
    example; the only way on the chip); see :mod:`.runner`. ``voltage_traces`` also returns
    the voltages at every step. ``progress`` shows a bar (``None``: when stderr is a
    terminal).
    """
    return built.run(inputs, timesteps, target=target, reset=reset, voltage_traces=voltage_traces, progress=progress)


def discretized(built, sim=None):
    """The integers NengoLoihi computed for each chip population, block by block (``vth``,
    ``bias`` mantissa/exponent, decays, refractory delay, ``vmin``/``vmax``, and per synapse
    node the integer weights and weight exponent), with each block's compartment indices:
    ``{population: [DiscretizedBlock, ...]}`` (see :mod:`.blocks`). ``sim``: a built
    ``nengo_loihi.Simulator`` of ``built``; without one, one is built and closed."""
    from .blocks import discretized as read_blocks

    return read_blocks(built, sim)
