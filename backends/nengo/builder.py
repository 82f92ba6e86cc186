"""Lowering a spiking graph to a ``nengo.Network``, one small build function per op type.

Every connection but a delay's has ``synapse=None``, so each step's spikes reach the next
layer in the same step, as in the spiking interpreter. Each IR value becomes one Nengo object:

- inputs: a Node presenting the example at every step (a sequence: each input step held
  for its window of steps);
- linear ops: a passthrough ``Node(size_in=n)`` summing connections with Nengo transforms
  (``Dense``, ``Convolution``, ``Sparse``, sliced connections for layout changes) plus
  constant Nodes for biases; ``reshape`` reuses its input's object;
- neurons: an Ensemble's neurons (the neuron type's ``nengo`` form from the registry,
  :mod:`snnc.compiler.neurons`), fed the whole current through an identity connection so ``J``
  is exactly the interpreter's value;
- the max-pool gate: a Node running the :class:`~.gate.MaxGate` process;
- readouts: no object; the output's probe records the readout's input and the runner
  averages it over time;
- delays: a passthrough Node fed by their input through the discrete filter ``z^-L``
  (``nengo.LinearFilter([1], [1, 0, ..., 0])``, ``L`` zeros): the value ``L`` steps ago, 0
  before. Nengo runs a synapse as an update, so a cycle through it is no algebraic loop. The
  connection is made once the whole graph is built (a delay's input comes later).
- sigmoid, tanh and softmax after a readout: no object; the runner applies them to the
  averaged value (:attr:`~.model.OutputProbe.host`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import nengo
import numpy as np

from snnc.compiler import neurons, ops
from snnc.compiler.errors import BuildError
from snnc.compiler.graph import Graph, Node

from . import transforms as tr
from .gate import MaxGate
from .model import NengoModel, NeuronProbe, OutputProbe, PresentedInput

DEFAULT_DT = 0.001

#: a discrete integrator ``y_t = y_{t-1} + x_t``: on a neuron probe it counts spikes
SPIKE_COUNTER = nengo.LinearFilter([1, 0], [1, -1], analog=False)

BuildFunction = Callable[["Lowering", Node], object]
BUILDERS: dict[type, BuildFunction] = {}


def lowers(op_type):
    def register(fn):
        BUILDERS[op_type] = fn
        return fn

    return register


class Lowering:
    """The network under construction and the Nengo object of each IR value built so far."""

    def __init__(self, graph: Graph, dt: float, delay: int = 1):
        self.graph = graph
        self.model = NengoModel(graph, nengo.Network(label=graph.name), dt, delay)
        self.values: dict[str, object] = {}
        #: readout name -> the value it averages (readouts are computed from probes)
        self.readouts: dict[str, str] = {}
        #: host functions of decoded values (sigmoid, tanh, softmax after a readout), by name
        self.decoded: dict[str, Node] = {}

    def source(self, name: str):
        if name in self.decoded:
            raise BuildError(f"%{name}: {self.graph.node(name).op.NAME} on the host can only feed outputs in the Nengo backend")
        if name in self.readouts:
            users = [f"%{n.name}" for n in self.graph.users(name) if not isinstance(n.op, ops.Output)]
            raise BuildError(
                f"%{name}: a readout can only feed outputs in the Nengo backend (read by {', '.join(users)})"
            )
        return self.values[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.node(name).type.shape

    @staticmethod
    def passthrough(node: Node) -> nengo.Node:
        """A Node that sums its incoming connections: ``node``'s value."""
        return nengo.Node(size_in=node.type.size, label=node.name)

    @staticmethod
    def connect(pre, post, transform=None, synapse=None) -> None:
        if transform is None:
            nengo.Connection(pre, post, synapse=synapse)
        else:
            nengo.Connection(pre, post, transform=transform, synapse=synapse)

    def constant(self, post, values, label: str, transform=None) -> None:
        """Add the constant ``transform @ values`` (or ``values``) to ``post`` every step."""
        values = np.asarray(values, dtype=np.float64)
        self.connect(nengo.Node(values, label=label), post, transform)

    def channel_bias(self, post, bias, shape, label: str) -> None:
        """Add a per-channel ``bias`` to a value of ``shape`` (skipped when all zero)."""
        if not np.any(bias):
            return
        if len(shape) == 1:
            self.constant(post, bias, label)
        else:
            indices, ones = tr.channel_broadcast(shape)
            self.constant(post, bias, label, nengo.Sparse((math.prod(shape), shape[0]), indices, ones))

    def pad(self, x, shape, pads, value, label: str) -> nengo.Node:
        """A padded copy of the ``(C, H, W)`` value ``x``, padding filled with ``value`` (one
        number, or one per channel)."""
        c, h, w = shape
        pt, pl, pb, pr = pads
        size = c * (h + pt + pb) * (w + pl + pr)
        padded = nengo.Node(size_in=size, label=label)
        self.connect(x, padded[tr.as_index(tr.padded_positions(shape, pads))])
        if np.any(value):
            border = tr.border_positions(shape, pads)
            channel = border // ((h + pt + pb) * (w + pl + pr))
            indices = np.stack([border, np.zeros_like(border)], axis=1)
            fill = nengo.Sparse((size, 1), indices, np.broadcast_to(value, (c,))[channel])
            self.constant(padded, [1.0], f"{label}_value", fill)
        return padded


