"""Running a built network in ``nengo.Simulator`` (one example at a time) or
``nengo_dl.Simulator`` (a minibatch at a time), with the spiking interpreter's results."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from snnc.compiler.errors import DataError, SnncError
from snnc.compiler.graph import Graph
from snnc.compiler.interpreter import EVALUATORS, bind_inputs, sequence_steps
from snnc.compiler.progress import progress as progress_bar
from snnc.compiler.simulate import LayerActivity, Schedule, SimulationResult, check_timesteps

from .model import NengoModel, OutputProbe

SIMULATORS = ("nengo", "nengo-dl")

#: per batch of examples: probe data of each output ``(B, steps, n)`` and the spike count of
#: each neuron population ``(B, n)``
Batch = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Nengo:
    """The Nengo backends' built network (:mod:`snnc.compiler.backends`): a spiking graph as a
    ``nengo.Network`` (:attr:`model`), run in ``nengo.Simulator`` or ``nengo_dl.Simulator``."""

    model: NengoModel

    def run(self, inputs, timesteps: Sequence[int], *, simulator: str = "nengo", batch_size: int = 50,
            progress: bool | None = None) -> SimulationResult:
        """:func:`run_model`: see :func:`snnc.backends.nengo.simulate`."""
        return run_model(self.model, inputs, timesteps, simulator, batch_size, progress)


def check_arguments(graph: Graph, inputs, timesteps, simulator: str) -> tuple[list[int], dict[str, np.ndarray]]:
    if simulator not in SIMULATORS:
        raise SnncError(f"simulator must be one of {', '.join(SIMULATORS)}, got {simulator!r}")
    ts = check_timesteps(timesteps)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in bind_inputs(graph, inputs).items()}
    if next(iter(arrays.values())).shape[0] == 0:
        raise DataError("no examples to simulate (the data is empty)")
    return ts, arrays


def run_model(
    model: NengoModel,
    inputs,
    timesteps: Sequence[int],
    simulator: str = "nengo",
    batch_size: int = 50,
    progress: bool | None = None,
) -> SimulationResult:
    """Run a built network (:func:`snnc.backends.nengo.simulate` says how)."""
    ts, arrays = check_arguments(model.graph, inputs, timesteps, simulator)
    graph = model.graph
    if not graph.sequence:
        return _run_schedule(model, arrays, Schedule.of(graph, ts[-1], 1), ts, simulator, batch_size, progress)
    # sequence inputs: each T is its own run, as in the interpreter, and a delay spans T
    # steps: its network is built for that T
    from .builder import build_model

    input_steps = sequence_steps(graph, arrays)
    results = {}
    for t in ts:
        schedule = Schedule.of(graph, t, input_steps)
        if graph.delays and model.delay != schedule.delay:
            model = build_model(graph, model.dt, schedule.delay)
        result = _run_schedule(model, arrays, schedule, [t], simulator, batch_size, progress)
        results[t] = result.outputs[t]
    return SimulationResult(results, result.activity)


def _run_schedule(model: NengoModel, arrays, schedule: Schedule, ts: list[int], simulator, batch_size, progress):
    """Run every example for ``schedule.steps`` steps; the outputs at each of ``ts``."""
    n = next(iter(arrays.values())).shape[0]
    # The spike counters lag one step (Nengo updates a probe's synapse after sampling it),
    # so the runners step once more than the schedule: the count sampled then covers all steps.
    steps = schedule.steps + 1
    if simulator == "nengo":
        batches = _run_nengo(model, arrays, steps, schedule, progress)
    else:
        batches = _run_nengo_dl(model, arrays, steps, schedule, min(batch_size, n), progress)
    chunks: dict[int, dict[str, list]] = {t: {name: [] for name in model.outputs} for t in ts}
    activity = {name: LayerActivity.of(p.op, int(np.prod(p.shape))) for name, p in model.neurons.items()}
    for outputs, counts in batches:
        if model.graph.sequence:
            read = {ts[0]: window_outputs(model, outputs, schedule)}
        else:
            read = outputs_at(model, outputs, ts)
        for t, values in read.items():
            for name, value in values.items():
                chunks[t][name].append(value)
        for name, count in counts.items():
            activity[name].add_batch(count, schedule.steps)
    results = {t: {k: np.concatenate(v) for k, v in by_name.items()} for t, by_name in chunks.items()}
    return SimulationResult(results, activity)


def outputs_at(model: NengoModel, probed: dict[str, np.ndarray], ts: list[int]) -> dict[int, dict]:
    """Each output after ``T`` steps from its probe data ``(B, steps, n)``: the value at step
    ``T``, or for a readout the mean of its input over steps ``1..T`` (a running sum, as the
    interpreter accumulates it, divided by ``T``), then the output's host functions."""
    series = {}
    for name, out in model.outputs.items():
        data = probed[name]
        series[name] = np.cumsum(data, axis=1) if out.running_mean else data
    result = {}
    for t in ts:
        result[t] = {}
        for name, out in model.outputs.items():
            value = series[name][:, t - 1] / t if out.running_mean else series[name][:, t - 1]
            result[t][name] = _decoded(out, value.reshape((-1, *out.shape)))
    return result


