"""Small Loihi networks built twice, as a float-format snnc graph and as the nengo network
NengoLoihi builds from the same numbers, so tests can compare snnc's Loihi numerics with
NengoLoihi's own blocks, synapses and discretization.

A network: a host input population (``if_neuron`` / an off-chip SpikingRectifiedLinear
ensemble) then chip layers, each a population with one or more synapse inputs (from the host
population, ``pre=-1``, or an earlier chip layer).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np

from snnc.compiler import ops
from snnc.compiler.graph import GraphBuilder


@dataclass
class Syn:
    """One synapse input: dense ``weight (units, n_in)`` or conv ``weight (F, C, kh, kw)``."""

    pre: int
    weight: np.ndarray
    kind: str = "dense"
    stride: tuple[int, int] = (1, 1)
    padding: str = "valid"  # nengo's Convolution padding; the IR gets the explicit pads


@dataclass
class Layer:
    neuron: str
    gain: float
    bias: np.ndarray
    synapses: list[Syn]
    block_shape: tuple[int, ...] | None = None
    amplitude: float = 1.0
    tau_rc: float = 0.02
    tau_ref: float = 0.002


@dataclass
class Net:
    host_shape: tuple[int, ...]
    layers: list[Layer]
    host_amplitude: float = 1.0
    dt: float = 0.001


def normal32(rng, *shape, scale=1.0):
    """Normal random numbers times ``scale``, as float32 (the IR's parameter type)."""
    return (rng.normal(size=shape) * scale).astype(np.float32)


def dense_net(rng, weight_scale=1.0) -> Net:
    """host (8) -> relu (6, split 4+2) -> lif (5, split 2+2+1), plus a host -> lif residual."""
    return Net(
        host_shape=(8,),
        host_amplitude=0.5,
        layers=[
            Layer("relu", gain=2.5, bias=normal32(rng, 6), block_shape=(4,), amplitude=0.25,
                  synapses=[Syn(-1, normal32(rng, 6, 8, scale=weight_scale))]),
            Layer("lif", gain=0.7, bias=normal32(rng, 5), block_shape=(2,), amplitude=0.8, tau_rc=0.03, tau_ref=0.003,
                  synapses=[Syn(0, normal32(rng, 5, 6, scale=weight_scale)), Syn(-1, normal32(rng, 5, 8, scale=0.1))]),
        ],
    )  # fmt: skip


def conv_net(rng) -> Net:
    """host (2, 7, 7) -> relu conv 3x3 same (4, 7, 7) split (2, 3, 4) -> lif conv 3x3 stride 2
    valid (3, 3, 3) split (2, 2, 2) -> relu dense (4)."""
    return Net(
        host_shape=(2, 7, 7),
        host_amplitude=0.75,
        dt=0.002,
        layers=[
            Layer("relu", gain=1.5, bias=normal32(rng, 4 * 7 * 7), block_shape=(2, 3, 4),
                  synapses=[Syn(-1, normal32(rng, 4, 2, 3, 3), kind="conv", padding="same")]),
            Layer("lif", gain=0.3, bias=normal32(rng, 3 * 3 * 3), block_shape=(2, 2, 2), amplitude=0.5,
                  synapses=[Syn(0, normal32(rng, 3, 4, 3, 3), kind="conv", stride=(2, 2))]),
            Layer("relu", gain=1.0, bias=normal32(rng, 4), synapses=[Syn(1, normal32(rng, 4, 27))]),
        ],
    )  # fmt: skip


def conv_out(size: int, k: int, s: int, padding: str) -> tuple[int, int, int]:
    """Output size and (top, bottom) pads of nengo's Convolution (``npconv2d`` padding)."""
    out = -(-size // s) if padding == "same" else (size - k) // s + 1
    total = max((out - 1) * s + k - size, 0) if padding == "same" else 0
    return out, total // 2, total - total // 2


def _layer_shape(net: Net, syn: Syn, pre_shape) -> tuple[int, ...]:
    if syn.kind == "dense":
        return (syn.weight.shape[0],)
    f, _, kh, kw = syn.weight.shape
    ho, _, _ = conv_out(pre_shape[1], kh, syn.stride[0], syn.padding)
    wo, _, _ = conv_out(pre_shape[2], kw, syn.stride[1], syn.padding)
    return (f, ho, wo)


def shapes_of(net: Net) -> list[tuple[int, ...]]:
    """The population shapes: ``[host, layer 0, layer 1, ...]``."""
    shapes = [tuple(net.host_shape)]
    for layer in net.layers:
        syn = layer.synapses[0]
        shapes.append(_layer_shape(net, syn, shapes[syn.pre + 1]))
    return shapes


def snnc_graph(net: Net):
    """The float-format spiking graph; returns ``(graph, [(compartments, [synapses])...])``."""
    shapes = shapes_of(net)
    b = GraphBuilder("loihi_net", stage=ops.SPIKING)
    x = b.input("x", shapes[0])
    pops = [b.add(ops.IfNeuron(amplitude=net.host_amplitude), [x], name="host")]
    names = []
    for k, layer in enumerate(net.layers):
        syn_names = []
        for syn in layer.synapses:
            pre_shape = shapes[syn.pre + 1]
            if syn.kind == "dense":
                op = ops.LoihiSynapses(kind="dense", units=syn.weight.shape[0])
            else:
                f, _, kh, kw = syn.weight.shape
                _, pt, pb = conv_out(pre_shape[1], kh, syn.stride[0], syn.padding)
                _, pl, pr = conv_out(pre_shape[2], kw, syn.stride[1], syn.padding)
                op = ops.LoihiSynapses(
                    kind="conv", filters=f, kernel=(kh, kw), stride=syn.stride, pads=(pt, pl, pb, pr)
                )
            params = {"weight": np.asarray(syn.weight, dtype=np.float32)}
            syn_names.append(b.add(op, [pops[syn.pre + 1]], params=params, name=f"syn{k}"))
        comp = ops.LoihiCompartments(
            neuron=layer.neuron,
            gain=layer.gain,
            amplitude=layer.amplitude,
            dt=net.dt,
            tau_rc=layer.tau_rc,
            tau_ref=layer.tau_ref if layer.neuron == "lif" else 0.0,
        )
        bias = np.asarray(layer.bias, dtype=np.float32).reshape(-1)
        pops.append(b.add(comp, syn_names, params={"bias": bias}, name=f"pop{k}"))
        names.append((pops[-1], syn_names))
    b.output(b.add(ops.Readout(), [pops[-1]]))
    graph = b.build()
    return graph, [(graph.node(p), [graph.node(s) for s in ss]) for p, ss in names]


def blocks_of(shape, block_shape) -> list[dict]:
    """Core blocks (origin/shape tiles) in the order nengo-loihi's ``split_block`` makes them."""
    block_shape = tuple(shape) if block_shape is None else tuple(block_shape)
    ranges = [range(0, n, i) for n, i in zip(shape, block_shape)]
    return [
        {"origin": list(o), "shape": [min(a + s, n) - a for a, s, n in zip(o, block_shape, shape)]}
        for o in itertools.product(*ranges)
    ]


def nengo_model(net: Net, discretize: bool = False):
    """Build the nengo network with NengoLoihi's builder (split, not discretized unless asked).

    Returns the model and, per chip layer, its list of core blocks (LoihiBlocks)."""
    import nengo
    import nengo_loihi
    from nengo_loihi.builder import Model

    shapes = shapes_of(net)
    with nengo.Network(seed=0) as network:
        nengo_loihi.add_params(network)
        n_host = int(np.prod(shapes[0]))
        stim = nengo.Node(np.zeros(n_host))
        host = nengo.Ensemble(
            n_host,
            1,
            neuron_type=nengo.SpikingRectifiedLinear(amplitude=net.host_amplitude),
            gain=np.ones(n_host),
            bias=np.zeros(n_host),
        )
        network.config[host].on_chip = False
        nengo.Connection(stim, host.neurons, synapse=None)
        ensembles = [host]
        for layer, shape in zip(net.layers, shapes[1:]):
            n = int(np.prod(shape))
            if layer.neuron == "relu":
                neuron_type = nengo.SpikingRectifiedLinear(amplitude=layer.amplitude)
            else:
                neuron_type = nengo.LIF(tau_rc=layer.tau_rc, tau_ref=layer.tau_ref, amplitude=layer.amplitude)
            bias = np.asarray(layer.bias, dtype=np.float32).astype(np.float64).reshape(-1)
            ens = nengo.Ensemble(n, 1, neuron_type=neuron_type, gain=np.full(n, layer.gain), bias=bias)
            if layer.block_shape is not None:
                network.config[ens].block_shape = nengo_loihi.BlockShape(layer.block_shape, shape)
            for syn in layer.synapses:
                pre, pre_shape = ensembles[syn.pre + 1], shapes[syn.pre + 1]
                weight = np.asarray(syn.weight, dtype=np.float32)
                if syn.kind == "dense":
                    transform = nengo.Dense(weight.shape, init=weight)
                else:
                    f, _, kh, kw = weight.shape
                    transform = nengo.Convolution(
                        f,
                        pre_shape,
                        kernel_size=(kh, kw),
                        strides=syn.stride,
                        padding=syn.padding,
                        channels_last=False,
                        init=weight.transpose(2, 3, 1, 0),
                    )
                nengo.Connection(pre.neurons, ens.neurons, transform=transform, synapse=None)
            ensembles.append(ens)
    model = Model(dt=net.dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.build(network, discretize=discretize)
    return model, [model.objs[e]["in"] for e in ensembles[1:]]


def nengo_synapse_matrix(model, synapse, n_pre: int, n_post: int) -> np.ndarray:
    """The dense ``(presynaptic neuron, block compartment)`` matrix a NengoLoihi synapse
    applies, read through the axons that target it, as the emulator reads them."""
    matrix = np.zeros((n_pre, n_post), dtype=np.float64)
    found = False
    for source in list(model.blocks) + list(model.inputs):
        ids = model.block_comp_map[source].list if source in model.block_comp_map else range(source.n_neurons)
        for axon in source.axons:
            if axon.target is not synapse:
                continue
            found = True
            local = np.arange(len(ids))
            for p, a, atom in zip(ids, axon.map_axon(local), axon.map_atoms(local)):
                base = synapse.axon_compartment_base(a) if a >= 0 else None
                if base is None:
                    continue
                w, idx = synapse.axon_weights_indices(a, atom=atom)
                matrix[p, base + idx] = w
    assert found, "no axon targets this synapse"
    return matrix


def snnc_synapse_matrix(weight: np.ndarray, synapse_node, pre_shape, post_cols: np.ndarray) -> np.ndarray:
    """The same matrix from an snnc weight array (the node's layout) for the post
    compartments ``post_cols`` (flat indices)."""
    n_pre = int(np.prod(pre_shape))
    op = synapse_node.op
    if op.kind == "dense":
        return np.asarray(weight, dtype=np.float64)[post_cols].T.copy()
    matrix = np.zeros((n_pre, len(post_cols)))
    c_in, h, w = pre_shape
    f_out, ho, wo = synapse_node.type.shape
    (kh, kw), (sh, sw), (pt, pl) = op.kernel, op.stride, op.pads[:2]
    for col, flat in enumerate(post_cols):
        f, y, x = np.unravel_index(flat, (f_out, ho, wo))
        for c, u, v in itertools.product(range(c_in), range(kh), range(kw)):
            iy, ix = y * sh + u - pt, x * sw + v - pl
            if 0 <= iy < h and 0 <= ix < w:
                matrix[(c * h + iy) * w + ix, col] = weight[f, c, u, v]
    return matrix
