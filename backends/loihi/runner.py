"""Running a built Loihi network in NengoLoihi, one example at a time, and computing the host
output layer from the chip's spikes.

NengoLoihi 1.1 has no minibatches and no ``Simulator.reset`` (it raises
``NotImplementedError``). Two ways give each example a fresh start:

- ``reset="state"`` (the emulator's default): one simulator for all examples; between
  examples the host simulator's signals (neuron state; not its clock) and the emulator's
  compartment state (input accumulator, current, voltage, spikes, refractory counters) go
  back to their initial values and the host spikes still queued for the chip are dropped.
  The clocks keep running, so host spikes stay aligned with the emulator's steps.
- ``reset="rebuild"``: a new simulator per example (what the chip needs); the whole
  NengoLoihi build (split, discretize) is repeated for every example.

The two give identical spikes and voltages (tested). ``"state"`` saves one NengoLoihi build
per example: for a LeNet-sized network (a host conv layer of 3456 IF neurons, a chip conv
layer of 1600 compartments in 4 blocks, a chip dense layer of 100) a build took 0.7 s, and 4
examples of 32 steps took 3.3 s with ``"state"``, 5.9 s with ``"rebuild"`` (2 CPU cores).
The emulator itself is slow (a Python loop over each step's spikes), so
wall time grows with the number of spikes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from snnc.compiler import ops
from snnc.compiler.errors import BuildError, DataError, SnncError
from snnc.compiler.interpreter import EVALUATORS, bind_inputs
from snnc.compiler.progress import progress as progress_bar
from snnc.compiler.simulate import LayerActivity, SimulationResult, check_timesteps

if TYPE_CHECKING:  # the builder's network runs here (BuiltLoihi.run): no import back at run time
    from .builder import BuiltLoihi

TARGETS = ("sim", "loihi")
RESETS = ("state", "rebuild")


@dataclass
class LoihiResult(SimulationResult):
    """The results of :func:`snnc.backends.loihi.run` on ``N`` examples over ``T = max(timesteps)``
    steps, in refsim's layouts (``n``: a population's size, elements in CHW order), beyond
    :class:`~snnc.compiler.simulate.SimulationResult`'s ``outputs[T][output]`` (each graph
    output after ``T`` steps for every requested T, computed on the host from the chip
    spikes; float32, IR layout) and ``activity`` (every population, host and chip):

    - ``spikes[population]``: ``(N, T, n)`` bool, each chip population's spikes at steps 1..T;
    - ``voltages[population]``: ``(N, n)`` int32, the emulator's integer membrane voltage
      after step T (after the spike reset);
    - ``host_spikes[population]``: ``(N, T, n)`` bool, the host input layer's spikes;
    - ``voltage_traces[population]``: ``(N, T, n)`` int32 when asked for;
    - ``seconds``: wall time of the whole run (builds included).
    """

    spikes: dict[str, np.ndarray]
    voltages: dict[str, np.ndarray]
    host_spikes: dict[str, np.ndarray]
    seconds: float
    voltage_traces: dict[str, np.ndarray] | None = None


def run(
    built: BuiltLoihi,
    inputs,
    timesteps: Sequence[int],
    target: str = "sim",
    reset: str | None = None,
    voltage_traces: bool = False,
    progress: bool | None = None,
) -> LoihiResult:
    """See :func:`snnc.backends.loihi.run`."""
    if target not in TARGETS:
        raise SnncError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    if target == "loihi":
        _require_nxsdk()
    reset = reset or ("state" if target == "sim" else "rebuild")
    if reset not in RESETS:
        raise SnncError(f"reset must be one of {', '.join(RESETS)}, got {reset!r}")
    if reset == "state" and target != "sim":
        raise SnncError("reset='state' resets the emulator's state; the chip needs reset='rebuild'")
    ts = check_timesteps(timesteps)
    steps = ts[-1]
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in bind_inputs(built.graph, inputs).items()}
    n = next(iter(arrays.values())).shape[0]
    if n == 0:
        raise DataError("no examples to simulate (the data is empty)")

    start = time.perf_counter()
    spikes = {k: np.zeros((n, steps, p.ensemble.n_neurons), bool) for k, p in built.chip.items()}
    voltages = {k: np.zeros((n, p.ensemble.n_neurons), np.int32) for k, p in built.chip.items()}
    traces = None
    if voltage_traces:
        traces = {k: np.zeros((n, steps, p.ensemble.n_neurons), np.int32) for k, p in built.chip.items()}
    host_spikes = {k: np.zeros((n, steps, p.ensemble.n_neurons), bool) for k, p in built.host.items()}
    simulators = _simulators(built, arrays, n, target, reset)
    for i, sim in enumerate(progress_bar(simulators, n, f"nengo-loihi {target} ({steps} steps)", progress)):
        sim.run_steps(steps)
        for name, population in built.chip.items():
            spikes[name][i] = sim.data[population.spikes][-steps:] != 0
            trace = sim.data[population.voltage][-steps:]
            voltages[name][i] = trace[-1]
            if traces is not None:
                traces[name][i] = trace
        for name, population in built.host.items():
            host_spikes[name][i] = sim.data[population.spikes][-steps:] != 0
        sim.clear_probes()
    outputs = host_outputs(built, spikes, ts)
    activity = {}
    for populations, recorded in ((built.host, host_spikes), (built.chip, spikes)):
        for name, population in populations.items():
            activity[name] = LayerActivity(population.ensemble.n_neurons)
            activity[name].add_batch(recorded[name].sum(axis=1), steps, population.amplitude)
    return LoihiResult(outputs, activity, spikes, voltages, host_spikes, time.perf_counter() - start, traces)


#: warnings NengoLoihi's build gives on every snnc network, about nothing the user can change:
#: Nengo derives max rates from the explicit gains and biases of LIF ensembles (not finite for
#: ours, and unused), and NengoLoihi fills integer state arrays with NaN before setting them
BUILD_NOISE = (
    (".*Non-finite values detected in `max_rates`", UserWarning),
    (".*invalid value encountered in log1p", RuntimeWarning),
    (".*divide by zero encountered", RuntimeWarning),
    (".*invalid value encountered in cast", RuntimeWarning),
)


def _require_nxsdk() -> None:
    from nengo_loihi.hardware import HAS_NXSDK

    if not HAS_NXSDK:
        raise SnncError(
            "target='loihi' runs on a Loihi chip through Intel's NxSDK, which is not installed here; "
            "the target on this machine is NengoLoihi's emulator, target='sim'"
        )


def simulator(built: BuiltLoihi, target: str = "sim"):
    """A ``nengo_loihi.Simulator`` of ``built`` (the caller closes it); NengoLoihi's build
    errors (e.g. a core limit) become :class:`~snnc.compiler.errors.BuildError`."""
    import nengo_loihi
    from nengo.exceptions import NengoException

    try:
        with warnings.catch_warnings():
            for message, category in BUILD_NOISE:
                warnings.filterwarnings("ignore", message, category)
            return nengo_loihi.Simulator(built.network, dt=built.dt, target=target, progress_bar=False, seed=0)
    except NengoException as exc:
        raise BuildError(f"graph {built.graph.name}: NengoLoihi cannot build it: {exc}") from exc


def _simulators(built: BuiltLoihi, arrays: dict, n: int, target: str, reset: str) -> Iterator:
    """For each example in turn, a simulator in its initial state presenting that example."""

    def present(i: int) -> None:
        for name, presented in built.presented.items():
            presented.value = arrays[name][i].ravel()

    if reset == "rebuild":
        for i in range(n):
            present(i)
            with simulator(built, target) as sim:
                yield sim
        return
    with simulator(built, target) as sim:
        for i in range(n):
            present(i)
            if i:
                reset_state(sim)
            yield sim


def reset_state(sim) -> None:
    """Put a ``nengo_loihi.Simulator`` running the emulator back in its initial state, its
    clocks excepted (NengoLoihi 1.1's ``Simulator.reset`` is not implemented).

    The host simulator's signals (neuron voltages, node values) get their initial values,
    but not its time and step (host spikes are queued for the chip by step number;
    ``nengo.Simulator.reset`` would also rebuild the host's processes and orphan the queues
    NengoLoihi holds). The emulator's compartments get zero input, current, voltage,
    spikes and refractory counts, as at its start, and the spikes of the host's last step,
    which the emulator would deliver one step later, are dropped."""
    for name, host in sim.sims.items():
        if name in ("host_pre", "host"):
            clock = (host.model.time, host.model.step)
            for signal in host.signals:
                if not any(signal is c for c in clock):
                    host.signals.reset(signal)
    emulator = sim.sims["emulator"]
    c = emulator.compartment
    for state in (c.input, c.current, c.voltage, c.ref_count, c.spike_count):
        state[...] = 0
    c.spiked[...] = False
    for spike_input in emulator.inputs:
        for t in list(spike_input.spikes):
            if t not in spike_input.permanent:
                del spike_input.spikes[t]


# ----------------------------------------------------------------------------- host output layer


def host_outputs(built: BuiltLoihi, spikes: dict[str, np.ndarray], ts: list[int]) -> dict[int, dict]:
    """The host output layer on the chip's spikes, as the spiking interpreter defines it:
    a chip population's value at step ``t`` is ``amplitude * s_t``; linear ops act on each
    step's values; a readout after ``T`` steps is the mean of its input over steps ``1..T``;
    an output after ``T`` steps is its input's value at step ``T``."""
    series: dict[str, np.ndarray] = {}
    for name, population in built.chip.items():
        n, steps, _ = spikes[name].shape
        series[name] = spikes[name].reshape(n, steps, *population.shape) * float(population.amplitude)
    for node in built.host_output:
        xs = [series[name] for name in node.inputs]
        n, steps = xs[0].shape[:2]
        if isinstance(node.op, ops.Readout):
            counts = np.arange(1, steps + 1, dtype=np.float64).reshape(1, steps, *[1] * (xs[0].ndim - 2))
            series[node.name] = np.cumsum(xs[0], axis=1) / counts
        elif isinstance(node.op, ops.Output):
            series[node.name] = xs[0]
        else:
            flat = EVALUATORS[type(node.op)](node, [x.reshape(n * steps, *x.shape[2:]) for x in xs])
            series[node.name] = flat.reshape(n, steps, *flat.shape[1:])
    outputs = [node for node in built.host_output if isinstance(node.op, ops.Output)]
    return {t: {o.name: series[o.name][:, t - 1].astype(np.float32) for o in outputs} for t in ts}
