"""lower_loihi: a spiking graph becomes a Loihi graph: chip populations fed by synapses.

Loihi takes spikes, not analog values, and its compartments only sum weighted spikes: every
linear op between two neuron layers (convolutions, average pooling, reshapes, the affine
rescales threshold balancing inserts, residual adds) must become one weighted connection from
each presynaptic population. The first neuron layer (the one reading the graph input) stays
on the host, off-chip, as NengoLoihi requires, and sends its spikes to the chip; the output
layer reads the last chip spikes on the host. A recurrence (a chip population's spikes
through a ``delay`` back into a chip population) becomes a synapse with ``delay=1``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import neurons, ops
from ..graph import Graph, Node
from ..interpreter import EVALUATORS
from ..loihi.hardware import MAX_IN_AXONS
from .registry import register_pass
from .rewrite import Rewriter

#: linear ops a convolutional connection may pass through (each keeps the image geometry or
#: is a strided window); anything else becomes a dense connection
_CONV_CHAIN_OPS = (ops.Conv2d, ops.AvgPool2d, ops.Pad2d, ops.Affine, ops.Add, ops.Concat)
#: one-hot probes evaluated at once when measuring a dense connection
_PROBE_BATCH = 512


@register_pass("lower_loihi")
def lower_loihi(graph: Graph, *, dt: float = 0.001, adapt: bool = False, vmin: float = 0.0) -> Graph:
    """Turn each chip neuron layer into ``loihi_synapses`` (one per presynaptic population)
    feeding a ``loihi_compartments`` population with NengoLoihi's float parameters.

    - The linear map from each presynaptic population's spikes to a layer's input current is
      measured with the float interpreter: a convolutional connection (a chain of conv2d,
      grouped and dilated ones included, average pooling, padding, per-channel affines, adds
      and concats) becomes a ``conv`` synapse whose kernel is probed with unit impulses and then
      checked against the chain on random spikes; any other connection becomes a ``dense``
      synapse (one probe per presynaptic neuron), or an error when it has more presynaptic
      neurons than a core has input axons. What the chain adds without input is the
      compartments' bias.
    - Each neuron population becomes what its neuron type's ``loihi`` form says
      (:mod:`snnc.compiler.neurons`; a type without one is refused by name): ``if_neuron``
      (reset to zero, membrane starting at 0, as the chip does) becomes a ``relu`` population:
      NengoLoihi's threshold is ``1/dt``, so the ensemble gain is ``gain / threshold`` and the
      bias ``gain * b / (threshold * dt)``. ``lif_neuron`` becomes a ``lif`` population with
      ensemble gain ``gain * dt`` (the chip counts a spike as ``1/dt``) and bias
      ``gain * b + bias``.
    - A chip compartment resets to zero and starts at zero. ``adapt=false`` makes any other
      chip neuron (reset by subtraction, a membrane starting above zero) an error;
      ``adapt=true`` runs it with the chip's reset and start, with a note. The host input
      layer keeps its neurons either way (the loihi pipeline's choice: reset by subtraction
      from half the threshold on the host, where it costs nothing).
    - A ``delay`` of a chip population's spikes is a presynaptic population like any other:
      its connection becomes a ``loihi_synapses`` node with ``delay=1`` reading the delay
      (latency one input step, ``L`` steps, instead of the chip's one step: the chip
      population runs one step behind the spiking graph, so the recurrence keeps its timing).
      A delay must start at 0 (no spikes) and delay a chip population.
    - The chip differs from the IR's integrate-and-fire neuron in ways this pass cannot
      remove: it fires when ``v > threshold`` (not ``>=``), its membrane stops at ``vmin`` below,
      and each synapse delays spikes by one step. ``snnc evaluate --backend refsim-float``
      shows what these differences cost, apart from quantization.
    - ``vmin``: the chip populations' voltage floor in thresholds (``vmin * vth``, at most 0;
      the chip rounds it to ``-(2^k - 1)`` in its integer units). NengoLoihi's 0 turns each
      step's net negative input into lost charge: a neuron whose input has mean zero still
      fires. ``vmin=-1`` lets negative input cancel up to one threshold of earlier positive
      input (docs/loihi.md has the measurements).
    """
    if graph.stage != ops.SPIKING:
        from ..errors import PassError

        raise PassError(f"runs on spiking graphs; this one is {graph.stage} (run convert_to_spiking first)")
    rw = Rewriter(graph, "lower_loihi")
    lowered = next((n for n in graph.nodes if isinstance(n.op, ops.CHIP_OPS)), None)
    if lowered is not None:
        raise rw.fail(lowered, "the graph is already lowered to Loihi populations; lower_loihi runs once")
    if not dt > 0:
        raise rw.fail(graph.nodes[0], f"option dt={dt} must be positive")
    if not vmin <= 0:
        raise rw.fail(graph.nodes[0], f"option vmin={vmin} must be at most 0 (the chip's voltage floor, in thresholds)")
    sources = _sources(graph)
    host_neurons, chip_neurons = _split_neurons(rw, graph, sources)
    if not chip_neurons:
        raise rw.fail(host_neurons[0] if host_neurons else graph.nodes[0], "no neuron layer reads spikes: nothing to place on the chip")
    for node in host_neurons:
        bits = neurons.by_op(node.op).bits_per_event(node.op)
        if bits > 1:
            raise rw.fail(
                node, f"sends events of {bits:.2f} bits (burst or graded spikes) to the chip, whose spikes carry 1 bit "
                "(graded spikes are Loihi 2); convert with convert_to_spiking{bursts=1} (if) or {bits=1} (sigma_delta)",
            )
    on_host = _host_nodes(graph, {n.name for n in chip_neurons}, sources)
    _check_recurrences(rw, graph, {n.name for n in chip_neurons}, sources)
    for node in graph.nodes:
        if isinstance(node.op, ops.SpikeMaxPool2d):
            raise rw.fail(node, (
                "Loihi cannot gate spikes by rate; replace max pooling before convert_to_spiking "
                "(maxpool_to_relu, exact after a relu, then maxpool_to_avgpool, as the loihi pipeline does)"
            ))
        if node.name in {n.name for n in chip_neurons}:
            _lower_population(rw, graph, node, sorted(sources[node.inputs[0]]), dt, adapt, vmin)
        elif node.name in on_host:
            rw.keep(node)
    rw.note(host_neurons[0], f"{len(host_neurons)} input layer(s) run on the host and send spikes to the chip")
    return rw.finish(meta={**graph.meta, "loihi": {"dt": dt, "host_layers": [n.name for n in host_neurons]}})


# ----------------------------------------------------------------------------- structure


def _sources(graph: Graph) -> dict[str, set[str]]:
    """For each value: the neuron populations, delays and graph inputs it is a linear
    function of (a delay is a source: its input may come later)."""
    sources: dict[str, set[str]] = {}
    for node in graph.nodes:
        if isinstance(node.op, (ops.Input, ops.Delay, *ops.NEURON_OPS)):
            sources[node.name] = {node.name}
        else:
            sources[node.name] = set().union(*(sources[i] for i in node.inputs))
    return sources


def _split_neurons(rw: Rewriter, graph: Graph, sources) -> tuple[list[Node], list[Node]]:
    inputs = {n.name for n in graph.inputs}
    host, chip = [], []
    for node in graph.nodes:
        if not isinstance(node.op, ops.NEURON_OPS):
            continue
        feeds = sources[node.inputs[0]]
        if feeds <= inputs:
            host.append(node)
        elif feeds & inputs:
            if any(isinstance(graph.node(f).op, ops.Delay) for f in feeds):
                raise rw.fail(
                    node,
                    "is a recurrent layer reading the analog input; the chip only takes spikes, so the input "
                    "goes through one host layer first: put a layer before it (e.g. TimeDistributed(Dense) + relu)",
                )
            raise rw.fail(node, "reads both the analog input and spikes; the chip only takes spikes (the input goes through one host layer)")
        else:
            chip.append(node)
    return host, chip


def _host_nodes(graph: Graph, chip: set[str], sources) -> set[str]:
    """Nodes the host still runs: everything the outputs and the input layers read, except
    the linear ops that only feed chip populations (they become synapses)."""
    keep: set[str] = set()
    stack = [n.name for n in graph.outputs]
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        keep.add(name)
        node = graph.node(name)
        # a chip population reads its presynaptic populations through synapses, not its inputs
        stack.extend(sources[node.inputs[0]] if name in chip else node.inputs)
    return keep


def _check_recurrences(rw: Rewriter, graph: Graph, chip: set[str], sources) -> None:
    """Each delay a chip population reads delays a chip population's spikes from 0."""
    for name in chip:
        for pre in sources[graph.node(name).inputs[0]]:
            delay = graph.node(pre)
            if not isinstance(delay.op, ops.Delay):
                continue
            if delay.inputs[0] not in chip:
                what = graph.node(delay.inputs[0])
                raise rw.fail(
                    delay,
                    f"feeds the chip population %{name} but delays %{what.name} ({what.op.NAME}), not a chip "
                    "population; on Loihi a recurrence is a chip population's spikes delayed back into the chip",
                )
            if delay.op.init != 0:
                raise rw.fail(delay, f"starts at init={delay.op.init:g}; a delay of chip spikes starts with no spikes (init=0)")


