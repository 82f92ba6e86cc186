"""The time-stepped engine: a Loihi graph for a batch of inputs, every step in the
emulator's phase order.

Per step ``t = 1..T`` the nodes run in graph order:

- ``loihi_synapses``: the current from the spikes their input emitted at step ``t - 1``
  (none at ``t = 1``). This is NengoLoihi's one-step latency, for chip spikes (the previous
  update's ``spiked``) and host spikes alike (``SpikeInput`` spikes of host step ``t - 1``
  reach the chip at step ``t``: the emulator's ``t >= 2`` rule);
- ``loihi_compartments``: the update of :mod:`.compartments` with the sum of their synapse
  currents; their spikes are worth ``amplitude`` to host layers in the same step;
- host layers (the input layer's linear ops and neurons, the output dense and readout): the
  spiking interpreter's evaluators and steppers (:mod:`snnc.compiler.simulate`) in float64;
  values that do not change over time are computed once per batch.

One run of ``max(T)`` steps gives the outputs at every requested T.

This is the NumPy engine: the readable definition, vectorized over compartments and
examples, with synaptic sums as BLAS products in float32 wherever that is exact
(:mod:`.synapses`). Integer graphs run by default on the compiled engine (:mod:`.compiled`),
event-driven machine code that gives the same results several times faster; ``simulate``
chooses (``engine``). Either runs batches in worker threads (one per core).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from snnc.compiler import ops
from snnc.compiler.errors import BuildError, DataError
from snnc.compiler.graph import Graph, Node
from snnc.compiler.interpreter import bind_inputs, run_batch
from snnc.compiler.progress import progress as progress_bar
from snnc.compiler.simulate import (
    STEPPERS,
    LayerActivity,
    NeuronStepper,
    SimulationResult,
    check_timesteps,
    evaluator,
    static_nodes,
)

from .compartments import FloatCompartments, IntCompartments, Overflow
from .synapses import ConvSynapses, DenseSynapses, float_synapses, int_synapses

RECORD = ("counts", "spikes")
ENGINES = ("auto", "compiled", "numpy")


class RefsimOverflowWarning(UserWarning):
    """A value wrapped around in the chip's fixed-width arithmetic during a simulation."""


@dataclass
class RefsimResult(SimulationResult):
    """What a refsim run gives, beyond :class:`~snnc.compiler.simulate.SimulationResult`'s
    ``outputs[T][name]`` and ``activity[node]`` (every neuron population, host and chip).
    Per chip population (``loihi_compartments`` node), flattened in the IR's order (CHW):

    - ``spike_counts[name]``: ``(N, n)`` int32, spikes over ``max(T)`` steps;
    - ``spikes[name]``: ``(N, max(T), n)`` bool rasters (``record="spikes"``; else empty);
    - ``voltages[name]``, ``currents[name]``: ``(N, n)`` state after the last step (int32 in
      integer mode, float32 in float mode);
    - ``overflow[name]``: wrap-arounds of ``q``, ``u``, ``u2`` and the voltage's int32 sum,
      counted over examples, steps and compartments (a warning names any that happened).
    """

    spike_counts: dict[str, np.ndarray]
    spikes: dict[str, np.ndarray]
    voltages: dict[str, np.ndarray]
    currents: dict[str, np.ndarray]
    overflow: dict[str, dict[str, int]]
    mode: str = "int"


# ----------------------------------------------------------------------------- plan


@dataclass
class Plan:
    """What a graph needs, batch-independent: its mode, the nodes that run each step, the
    prepared synapse weights and the float compartment parameters (float mode)."""

    graph: Graph
    mode: str
    static: set
    dynamic: list
    float_params: dict
    valued: set  # neuron populations whose spikes a host layer reads (as amplitude values)

    @cached_property
    def synapses(self) -> dict[str, DenseSynapses | ConvSynapses]:
        """The NumPy engine's synapse weights, prepared on first use (the compiled engine
        prepares its own)."""
        return {
            node.name: _synapses(self.graph, node, self.mode)
            for node in self.graph.nodes
            if isinstance(node.op, ops.LoihiSynapses)
        }


