"""Lowering a spiking-stage Loihi graph (``format="float"`` chip ops) to a ``nengo.Network``
for NengoLoihi.

A Loihi graph has three parts, found by :func:`partition`:

- the host input layer: the graph inputs, linear ops on them and neuron populations
  (``if_neuron``, ``lif_neuron``, ...). It is lowered with the Nengo backend's builders (inputs
  and linear ops as Nodes) and each neuron type's ``loihi_host`` form
  (:mod:`snnc.compiler.neurons`); each population is an ensemble
  marked ``on_chip = False``, so NengoLoihi runs it in ``nengo.Simulator`` on the host and
  sends its spikes to the chip;
- the chip: each ``loihi_compartments`` node is an Ensemble of NengoLoihi neurons
  (``nengo.SpikingRectifiedLinear`` or ``nengo.LIF`` with the node's amplitude, gain and
  bias) and each of its ``loihi_synapses`` inputs a ``nengo.Connection`` between the two
  populations' ``.neurons`` with ``synapse=None`` (``nengo.Dense`` or
  ``nengo.Convolution`` transform);
- the host output layer (linear ops, ``readout`` and ``output`` after the chip): not in the
  network. snnc computes it from the chip populations' probed spikes (:mod:`.runner`), as the
  host would from spikes read off the chip.

The chip's weight per spike is NengoLoihi's ``transform / dt * pre amplitude * post gain``;
for a host population the pre amplitude is the op's ``amplitude`` (also for LIF, whose
``nengo.LIF`` amplitude is therefore the op's, not the Nengo backend's ``amplitude * dt``:
only which host neurons spiked reaches the chip).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import nengo
import nengo_loihi
import numpy as np

from snnc.backends.nengo.builder import BUILDERS as NENGO_BUILDERS
from snnc.backends.nengo.builder import Lowering
from snnc.backends.nengo.model import PresentedInput
from snnc.backends.nengo.transforms import same_pads
from snnc.compiler import neurons, ops
from snnc.compiler.errors import BuildError
from snnc.compiler.graph import Graph, Node

#: ops the host runs on each step's values, before or after the chip
HOST_LINEAR_OPS = (
    ops.Dense,
    ops.Conv2d,
    ops.AvgPool2d,
    ops.GlobalAvgPool,
    ops.Reshape,
    ops.Transpose,
    ops.Pad2d,
    ops.Affine,
    ops.Add,
    ops.Concat,
)
HOST_INPUT_OPS = (ops.Input, *HOST_LINEAR_OPS)
HOST_OUTPUT_OPS = (*HOST_LINEAR_OPS, ops.Readout, *ops.DECODED_OPS, ops.Output)
#: NengoLoihi's two convolution paddings
NENGO_PADDINGS = ("valid", "same")


@dataclass(frozen=True)
class Parts:
    """A Loihi graph's nodes by where they run, each list in graph order."""

    host_input: tuple[Node, ...]
    chip: tuple[Node, ...]
    host_output: tuple[Node, ...]


@dataclass
class ChipPopulation:
    """A ``loihi_compartments`` node as built: its ensemble and probes of its spikes and
    (integer) voltages, its shape and spike amplitude, and its synapse nodes."""

    ensemble: object
    spikes: object
    voltage: object
    shape: tuple[int, ...]
    amplitude: float
    synapses: tuple[str, ...]


@dataclass
class HostPopulation:
    """A host input-layer neuron population (off-chip ensemble) and a probe of its spikes."""

    ensemble: object
    spikes: object
    shape: tuple[int, ...]
    amplitude: float