# ----------------------------------------------------------------------------- one population


def _lower_population(rw: Rewriter, graph: Graph, node: Node, pres: list[str], dt: float, adapt: bool, vmin: float) -> None:
    region = _region(graph, node.inputs[0], set(pres))
    bias = _evaluate(region, {p: np.zeros((1, *graph.node(p).type.shape)) for p in pres}, node.inputs[0], graph)[0]
    chip_bias, compartment = _compartment_op(rw, node, bias, dt, adapt)
    compartment = dataclasses.replace(compartment, vmin=vmin)
    synapses = []
    for pre in pres:
        op, weight, how = _connection(rw, graph, region, node, pre, pres)
        if isinstance(graph.node(pre).op, ops.Delay):
            op, how = dataclasses.replace(op, delay=1), f"{how}, delayed one input step (a recurrence)"
        if not np.any(weight):
            rw.note(node, f"the connection from %{pre} has only zero weights; dropped")
            continue
        synapses.append(
            rw.insert(op, [rw.value(pre)], params={"weight": weight.astype(np.float32)}, name=f"{node.name}_from_{pre}")
        )
        rw.note(synapses[-1], how)
    if not synapses:
        raise rw.fail(node, "receives no spikes (every connection into it has zero weights)")
    rw.keep(node, op=compartment, params={"bias": chip_bias.astype(np.float32)}, inputs=synapses)