def build_model(graph: Graph, dt: float | None = None, delay: int = 1) -> NengoModel:
    """``graph`` as a network; ``delay``: the simulation steps each ``delay`` op spans."""
    dt = _simulation_dt(graph, dt)
    lowering = Lowering(graph, dt, delay)
    with lowering.model.network:
        for node in graph.nodes:
            build = BUILDERS.get(type(node.op)) or (_neurons if neurons.by_op(node.op) else None)
            if build is None:
                raise BuildError(
                    f"%{node.name}: the Nengo backend has no lowering for op {node.op.NAME} "
                    f"(it builds spiking graphs; lowered ops: {', '.join(sorted(t.NAME for t in (*BUILDERS, *neurons.op_types())))})"
                )
            value = build(lowering, node)
            if value is not None:
                lowering.values[node.name] = value
        for node in graph.delays:
            _close_delay(lowering, node)
    return lowering.model


def _simulation_dt(graph: Graph, dt: float | None) -> float:
    """``dt``, or the step of the populations whose op has one (LIF); they step with the
    simulator's ``dt``, so theirs must agree with it."""
    lif_dts = {n.op.dt for n in _timed_neurons(graph)}
    if dt is None:
        if len(lif_dts) > 1:
            raise BuildError(
                f"graph {graph.name} has LIF neurons with different dt ({sorted(lif_dts)}); "
                "one simulator step cannot serve them all"
            )
        return lif_dts.pop() if lif_dts else DEFAULT_DT
    for node in _timed_neurons(graph):
        if node.op.dt != dt:
            raise BuildError(
                f"%{node.name}: LIF neurons step with dt={node.op.dt} but the simulator's dt is {dt}"
            )
    return dt


def _timed_neurons(graph: Graph) -> list[Node]:
    """The neuron populations whose op says the step ``dt`` they were made for."""
    return [n for n in graph.nodes if neurons.by_op(n.op) and hasattr(n.op, "dt")]


# ----------------------------------------------------------------------------- graph border


@lowers(ops.Input)
def _input(lw: Lowering, node: Node):
    presented = PresentedInput(node.type.size, lw.model.dt)
    lw.model.presented[node.name] = presented
    lw.model.sequence_inputs[node.name] = node.op.sequence
    lw.model.inputs[node.name] = nengo.Node(presented, size_out=node.type.size, label=node.name)
    return lw.model.inputs[node.name]


@lowers(ops.Output)
def _output(lw: Lowering, node: Node):
    value, host = node.inputs[0], []
    while value in lw.decoded:  # host functions between the readout and the output
        host.insert(0, lw.decoded[value])
        value = host[0].inputs[0]
    running_mean = value in lw.readouts
    if host and not running_mean:
        raise BuildError(f"%{host[0].name}: {host[0].op.NAME} runs on the host on a readout's value; it reads %{value}")
    target = lw.source(lw.readouts[value] if running_mean else value)
    probe = nengo.Probe(target, synapse=None, label=node.name)
    lw.model.outputs[node.name] = OutputProbe(probe, node.type.shape, running_mean, tuple(host), node.op.sequence)


