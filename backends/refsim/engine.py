"""The NumPy engine: refsim's executable specification of one batch, step by step.

Per step ``t = 1..T``, the nodes run in graph order, as NengoLoihi's emulator orders a step
(``EmulatorInterface.step``: ``inject_current``, ``update_input``, then
``CompartmentState.update``; papers.md B3):

1. ``loihi_synapses``: ``q = W s(t - 1)``, the weighted sum of the spikes their input emitted
   at step ``t - 1`` (nothing at ``t = 1``; :mod:`.synapses`). This is the emulator's
   one-step latency for chip spikes (the previous update's ``spiked``) and host spikes alike
   (``SpikeInput`` spikes of host step ``t - 1`` reach the chip at step ``t``: its ``t >= 2``
   rule);
2. ``loihi_compartments``: the update of :mod:`.compartments` with ``q``, the sum of their
   synapses' currents; their spikes are worth ``amplitude`` to host layers in the same step;
3. host layers (the input layer's linear ops and neurons, the output dense and readout): the
   spiking interpreter's evaluators and steppers (:mod:`snnc.compiler.simulate`), float64;
   values that do not change over time are computed once (:func:`.plan.static_values`).

One run of ``max(T)`` steps gives the outputs at every requested T. Readable over fast: the
compiled engine (:mod:`.compiled`) is the optimisation, tested against this one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from snnc.compiler import ops
from snnc.compiler.simulate import STEPPERS, NeuronStepper, check_timesteps, evaluator

from .compartments import FloatCompartments, IntCompartments
from .plan import BatchResult, Plan, static_values


def simulate_batch(
    p: Plan, arrays: dict[str, np.ndarray], timesteps: Sequence[int], record: str = "counts", rasters=None
) -> BatchResult:
    """Run one batch (``arrays``: each input ``(B, *shape)``, IR layout) for ``max(timesteps)``
    steps. ``record="spikes"`` writes each chip population's spikes into ``rasters[name]``
    (``(B, T, n)`` bool, allocated here if not given)."""
    graph, ts = p.graph, check_timesteps(timesteps)
    steps = ts[-1]
    batch = next(iter(arrays.values())).shape[0]
    values = static_values(p, arrays)
    compartments, steppers = {}, {}
    for node in p.dynamic:
        if isinstance(node.op, ops.LoihiCompartments):
            if p.mode == "int":
                compartments[node.name] = IntCompartments(node, batch)
            else:
                compartments[node.name] = FloatCompartments(p.float_params[node.name], node.type.size, batch)
        elif isinstance(node.op, ops.STATEFUL_OPS) and not isinstance(node.op, ops.LoihiSynapses):
            steppers[node.name] = STEPPERS[type(node.op)](node, batch)
    counts = {name: np.zeros((batch, graph.node(name).type.size), np.int32) for name in compartments}
    if record != "spikes":
        rasters = {}
    elif rasters is None:
        rasters = {name: np.zeros((batch, steps, graph.node(name).type.size), bool) for name in compartments}
    spike_sources = {node.inputs[0] for node in p.dynamic if isinstance(node.op, ops.LoihiSynapses)}
    previous: dict[str, np.ndarray] = {}  # s(t - 1) of every population a synapse reads
    outputs = {}
    for t in range(1, steps + 1):
        for node in p.dynamic:
            name = node.name
            if isinstance(node.op, ops.LoihiSynapses):
                last = previous.get(node.inputs[0])
                values[name] = None if last is None else p.synapses[name].current(last)
            elif name in compartments:
                spikes = compartments[name].step(_input_current(values, node, batch))
                counts[name] += spikes
                if rasters:
                    rasters[name][:, t - 1] = spikes
                values[name] = spikes.reshape(batch, *node.type.shape) * float(node.op.amplitude)
            elif name in steppers:
                values[name] = steppers[name].step(t, [values[i] for i in node.inputs]).astype(np.float64)
            else:
                values[name] = evaluator(node)(node, [values[i] for i in node.inputs]).astype(np.float64)
        previous = {src: values[src] for src in spike_sources}
        if t in ts:
            outputs[t] = {n.name: values[n.name].astype(np.float32) for n in graph.outputs}
    return BatchResult(
        outputs,
        counts,
        rasters,
        {k: c.voltage for k, c in compartments.items()},
        {k: c.current for k, c in compartments.items()},
        {k: c.overflow for k, c in compartments.items()},
        {k: s.spike_count for k, s in steppers.items() if isinstance(s, NeuronStepper)},
    )


def _input_current(values: dict, node, batch: int) -> np.ndarray:
    """``q = sum_k q_k``: the sum of a population's synapse currents this step, ``(B, n)``
    (int64 in integer mode, float64 in float mode; zero before any spike arrived)."""
    currents = [values[src] for src in node.inputs if values[src] is not None]
    return sum(currents, np.zeros((batch, node.type.size), dtype=currents[0].dtype if currents else np.int64))
