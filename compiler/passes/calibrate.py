"""calibrate: post-training SNN calibration (Li, Deng, Dong, Gong, Gu, ICML 2021, "A free lunch
from ANN: towards efficient, accurate spiking neural networks calibration").

Layer by layer, in graph order, with the populations before already corrected, the spiking
graph is simulated on calibration inputs for ``T`` steps and each population's mean output per
channel is compared with the float network's activation of the ReLU it replaced::

    snn[n, c, ...] = spike count * amplitude / T        (example n, channel c, position ...)
    ann[n, c, ...] = the float graph's ReLU of the same name
    e[c] = mean over (n, ...) in M_c of (snn - ann)     M_c = {ann > 0 or snn > 0}

``M_c`` keeps the positions where a shift of the current changes the output: a neuron that the
ANN leaves inactive and that stays silent (``ann = snn = 0``, the ReLU's flat part) is neither
wrong nor moved by a small shift, and averaging it in would shrink ``e`` towards 0; a neuron
that the ANN leaves inactive but that fires (a spike of an inactivated neuron, error > 0 only)
stays in. The correction removes ``e`` (``slope = amplitude * gain / threshold``, output per
unit of input current in the neuron's linear range)::

    mode=bias       (BC) current into the population  x -= e / slope     (every step)
    mode=potential  (PC) initial membrane               v_init -= e * T * threshold / amplitude

BC changes the bias of the conv2d / dense that is the population's only producer, and
otherwise inserts an ``affine`` (scale 1, shift ``-e / slope``) in front of it. PC needs
``if_neuron``'s per-channel ``v_init``; it is tuned for exactly ``T`` steps (BC for the rate at
any T). A floored membrane (``v_min``) keeps ``v_init >= v_min`` (noted where clipped).

:func:`calibrate_layers` is the core: any simulator that runs a spiking graph's outputs can
serve as ``simulate_fn`` (the NumPy interpreter is the default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .. import ops
from ..errors import DataError, PassError
from ..graph import Graph, Node, Params
from ..interpreter import bind_inputs, run_batch
from .registry import check_choice, register_pass

MODES = ("bias", "potential")

#: ``simulate_fn(graph, inputs, T) -> {output name: (N, ...) array}``: a spiking graph's
#: outputs (time-averaged readouts) after ``T`` steps on ``inputs`` (by input name)
SimulateFn = Callable[[Graph, dict, int], dict]


@dataclass(frozen=True)
class LayerCorrection:
    """What calibration did to one population: per-channel error ``e`` before and after its
    correction, and the correction (current shift for BC, membrane shift for PC)."""

    population: str
    error_before: np.ndarray
    error_after: np.ndarray
    shift: np.ndarray

    def to_dict(self) -> dict:
        return {
            "mean_abs_error_before": float(np.abs(self.error_before).mean()),
            "mean_abs_error_after": float(np.abs(self.error_after).mean()),
            "max_abs_shift": float(np.abs(self.shift).max(initial=0.0)),
        }


def interpreter_simulate(graph: Graph, inputs: dict, timesteps: int) -> dict:
    """The default ``simulate_fn``: the NumPy interpreter (:func:`~snnc.compiler.simulate.simulate`)."""
    from ..simulate import simulate

    return simulate(graph, inputs, [timesteps]).outputs[timesteps]


def channel_error(snn: np.ndarray, ann: np.ndarray) -> np.ndarray:
    """``e[c]``: the mean of ``snn - ann`` over examples and positions of channel ``c`` (axis 1)
    where ``ann > 0`` or ``snn > 0`` (0 for a channel without such positions)."""
    axes = (0, *range(2, snn.ndim))
    counted = (ann > 0) | (snn > 0)
    total = np.where(counted, snn - ann, 0.0).sum(axis=axes)
    return total / np.maximum(counted.sum(axis=axes), 1)


def output_per_current(op) -> float:
    """Mean output per unit of input current of an ``if_neuron`` in its linear range."""
    return op.amplitude * op.gain / op.threshold


def populations(graph: Graph) -> list[Node]:
    """The neuron populations that calibration corrects, in graph (topological) order."""
    return [n for n in graph.nodes if isinstance(n.op, ops.NEURON_OPS)]


def probe_graph(graph: Graph, names: list[str]) -> Graph:
    """The part of ``graph`` that populations ``names`` depend on, each read out (averaged
    over T) by an output named after it: one simulation gives their mean outputs."""
    needed = set(names)
    for node in reversed(graph.nodes):
        if node.name in needed:
            needed.update(node.inputs)
    nodes = [n for n in graph.nodes if n.name in needed and not isinstance(n.op, ops.Output)]
    for name in names:
        value = graph.node(name)
        readout = Node(f"{name}__mean", ops.Readout(), (name,), ops.current(value.type))
        nodes += [readout, Node(f"{name}__probe", ops.Output(), (readout.name,), readout.type)]
    return graph.replace(nodes=nodes)


def apply_correction(graph: Graph, population: str, error: np.ndarray, mode: str, timesteps: int) -> tuple[Graph, np.ndarray]:
    """``graph`` with population ``population``'s per-channel mean output moved by ``-error``
    (see the module docstring); returns the new graph and the shift applied (current for
    ``bias``, membrane for ``potential``)."""
    node = graph.node(population)
    op = node.op
    if mode == "potential":
        shift = -error * timesteps * op.threshold / op.amplitude
        starts = np.broadcast_to(np.asarray(op.v_init, dtype=np.float64), error.shape) + shift
        if op.v_min is not None:
            starts = np.maximum(starts, op.v_min)
        uniform = bool(np.all(starts == starts[0]))  # one value where the channels agree
        v_init = float(starts[0]) if uniform else tuple(float(v) for v in starts)
        changed = node.replace(op=replace(op, v_init=v_init))
        return _with_nodes(graph, {population: [changed]}), shift
    shift = -error / output_per_current(op)
    producer = graph.node(node.inputs[0])
    if isinstance(producer.op, (ops.Conv2d, ops.Dense)) and len(graph.users(producer.name)) == 1:
        params = {**producer.params, "bias": (producer.params["bias"] + shift).astype(producer.params["bias"].dtype)}
        return _with_nodes(graph, {producer.name: [producer.replace(params=params)]}), shift
    name = _unique(graph, f"{population}_calibration")
    bias = Node(name, ops.Affine(), (producer.name,), ops.current(producer.type),
                Params({"scale": np.ones_like(shift, dtype=np.float32), "shift": shift.astype(np.float32)}))
    return _with_nodes(graph, {population: [bias, node.replace(inputs=(name,))]}), shift


def calibrate_layers(
    graph: Graph,
    reference: dict[str, np.ndarray],
    inputs: dict,
    *,
    mode: str = "bias",
    timesteps: int = 32,
    simulate_fn: SimulateFn = interpreter_simulate,
    progress: bool | None = False,
) -> tuple[Graph, list[LayerCorrection]]:
    """Correct each population of ``graph`` named in ``reference`` (its float activations on
    ``inputs``, ``(N, C, ...)``) in graph order, each against the simulation (``simulate_fn``)
    of the graph with the earlier ones corrected. Simulates ``len(reference) + 1`` times, each
    time only the part of the graph up to the population being corrected, which also gives
    the previous population's error after its correction."""
    from ..progress import progress as progress_bar

    check_choice("mode", mode, MODES)
    targets = [n.name for n in populations(graph) if n.name in reference]
    corrections: list[LayerCorrection] = []
    pending = None  # (population, error before, shift) awaiting its error after
    steps = range(len(targets) + 1)
    for i in progress_bar(steps, len(steps), f"calibrating {graph.name} ({mode}, T={timesteps})", progress):
        probed = targets[max(i - 1, 0) : i + 1]
        means = simulate_fn(probe_graph(graph, probed), inputs, timesteps)
        errors = {name: channel_error(np.asarray(means[f"{name}__probe"], np.float64), reference[name]) for name in probed}
        if pending is not None:
            corrections.append(LayerCorrection(pending[0], pending[1], errors[pending[0]], pending[2]))
            pending = None
        if i < len(targets):
            name = targets[i]
            graph, shift = apply_correction(graph, name, errors[name], mode, timesteps)
            pending = (name, errors[name], shift)
    return graph, corrections