def _compartment_op(rw: Rewriter, node: Node, bias: np.ndarray, dt: float, adapt: bool):
    """The chip bias and ``loihi_compartments`` op of a population (its neuron type's ``loihi``
    form), noting or refusing where the chip runs it differently."""
    try:
        form = neurons.form(node.op, "loihi")(node.op, bias, dt)
    except neurons.NeuronError as e:
        raise rw.fail(node, f"{e}: it cannot run on the chip") from None
    if form.differs is not None and adapt:
        rw.note(node, form.differs.note)
    elif form.differs is not None:
        raise rw.fail(
            node, f"{form.differs.refusal}, or lower_loihi{{adapt=true}} to run it so (the loihi pipeline does)"
        )
    return np.asarray(form.bias).reshape(-1), form.compartments


def _region(graph: Graph, target: str, pres: set[str]) -> list[Node]:
    """The linear nodes between the presynaptic populations and ``target``, in graph order."""
    names, stack = set(), [target]
    while stack:
        name = stack.pop()
        if name in names or name in pres:
            continue
        names.add(name)
        stack.extend(graph.node(name).inputs)
    return [n for n in graph.nodes if n.name in names]


def _evaluate(region: list[Node], values: dict[str, np.ndarray], target: str, graph: Graph) -> np.ndarray:
    """The value of ``target`` (flattened per example) given the presynaptic values."""
    values = dict(values)
    for node in region:
        values[node.name] = EVALUATORS[type(node.op)](node, [values[i] for i in node.inputs])
    out = values[target]
    return out.reshape(out.shape[0], -1)


