"""Nengo backend: a spiking graph as a ``nengo.Network`` that runs in ``nengo.Simulator``
and, batched, in ``nengo_dl.Simulator``, reproducing :mod:`snnc.compiler.simulate`.

Lowering is a registry from op type to a small build function (:mod:`.builder`); neuron
populations are ensembles of each neuron type's ``nengo`` form (:mod:`snnc.compiler.neurons`:
snnc's integrate-and-fire neurons with a TensorFlow builder for nengo-dl, or ``nengo.LIF``);
the max-pool gate is a ``nengo.Process`` (:mod:`.gate`). Every connection
has ``synapse=None``: spikes reach the next layer in the same step, as in the interpreter;
only a ``delay`` (a recurrence) goes through a filter, ``z^-L``, that gives its input ``L``
steps later (one input step: ``T`` steps for sequence inputs, else 1).

Nengo, nengo-dl and TensorFlow are imported when a network is built or run, not when this
package is imported.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing import TYPE_CHECKING

from .model import NengoModel

if TYPE_CHECKING:
    from .run import Nengo

__all__ = ["NengoModel", "build", "simulate"]


def build(graph, dt: float | None = None) -> Nengo:
    """Build ``graph`` as a ``nengo.Network`` (``build(graph).model``, a :class:`NengoModel`);
    ``build(graph).run(inputs, timesteps, simulator=..., batch_size=..., progress=...)`` runs
    it as :func:`simulate` does (the backend interface of :mod:`snnc.compiler.backends`).

    ``dt`` is the simulator step in seconds; it matters only for LIF neurons, which step
    with it, and defaults to their ``dt`` (0.001 s for graphs without LIF neurons). An op
    without a lowering raises :class:`~snnc.compiler.errors.BuildError` naming the node.
    """
    from .builder import build_model
    from .run import Nengo

    return Nengo(build_model(graph, dt))


def simulate(
    graph,
    inputs,
    timesteps: Sequence[int],
    simulator: str = "nengo",
    batch_size: int = 50,
    progress: bool | None = None,
    dt: float | None = None,
):
    """``build(graph, dt).run(...)``: run ``graph`` in Nengo for ``max(timesteps)`` steps, with
    the meaning of :func:`snnc.compiler.simulate.simulate`: ``inputs`` in the IR layout (one
    array or a dict by input name, batched ``(N, *shape)``), presented unchanged at every
    step; returns a :class:`~snnc.compiler.simulate.SimulationResult` with each output after
    each requested T (a readout is the mean of its input over steps ``1..T``) and the spike
    statistics of each neuron population. Sequence inputs (``(N, steps, *shape)``): each T is
    a run of ``T * steps`` steps, each input step held ``T`` steps, the outputs read at the
    end of each input step's window (a readout: the mean over the window), the statistics of
    the longest run.

    ``simulator="nengo"`` runs ``nengo.Simulator`` one example at a time (built once, reset
    between examples); ``"nengo-dl"`` runs ``nengo_dl.Simulator`` in float64 on minibatches
    of ``batch_size`` examples. ``progress`` shows a bar (``None``: when stderr is a
    terminal). Bad arguments are refused before anything is built.
    """
    from .run import check_arguments

    check_arguments(graph, inputs, timesteps, simulator)
    return build(graph, dt).run(inputs, timesteps, simulator=simulator, batch_size=batch_size, progress=progress)
