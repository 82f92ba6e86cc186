"""calibrate_loihi: fit each chip population's drive to the chip's own rate curve.

A Loihi compartment resets its membrane to zero after a spike (the remainder above the
threshold is lost), starts at zero and floors its voltage at ``vmin``. For a constant drive
of ``x`` thresholds per step it fires every ``floor(1/x) + 1`` steps (strictly above the
threshold), a rate of ``1 / (floor(1/x) + 1)`` instead of the ``x`` the converted ReLU stands
for, and for irregular spike input about ``x / (1 + x/2)``; with ``vmin = 0`` a neuron whose
input averages zero still fires. The distortion compounds through the layers.

This pass measures it on calibration data with the chip's float dynamics (refsim's float
mode, NengoLoihi's emulator without discretization: delays, strict threshold, reset to zero,
``vmin``) and corrects the drive of every channel ``c`` (axis 0 of a population; each neuron
of a vector) by a line, ``drive <- g_c * drive + s_c * vth``: the gains ``g_c`` multiply the
synapse weights into the channel and its bias, the shifts ``s_c`` (thresholds per step) add
to the bias. With ``a`` the float network's rate (the chip graph read as an ANN,
:func:`ideal_rates`) and ``r`` the simulated chip rate, counted over the steps after the
population's first input can arrive (``T - depth``, ``depth`` its synapse hops from the
host), each round updates::

    fit=gain:    g_c <- g_c * sum_c a / sum_c r                       (s_c = 0)
    fit=affine:  r ~ k a + m  (least squares over the channel's neurons and examples)
                 g_c <- g_c / k ,  s_c <- (s_c - m) / k

(the affine line regresses ``r`` on ``a`` because ``a`` is exact and ``r`` noisy, then
inverts it). All populations are refitted together and the network simulated again,
``iterations`` times, so that each layer's fit follows the input its corrected predecessors
give it.
"""

from __future__ import annotations

import numpy as np

from .. import neurons, ops
from ..errors import PassError
from ..graph import Graph, Node
from ..interpreter import EVALUATORS, bind_inputs
from ..loihi import chip
from ..neurons.lif import soft_lif_rate
from .lower_loihi import correlate
from .registry import check_choice, register_pass
from .rewrite import Rewriter, f64

#: the range a fitted gain is kept in: a channel that barely fires on the calibration data
#: would otherwise get an arbitrarily large gain from a few spikes
GAIN_RANGE = (0.25, 4.0)
FITS = ("gain", "affine")