def plan(graph: Graph) -> Plan:
    """Check that refsim can run ``graph`` and prepare its weights."""
    chip_nodes = [n for n in graph.nodes if isinstance(n.op, ops.CHIP_OPS)]
    if not any(isinstance(n.op, ops.LoihiCompartments) for n in chip_nodes):
        raise BuildError(
            f"graph {graph.name} has no loihi_compartments; refsim runs Loihi graphs "
            "(lower_loihi, quantize_loihi); the spiking interpreter runs the others"
        )
    if graph.stage == ops.INTEGER:
        mode = "int"
    elif graph.stage == ops.SPIKING:
        mode = "float"
    else:
        raise BuildError(f"graph {graph.name} is a {graph.stage} graph; refsim runs spiking and integer Loihi graphs")
    static = static_nodes(graph)
    dynamic = [n for n in graph.nodes if not isinstance(n.op, ops.Input) and n.name not in static]
    float_params = {}
    for node in chip_nodes:
        if (mode == "int") != (node.op.format == "int"):
            raise BuildError(f"%{node.name}: a {graph.stage} graph with a format={node.op.format} Loihi op")
        if isinstance(node.op, ops.LoihiSynapses):
            if mode == "int":
                _check_blocks(node)
        elif mode == "float":
            float_params[node.name] = _float_compartment_params(graph, node)
    for node in dynamic:
        if not isinstance(node.op, (*ops.CHIP_OPS, *STEPPERS)):
            evaluator(node)  # an op the host cannot run fails here, before any work
    # spikes that only synapses read stay boolean; host layers read them worth the amplitude
    valued = {
        src
        for node in graph.nodes
        if not isinstance(node.op, ops.LoihiSynapses)
        for src in node.inputs
        if isinstance(graph.node(src).op, ops.NEURON_OPS)
    }
    return Plan(graph, mode, static, dynamic, float_params, valued)


def _check_blocks(node: Node) -> None:
    block = node.params["block"]
    if block.size and (block.min() < 0 or block.max() >= node.op.blocks):
        raise BuildError(f"%{node.name}: block indices must be in 0..{node.op.blocks - 1}")


def _synapses(graph: Graph, node: Node, mode: str) -> DenseSynapses | ConvSynapses:
    if mode == "int":
        return int_synapses(node)
    from snnc.compiler.loihi import chip

    return float_synapses(node, chip.synapse_weights(graph, node))


def _float_compartment_params(graph: Graph, node: Node):
    from snnc.compiler.loihi import chip

    from .compartments import FloatParams

    p = chip.compartment_params(graph, node)
    return FloatParams(
        vth=p.vth,
        bias=p.bias,
        decay_u=p.decay_u,
        decay_v=p.decay_v,
        scale_u=np.where(p.scale_u, p.decay_u, 1.0),
        scale_v=np.where(p.scale_v, p.decay_v, 1.0),
        vmin=p.vmin,
        vmax=p.vmax,
        refract_delay=p.refract_delay,
    )


# ----------------------------------------------------------------------------- one batch