@dataclass
class BuiltLoihi:
    """What :func:`snnc.backends.loihi.build` returns: the network, the simulator step
    ``dt``, the input Nodes' presented values (set before each example), the chip and host
    populations by node name, the presynaptic population of each synapse node, and the
    host output layer's nodes (computed from the chip spikes after a run)."""

    graph: Graph
    network: object
    dt: float
    presented: dict[str, PresentedInput] = field(default_factory=dict)
    chip: dict[str, ChipPopulation] = field(default_factory=dict)
    host: dict[str, HostPopulation] = field(default_factory=dict)
    synapse_pre: dict[str, str] = field(default_factory=dict)
    host_output: tuple[Node, ...] = ()

    def run(self, inputs, timesteps, *, batch_size: int | None = None, progress: bool | None = None,
            target: str = "sim", reset: str | None = None, voltage_traces: bool = False):
        """Run the network on each example of ``inputs``; see :func:`snnc.backends.loihi.run`
        (``batch_size`` is not used: NengoLoihi runs one example at a time). Returns a
        :class:`~.runner.LoihiResult`, a :class:`~snnc.compiler.simulate.SimulationResult`."""
        from .runner import run

        return run(self, inputs, timesteps, target, reset, voltage_traces, progress)


# ----------------------------------------------------------------------------- the graph's parts


def partition(graph: Graph) -> Parts:
    """Split ``graph`` into host input layer, chip and host output layer, checking that each
    part holds only what runs there and that the chip ops are NengoLoihi's float format."""
    chip_nodes = [n for n in graph.nodes if isinstance(n.op, ops.CHIP_OPS)]
    if not chip_nodes:
        raise BuildError(
            f"graph {graph.name} has no chip populations (loihi_synapses, loihi_compartments): "
            "the Loihi backend builds graphs lowered for Loihi"
        )
    _check_time(graph, chip_nodes)
    after_chip: set[str] = set()
    for node in graph.nodes:
        if isinstance(node.op, ops.CHIP_OPS) or any(i in after_chip for i in node.inputs):
            after_chip.add(node.name)
    host_input = [n for n in graph.nodes if n.name not in after_chip]
    host_output = [n for n in graph.nodes if n.name in after_chip and not isinstance(n.op, ops.CHIP_OPS)]
    for node in chip_nodes:
        if node.op.format != "float":
            raise BuildError(
                f"%{node.name}: {node.op.NAME} holds the chip's integers (format=int); the Loihi backend "
                "builds the float format (spiking stage), which NengoLoihi discretizes itself"
            )
    for node in host_input:
        if not (isinstance(node.op, HOST_INPUT_OPS) or neurons.by_op(node.op)):
            raise BuildError(
                f"%{node.name}: {node.op.NAME} cannot run in the host input layer of the Loihi backend "
                f"(it runs inputs, linear ops and if_neuron/lif_neuron before the chip)"
            )
    for node in host_output:
        if not isinstance(node.op, HOST_OUTPUT_OPS):
            raise BuildError(
                f"%{node.name}: {node.op.NAME} cannot run in the host output layer of the Loihi backend "
                "(it runs linear ops, readout and output on the chip's spikes)"
            )
        for name in node.inputs:
            source = graph.node(name)
            if name not in after_chip:
                raise BuildError(
                    f"%{node.name}: reads %{name}, computed before the chip; the Loihi backend's host output "
                    "layer reads only the chip's spikes"
                )
            if isinstance(source.op, ops.LoihiSynapses):
                raise BuildError(
                    f"%{node.name}: reads the synapse current %{name}; only chip spikes (loihi_compartments) "
                    "leave the chip"
                )
    for node in chip_nodes:
        _check_chip_node(graph, node)
    return Parts(tuple(host_input), tuple(chip_nodes), tuple(host_output))


def _check_time(graph: Graph, chip_nodes: list[Node]) -> None:
    """NengoLoihi presents constant inputs and has no delayed connections: refuse sequences
    and recurrences (refsim runs both)."""
    for node in graph.inputs:
        if node.op.sequence:
            raise BuildError(
                f"input %{node.name} is a sequence; the Loihi backend presents each example unchanged "
                "(refsim runs sequence inputs)"
            )
    for node in chip_nodes:
        if isinstance(node.op, ops.LoihiSynapses) and node.op.delay:
            raise BuildError(
                f"%{node.name}: a recurrent synapse delayed one input step (through %{node.inputs[0]}); "
                "NengoLoihi has no delayed connections, so the Loihi backend builds feed-forward networks "
                "(refsim runs recurrent ones)"
            )