@register_pass("calibrate_loihi")
def calibrate_loihi(
    graph: Graph, *, calibration, timesteps: int = 64, examples: int = 100, iterations: int = 2, fit: str = "affine"
) -> Graph:
    """Fit each chip ``relu`` population's drive per channel so that its rate on the chip's
    float dynamics (refsim) over ``timesteps`` steps matches the float network's activations
    on the first ``examples`` calibration inputs; ``iterations`` rounds of simulating and
    refitting. ``fit=gain`` scales the drive by the ratio of the mean rates; ``fit=affine``
    also shifts it, by the least-squares line from the chip's rates to the float ones.
    Runs on a float-format Loihi graph (after ``lower_loihi``, before ``quantize_loihi``).
    Each population's metadata records its gains and shifts, and a note its rate error
    before and after (relative L1 against the float activations).

    Populations converted from activations trained for spiking neurons (``"trained"`` in their
    metadata: ``qcfs`` as ``relu`` compartments, ``soft_lif`` as ``lif`` ones) keep their drive
    (scaling it would change the trained threshold lambda or the trained rate curve), with a
    note; the others are fitted with the trained ones' rates in their input (a ``lif``
    compartment's float rate is its LIF curve, :func:`ideal_rates`)."""
    from snnc.backends.refsim import simulator

    check_choice("fit", fit, FITS)
    if not any(isinstance(n.op, ops.LoihiCompartments) and n.op.format == "float" for n in graph.nodes):
        raise PassError("runs on float Loihi graphs (run lower_loihi first, quantize_loihi after)")
    if timesteps < 2 or examples < 1 or iterations < 1:
        raise PassError(f"options timesteps={timesteps} (>= 2), examples={examples}, iterations={iterations} (>= 1) out of range")
    rw = Rewriter(graph, "calibrate_loihi")
    compartments = [n for n in graph.nodes if isinstance(n.op, ops.LoihiCompartments)]
    trained = [n.name for n in compartments if "trained" in n.meta]
    if trained:
        rw.note(trained[0], f"kept as trained, not fitted: {', '.join(trained)}")
    populations = [n for n in compartments if n.name not in trained]
    if not populations:
        for node in graph.nodes:
            rw.keep(node)
        return rw.finish()
    recurrent = next((n for n in graph.nodes if isinstance(n.op, ops.LoihiSynapses) and n.op.delay), None)
    if graph.sequence or recurrent is not None:
        # a rate per example is what is fitted; a sequence's rates change with each input step
        why = "the graph takes sequences" if graph.sequence else f"%{recurrent.name} is a recurrence"
        rw.note(populations[0], f"not calibrated: {why} (calibrate_loihi fits constant-input networks)")
        for node in graph.nodes:
            rw.keep(node)
        return rw.finish()
    for node in populations:
        if node.op.neuron != "relu":
            raise rw.fail(node, f"calibrate_loihi fits relu compartments (integrate-and-fire); this one is {node.op.neuron}")
    inputs = {k: v[:examples] for k, v in bind_inputs(graph, calibration).items()}
    n_examples = len(next(iter(inputs.values())))
    targets = ideal_rates(graph, inputs)
    depth = synapse_depths(graph)
    fits = {n.name: (np.ones(_channels(n)), np.zeros(_channels(n))) for n in populations}

    def chip_rates(g: Graph) -> dict[str, np.ndarray]:
        counts = simulator.simulate(g, inputs, [timesteps]).spike_counts
        return {n.name: counts[n.name] / max(timesteps - depth[n.name], 1) for n in populations}

    rates = chip_rates(graph)
    before = {n.name: relative_error(rates[n.name], targets[n.name]) for n in populations}
    for _ in range(iterations):
        for node in populations:
            gain, shift = fits[node.name]
            if fit == "gain":
                slope, offset = channel_ratio(node, targets[node.name], rates[node.name]), 0.0
            else:
                slope, offset = channel_fit(node, targets[node.name], rates[node.name])
            fits[node.name] = (np.clip(gain * slope, *GAIN_RANGE), slope * shift + offset)
        rates = chip_rates(_with_fits(graph, fits))
    for node in populations:
        after = relative_error(rates[node.name], targets[node.name])
        gain, shift = fits[node.name]
        rw.note(
            node,
            f"chip rate error {before[node.name]:.1%} -> {after:.1%} (gains {gain.min():.3g}..{gain.max():.3g}, "
            f"shifts {shift.min():.3g}..{shift.max():.3g} thresholds/step; {n_examples} examples, T={timesteps})",
        )
    record = {"timesteps": timesteps, "examples": n_examples, "iterations": iterations, "fit": fit}
    return _rewrite(rw, graph, fits, record)


# ----------------------------------------------------------------------------- the float reference


def ideal_rates(graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each neuron population's rate (spikes per step, ``(N, n)``) in the chip graph read as
    an ANN: a host neuron's rate curve ``rates(x) / amplitude``; a chip compartment's
    ``clip((sum_syn W r_pre + bias) / vth, 0, 1)`` with NengoLoihi's float weights ``W`` (the
    pre amplitude and post gain included) and threshold ``vth``: the rate of reset by
    subtraction, i.e. of the balanced ReLU the population was converted from; a ``lif``
    compartment's is its LIF rate curve at the current ``J = drive / vth`` (per step of ``dt``)."""
    values: dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    rates: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        op = node.op
        if isinstance(op, ops.Input) or node.name in values:
            continue
        if isinstance(op, ops.LoihiSynapses):
            values[node.name] = synapse_current(graph, node, rates[chip.presynaptic(graph, node).name])
        elif isinstance(op, ops.LoihiCompartments):
            params = chip.compartment_params(graph, node)
            drive = sum(values[s] for s in node.inputs) + params.bias
            if op.neuron == "lif":  # the drive is the LIF current J, threshold 1
                rates[node.name] = op.dt * soft_lif_rate(drive / params.vth - 1.0, op.tau_rc, op.tau_ref, 0.0)
            else:
                rates[node.name] = np.clip(drive / params.vth, 0.0, 1.0)
        elif isinstance(op, ops.NEURON_OPS):
            x = values[node.inputs[0]]
            rate = neurons.by_op(op).rates(op, x) / op.amplitude
            rates[node.name] = rate.reshape(len(rate), -1)
        elif type(op) in EVALUATORS and all(i in values for i in node.inputs):
            values[node.name] = EVALUATORS[type(op)](node, [values[i] for i in node.inputs])
    return rates


def synapse_current(graph: Graph, node: Node, pre_rates: np.ndarray) -> np.ndarray:
    """The mean synaptic input ``(N, n_post)`` of a float ``loihi_synapses`` node for
    presynaptic rates ``(N, n_pre)``: its chip weights applied to the rates (synapses are
    linear, so the mean current is the weighted mean spike count)."""
    weight = chip.synapse_weights(graph, node)
    if node.op.kind == "dense":
        return pre_rates @ weight.T
    pre_shape = chip.presynaptic(graph, node).type.shape
    x = pre_rates.reshape(len(pre_rates), *pre_shape)
    out = correlate(x, weight, node.op.stride, node.op.pads, node.type.shape[1:])
    return out.reshape(len(out), -1)