@dataclass
class BatchResult:
    outputs: dict[int, dict[str, np.ndarray]]
    counts: dict[str, np.ndarray]
    rasters: dict[str, np.ndarray]
    voltages: dict[str, np.ndarray]
    currents: dict[str, np.ndarray]
    overflow: dict[str, Overflow]
    host_counts: dict[str, np.ndarray]


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
    previous: dict[str, np.ndarray] = {}
    outputs, wanted = {}, set(ts)
    for t in range(1, steps + 1):
        for node in p.dynamic:
            name = node.name
            if isinstance(node.op, ops.LoihiSynapses):
                last = previous.get(node.inputs[0])
                values[name] = None if last is None else p.synapses[name].current(last)
            elif name in compartments:
                spikes = compartments[name].step(_input_current(values, node, batch, p.mode))
                counts[name] += spikes
                if rasters:
                    rasters[name][:, t - 1] = spikes
                shaped = spikes.reshape(batch, *node.type.shape)
                values[name] = shaped * float(node.op.amplitude) if name in p.valued else shaped
            else:
                xs = [values[i] for i in node.inputs]
                stepper = steppers.get(name)
                if isinstance(stepper, NeuronStepper) and name not in p.valued:
                    values[name] = stepper.fire(t, xs)  # only synapses read it: whether it spiked
                    continue
                y = stepper.step(t, xs) if stepper else evaluator(node)(node, xs)
                values[name] = y.astype(np.float64, copy=False)
        previous = {src: values[src] for src in spike_sources}
        if t in wanted:
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


def static_values(p: Plan, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs (float64) and the values computed from them that do not change over time."""
    values = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    for node in p.graph.nodes:
        if node.name in p.static and not isinstance(node.op, ops.Input):
            values[node.name] = evaluator(node)(node, [values[i] for i in node.inputs])
    return values


def _input_current(values: dict, node: Node, batch: int, mode: str) -> np.ndarray:
    """The sum of a population's synapse currents this step, ``(B, n)``. Integer mode: the
    float products are exact integers, summed as int32 when each is a float32 (below
    ``2**24``, so fewer than 128 of them cannot leave int32), else as int64; float mode:
    float64."""
    currents = [values[src] for src in node.inputs if values[src] is not None]
    if mode == "float":
        return sum(currents, np.zeros((batch, node.type.size)))
    narrow = len(currents) < 128 and all(c.dtype == np.float32 for c in currents)
    total = np.zeros((batch, node.type.size), dtype=np.int32 if narrow else np.int64)
    for current in currents:
        total += current.astype(total.dtype)
    return total


# ----------------------------------------------------------------------------- the whole set


def simulate(
    graph: Graph,
    inputs,
    timesteps: Sequence[int],
    *,
    batch_size: int = 64,
    record: str = "counts",
    progress: bool | None = False,
    reference: Graph | None = None,
    workers: int | None = None,
    engine: str = "auto",
) -> RefsimResult:
    """Run a Loihi ``graph`` on batched ``inputs`` (IR layout, one array or a dict by input
    name) for ``max(timesteps)`` steps, ``batch_size`` examples at a time.

    An integer-stage graph (``format="int"`` Loihi ops) runs in integer mode, bit for bit
    NengoLoihi's emulator; a spiking-stage graph (``format="float"``) in the emulator's float
    mode. ``record="spikes"`` keeps every chip population's spike raster (``N * T * n``
    bytes). With a ``reference`` (the float graph the network was converted from), each
    population's mean output is compared with the activations of the node of the same name.
    ``workers`` batches run at once in threads (NumPy releases the GIL in its loops; default:
    one per CPU core, BLAS then single-threaded in each); results do not depend on it.
    ``engine``: ``"compiled"`` runs integer mode on :mod:`.compiled`'s kernel (event-driven,
    machine code), ``"numpy"`` on :func:`simulate_batch`, ``"auto"`` the kernel wherever the
    graph fits it; the results are the same. ``progress`` shows a bar (``None``: when stderr is a terminal). Wrap-arounds in the
    fixed-width arithmetic are counted in the result and reported with a
    :class:`RefsimOverflowWarning`.
    """
    if record not in RECORD:
        raise DataError(f"record must be one of {', '.join(RECORD)}, got {record!r}")
    if batch_size < 1:
        raise DataError(f"batch_size must be positive, got {batch_size}")
    if engine not in ENGINES:
        raise DataError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    ts = check_timesteps(timesteps)
    prepared = plan(graph)
    run_batch_on = _batch_runner(prepared, engine)
    arrays = bind_inputs(graph, inputs)
    n = next(iter(arrays.values())).shape[0]
    if n == 0:
        raise DataError("no examples to simulate (the data is empty)")
    starts = range(0, n, batch_size)
    populations = [node for node in graph.nodes if isinstance(node.op, ops.LoihiCompartments)]
    rasters = {}
    if record == "spikes":  # filled in place, batch by batch
        rasters = {node.name: np.zeros((n, ts[-1], node.type.size), bool) for node in populations}

    def run(start: int):
        batch = {k: v[start : start + batch_size] for k, v in arrays.items()}
        expected = run_batch(reference, batch) if reference is not None else None
        views = {name: r[start : start + batch_size] for name, r in rasters.items()}
        return run_batch_on(batch, ts, record, views), expected

    parts: list[BatchResult] = []
    activity: dict[str, LayerActivity] = {}
    label = f"refsim {graph.name} ({ts[-1]} steps)"
    for part, expected in progress_bar(_in_threads(run, starts, workers), len(starts), label, progress):
        for name, count in {**part.host_counts, **part.counts}.items():
            node = graph.node(name)
            activity.setdefault(name, LayerActivity(node.type.size))
            activity[name].add_batch(count, ts[-1], node.op.amplitude, (expected or {}).get(name))
        parts.append(part)
    result = _gather(parts, ts, activity, rasters, prepared.mode)
    _warn_overflow(graph, result.overflow)
    return result


def _batch_runner(prepared: Plan, engine: str):
    """The function that runs one batch: the compiled kernel's or :func:`simulate_batch`."""
    if engine != "numpy":
        from . import compiled

        prog = compiled.program(prepared)
        if isinstance(prog, compiled.Program):
            return lambda batch, ts, record, views: compiled.simulate_batch(prog, prepared, batch, ts, record, views)
        if engine == "compiled":
            raise BuildError(f"graph {prepared.graph.name} does not fit refsim's compiled engine: {prog}")
    return lambda batch, ts, record, views: simulate_batch(prepared, batch, ts, record, views)