def reference_activations(float_graph: Graph, inputs: dict, names: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
    """The float graph's values ``names`` (those it has) on ``inputs``, float64."""
    arrays = bind_inputs(float_graph, inputs)
    names = [n for n in names if n in float_graph and isinstance(float_graph.node(n).op, ops.ReLU)]
    n = next(iter(arrays.values())).shape[0]
    chunks: dict[str, list] = {name: [] for name in names}
    for start in range(0, n, batch_size):
        values = run_batch(float_graph, {k: v[start : start + batch_size] for k, v in arrays.items()})
        for name in names:
            chunks[name].append(values[name])
    return {name: np.concatenate(c) for name, c in chunks.items()}


@register_pass("calibrate")
def calibrate(
    graph: Graph,
    *,
    calibration,
    float_graph: Graph | None,
    mode: str = "bias",
    timesteps: int = 32,
    examples: int = 256,
) -> Graph:
    """Post-training SNN calibration (Li et al. 2021): per channel, move each population's
    mean output over ``timesteps`` steps onto the float network's activation, layer by layer
    (:func:`calibrate_layers`); ``mode=bias`` (BC) shifts the input current, ``mode=potential``
    (PC) the initial membrane. Uses the first ``examples`` calibration examples; records each
    layer's mean |e| before and after in ``graph.meta["calibrate"]`` and a note per layer.
    Runs right after ``convert_to_spiking`` on ``if_neuron`` populations; a graph with sequence
    inputs is left as it is, with a note.

    Populations converted from activations trained for spiking neurons (``"trained"`` in their
    metadata: ``qcfs``, ``soft_lif``) are kept as trained, with a note: their thresholds,
    amplitudes and time constants are the trained ones, and a QCFS population is exact at
    T = L for constant input. Calibrating QCFS populations was measured not to help at T <= L
    (benchmarks/qcfs_calibration.py, MNIST MLP 784-256-128-10, 2000 test images): with L = 4,
    95.90 % at T = 4 without, 95.85 % (potential) and 95.80 % (bias) calibrated for T = 4,
    95.50 % with this pipeline's default potential correction for T = 16 (94.45 % -> 91.70 %
    at T = 2); with L = 2 at T = 2, 95.05 % without and 88.60 % corrected for T = 16."""
    check_choice("mode", mode, MODES)
    if graph.stage != ops.SPIKING:
        raise PassError(f"runs on spiking graphs (after convert_to_spiking); this one is {graph.stage}")
    if float_graph is None:
        raise PassError("compares the spiking graph with the float graph it was converted from: run it in the pipeline after convert_to_spiking")
    if graph.sequence:  # a window's rates depend on the windows before: no per-layer mean to match
        note = {"pass": "calibrate", "node": graph.inputs[0].name,
                "message": "not calibrated: calibration corrects networks with constant inputs, this one has sequence inputs"}
        return graph.replace(meta={**graph.meta, "notes": list(graph.meta.get("notes", [])) + [note]})
    if timesteps < 1 or examples < 1:
        raise PassError(f"options timesteps={timesteps} and examples={examples} must be positive")
    trained = [n.name for n in populations(graph) if "trained" in n.meta]
    corrected = [n for n in populations(graph) if n.name not in trained]
    for node in corrected:
        if not isinstance(node.op, ops.IfNeuron):
            raise PassError(f"%{node.name} = {node.op.NAME}: calibrate corrects if_neuron populations (linear rates) only")
        if mode == "potential" and node.op.reset != "subtract":
            # reset to zero discards the extra start at the first spike: no lasting rate change
            raise PassError(f"%{node.name}: mode=potential needs reset=subtract (this population resets to zero); use mode=bias")
    inputs = {k: np.asarray(v)[:examples] for k, v in bind_inputs(graph, calibration).items()}
    if next(iter(inputs.values())).shape[0] == 0:
        raise DataError("the calibration data is empty")
    reference = reference_activations(float_graph, inputs, [n.name for n in corrected])
    calibrated, corrections = graph, []
    if reference:  # (a network of trained populations only has nothing to correct)
        calibrated, corrections = calibrate_layers(graph, reference, inputs, mode=mode, timesteps=timesteps, progress=None)
    layers = {c.population: c.to_dict() for c in corrections}
    notes = list(calibrated.meta.get("notes", []))
    for name, stats in layers.items():
        message = (f"{mode} correction for T={timesteps}: mean |e| per channel "
                   f"{stats['mean_abs_error_before']:.4g} -> {stats['mean_abs_error_after']:.4g}")
        notes.append({"pass": "calibrate", "node": name, "message": message})
    skipped = [n.name for n in corrected if n.name not in reference]
    if skipped:
        notes.append({"pass": "calibrate", "node": skipped[0], "message": f"no float relu of the same name: not calibrated ({', '.join(skipped)})"})
    if trained:
        notes.append({"pass": "calibrate", "node": trained[0], "message": f"kept as trained, not calibrated: {', '.join(trained)}"})
    record = {"mode": mode, "timesteps": timesteps, "examples": int(next(iter(inputs.values())).shape[0]), "layers": layers}
    return calibrated.replace(meta={**calibrated.meta, "calibrate": record, "notes": notes})


def _unique(graph: Graph, base: str) -> str:
    name, i = base, 1
    while name in graph:
        name, i = f"{base}_{i}", i + 1
    return name


def _with_nodes(graph: Graph, replaced: dict[str, list[Node]]) -> Graph:
    """``graph`` with each node named in ``replaced`` swapped for its list of nodes."""
    nodes = []
    for node in graph.nodes:
        nodes += replaced.get(node.name, [node])
    return graph.replace(nodes=nodes)