def _connection(rw: Rewriter, graph: Graph, region: list[Node], post: Node, pre: str, pres: list[str]):
    """The synapse op and float weight of the connection ``pre -> post``, and how it was found.
    A dense connection that no core could take is refused before its (slow) probe."""
    pre_type, target = graph.node(pre).type, post.inputs[0]
    zeros = {p: np.zeros((1, *graph.node(p).type.shape)) for p in pres}

    def response(x: np.ndarray) -> np.ndarray:
        feed = {p: np.broadcast_to(z, (len(x), *z.shape[1:])) for p, z in zeros.items()}
        feed[pre] = x
        return _evaluate(region, feed, target, graph) - _evaluate(region, zeros, target, graph)

    geometry = _conv_geometry(graph, region, pre, target)
    if geometry is not None:
        found = _probe_kernel(response, pre_type.shape, post.type.shape, *geometry)
        if found is not None:
            op, kernel = found
            return op, kernel, f"convolution {op.kernel[0]}x{op.kernel[1]} stride {op.stride[0]} from %{pre}"
    n_pre = pre_type.size
    if n_pre > MAX_IN_AXONS:
        raise rw.fail(post, _too_wide(pre, n_pre, post.type.size))
    columns = []
    for start in range(0, n_pre, _PROBE_BATCH):
        eye = np.zeros((min(_PROBE_BATCH, n_pre - start), n_pre))
        eye[np.arange(len(eye)), start + np.arange(len(eye))] = 1.0
        columns.append(response(eye.reshape(len(eye), *pre_type.shape)))
    weight = np.concatenate(columns).T
    op = ops.LoihiSynapses(kind="dense", units=post.type.size)
    return op, weight, f"dense {weight.shape[0]}x{weight.shape[1]} from %{pre}"


def _too_wide(pre: str, n_pre: int, n_post: int) -> str:
    """Why a dense connection cannot be placed: every presynaptic neuron of a dense synapse is
    one input axon of every core block it feeds, and a core has MAX_IN_AXONS."""
    return (
        f"the connection from %{pre} is not a convolution (only chains of conv2d, avg_pool2d, "
        f"per-channel affine, add and concat between CHW maps are), so it would be a dense "
        f"{n_post}x{n_pre} synapse: its {n_pre} presynaptic neurons exceed the {MAX_IN_AXONS} "
        f"input axons of a Loihi core; give it at most {MAX_IN_AXONS} presynaptic neurons "
        "(a smaller neuron layer before it, e.g. after a strided convolution)"
    )


