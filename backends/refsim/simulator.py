"""Running refsim on a whole data set: :func:`build` checks a graph once (the backend
interface of :mod:`snnc.compiler.backends`), :meth:`Refsim.run` runs it a batch at a time on
either engine, in worker threads, and gathers a :class:`RefsimResult`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from snnc.compiler import ops
from snnc.compiler.errors import BuildError, DataError
from snnc.compiler.graph import Graph
from snnc.compiler.interpreter import bind_inputs, run_batch, sequence_steps
from snnc.compiler.progress import progress as progress_bar
from snnc.compiler.simulate import LayerActivity, SimulationResult, check_timesteps, expected_activation

from . import engine as specification
from .compartments import Overflow
from .plan import BatchResult, Plan, plan

RECORD = ("counts", "spikes")
ENGINES = ("auto", "compiled", "numpy")


class RefsimOverflowWarning(UserWarning):
    """A value wrapped around in the chip's fixed-width arithmetic during a simulation."""


@dataclass
class RefsimResult(SimulationResult):
    """What a refsim run gives, beyond :class:`~snnc.compiler.simulate.SimulationResult`'s
    ``outputs[T][name]`` and ``activity[node]`` (every neuron population, host and chip).
    Per chip population (``loihi_compartments`` node), flattened in the IR's order (CHW):

    - ``spike_counts[name]``: ``(N, n)`` int32, spikes over the longest run (``max(T)`` steps,
      ``max(T) * steps`` with sequence inputs);
    - ``spikes[name]``: ``(N, run steps, n)`` bool rasters of that run (``record="spikes"``;
      else empty);
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


def build(graph: Graph) -> "Refsim":
    """Check that refsim can run the Loihi ``graph`` and prepare it (:func:`.plan.plan`)."""
    return Refsim(plan(graph))


def simulate(graph: Graph, inputs, timesteps: Sequence[int], **options) -> RefsimResult:
    """``build(graph).run(inputs, timesteps, **options)``: see :meth:`Refsim.run`."""
    return build(graph).run(inputs, timesteps, **options)


@dataclass(frozen=True)
class Refsim:
    """refsim's built network (:mod:`snnc.compiler.backends`): a checked, prepared graph."""

    plan: Plan

    def run(
        self,
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
        """Run the Loihi graph on batched ``inputs`` (IR layout, one array or a dict by input
        name) for ``max(timesteps)`` steps, ``batch_size`` examples at a time (sequence inputs,
        ``(N, steps, *shape)``: one run of ``T * steps`` steps per T, as the interpreter does).

        An integer-stage graph (``format="int"`` Loihi ops) runs in integer mode, bit for bit
        NengoLoihi's emulator; a spiking-stage graph (``format="float"``) in the emulator's
        float mode. ``record="spikes"`` keeps every chip population's spike raster (``N * T *
        n`` bytes). With a ``reference`` (the float graph the network was converted from),
        each population's mean output is compared with the activations of the node of the
        same name. ``workers`` batches run at once in threads (NumPy releases the GIL in its
        loops; default: one per CPU core, BLAS then single-threaded in each); results do not
        depend on it. ``engine``: ``"compiled"`` runs integer mode on :mod:`.compiled`'s
        kernel (event-driven, machine code), ``"numpy"`` on the specification
        (:func:`.engine.simulate_batch`), ``"auto"`` the kernel wherever the graph fits it;
        the results are the same. ``progress`` shows a bar (``None``: when stderr is a
        terminal). Wrap-arounds in the fixed-width arithmetic are counted in the result and
        reported with a :class:`RefsimOverflowWarning`.
        """
        return _run(self.plan, inputs, timesteps, batch_size, record, progress, reference, workers, engine)


def _run(prepared: Plan, inputs, timesteps, batch_size, record, progress, reference, workers, engine) -> RefsimResult:
    if record not in RECORD:
        raise DataError(f"record must be one of {', '.join(RECORD)}, got {record!r}")
    if batch_size < 1:
        raise DataError(f"batch_size must be positive, got {batch_size}")
    if engine not in ENGINES:
        raise DataError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    ts = check_timesteps(timesteps)
    graph = prepared.graph
    run_batch_on = _batch_runner(prepared, engine)
    arrays = bind_inputs(graph, inputs)
    n = next(iter(arrays.values())).shape[0]
    if n == 0:
        raise DataError("no examples to simulate (the data is empty)")
    if not graph.sequence:
        return _run_all(prepared, run_batch_on, arrays, ts, ts[-1], batch_size, record, progress, reference, workers)
    # sequence inputs: each T is a run of T * steps steps, as in the spiking interpreter; the
    # result holds every T's outputs and the longest run's spikes and statistics
    steps = sequence_steps(graph, arrays)
    runs = [
        _run_all(prepared, run_batch_on, arrays, [t], t * steps, batch_size, record, progress, reference, workers)
        for t in ts
    ]
    return dataclasses.replace(runs[-1], outputs={t: r.outputs[t] for t, r in zip(ts, runs)})


def _run_all(
    prepared: Plan, run_batch_on, arrays, ts, steps, batch_size, record, progress, reference, workers
) -> RefsimResult:
    """Every batch of ``arrays`` for ``steps`` steps, the outputs at each of ``ts``."""
    graph = prepared.graph
    n = next(iter(arrays.values())).shape[0]
    starts = range(0, n, batch_size)
    populations = [node for node in graph.nodes if isinstance(node.op, ops.LoihiCompartments)]
    rasters = {}
    if record == "spikes":  # filled in place, batch by batch
        rasters = {node.name: np.zeros((n, steps, node.type.size), bool) for node in populations}

    def run(start: int):
        batch = {k: v[start : start + batch_size] for k, v in arrays.items()}
        expected = run_batch(reference, batch) if reference is not None else None
        views = {name: r[start : start + batch_size] for name, r in rasters.items()}
        return run_batch_on(batch, ts, record, views), expected

    parts: list[BatchResult] = []
    activity: dict[str, LayerActivity] = {}
    label = f"refsim {graph.name} ({steps} steps)"
    for part, expected in progress_bar(_in_threads(run, starts, workers), len(starts), label, progress):
        for name, count in {**part.host_counts, **part.counts}.items():
            node = graph.node(name)
            activity.setdefault(name, LayerActivity.of(node.op, node.type.size))
            activity[name].add_batch(count, steps, node.op.amplitude, expected_activation(graph, expected, name))
        parts.append(part)
    result = _gather(parts, ts, activity, rasters, prepared.mode)
    _warn_overflow(graph, result.overflow)
    return result


def _batch_runner(prepared: Plan, engine: str):
    """The function that runs one batch: the compiled kernel's or the specification's."""
    if engine != "numpy":
        from . import compiled  # numba, loaded when a graph first runs on the kernel

        prog = compiled.program(prepared)
        if isinstance(prog, compiled.Program):
            return lambda batch, ts, record, views: compiled.simulate_batch(prog, prepared, batch, ts, record, views)
        if engine == "compiled":
            raise BuildError(f"graph {prepared.graph.name} does not fit refsim's compiled engine: {prog}")
    return lambda batch, ts, record, views: specification.simulate_batch(prepared, batch, ts, record, views)


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