def _decoded(out: OutputProbe, value: np.ndarray) -> np.ndarray:
    """The output's host functions (sigmoid, tanh, softmax) on its value ``(B, *shape)``."""
    for node in out.host:
        value = EVALUATORS[type(node.op)](node, [value])
    return value.astype(np.float32)


def window_outputs(model: NengoModel, probed: dict[str, np.ndarray], schedule: Schedule) -> dict[str, np.ndarray]:
    """Each output of a sequence run from its probe data ``(B, steps, n)``, read at the end of
    each input step's window of ``hold`` steps: the value at the window's last step, or for a
    readout the mean of its input over the window. ``(B, input steps, *shape)`` for a sequence
    output, else the last window's value."""
    result = {}
    for name, out in model.outputs.items():
        data = probed[name][:, : schedule.steps]
        windows = data.reshape(len(data), schedule.steps // schedule.hold, schedule.hold, -1)
        value = np.cumsum(windows, axis=2)[:, :, -1] / schedule.hold if out.running_mean else windows[:, :, -1]
        per_window = [_decoded(out, value[:, k].reshape((-1, *out.shape))) for k in range(value.shape[1])]
        result[name] = np.stack(per_window, axis=1) if out.sequence else per_window[-1]
    return result


def _spike_counts(model: NengoModel, accumulated: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Spike counts ``(B, *shape)`` from the counting probes' last values."""
    return {
        name: np.rint(accumulated[name] / p.spike_value).astype(np.int64).reshape((-1, *p.shape))
        for name, p in model.neurons.items()
    }


def _presented(array: np.ndarray, schedule: Schedule, sequence: bool) -> tuple[np.ndarray, int | None]:
    """One example's data for a :class:`~.model.PresentedInput`: flattened per input step."""
    return (array.reshape(len(array), -1), schedule.hold) if sequence else (array.ravel(), None)


def _run_nengo(
    model: NengoModel, arrays: dict[str, np.ndarray], steps: int, schedule: Schedule, progress
) -> Iterator[Batch]:
    """One ``nengo.Simulator``, reset before each example (neuron, gate, delay and probe
    state)."""
    import nengo

    n = next(iter(arrays.values())).shape[0]
    with nengo.Simulator(model.network, dt=model.dt, progress_bar=False) as sim:
        for i in progress_bar(range(n), n, f"nengo ({steps} steps)", progress):
            for name, presented in model.presented.items():
                presented.present(*_presented(arrays[name][i], schedule, model.sequence_inputs[name]))
            sim.reset()
            sim.run_steps(steps)
            outputs = {name: sim.data[out.probe][None] for name, out in model.outputs.items()}
            counts = {name: sim.data[p.probe][-1:] for name, p in model.neurons.items()}
            yield outputs, _spike_counts(model, counts)


def _run_nengo_dl(
    model: NengoModel, arrays: dict[str, np.ndarray], steps: int, schedule: Schedule, batch: int, progress
) -> Iterator[Batch]:
    """One ``nengo_dl.Simulator`` with ``minibatch_size=batch``; each minibatch starts from
    the initial state. The last minibatch is padded with zeros to the full size."""
    import nengo_dl

    from .dl import configure

    configure(model)
    n = next(iter(arrays.values())).shape[0]
    starts = range(0, n, batch)
    with nengo_dl.Simulator(model.network, dt=model.dt, minibatch_size=batch, progress_bar=False) as sim:
        for start in progress_bar(starts, len(starts), f"nengo-dl ({steps} steps)", progress):
            size = min(batch, n - start)
            data = {}
            for name, node in model.inputs.items():
                examples = arrays[name][start : start + size]
                data[node] = _steps_data(examples, batch, steps, schedule, model.sequence_inputs[name])
            probed = sim.predict_on_batch(data, n_steps=steps)
            outputs = {name: probed[out.probe][:size] for name, out in model.outputs.items()}
            counts = {name: probed[p.probe][:size, -1] for name, p in model.neurons.items()}
            yield outputs, _spike_counts(model, counts)


def _steps_data(examples: np.ndarray, batch: int, steps: int, schedule: Schedule, sequence: bool) -> np.ndarray:
    """An input's data at every step ``(batch, steps, n)``, zero-padded to the minibatch: a
    constant example repeated, a sequence's input steps each held ``hold`` steps (the last
    one after the sequence ends)."""
    size = len(examples)
    if sequence:
        per_step = np.repeat(examples.reshape(size, examples.shape[1], -1), schedule.hold, axis=1)
        per_step = np.concatenate([per_step, np.repeat(per_step[:, -1:], steps - per_step.shape[1], axis=1)], axis=1)
    else:
        per_step = np.repeat(examples.reshape(size, 1, -1), steps, axis=1)
    data = np.zeros((batch, steps, per_step.shape[2]))
    data[:size] = per_step
    return data