def synapse_depths(graph: Graph) -> dict[str, int]:
    """Each chip population's synapse hops from the host (each hop delays spikes one step):
    ``1 + max`` over its presynaptic populations, host populations at depth 0."""
    depth: dict[str, int] = {}
    for node in graph.nodes:
        if isinstance(node.op, ops.LoihiCompartments):
            pres = [chip.presynaptic(graph, graph.node(s)) for s in node.inputs if not graph.node(s).op.delay]
            depth[node.name] = 1 + max((depth.get(p.name, 0) for p in pres), default=0)
    return depth


# ----------------------------------------------------------------------------- fitting


def channel_fit(node: Node, target: np.ndarray, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the drive correction ``(slope, offset)`` that inverts the least-squares
    line ``rate ~ k * target + c`` over examples and the channel's neurons (the target is
    exact, the simulated rate noisy, so the rate is the regressed variable): ``slope = 1/k``,
    ``offset = -c/k``; ``(1, 0)`` where the targets do not vary or ``k <= 0``."""
    channels = _channels(node)
    t = target.reshape(len(target), channels, -1).transpose(1, 0, 2).reshape(channels, -1)
    r = rate.reshape(len(rate), channels, -1).transpose(1, 0, 2).reshape(channels, -1)
    rm, tm = r.mean(axis=1), t.mean(axis=1)
    var = ((t - tm[:, None]) ** 2).mean(axis=1)
    cov = ((r - rm[:, None]) * (t - tm[:, None])).mean(axis=1)
    k = np.where(var > 0, cov / np.where(var > 0, var, 1.0), 0.0)
    ok = k > 0
    slope = np.ones(channels)
    slope[ok] = np.clip(1.0 / k[ok], *GAIN_RANGE)
    offset = np.where(ok, -(rm - k * tm) * slope, 0.0)
    return slope, offset


def channel_ratio(node: Node, target: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Per channel (axis 0 of the population's shape; each neuron of a vector):
    ``sum target / sum rate`` over examples and the channel's neurons; 1 where either sum is 0."""
    channels = _channels(node)
    t = target.reshape(len(target), channels, -1).sum(axis=(0, 2))
    r = rate.reshape(len(rate), channels, -1).sum(axis=(0, 2))
    ratio = np.ones(channels)
    ok = (t > 0) & (r > 0)
    ratio[ok] = t[ok] / r[ok]
    return ratio


def relative_error(rate: np.ndarray, target: np.ndarray) -> float:
    """``sum |rate - target| / sum |target|`` (the ``error`` column of ``snnc evaluate``)."""
    total = float(np.abs(target).sum())
    return float(np.abs(rate - target).sum()) / total if total else 0.0


def _channels(node: Node) -> int:
    return node.type.shape[0] if node.type.rank else 1


def _per_compartment(node: Node, gain: np.ndarray) -> np.ndarray:
    return np.repeat(gain, node.type.size // len(gain))


def _scaled_synapse(syn: Node, post: Node, gain: np.ndarray) -> np.ndarray:
    weight = f64(syn, "weight")
    if syn.op.kind == "dense":  # (n_post, n_pre)
        return (weight * _per_compartment(post, gain)[:, None]).astype(np.float32)
    return (weight * gain[:, None, None, None]).astype(np.float32)  # (F, C, kh, kw)


def _with_fits(graph: Graph, fits) -> Graph:
    return _rewrite(Rewriter(graph, "calibrate_loihi"), graph, fits, None)


def _rewrite(rw: Rewriter, graph: Graph, fits: dict[str, tuple[np.ndarray, np.ndarray]], record) -> Graph:
    """``graph`` with each population's drive ``g * (W s + bias) + shift * vth`` per channel:
    its synapse weights scaled by the gains ``g``, its bias ``g * bias + shift * vth``."""
    post_of = {s: n for n in graph.nodes if n.name in fits for s in n.inputs}
    for node in graph.nodes:
        if node.name in post_of:
            post = post_of[node.name]
            rw.keep(node, params={"weight": _scaled_synapse(node, post, fits[post.name][0])})
        elif node.name in fits:
            gain, shift = (_per_compartment(node, v) for v in fits[node.name])
            bias = f64(node, "bias") * gain + shift * chip.compartment_params(graph, node).vth
            meta = node.meta
            if record is not None:
                meta = {**meta, "chip_fit": {"gain": fits[node.name][0].tolist(), "shift": fits[node.name][1].tolist()}}
            rw.keep(node, params={"bias": bias.astype(np.float32)}, meta=meta)
        else:
            rw.keep(node)
    meta = graph.meta if record is None else {**graph.meta, "calibrate_loihi": record}
    return rw.finish(meta=meta)