def _conv_geometry(graph: Graph, region: list[Node], pre: str, target: str):
    """(kernel, stride, pad top/left) of the strided window chain from ``pre`` to ``target``,
    or None when the path is not a single chain of window and channel-wise ops.

    Grouped and dilated convolutions are convolutions too: a grouped one's full kernel is zero
    off its groups' channel blocks, a dilated one's between its taps; the probe measures those
    zeros and NengoLoihi stores them (``map_to_cores`` counts their synapse memory)."""
    if graph.node(pre).type.rank != 3 or graph.node(target).type.rank != 3:
        return None
    on_path = {pre}
    kernel, stride, pad = [1, 1], [1, 1], [0, 0]
    for node in region:
        reading = [i for i in node.inputs if i in on_path]
        if not reading:
            continue
        if len(reading) > 1 or not isinstance(node.op, _CONV_CHAIN_OPS):
            return None
        if isinstance(node.op, (ops.Conv2d, ops.AvgPool2d)):
            span = _window_span(node.op)
            for axis in (0, 1):
                kernel[axis] += (span[axis] - 1) * stride[axis]
                pad[axis] += node.op.pads[axis] * stride[axis]
                stride[axis] *= node.op.stride[axis]
        elif isinstance(node.op, ops.Pad2d):  # a window of one; its value is the bias's
            for axis in (0, 1):
                pad[axis] += node.op.pads[axis] * stride[axis]
        on_path.add(node.name)
    return tuple(kernel), tuple(stride), tuple(pad)


def _window_span(op) -> tuple[int, int]:
    """The input rows and columns one output of a window op reads: a dilated kernel spans
    ``dilation * (kernel - 1) + 1`` (its kernel is that larger kernel with zeros between the
    taps)."""
    dilation = getattr(op, "dilation", (1, 1))
    return tuple(d * (k - 1) + 1 for k, d in zip(op.kernel, dilation))


def _probe_kernel(response, in_shape, out_shape, kernel, stride, pad):
    """The kernel of a convolution equal to ``response``, probed at one output position whose
    window lies inside the input, then checked on random spikes; None if not a convolution."""
    c, h, w = in_shape
    f, ho, wo = out_shape
    origin = []
    for axis, size, out in ((0, h, ho), (1, w, wo)):
        first = math.ceil(pad[axis] / stride[axis])
        if first >= out or first * stride[axis] - pad[axis] + kernel[axis] > size:
            return None
        origin.append(first)
    (y0, x0), (kh, kw) = origin, kernel
    impulses = np.zeros((c * kh * kw, c, h, w))
    for k, (ci, u, v) in enumerate(np.ndindex(c, kh, kw)):
        impulses[k, ci, y0 * stride[0] - pad[0] + u, x0 * stride[1] - pad[1] + v] = 1.0
    out = response(impulses).reshape(-1, f, ho, wo)[:, :, y0, x0]
    weight = out.T.reshape(f, c, kh, kw)
    pads = (pad[0], pad[1], _end_pad(h, kh, stride[0], pad[0], ho), _end_pad(w, kw, stride[1], pad[1], wo))
    op = ops.LoihiSynapses(kind="conv", filters=f, kernel=(kh, kw), stride=stride, pads=pads)
    check = (np.random.default_rng(0).random((2, c, h, w)) < 0.3).astype(np.float64)
    expected = response(check)
    got = correlate(check, weight, stride, pads, (ho, wo)).reshape(2, -1)
    # the kernel is stored in float32: equal to that precision
    if not np.allclose(got, expected, rtol=1e-5, atol=1e-6 * (1 + np.abs(expected).max())):
        return None
    return op, weight


def correlate(x: np.ndarray, weight: np.ndarray, stride, pads, out_hw) -> np.ndarray:
    """``conv2d`` without bias, written out: lower_loihi checks its probed kernels with it (the check
    must not share code with the probe) and calibrate_loihi computes conv synapses' drives."""
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    (ho, wo), (sh, sw) = out_hw, stride
    out = np.zeros((len(x), weight.shape[0], ho, wo))
    for u, v in np.ndindex(*weight.shape[2:]):
        window = xp[:, :, u : u + sh * (ho - 1) + 1 : sh, v : v + sw * (wo - 1) + 1 : sw]
        out += np.einsum("bchw,fc->bfhw", window, weight[:, :, u, v])
    return out


def _end_pad(size: int, kernel: int, stride: int, pad: int, out: int) -> int:
    """The bottom/right padding that makes a window of ``kernel`` give exactly ``out`` outputs."""
    return max((out - 1) * stride + kernel - size - pad, 0)