def _in_threads(fn, items: Sequence, workers: int | None) -> Iterator:
    """``map(fn, items)`` in order, ``workers`` at a time in threads when there is more than
    one item (BLAS limited to one thread each meanwhile, so the cores are not oversubscribed)."""
    workers = min(workers or os.cpu_count() or 1, len(items))
    if workers <= 1:
        yield from map(fn, items)
        return
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        threadpool_limits = contextlib.nullcontext
    with threadpool_limits(1), ThreadPoolExecutor(workers) as pool:
        yield from pool.map(fn, items)


def _gather(parts: list[BatchResult], ts: list[int], activity, rasters, mode: str) -> RefsimResult:
    def cat(field: str) -> dict[str, np.ndarray]:
        first = getattr(parts[0], field)
        return {k: np.concatenate([getattr(p, field)[k] for p in parts]) for k in first}

    outputs = {t: {k: np.concatenate([p.outputs[t][k] for p in parts]) for k in parts[0].outputs[t]} for t in ts}
    overflow = {}
    for name in parts[0].overflow:
        total = Overflow()
        for p in parts:
            total.add(p.overflow[name])
        overflow[name] = total.counts
    return RefsimResult(
        outputs, activity, cat("counts"), rasters, cat("voltages"), cat("currents"), overflow, mode
    )


def _warn_overflow(graph: Graph, overflow: dict[str, dict[str, int]]) -> None:
    lines = [
        f"%{name}: " + ", ".join(f"{kind} {count}x" for kind, count in counts.items() if count)
        for name, counts in overflow.items()
        if any(counts.values())
    ]
    if lines:
        warnings.warn(
            f"refsim {graph.name}: values wrapped around in the chip's fixed-width arithmetic "
            f"(as on Loihi): {'; '.join(lines)}",
            RefsimOverflowWarning,
            stacklevel=3,
        )