def _check_chip_node(graph: Graph, node: Node) -> None:
    if isinstance(node.op, ops.LoihiCompartments):
        for name in node.inputs:
            if not isinstance(graph.node(name).op, ops.LoihiSynapses):
                raise BuildError(
                    f"%{node.name}: input %{name} is a {graph.node(name).op.NAME}; a chip population's "
                    "inputs are loihi_synapses"
                )
        return
    users = graph.users(node.name)
    if len(users) != 1 or not isinstance(users[0].op, ops.LoihiCompartments):
        raise BuildError(
            f"%{node.name}: a loihi_synapses node feeds exactly one loihi_compartments node "
            f"(read by {', '.join('%' + u.name for u in users) or 'nothing'})"
        )


def simulation_dt(graph: Graph, parts: Parts) -> float:
    """The step every chip population and host LIF population was made for (one for all)."""
    dts = {n.op.dt for n in parts.chip if isinstance(n.op, ops.LoihiCompartments)}
    dts |= {n.op.dt for n in parts.host_input if neurons.by_op(n.op) and hasattr(n.op, "dt")}
    if len(dts) != 1:
        raise BuildError(
            f"graph {graph.name}: its populations step with different dt ({sorted(dts)}); "
            "one NengoLoihi simulator step cannot serve them all"
        )
    return dts.pop()


# ----------------------------------------------------------------------------- building


def build_network(graph: Graph, block_shapes: bool = True) -> BuiltLoihi:
    """The NengoLoihi network of ``graph``; see :func:`snnc.backends.loihi.build`."""
    parts = partition(graph)
    dt = simulation_dt(graph, parts)
    nengo_loihi.set_defaults()
    lowering = Lowering(graph, dt)
    net = lowering.model.network
    net.seed = 0  # nothing random reaches the results; a seed keeps builds repeatable
    nengo_loihi.add_params(net)
    built = BuiltLoihi(graph, net, dt, host_output=parts.host_output)
    with net:
        for node in parts.host_input:
            if neurons.by_op(node.op):
                lowering.values[node.name] = _host_population(lowering, built, node)
            else:
                lowering.values[node.name] = NENGO_BUILDERS[type(node.op)](lowering, node)
        chip_side = {n.name for n in (*parts.chip, *parts.host_output)}
        for node in graph.nodes:
            if node.name not in chip_side:
                continue
            if isinstance(node.op, ops.LoihiCompartments):
                lowering.values[node.name] = _chip_population(lowering, built, node, block_shapes)
            elif isinstance(node.op, ops.Reshape) and node.inputs[0] in lowering.values:
                # a reshape of chip spikes (a flatten between layers) keeps the neurons' order
                lowering.values[node.name] = lowering.values[node.inputs[0]]
    built.presented = dict(lowering.model.presented)
    return built


def _host_population(lw: Lowering, built: BuiltLoihi, node: Node):
    """An off-chip ensemble stepping as the host population ``node`` (its neuron type's
    ``loihi_host`` form), fed its input as the current ``J`` (as the Nengo backend does)."""
    op = node.op
    n = node.type.size
    try:
        form = neurons.form(op, "loihi_host")(op, lw.model.dt)
    except neurons.NeuronError as e:
        raise BuildError(f"%{node.name}: {e}") from None
    ens = nengo.Ensemble(
        n, 1, neuron_type=form.neuron_type, gain=np.full(n, form.gain), bias=np.full(n, form.bias), label=node.name
    )
    built.network.config[ens].on_chip = False
    nengo.Connection(lw.source(node.inputs[0]), ens.neurons, synapse=form.synapse)
    probe = nengo.Probe(ens.neurons, synapse=None, label=f"{node.name}_spikes")
    built.host[node.name] = HostPopulation(ens, probe, node.type.shape, op.amplitude)
    return ens.neurons


