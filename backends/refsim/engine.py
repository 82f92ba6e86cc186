"""The NumPy engine: refsim's executable specification of one batch, step by step.

Per step ``t = 1..T``, the nodes run in graph order, as NengoLoihi's emulator orders a step
(``EmulatorInterface.step``: ``inject_current``, ``update_input``, then
``CompartmentState.update``; papers.md B3):

1. ``loihi_synapses``: ``q = W s(t - 1)``, the weighted sum of the spikes their input emitted
   at step ``t - 1`` (nothing at ``t = 1``; :mod:`.synapses`). This is the emulator's
   one-step latency for chip spikes (the previous update's ``spiked``) and host spikes alike
   (``SpikeInput`` spikes of host step ``t - 1`` reach the chip at step ``t``: its ``t >= 2``
   rule). A recurrent synapse (``delay=1``) reads its ``delay`` node's value this step,
   ``s(t - L)``: its whole latency is the delay's ``L`` steps;
2. ``loihi_compartments``: the update of :mod:`.compartments` with ``q``, the sum of their
   synapses' currents; their spikes are worth ``amplitude`` to host layers in the same step;
3. host layers (the input layer's linear ops and neurons, the output dense and readout): the
   spiking interpreter's evaluators and steppers (:mod:`snnc.compiler.simulate`), float64;
   values that do not change over time are computed once (:func:`.plan.static_values`);
4. ``delay`` nodes: a delay line of ``L`` steps (:class:`~snnc.compiler.simulate.DelayLine`)
   gives at its place in graph order the value its input had ``L`` steps earlier, and takes
   this step's value once the step is done.

Time as in the spiking interpreter (:class:`~snnc.compiler.simulate.Schedule`): with constant
inputs one run of ``max(T)`` steps gives the outputs at every requested T, and ``L = 1``. A
sequence input holds each input step for ``T`` steps (a run of ``T * steps``, one T per
run), ``L = T``, readouts average over each input step's window and outputs are read at the
windows' ends. Readable over fast: the compiled engine (:mod:`.compiled`) is the
optimisation, tested against this one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from snnc.compiler import ops
from snnc.compiler.interpreter import sequence_steps
from snnc.compiler.simulate import (
    STEPPERS,
    DelayLine,
    NeuronStepper,
    Schedule,
    check_timesteps,
    evaluator,
    presented,
    window_outputs,
)

from .compartments import FloatCompartments, IntCompartments
from .plan import BatchResult, Plan, static_values


def simulate_batch(
    p: Plan, arrays: dict[str, np.ndarray], timesteps: Sequence[int], record: str = "counts", rasters=None
) -> BatchResult:
    """Run one batch (``arrays``: each input ``(B, *shape)``, a sequence ``(B, steps, *shape)``;
    IR layout) for :func:`schedule`'s steps. ``record="spikes"`` writes each chip population's
    spikes into ``rasters[name]`` (``(B, steps, n)`` bool, allocated here if not given)."""
    graph, ts = p.graph, check_timesteps(timesteps)
    timing = schedule(p, arrays, ts)
    batch = next(iter(arrays.values())).shape[0]
    values = static_values(p, arrays)
    compartments, steppers = {}, {}
    delays = {node.name: DelayLine(node, batch, timing.delay) for node in p.dynamic if isinstance(node.op, ops.Delay)}
    for node in p.dynamic:
        if isinstance(node.op, ops.LoihiCompartments):
            if p.mode == "int":
                compartments[node.name] = IntCompartments(node, batch)
            else:
                compartments[node.name] = FloatCompartments(p.float_params[node.name], node.type.size, batch)
        elif isinstance(node.op, ops.STATEFUL_OPS) and not isinstance(node.op, (ops.LoihiSynapses, ops.Delay)):
            steppers[node.name] = STEPPERS[type(node.op)](node, batch)
    counts = {name: np.zeros((batch, graph.node(name).type.size), np.int32) for name in compartments}
    if record != "spikes":
        rasters = {}
    elif rasters is None:
        rasters = {name: np.zeros((batch, timing.steps, graph.node(name).type.size), bool) for name in compartments}
    spike_sources = {
        node.inputs[0] for node in p.dynamic if isinstance(node.op, ops.LoihiSynapses) and not node.op.delay
    }
    previous: dict[str, np.ndarray] = {}  # s(t - 1) of every population a synapse reads
    outputs, windows = {}, []
    for t in range(1, timing.steps + 1):
        window, t_window = timing.window(t)
        if t_window == 1:
            values.update(presented(graph, arrays, window, np.float64))
        for node in p.dynamic:
            name = node.name
            if name in delays:
                values[name] = delays[name].read()
            elif isinstance(node.op, ops.LoihiSynapses):
                last = values[node.inputs[0]] if node.op.delay else previous.get(node.inputs[0])
                values[name] = None if last is None else p.synapses[name].current(last)
            elif name in compartments:
                spikes = compartments[name].step(_input_current(values, node, batch))
                counts[name] += spikes
                if rasters:
                    rasters[name][:, t - 1] = spikes
                values[name] = spikes.reshape(batch, *node.type.shape) * float(node.op.amplitude)
            elif name in steppers:
                values[name] = steppers[name].step(t_window, [values[i] for i in node.inputs]).astype(np.float64)
            else:
                values[name] = evaluator(node)(node, [values[i] for i in node.inputs]).astype(np.float64)
        for name, line in delays.items():
            line.write(values[graph.node(name).inputs[0]])
        previous = {src: values[src] for src in spike_sources}
        if not graph.sequence and t in ts:
            outputs[t] = {n.name: values[n.name].astype(np.float32) for n in graph.outputs}
        if graph.sequence and t_window == timing.hold:
            windows.append({n.name: values[n.name].astype(np.float32) for n in graph.outputs})
    if graph.sequence:
        outputs[ts[0]] = window_outputs(graph, windows)
    return BatchResult(
        outputs,
        counts,
        rasters,
        {k: c.voltage for k, c in compartments.items()},
        {k: c.current for k, c in compartments.items()},
        {k: c.overflow for k, c in compartments.items()},
        {k: s.spike_count for k, s in steppers.items() if isinstance(s, NeuronStepper)},
    )


def schedule(p: Plan, arrays: dict[str, np.ndarray], ts: list[int]) -> Schedule:
    """The run's steps, window and delay length: ``max(T)`` steps for constant inputs; for
    sequence inputs one ``T`` (:mod:`.simulator` runs each T on its own), ``T * steps``."""
    if p.graph.sequence and len(ts) != 1:
        raise ValueError(f"a sequence graph runs one T at a time, got {ts}")
    return Schedule.of(p.graph, ts[-1], sequence_steps(p.graph, arrays))


def _input_current(values: dict, node, batch: int) -> np.ndarray:
    """``q = sum_k q_k``: the sum of a population's synapse currents this step, ``(B, n)``
    (int64 in integer mode, float64 in float mode; zero before any spike arrived)."""
    currents = [values[src] for src in node.inputs if values[src] is not None]
    return sum(currents, np.zeros((batch, node.type.size), dtype=currents[0].dtype if currents else np.int64))