@lowers(ops.Readout)
def _readout(lw: Lowering, node: Node):
    lw.readouts[node.name] = node.inputs[0]


def _decoded(lw: Lowering, node: Node):
    lw.decoded[node.name] = node


for _op in ops.DECODED_OPS:
    lowers(_op)(_decoded)


# ----------------------------------------------------------------------------- linear ops


@lowers(ops.Dense)
def _dense(lw: Lowering, node: Node):
    out = lw.passthrough(node)
    lw.connect(lw.source(node.inputs[0]), out, node.params["weight"].astype(np.float64))
    lw.channel_bias(out, node.params["bias"], node.type.shape, f"{node.name}_bias")
    return out


@lowers(ops.Conv2d)
def _conv2d(lw: Lowering, node: Node):
    """One ``nengo.Convolution`` per group, on channel slices of the input. Pads that
    Nengo's ``"same"`` does not produce become an explicit padded copy; dilation becomes a
    kernel with zeros between its taps."""
    op = node.op
    x, (c, h, w) = lw.source(node.inputs[0]), lw.shape(node.inputs[0])
    weight = tr.dilated_kernel(node.params["weight"].astype(np.float64), op.dilation)
    kernel = weight.shape[2:]
    if not any(op.pads):
        padding = "valid"
    elif op.pads == tr.same_pads((h, w), kernel, op.stride):
        padding = "same"
    else:
        x = lw.pad(x, (c, h, w), op.pads, 0.0, f"{node.name}_pad")
        h, w, padding = h + op.pads[0] + op.pads[2], w + op.pads[1] + op.pads[3], "valid"
    out = lw.passthrough(node)
    g = op.groups
    in_part, out_part = c // g * h * w, node.type.size // g
    filters = op.filters // g
    for k in range(g):
        conv = nengo.Convolution(
            filters,
            (c // g, h, w),
            kernel_size=kernel,
            strides=op.stride,
            padding=padding,
            channels_last=False,
            init=weight[k * filters : (k + 1) * filters].transpose(2, 3, 1, 0),
        )
        pre = x if g == 1 else x[k * in_part : (k + 1) * in_part]
        post = out if g == 1 else out[k * out_part : (k + 1) * out_part]
        lw.connect(pre, post, conv)
    lw.channel_bias(out, node.params["bias"], node.type.shape, f"{node.name}_bias")
    return out


@lowers(ops.AvgPool2d)
def _avg_pool(lw: Lowering, node: Node):
    op = node.op
    in_shape = lw.shape(node.inputs[0])
    indices, values = tr.avg_pool_weights(
        in_shape, node.type.shape, op.kernel, op.stride, op.pads, op.count_include_pad
    )
    return _sparse_map(lw, node, indices, values)


@lowers(ops.GlobalAvgPool)
def _global_avg_pool(lw: Lowering, node: Node):
    return _sparse_map(lw, node, *tr.global_pool_weights(lw.shape(node.inputs[0])))


def _sparse_map(lw: Lowering, node: Node, indices, values) -> nengo.Node:
    """``node``'s value as a sparse weighting of its input (``indices``: output, input)."""
    shape = (node.type.size, math.prod(lw.shape(node.inputs[0])))
    out = lw.passthrough(node)
    lw.connect(lw.source(node.inputs[0]), out, nengo.Sparse(shape, indices, values))
    return out


@lowers(ops.Reshape)
def _reshape(lw: Lowering, node: Node):
    return lw.source(node.inputs[0])  # same elements in the same (row-major) order


@lowers(ops.Transpose)
def _transpose(lw: Lowering, node: Node):
    out = lw.passthrough(node)
    order = tr.transposed_order(lw.shape(node.inputs[0]), node.op.perm)
    lw.connect(lw.source(node.inputs[0])[order], out)
    return out


@lowers(ops.Pad2d)
def _pad2d(lw: Lowering, node: Node):
    value = node.params["values"] if node.op.per_channel else node.op.value
    return lw.pad(lw.source(node.inputs[0]), lw.shape(node.inputs[0]), node.op.pads, value, node.name)


@lowers(ops.Affine)
def _affine(lw: Lowering, node: Node):
    shape = node.type.shape
    out = lw.passthrough(node)
    scale = tr.per_channel(node.params["scale"], shape)
    diagonal = np.stack([np.arange(len(scale))] * 2, axis=1)  # elementwise: one product per element
    lw.connect(lw.source(node.inputs[0]), out, nengo.Sparse((len(scale), len(scale)), diagonal, scale))
    lw.channel_bias(out, node.params["shift"], shape, f"{node.name}_shift")
    return out


@lowers(ops.Add)
def _add(lw: Lowering, node: Node):
    out = lw.passthrough(node)
    for name in node.inputs:
        lw.connect(lw.source(name), out)
    return out


@lowers(ops.Concat)
def _concat(lw: Lowering, node: Node):
    out = lw.passthrough(node)
    positions = tr.concat_positions([lw.shape(name) for name in node.inputs], node.op.axis)
    for name, where in zip(node.inputs, positions):
        lw.connect(lw.source(name), out[tr.as_index(where)])
    return out


# ----------------------------------------------------------------------------- stateful ops


@lowers(ops.Delay)
def _delay(lw: Lowering, node: Node):
    return lw.passthrough(node)  # fed by _close_delay once its input is built


def _close_delay(lw: Lowering, node: Node) -> None:
    """Feed the delay's Node its input through ``z^-L``: ``y_t = x_{t-L}``, and ``init``
    while ``t <= L`` (the filter delays ``x - init``, and ``init`` is added undelayed)."""
    delayed = nengo.LinearFilter([1], [1] + [0] * lw.model.delay, analog=False)
    out = lw.values[node.name]
    lw.connect(lw.source(node.inputs[0]), out, synapse=delayed)
    if node.op.init != 0:
        init = np.full(node.type.size, float(node.op.init))
        lw.connect(nengo.Node(-init, label=f"{node.name}_init"), out, synapse=delayed)
        lw.constant(out, init, f"{node.name}_init_value")


def _probed_ensemble(lw: Lowering, node: Node, neuron_type, gain, bias, spike_value: float, synapse=None):
    """An ensemble of ``node``'s neurons fed ``node``'s input as the current ``J`` (through
    ``synapse``), with a probe counting its spikes."""
    n = node.type.size
    ens = nengo.Ensemble(
        n, 1, neuron_type=neuron_type, gain=np.full(n, gain), bias=np.full(n, bias), label=node.name
    )
    lw.connect(lw.source(node.inputs[0]), ens.neurons, synapse=synapse)
    probe = nengo.Probe(ens.neurons, synapse=SPIKE_COUNTER, label=f"{node.name}_spikes")
    lw.model.neurons[node.name] = NeuronProbe(ens, probe, node.type.shape, spike_value, node.op)
    return ens.neurons


def _neurons(lw: Lowering, node: Node):
    """A population as its neuron type's ``nengo`` form (neuron type, ensemble gain and bias),
    each spike worth the op's amplitude."""
    try:
        form = neurons.form(node.op, "nengo")(node.op, lw.model.dt)
    except neurons.NeuronError as e:
        raise BuildError(f"%{node.name}: {e}") from None
    return _probed_ensemble(lw, node, form.neuron_type, form.gain, form.bias, node.op.amplitude, form.synapse)


@lowers(ops.SpikeMaxPool2d)
def _spike_max_pool(lw: Lowering, node: Node):
    op = node.op
    in_shape = lw.shape(node.inputs[0])
    gate = MaxGate(in_shape, node.type.shape, op.kernel, op.stride, op.pads)
    out = nengo.Node(gate, size_in=math.prod(in_shape), size_out=node.type.size, label=node.name)
    lw.connect(lw.source(node.inputs[0]), out)
    return out