def chip_neuron_type(node: Node):
    """NengoLoihi's neuron type for a ``loihi_compartments`` node (``configure_relu`` or
    ``configure_lif`` on the chip), starting from a zero membrane as the chip does."""
    op = node.op
    zero = nengo.dists.Choice([0.0])
    if op.neuron == "relu":
        if op.tau_ref != 0:
            raise BuildError(
                f"%{node.name}: relu compartments with tau_ref={op.tau_ref}: NengoLoihi's "
                "SpikingRectifiedLinear has no refractory period"
            )
        if op.vmin != 0:
            return floored_relu_type()(min_voltage=op.vmin, amplitude=op.amplitude, initial_state={"voltage": zero})
        return nengo.SpikingRectifiedLinear(amplitude=op.amplitude, initial_state={"voltage": zero})
    return nengo.LIF(
        tau_rc=op.tau_rc,
        tau_ref=op.tau_ref,
        amplitude=op.amplitude,
        min_voltage=op.vmin,
        initial_state={"voltage": zero, "refractory_time": zero},
    )


def chip_synapse(op: ops.LoihiCompartments):
    """The synapse of the connections into a chip population: ``nengo.Lowpass(tau_s)``,
    which NengoLoihi makes the compartments' current decay, or None (``decay_u = 1``)."""
    return nengo.Lowpass(op.tau_s) if op.tau_s > 0 else None


@functools.cache
def floored_relu_type() -> type:
    """``nengo.SpikingRectifiedLinear`` with a voltage floor below zero on the chip (defined
    and registered with NengoLoihi's builder on first use). NengoLoihi's ``configure_relu``
    fixes ``vmin = 0``; this type's builder runs it and then sets the compartments' ``vmin``
    to ``min_voltage`` thresholds, ``min_voltage / dt`` rounded to float32, as
    :func:`snnc.compiler.loihi.chip.compartment_params` computes it."""
    from nengo.params import NumberParam
    from nengo_loihi.builder import Builder
    from nengo_loihi.builder.ensemble import build_relu

    class FlooredSpikingRectifiedLinear(nengo.SpikingRectifiedLinear):
        min_voltage = NumberParam("min_voltage", high=0)

        def __init__(self, min_voltage=0.0, amplitude=1, initial_state=None):
            super().__init__(amplitude=amplitude, initial_state=initial_state)
            self.min_voltage = min_voltage

    @Builder.register(FlooredSpikingRectifiedLinear)
    def build_floored_relu(model, relu, neurons, block):
        build_relu(model, relu, neurons, block)
        block.compartment.vmin = float(np.float32(relu.min_voltage * (1.0 / model.dt)))

    return FlooredSpikingRectifiedLinear


def _chip_population(lw: Lowering, built: BuiltLoihi, node: Node, block_shapes: bool):
    """An ensemble of ``node``'s compartments (gain and bias as given, encoders unused), its
    block shape, probes, and a connection from each synapse node's presynaptic neurons."""
    op = node.op
    n = node.type.size
    ens = nengo.Ensemble(
        n,
        1,
        neuron_type=chip_neuron_type(node),
        gain=np.full(n, op.gain),
        bias=node.params["bias"].astype(np.float64),
        label=node.name,
    )
    cores = node.meta.get("cores") or {}
    if block_shapes and cores.get("block_shape"):
        block_shape = tuple(int(d) for d in cores["block_shape"])
        if len(block_shape) != len(node.type.shape):
            raise BuildError(
                f"%{node.name}: block_shape {list(block_shape)} does not match the population's "
                f"shape {list(node.type.shape)}"
            )
        built.network.config[ens].block_shape = nengo_loihi.BlockShape(block_shape, node.type.shape)
    pres = set()
    for name in node.inputs:
        synapse = lw.graph.node(name)
        pre_name, pre = _presynaptic(lw, built, synapse)
        if pre_name in pres:
            raise BuildError(
                f"%{node.name}: two synapse nodes from %{pre_name}; the IR has one loihi_synapses node "
                "per presynaptic population"
            )
        pres.add(pre_name)
        built.synapse_pre[name] = pre_name
        transform = synapse_transform(synapse, lw.shape(synapse.inputs[0]))
        nengo.Connection(pre, ens.neurons, transform=transform, synapse=chip_synapse(op), label=name)
    built.chip[node.name] = ChipPopulation(
        ensemble=ens,
        spikes=nengo.Probe(ens.neurons, synapse=None, label=f"{node.name}_spikes"),
        voltage=nengo.Probe(ens.neurons, "voltage", synapse=None, label=f"{node.name}_voltage"),
        shape=node.type.shape,
        amplitude=op.amplitude,
        synapses=node.inputs,
    )
    return ens.neurons


