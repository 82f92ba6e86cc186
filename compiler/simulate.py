"""Time-stepped NumPy interpreter for spiking graphs, batched over examples.

Every step runs the graph once in node order: constant inputs are presented unchanged,
sequence inputs hold each input step for ``T`` steps, linear ops use the float interpreter's
evaluators on that step's values, and stateful ops (neurons, the max-pool gate, the readout,
delays) update their state. Spikes therefore reach the next layer in the same step (no
synaptic delay), as in ``nengo`` with ``synapse=None``; only a ``delay`` carries a value across
steps (one input step: ``T`` steps with sequence inputs, else one step). Values that do not
change over time (constant inputs and the linear ops applied to them only, e.g. the first
layer's current) are computed once per batch.

With constant inputs one run of ``max(timesteps)`` steps gives the outputs at every requested
T, because no state depends on T: accuracy for T = 8, 16, 32, 64 costs one 64-step
simulation. With sequence inputs each T is its own run of ``T * steps`` steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import neurons, ops
from .errors import DataError, SnncError
from .graph import Graph, Node
from .interpreter import EVALUATORS, bind_inputs, max_pool, run_batch, sequence_steps

# ----------------------------------------------------------------------------- stateful ops


class Stepper:
    """State of one stateful node for a batch; ``step`` takes this step's input values."""

    def __init__(self, node: Node, batch: int):
        self.node, self.op = node, node.op
        self.shape = (batch, *node.type.shape)

    def step(self, t: int, xs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError


STEPPERS: dict[type, type[Stepper]] = {}


def steps(op_type):
    def register(cls):
        STEPPERS[op_type] = cls
        return cls

    return register


class NeuronStepper(Stepper):
    """A neuron population stepping with its type's :meth:`~.neurons.Neuron.step` (float64
    state); counts each neuron's spikes (a burst counts its events) for the firing-rate
    statistics, and tallies events that are counts rather than booleans step by step
    (``tally``, for their bits; binary events' bits follow from the counts). ``fire``
    advances one step and returns the events, who spiked or how many times (refsim feeds
    these to chip synapses); ``step`` gives their values, ``amplitude`` per spike."""

    def __init__(self, node, batch):
        super().__init__(node, batch)
        self.neuron: neurons.Neuron = neurons.by_op(node.op)
        self.state = self.neuron.initial_state(self.op, self.shape)
        self.spike_count = np.zeros(self.shape, dtype=np.int32)
        self.tally: EventTally | None = None

    def fire(self, t: int, xs: list[np.ndarray]) -> np.ndarray:
        self.state, spiked = self.neuron.step(self.op, self.state, xs[0])
        np.add(self.spike_count, spiked, out=self.spike_count, casting="unsafe")
        if spiked.dtype != bool:
            if self.tally is None:
                self.tally = EventTally(self.shape)
            self.tally.add(spiked)
        return spiked

    def step(self, t, xs):
        return self.fire(t, xs) * float(self.op.amplitude)


for _op_type in neurons.op_types():
    STEPPERS[_op_type] = NeuronStepper


def max_gate_step(op: ops.SpikeMaxPool2d, accumulated: np.ndarray, previous: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One step of ``spike_max_pool2d`` gates on a batch ``x`` ``(N, C, H, W)``: ``A += x``;
    ``m = max_pool2d(A)``; returns ``m - m_prev`` (the op's formula). The state, updated in
    place: ``accumulated`` (``A``, like ``x``) and ``previous`` (``m_prev``, like the output),
    both zero at the start. The interpreter and the Nengo gate step with this function."""
    accumulated += x
    window_max = max_pool(accumulated, op, previous.shape[2:])
    y = window_max - previous
    previous[...] = window_max
    return y


@steps(ops.SpikeMaxPool2d)
class MaxGateStepper(Stepper):
    """Max gates stepping with :func:`max_gate_step`."""

    def __init__(self, node, batch):
        super().__init__(node, batch)
        self.accumulated = None
        self.previous = np.zeros(self.shape)

    def step(self, t, xs):
        if self.accumulated is None:
            self.accumulated = np.zeros(xs[0].shape)
        return max_gate_step(self.op, self.accumulated, self.previous, xs[0])


@steps(ops.Readout)
class ReadoutStepper(Stepper):
    """``t`` counts the steps of the current input step's window (the whole run for constant
    inputs): the average restarts with each window, and takes the steps ``Readout.counts``."""

    def __init__(self, node, batch):
        super().__init__(node, batch)
        self.total = np.zeros(self.shape)
        self.counted = 0

    def step(self, t, xs):
        if t == 1:
            self.total[...] = 0.0
            self.counted = 0
        if self.op.counts(t):
            self.total += xs[0]
            self.counted += 1
        return self.total / max(self.counted, 1)


class DelayLine:
    """A ``delay`` node's values over the last ``length`` steps: ``read`` gives the value its
    input had ``length`` steps ago (``init`` before), ``write`` stores this step's."""

    def __init__(self, node: Node, batch: int, length: int):
        self.slots = [np.full((batch, *node.type.shape), float(node.op.init)) for _ in range(length)]
        self.at = 0

    def read(self) -> np.ndarray:
        return self.slots[self.at]

    def write(self, value: np.ndarray) -> None:
        self.slots[self.at] = value
        self.at = (self.at + 1) % len(self.slots)


# ----------------------------------------------------------------------------- statistics


def significant_bits(sizes: np.ndarray) -> int:
    """The significant bits of the event sizes ``|n|`` summed: each size's binary digits from
    the leading 1, ``floor(log2 |n|) + 1`` (0 for no event, 1 for a spike, 2 for 2 or 3
    spikes, 3 for 4..7), counted as ``sum over k >= 0 of #(|n| >= 2**k)``: one comparison per
    bit of the largest size, cheaper per step than a logarithm of each."""
    total, power = 0, 1.0
    while count := int(np.count_nonzero(sizes >= power)):
        total += count
        power *= 2.0
    return total


class EventTally:
    """What a population's events over a run say about their bits: per (example, neuron) the
    largest and the smallest event (``high``, ``low``; 0, no event, counts as one of its
    values), and over all the nonzero events their number and their :func:`significant_bits`."""

    def __init__(self, shape: tuple[int, ...]):
        self.high = np.zeros(shape)
        self.low = np.zeros(shape)
        self.nonzero = 0
        self.significant_bits = 0

    def add(self, events: np.ndarray) -> None:
        """Add one step's events (counts, or booleans: who spiked)."""
        np.maximum(self.high, events, out=self.high)
        self.nonzero += int(np.count_nonzero(events))
        if events.min() < 0:  # signed events: their sizes, and the low end of the range
            np.minimum(self.low, events, out=self.low)
            events = np.abs(events)
        self.significant_bits += significant_bits(events)

    @classmethod
    def of_binary(cls, counts: np.ndarray) -> "EventTally":
        """The exact tally of binary events (a spike or none at each step) from each neuron's
        count of them over the run: every spike is a nonzero event of 1 significant bit."""
        tally = cls(counts.shape)
        tally.high = (counts > 0).astype(np.float64)
        tally.nonzero = tally.significant_bits = int(counts.sum())
        return tally


@dataclass
class LayerActivity:
    """Spike statistics of one neuron population over a simulation (rates in spikes per
    neuron per time step) and, where the float network's activations are given, how far the
    population's mean output is from them: where accuracy is lost; and its spikes of
    inactivated neurons (SIN, Li et al. 2021): spikes of neurons whose float activation is 0
    for that example. ``bits_per_event``: what one event can carry, as the neuron type
    declares it (1 for binary spikes; ``log2(G + 1)`` for bursts of up to ``G`` spikes, which
    saturate at ``G`` per step); :attr:`bits_per_activity` and
    :attr:`significant_bits_per_weight`: what the events the run produced took (Voelker et
    al. 2020's activity measures). ``nonzero_events``: (example, neuron, step) triples with
    an event; ``significant_bits_sum``: their :func:`significant_bits`."""

    neurons: int
    bits_per_event: float = 1.0
    spikes: int = 0
    examples: int = 0
    timesteps: int = 0
    max_neuron_rate: float = 0.0
    nonzero_events: int = 0
    significant_bits_sum: int = 0
    _event_high: np.ndarray | None = field(default=None, repr=False)
    _event_low: np.ndarray | None = field(default=None, repr=False)
    _bits_unmeasured: bool = False
    _ever_fired: np.ndarray | None = field(default=None, repr=False)
    _saturated: int = 0
    _error_sum: float = 0.0
    _expected_sum: float = 0.0
    _sin_spikes: int | None = None

    def add_batch(self, counts: np.ndarray, timesteps: int, amplitude: float = 1.0, expected=None,
                  output_steps: int | None = None, events: EventTally | None = None) -> None:
        """Add a batch's spike counts over ``timesteps`` steps; ``expected``: the float
        network's activations for the same examples, which the mean output
        ``counts * amplitude / output_steps`` approximates (``output_steps``: the steps the
        output stands for, :meth:`~.neurons.Neuron.output_steps`; default ``timesteps``).
        ``events``: the batch's events tallied step by step; without it the counts give the
        tally of binary events (``bits_per_event == 1``), and the bits of events that may be
        more than one spike are not measured."""
        flat = counts.reshape(counts.shape[0], -1)
        self._add_events(events if events is not None or self.bits_per_event != 1 else EventTally.of_binary(flat))
        window = timesteps if output_steps is None else output_steps
        if expected is not None:
            reference = expected.reshape(flat.shape)
            self._error_sum += float(np.abs(flat * (amplitude / max(window, 1)) - reference).sum())
            self._expected_sum += float(np.abs(expected).sum())
            self._sin_spikes = (self._sin_spikes or 0) + int(flat[reference <= 0].sum())
        self.spikes += int(flat.sum())
        self.examples += flat.shape[0]
        self.timesteps = timesteps
        fired = flat.any(axis=0)
        self._ever_fired = fired if self._ever_fired is None else self._ever_fired | fired
        self._saturated += int((flat >= max(window, 1) * self.max_spikes_per_step).sum())
        self.max_neuron_rate = max(self.max_neuron_rate, float(flat.max(initial=0)) / timesteps)

    def _add_events(self, events: EventTally | None) -> None:
        if events is None:
            self._bits_unmeasured = True
            return
        high = events.high.reshape(events.high.shape[0], -1).max(axis=0)
        low = events.low.reshape(events.low.shape[0], -1).min(axis=0)
        self._event_high = high if self._event_high is None else np.maximum(self._event_high, high)
        self._event_low = low if self._event_low is None else np.minimum(self._event_low, low)
        self.nonzero_events += events.nonzero
        self.significant_bits_sum += events.significant_bits

    @classmethod
    def of(cls, op, size: int) -> "LayerActivity":
        """An empty record for ``size`` neurons of op ``op``: its neuron type's bits per event
        (chip compartments, ``loihi_compartments``: 1, the chip's spikes are binary)."""
        if isinstance(op, ops.LoihiCompartments):
            return cls(size)
        return cls(size, neurons.by_op(op).bits_per_event(op))

    @property
    def bits_measured(self) -> bool:
        """Whether the run gave what the bits of this population's events need: events step by
        step, or spike totals of binary events."""
        return not self._bits_unmeasured and self._event_high is not None

    @property
    def bits_per_activity(self) -> float | None:
        """Bits per activity: ``log2(1 + max n - min n)`` averaged over the neurons, with ``max
        n`` and ``min n`` the largest and smallest event a neuron emitted at any step of any
        example, 0 (no event) included: the width of the one code that carries every value the
        neuron sent, as hardware provisions it once for all inputs (a neuron that spiked: 1
        bit; a silent one: 0; bursts of up to 3: 2 bits; a graded event of up to 12: log2 13).
        None where the bits were not measured (:attr:`bits_measured`)."""
        if not self.bits_measured:
            return None
        return float(np.log2(1.0 + self._event_high - self._event_low).mean())

    @property
    def significant_bits_per_weight(self) -> float | None:
        """Significant bits multiplying each weight: the nonzero events' mean number of
        significant bits (:func:`significant_bits`), as each event multiplies the neuron's
        outgoing weights by its size (1 for binary spikes: an addition of the weight); 0 where
        no event was sent, None where the bits were not measured (:attr:`bits_measured`)."""
        if not self.bits_measured:
            return None
        return self.significant_bits_sum / max(self.nonzero_events, 1)

    @property
    def max_spikes_per_step(self) -> int:
        """What a neuron fires in one step at most: ``2 ** bits_per_event - 1``."""
        return round(2.0**self.bits_per_event) - 1

    @property
    def mean_rate(self) -> float:
        return self.spikes / max(self.neurons * self.examples * self.timesteps, 1)

    @property
    def silent_fraction(self) -> float:
        """Neurons that never fired on any example."""
        return 1.0 - float(self._ever_fired.mean()) if self._ever_fired is not None else 1.0

    @property
    def saturated_fraction(self) -> float:
        """(example, neuron) pairs that fired the most they can at every step: clipped activations."""
        return self._saturated / max(self.neurons * self.examples, 1)

    @property
    def error_vs_ann(self) -> float | None:
        """Relative L1 distance of the mean outputs from the float network's activations,
        ``sum |rate * amplitude - a| / sum |a|``; None without a reference."""
        return self._error_sum / self._expected_sum if self._expected_sum else None

    @property
    def sin_fraction(self) -> float | None:
        """The fraction of spikes that are SIN (from neurons whose float activation is 0 for
        that example); None without a reference."""
        return None if self._sin_spikes is None else self._sin_spikes / max(self.spikes, 1)

    def to_dict(self) -> dict:
        """The statistics by name; with a reference, also ``sin_spikes_per_example`` and
        ``sin_fraction``."""
        sin = {} if self._sin_spikes is None else {
            "sin_spikes_per_example": self._sin_spikes / max(self.examples, 1),
            "sin_fraction": self.sin_fraction,
        }
        bits = {"bits_per_event": self.bits_per_event} if self.bits_per_event != 1 else {}
        return {
            "neurons": self.neurons,
            **bits,
            "mean_rate": self.mean_rate,
            "max_neuron_rate": self.max_neuron_rate,
            "silent_fraction": self.silent_fraction,
            "saturated_fraction": self.saturated_fraction,
            "spikes_per_example": self.spikes / max(self.examples, 1),
            "bits_per_activity": self.bits_per_activity,
            "significant_bits_per_weight": self.significant_bits_per_weight,
            "error_vs_ann": self.error_vs_ann,
            **sin,
        }


def overall_bits(activity: dict[str, LayerActivity]) -> dict[str, float | None]:
    """``bits_per_activity`` over all the neurons of all populations and
    ``significant_bits_per_weight`` over all their nonzero events (both None where some
    population's bits were not measured, or there is none)."""
    layers = list(activity.values())
    if not layers or not all(a.bits_measured for a in layers):
        return {"bits_per_activity": None, "significant_bits_per_weight": None}
    neurons_total = sum(a.neurons for a in layers)
    events_total = sum(a.nonzero_events for a in layers)
    return {
        "bits_per_activity": sum(a.bits_per_activity * a.neurons for a in layers) / neurons_total,
        "significant_bits_per_weight": sum(a.significant_bits_sum for a in layers) / max(events_total, 1),
    }


@dataclass
class SimulationResult:
    """``outputs[T][name]``: each output after ``T`` steps (float32, IR layout);
    ``activity[node]``: spike statistics of each neuron population over the longest run
    (``max(T)`` steps; ``max(T) * steps`` with sequence inputs)."""

    outputs: dict[int, dict[str, np.ndarray]]
    activity: dict[str, LayerActivity]


# ----------------------------------------------------------------------------- running


def presented(graph: Graph, arrays, window: int, dtype) -> dict[str, np.ndarray]:
    """The sequence inputs' values held during input step ``window`` (0-based): each one's
    slice of ``arrays`` (constant inputs are not in it: they never change)."""
    return {n.name: np.asarray(arrays[n.name][:, window], dtype=dtype) for n in graph.inputs if n.op.sequence}


def expected_activation(graph: Graph, expected: dict | None, name: str) -> np.ndarray | None:
    """The float network's activations of population ``name`` (``expected``: the reference
    graph's values by name), averaged over the input steps in a sequence graph: what the
    population's mean output over a whole run approximates. None without a reference."""
    reference = (expected or {}).get(name)
    if reference is not None and graph.sequence:
        reference = reference.mean(axis=1)
    return reference


def static_nodes(graph: Graph) -> set[str]:
    """Values that are the same at every step: constant inputs and stateless ops of static
    values (computed once per batch; refsim uses it too)."""
    static: set[str] = set()
    for node in graph.nodes:
        if isinstance(node.op, ops.Input):
            if not node.op.sequence:
                static.add(node.name)
        elif not isinstance(node.op, ops.STATEFUL_OPS) and all(i in static for i in node.inputs):
            static.add(node.name)
    return static


def check_timesteps(timesteps: Sequence[int]) -> list[int]:
    """The distinct requested step counts, sorted; every simulator refuses bad ones alike."""
    ts = sorted(set(int(t) for t in timesteps))
    if not ts or ts[0] < 1:
        raise DataError(f"time steps must be positive integers, got {list(timesteps)}")
    return ts


@dataclass(frozen=True)
class Schedule:
    """How a run presents its inputs: ``steps`` simulation steps in all, each input step held
    for ``hold`` of them (``hold = steps`` for constant inputs), ``delay`` steps per delay."""

    steps: int
    hold: int
    delay: int

    @staticmethod
    def of(graph: Graph, timesteps: int, input_steps: int) -> "Schedule":
        if graph.sequence:
            return Schedule(timesteps * input_steps, timesteps, timesteps)
        return Schedule(timesteps, timesteps, 1)

    def window(self, t: int) -> tuple[int, int]:
        """Simulation step ``t`` (from 1) as the input step it presents (from 0) and the step
        within that input step's window (from 1; ``t`` itself for constant inputs)."""
        window, within = divmod(t - 1, self.hold)
        return window, within + 1


def window_outputs(graph: Graph, windows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """A sequence run's outputs from their values at the end of each input step's window:
    ``(B, input steps, *shape)`` for a sequence output, else the last window's value."""
    return {
        n.name: np.stack([w[n.name] for w in windows], axis=1) if n.op.sequence else windows[-1][n.name]
        for n in graph.outputs
    }


def simulate_batch(
    graph: Graph, arrays: dict[str, np.ndarray], timesteps: Sequence[int], activity=None, dtype=np.float64, expected=None
):
    """Simulate one batch; returns ``{T: {output: array}}``. Constant inputs: one run of
    ``max(timesteps)`` steps read at each T. Sequence inputs: one run of ``T * steps`` steps per
    T; an output is read at the end of each input step's window (``Output.sequence``: all of
    them, ``(B, steps, ...)``; else the last). Values between ops are ``dtype``; neuron state is
    float64. ``activity`` collects each neuron population's statistics over the longest run,
    compared with ``expected[name]`` where given."""
    ts = check_timesteps(timesteps)
    if not graph.sequence:
        return _run(graph, arrays, Schedule.of(graph, ts[-1], 1), set(ts), activity, dtype, expected)
    input_steps = sequence_steps(graph, arrays)
    recorded = {}
    for t in ts:
        schedule = Schedule.of(graph, t, input_steps)
        last = t == ts[-1]
        recorded[t] = _run(graph, arrays, schedule, set(), activity if last else None, dtype, expected)
    return recorded


def _run(graph: Graph, arrays, schedule: Schedule, wanted: set, activity, dtype, expected) -> dict:
    """One simulation of ``schedule.steps`` steps. Constant inputs: ``{t: outputs}`` at each
    wanted t; sequence inputs: the outputs at the window ends, as ``run`` gives them."""
    batch = next(iter(arrays.values())).shape[0]
    static = static_nodes(graph)
    values = {k: np.asarray(v, dtype=dtype) for k, v in arrays.items() if k in static}
    steppers: dict[str, Stepper] = {}
    delays = {n.name: DelayLine(n, batch, schedule.delay) for n in graph.delays}
    dynamic: list[Node] = []
    for node in graph.nodes:
        if isinstance(node.op, ops.Input):
            continue
        if node.name in static:
            values[node.name] = evaluator(node)(node, [values[i] for i in node.inputs])
        else:
            dynamic.append(node)
            if isinstance(node.op, ops.STATEFUL_OPS) and node.name not in delays:
                steppers[node.name] = STEPPERS[type(node.op)](node, batch)
    recorded, windows = {}, []
    for t in range(1, schedule.steps + 1):
        window, t_window = schedule.window(t)
        if t_window == 1:
            values.update(presented(graph, arrays, window, dtype))
        for node in dynamic:
            line = delays.get(node.name)
            if line is not None:
                values[node.name] = line.read()
                continue
            xs = [values[i] for i in node.inputs]
            stepper = steppers.get(node.name)
            y = stepper.step(t_window, xs) if stepper else evaluator(node)(node, xs)
            values[node.name] = y.astype(dtype, copy=False)
        for name, line in delays.items():
            line.write(values[graph.node(name).inputs[0]])
        if t in wanted:
            recorded[t] = {n.name: values[n.name].astype(np.float32) for n in graph.outputs}
        if graph.sequence and t_window == schedule.hold:
            windows.append({n.name: values[n.name].astype(np.float32) for n in graph.outputs})
    if activity is not None:
        for name, stepper in steppers.items():
            if isinstance(stepper, NeuronStepper):
                activity.setdefault(name, LayerActivity.of(stepper.op, graph.node(name).type.size))
                reference = expected_activation(graph, expected, name)
                window = stepper.neuron.output_steps(stepper.op, schedule.steps)
                activity[name].add_batch(
                    stepper.spike_count, schedule.steps, stepper.op.amplitude, reference, window, stepper.tally
                )
    if not graph.sequence:
        return recorded
    return window_outputs(graph, windows)


def evaluator(node: Node):
    """The float evaluator of a stateless node's op (refsim runs host layers with it)."""
    fn = EVALUATORS.get(type(node.op))
    if fn is None:
        raise SnncError(f"%{node.name}: the spiking interpreter has no evaluator for op {node.op.NAME}")
    return fn


def simulate(
    graph: Graph,
    inputs,
    timesteps: Sequence[int],
    batch_size: int = 256,
    progress: bool | None = False,
    precision: str = "float64",
    reference: Graph | None = None,
) -> SimulationResult:
    """Run a spiking ``graph`` on batched ``inputs`` (IR layout) for ``max(timesteps)`` steps
    (sequence inputs: one run of ``T * steps`` steps per T, see :func:`simulate_batch`).

    Returns the outputs at each requested T and each neuron population's activity. With a
    ``reference`` (the balanced float graph the spiking one was converted from), each
    population's mean output is compared with the activations of the ReLU of the same name.
    ``precision="float32"`` computes the currents between neurons in float32 (about twice as
    fast; a spike can differ where a membrane lands within rounding of the threshold).
    ``progress`` shows a bar (``None``: when stderr is a terminal).
    """
    from .progress import progress as progress_bar

    if graph.stage != ops.SPIKING:
        raise SnncError(f"graph {graph.name} is a {graph.stage} graph; simulate runs spiking graphs")
    ts = check_timesteps(timesteps)
    if precision not in ("float32", "float64"):
        raise SnncError(f"precision must be float32 or float64, got {precision!r}")
    arrays = bind_inputs(graph, inputs)
    n = next(iter(arrays.values())).shape[0]
    if n == 0:
        raise DataError("no examples to simulate (the data is empty)")
    chunks: dict[int, dict[str, list]] = {t: {o.name: [] for o in graph.outputs} for t in ts}
    activity: dict[str, LayerActivity] = {}
    starts = range(0, n, batch_size)
    label = f"simulating {graph.name} ({ts[-1]} steps)"
    for start in progress_bar(starts, len(starts), label, progress):
        batch = {k: v[start : start + batch_size] for k, v in arrays.items()}
        expected = run_batch(reference, batch) if reference is not None else None
        for t, outs in simulate_batch(graph, batch, ts, activity, np.dtype(precision), expected).items():
            for name, array in outs.items():
                chunks[t][name].append(array)
    outputs = {t: {k: np.concatenate(v) for k, v in by_name.items()} for t, by_name in chunks.items()}
    return SimulationResult(outputs, activity)


# ----------------------------------------------------------------------------- the interp backend


@dataclass(frozen=True)
class Interpreted:
    """The ``interp`` backend's built network (:mod:`snnc.compiler.backends`): a spiking graph
    the interpreter runs as it is."""

    graph: Graph

    def run(self, inputs, timesteps: Sequence[int], *, batch_size: int = 256, progress: bool | None = False,
            precision: str = "float64", reference: Graph | None = None) -> SimulationResult:
        """:func:`simulate` of the graph."""
        return simulate(self.graph, inputs, timesteps, batch_size, progress, precision, reference)


def build(graph: Graph) -> Interpreted:
    """The ``interp`` backend's ``build``: checks that ``graph`` is a spiking graph."""
    if graph.stage != ops.SPIKING:
        raise SnncError(f"graph {graph.name} is a {graph.stage} graph; the interpreter runs spiking graphs")
    return Interpreted(graph)