def _presynaptic(lw: Lowering, built: BuiltLoihi, synapse: Node):
    """The population name and ``.neurons`` whose spikes ``synapse`` carries (through
    reshapes, which keep the neurons' order)."""
    pre = lw.values.get(synapse.inputs[0])
    if isinstance(pre, nengo.ensemble.Neurons):
        for name, population in [*built.host.items(), *built.chip.items()]:
            if population.ensemble is pre.ensemble:
                return name, pre
    raise BuildError(
        f"%{synapse.name}: its input %{synapse.inputs[0]} is not a neuron population's spikes "
        "(if_neuron, lif_neuron or loihi_compartments, possibly reshaped)"
    )


def synapse_transform(node: Node, in_shape: tuple[int, ...]):
    """The ``nengo.Dense`` or ``nengo.Convolution`` transform of a float-format
    ``loihi_synapses`` node whose input has shape ``in_shape``."""
    op = node.op
    weight = node.params["weight"].astype(np.float64)
    if op.kind == "dense":
        return nengo.Dense(weight.shape, init=weight)
    c, h, w = in_shape
    conv = nengo.Convolution(
        op.filters,
        nengo.transforms.ChannelShape((c, h, w), channels_last=False),
        kernel_size=op.kernel,
        strides=op.stride,
        padding=conv_padding(node, in_shape),
        channels_last=False,
        init=weight.transpose(2, 3, 1, 0),  # (F, C, kh, kw) -> Nengo's (kh, kw, C, F)
    )
    assert conv.output_shape.shape == node.type.shape, (conv.output_shape.shape, node.type.shape)
    return conv


def conv_padding(node: Node, in_shape: tuple[int, ...]) -> str:
    """The Nengo padding (``"valid"`` or ``"same"``) equal to the node's explicit pads.

    They are equal when the window offsets (top, left pads) and the output size agree: every
    output element then reads the same input elements, zero outside the input. Nengo's
    ``"same"`` has output ``ceil(size / stride)`` and puts the smaller half of the padding at
    the top/left; ``"valid"`` has no padding."""
    op = node.op
    _, h, w = in_shape
    pt, pl, _, _ = op.pads
    out_hw = node.type.shape[1:]
    sizes = list(zip((h, w), op.kernel, op.stride))
    offsets = {  # padding: (top and left pads, output size)
        "valid": ((0, 0), tuple((size - k) // s + 1 for size, k, s in sizes)),
        "same": (same_pads((h, w), op.kernel, op.stride)[:2], tuple(-(-size // s) for size, _, s in sizes)),
    }
    for padding in NENGO_PADDINGS:
        top_left, out_size = offsets[padding]
        if (pt, pl) == tuple(top_left) and tuple(out_hw) == out_size:
            return padding
    kh, kw = op.kernel
    raise BuildError(
        f"%{node.name}: conv pads {list(op.pads)} (kernel {kh}x{kw}, stride {list(op.stride)}, "
        f"input {h}x{w}) are neither Nengo's 'valid' nor 'same' padding, "
        "the only ones NengoLoihi convolutions have"
    )
