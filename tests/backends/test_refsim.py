"""refsim against NengoLoihi's emulator, bit for bit.

Each test builds a small network in nengo-loihi itself (an off-chip spiking input ensemble
fed by a Node, on-chip ensembles joined neuron to neuron by dense or convolutional
transforms), runs the emulator (``target="sim"``), reads the discretized integers from the
built blocks (compartment parameters, and each synapse's weights as the emulator applies
them: axon by axon, atom by atom), writes the equivalent integer-stage snnc graph by hand,
runs refsim on all examples at once, and requires identical spike rasters at every step and
identical final voltages and currents.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest

from snnc.compiler import ops
from snnc.compiler.errors import BuildError, DataError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.interpreter import run_batch
from snnc.backends import refsim
from snnc.backends.refsim.synapses import ConvSynapses

DT = 0.001


# ----------------------------------------------------------------------------- networks


def relu():
    import nengo

    return nengo.SpikingRectifiedLinear(initial_state={"voltage": nengo.dists.Choice([0])})


def lif(tau_ref=0.002, min_voltage=0.0, tau_rc=0.02):
    import nengo

    zero = nengo.dists.Choice([0])
    return nengo.LIF(
        tau_rc=tau_rc,
        tau_ref=tau_ref,
        min_voltage=min_voltage,
        initial_state={"voltage": zero, "refractory_time": zero},
    )


@dataclass
class Layer:
    """One on-chip population and the connection into it from the previous population."""

    shape: tuple  # (n,) or (C, H, W)
    neuron: object
    gain: np.ndarray
    bias: np.ndarray
    weight: np.ndarray  # dense (n, n_pre), or conv kernel (F, C, kh, kw)
    conv: dict | None = None  # stride, padding ("same"/"valid") of a conv connection
    block_shape: tuple | None = None
    tau_s: float | None = None  # synaptic filter (None: no filter)

    @property
    def n(self) -> int:
        return math.prod(self.shape)


@dataclass
class Emulated:
    rasters: list  # per layer (N, T, n) bool
    voltage: list  # per layer (N, n)
    current: list
    overflow_warnings: set = field(default_factory=set)


def nengo_network(x: np.ndarray, input_shape: tuple, layers: list[Layer]):
    """The network for one example ``x`` (host input rates in Hz, ``x * dt < 1``)."""
    import nengo
    import nengo_loihi

    n_in = math.prod(input_shape)
    with nengo.Network(seed=0) as net:
        nengo_loihi.add_params(net)
        stim = nengo.Node(x.ravel())
        inp = nengo.Ensemble(n_in, 1, neuron_type=relu(), gain=np.ones(n_in), bias=np.zeros(n_in))
        net.config[inp].on_chip = False
        nengo.Connection(stim, inp.neurons, synapse=None)
        pre, pre_shape, ensembles, probes = inp, input_shape, [], []
        for layer in layers:
            ens = nengo.Ensemble(layer.n, 1, neuron_type=layer.neuron, gain=layer.gain, bias=layer.bias)
            if layer.block_shape is not None:
                net.config[ens].block_shape = nengo_loihi.BlockShape(layer.block_shape, layer.shape)
            if layer.conv is not None:
                transform = nengo.Convolution(
                    layer.weight.shape[0],
                    pre_shape,
                    kernel_size=layer.weight.shape[2:],
                    strides=layer.conv.get("stride", (1, 1)),
                    padding=layer.conv.get("padding", "valid"),
                    channels_last=False,
                    init=layer.weight.transpose(2, 3, 1, 0),  # nengo's kernels are (kh, kw, C, F)
                )
                assert transform.output_shape.shape == layer.shape
            else:
                transform = layer.weight
            synapse = None if layer.tau_s is None else nengo.Lowpass(layer.tau_s)
            nengo.Connection(pre.neurons, ens.neurons, transform=transform, synapse=synapse)
            probes.append(nengo.Probe(ens.neurons, "output"))
            ensembles.append(ens)
            pre, pre_shape = ens, layer.shape
    return net, inp, ensembles, probes


def block_compartments(shape: tuple, block_shape: tuple | None) -> list[np.ndarray]:
    """The ensemble indices of each block, in nengo-loihi's order (split_blocks.split_block:
    boxes of ``block_shape`` in row-major order of their origins, row-major inside)."""
    full = np.arange(math.prod(shape)).reshape(shape)
    if block_shape is None:
        return [full.ravel()]
    ranges = [range(0, n, b) for n, b in zip(shape, block_shape)]
    tiles = (tuple(slice(o, o + b) for o, b in zip(origin, block_shape)) for origin in itertools.product(*ranges))
    return [full[tile].ravel() for tile in tiles]


def layer_blocks(model, ens, layer: Layer):
    """The core blocks nengo-loihi made of a layer's ensemble, and the ensemble indices of
    each block's compartments (over-large blocks without a BlockShape are cut in
    consecutive runs)."""
    blocks = model.objs[ens]["out"]
    if layer.block_shape is None:
        ends = np.cumsum([bl.n_neurons for bl in blocks])
        ids = [np.arange(e - bl.n_neurons, e) for bl, e in zip(blocks, ends)]
    else:
        ids = block_compartments(layer.shape, layer.block_shape)
    assert len(blocks) == len(ids) and all(bl.n_neurons == len(i) for bl, i in zip(blocks, ids))
    return blocks, ids


def effective_weights(owners, post_blocks, post_ids, n_pre: int, n_post: int) -> np.ndarray:
    """``M[i, j]``: what one spike of presynaptic compartment ``i`` adds to the input of
    postsynaptic compartment ``j``, found the way the emulator applies it (axon map, then
    the synapse's compartment base, weights and indices for the spike's atom).
    ``owners``: ``(axons, ensemble index of each compartment)`` per presynaptic block."""
    targets = {id(s): b for b, block in enumerate(post_blocks) for s in block.synapses}
    m = np.zeros((n_pre, n_post), dtype=np.int64)
    for axons, ids in owners:
        for axon in axons:
            b = targets.get(id(axon.target))
            if b is None:
                continue
            synapse = axon.target
            for local, i in enumerate(ids):
                for spike in axon.map_spikes([local]):
                    if spike is None:
                        continue
                    base = synapse.axon_compartment_base(spike.axon_idx)
                    if base is None:
                        continue
                    w, idx = synapse.axon_weights_indices(spike.axon_idx, atom=spike.atom)
                    np.add.at(m[i], post_ids[b][base + np.asarray(idx)], w)
    return m


def conv_geometry(in_shape, layer: Layer) -> tuple[tuple, tuple]:
    """Stride and pads (top, left, bottom, right) of a conv connection, as nengo sets them."""
    c, h, w = in_shape
    kh, kw = layer.weight.shape[2:]
    sh, sw = layer.conv.get("stride", (1, 1))
    _, ho, wo = layer.shape
    if layer.conv.get("padding", "valid") == "valid":
        return (sh, sw), (0, 0, 0, 0)
    ph, pw = max((ho - 1) * sh + kh - h, 0), max((wo - 1) * sw + kw - w, 0)
    return (sh, sw), (ph // 2, pw // 2, ph - ph // 2, pw - pw // 2)


def conv_kernels(m, in_shape, layer: Layer, block_of: np.ndarray, blocks: int, stride, pads) -> np.ndarray:
    """Each block's integer kernel ``(blocks, F, C, kh, kw)`` read off the effective weights."""
    c_in, h, w = in_shape
    f_out, kh, kw = layer.weight.shape[0], *layer.weight.shape[2:]
    kernels = np.zeros((blocks, f_out, c_in, kh, kw), dtype=np.int32)
    post = np.arange(layer.n)
    f, y, x = np.unravel_index(post, layer.shape)
    for c, u, v in itertools.product(range(c_in), range(kh), range(kw)):
        iy, ix = y * stride[0] + u - pads[0], x * stride[1] + v - pads[1]
        ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        pre = (c * h + iy[ok]) * w + ix[ok]
        kernels[block_of[ok], f[ok], c, u, v] = m[pre, post[ok]]
    return kernels


def one_value(values, what: str):
    values = np.unique(np.concatenate([np.ravel(v) for v in values]))
    assert values.size == 1, f"{what} differs between compartments: {values}"
    return values[0].item()


def int_graph(sim, inp, ensembles, input_shape, layers, readout_units=3):
    """The integer-stage snnc graph of the built nengo-loihi model: the ints read from its
    blocks; the host input layer is snnc's IF neuron with nengo's SpikingRectifiedLinear
    step (``v += x * dt``, spike at ``v >= 1``, subtract)."""
    model = sim.model
    b = GraphBuilder("emulated", stage=ops.INTEGER)
    x = b.input("x", input_shape)
    pre = b.add(ops.IfNeuron(threshold=1.0, gain=DT, reset="subtract", v_init=0.0), [x], name="inp")
    (spike_input,) = model.inputs
    owners = [(spike_input.axons, np.arange(math.prod(input_shape)))]
    pre_shape = input_shape
    for k, (layer, ens) in enumerate(zip(layers, ensembles)):
        blocks, ids = layer_blocks(model, ens, layer)
        block_of = np.empty(layer.n, dtype=np.int32)
        for j, i in enumerate(ids):
            block_of[i] = j
        m = effective_weights(owners, blocks, ids, math.prod(pre_shape), layer.n)
        (weight_exp,) = zip(*[[s.synapse_cfg.weight_exp for s in bl.synapses] for bl in blocks])
        syn_params = {"block": block_of, "weight_exp": np.array(weight_exp, np.int32)}
        if layer.conv is None:
            syn_op = ops.LoihiSynapses("dense", "int", units=layer.n, blocks=len(blocks))
            syn_params["weight"] = m.T.astype(np.int32)
        else:
            stride, pads = conv_geometry(pre_shape, layer)
            kernels = conv_kernels(m, pre_shape, layer, block_of, len(blocks), stride, pads)
            # the kernels reproduce every one of the emulator's weights, and nothing more
            one_hot = np.eye(m.shape[0]).reshape(-1, *pre_shape)
            synapses = ConvSynapses(kernels, block_of, layer.shape, layer.weight.shape[2:], stride, pads)
            implied = synapses.current(one_hot)
            np.testing.assert_array_equal(implied, m)
            f, kh, kw = layer.weight.shape[0], *layer.weight.shape[2:]
            syn_op = ops.LoihiSynapses(
                "conv", "int", filters=f, kernel=(kh, kw), stride=stride, pads=pads, blocks=len(blocks)
            )
            syn_params["weight"] = kernels
        syn = b.add(syn_op, [pre], params=syn_params, name=f"syn{k}")
        comps = [bl.compartment for bl in blocks]
        per_comp = {}
        for key in ("vth", "bias"):
            array = np.empty(layer.n, dtype=np.int32)
            for c, i in zip(comps, ids):
                array[i] = getattr(c, key)
            per_comp[key] = array
        for key in ("vmin", "vmax"):
            array = np.empty(layer.n, dtype=np.int32)
            for c, i in zip(comps, ids):
                array[i] = int(getattr(c, key))
            per_comp[key] = array
        comp_op = ops.LoihiCompartments(
            neuron="lif" if type(layer.neuron).__name__ == "LIF" else "relu",
            format="int",
            decay_u=one_value([c.decay_u for c in comps], "decay_u"),
            decay_v=one_value([c.decay_v for c in comps], "decay_v"),
            refract_delay=one_value([c.refract_delay for c in comps], "refract_delay"),
        )
        pre = b.add(comp_op, [syn], params=per_comp, name=f"pop{k}")
        owners = [(bl.axons, i) for bl, i in zip(blocks, ids)]
        pre_shape = layer.shape
    flat = b.add(ops.Reshape((layers[-1].n,)), [pre], name="flat")
    rng = np.random.default_rng(1)
    dense = b.add(
        ops.Dense(readout_units),
        [flat],
        params={"weight": rng.normal(size=(readout_units, layers[-1].n)), "bias": np.zeros(readout_units)},
        name="dense",
    )
    b.output(b.add(ops.Readout(), [dense], name="readout"))
    return b.build()


def float_graph(input_shape, layers: list[Layer], readout_units=3):
    """The spiking-stage (``format="float"``) snnc graph of the same network, written from
    the layers' own float parameters (NengoLoihi's transforms, gains, biases)."""
    b = GraphBuilder("real", stage=ops.SPIKING)
    x = b.input("x", input_shape)
    pre = b.add(ops.IfNeuron(threshold=1.0, gain=DT, reset="subtract", v_init=0.0), [x], name="inp")
    pre_shape = input_shape
    for k, layer in enumerate(layers):
        if layer.conv is None:
            syn_op = ops.LoihiSynapses("dense", "float", units=layer.n)
        else:
            stride, pads = conv_geometry(pre_shape, layer)
            f, kh, kw = layer.weight.shape[0], *layer.weight.shape[2:]
            syn_op = ops.LoihiSynapses("conv", "float", filters=f, kernel=(kh, kw), stride=stride, pads=pads)
        syn = b.add(syn_op, [pre], params={"weight": layer.weight.astype(np.float32)}, name=f"syn{k}")
        neuron = layer.neuron
        is_lif = type(neuron).__name__ == "LIF"
        comp_op = ops.LoihiCompartments(
            neuron="lif" if is_lif else "relu",
            format="float",
            gain=one_value([layer.gain], "gain"),
            dt=DT,
            tau_rc=neuron.tau_rc if is_lif else 0.02,
            tau_ref=neuron.tau_ref if is_lif else 0.0,
        )
        pre = b.add(comp_op, [syn], params={"bias": layer.bias.astype(np.float32)}, name=f"pop{k}")
        pre_shape = layer.shape
    flat = b.add(ops.Reshape((layers[-1].n,)), [pre], name="flat")
    dense = b.add(
        ops.Dense(readout_units),
        [flat],
        params={"weight": np.ones((readout_units, layers[-1].n)), "bias": np.zeros(readout_units)},
        name="dense",
    )
    b.output(b.add(ops.Readout(), [dense], name="readout"))
    return b.build()


def emulate(xs: np.ndarray, input_shape, layers, steps: int, target: str = "sim"):
    """Run NengoLoihi's emulator on each example; returns the rasters, final state, the
    graph read from the first build (integer mode), and the overflow warnings the emulator
    gave. ``target="simreal"``: the emulator's float mode, without discretization."""
    import nengo_loihi

    rasters, voltage, current, graph, seen = [], [], [], None, set()
    for x in xs:
        net, inp, ensembles, probes = nengo_network(x, input_shape, layers)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with nengo_loihi.Simulator(net, dt=DT, target=target, progress_bar=False) as sim:
                if graph is None and target == "sim":
                    graph = int_graph(sim, inp, ensembles, input_shape, layers)
                sim.run_steps(steps)
                emu = sim.sims["emulator"]
                rasters.append([sim.data[p] > 0 for p in probes])
                v_ex, u_ex = [], []
                for layer, ens in zip(layers, ensembles):
                    v = np.empty(layer.n, emu.compartment.voltage.dtype)
                    u = np.empty(layer.n, emu.compartment.current.dtype)
                    for bl, i in zip(*layer_blocks(sim.model, ens, layer)):
                        sl = emu.block_info.slices[bl]
                        v[i], u[i] = emu.compartment.voltage[sl], emu.compartment.current[sl]
                    v_ex.append(v)
                    u_ex.append(u)
                voltage.append(v_ex)
                current.append(u_ex)
        seen |= {str(w.message) for w in caught if "Overflow" in str(w.message)}
    per_layer = lambda data: [np.stack([ex[k] for ex in data]) for k in range(len(layers))]  # noqa: E731
    return Emulated(per_layer(rasters), per_layer(voltage), per_layer(current), seen), graph


def assert_same(graph, emulated: Emulated, xs, steps: int, batch_size: int = 64) -> refsim.RefsimResult:
    result = refsim.simulate(graph, xs, [steps], batch_size=batch_size, record="spikes")
    for k in range(len(emulated.rasters)):
        name = f"pop{k}"
        ours, theirs = result.spikes[name], emulated.rasters[k]
        assert theirs.any(), f"{name}: the emulator's population never spiked: a vacuous comparison"
        mismatch = np.argwhere(ours != theirs)
        assert mismatch.size == 0, f"{name}: first raster difference at (example, step-1, neuron) {mismatch[0]}"
        np.testing.assert_array_equal(result.voltages[name], emulated.voltage[k], err_msg=f"{name} voltage")
        np.testing.assert_array_equal(result.currents[name], emulated.current[k], err_msg=f"{name} current")
        np.testing.assert_array_equal(result.spike_counts[name], theirs.sum(axis=1))
    return result


def rates(rng, shape, examples, low=0.0, high=900.0):
    """Host input rates in Hz (``x * dt < 1``: at most one input spike per step), multiples of
    1/8 so snnc's and nengo's float products are the same numbers."""
    return np.round(rng.uniform(low, high, size=(examples, *shape)) * 8) / 8


# ----------------------------------------------------------------------------- tests


def test_dense_relu_layers_match_the_emulator(rng):
    layers = [
        Layer((16,), relu(), rng.uniform(0.5, 2, 16), rng.uniform(-2, 5, 16), rng.normal(0, 0.4, (16, 12))),
        Layer((10,), relu(), rng.uniform(0.5, 2, 10), rng.uniform(-2, 5, 10), rng.normal(0, 0.5, (10, 16))),
    ]
    xs = rates(rng, (12,), 3)
    emulated, graph = emulate(xs, (12,), layers, steps=80)
    result = assert_same(graph, emulated, xs, 80)
    assert result.overflow["pop0"] == {"q": 0, "u": 0, "u2": 0, "v": 0}


def test_lif_with_refractory_period_and_bias_matches_the_emulator(rng):
    layers = [
        Layer((20,), lif(tau_ref=0.003), rng.uniform(1, 3, 20), rng.uniform(0, 2, 20), rng.normal(0.2, 0.4, (20, 10))),
        Layer((8,), lif(tau_ref=0.001), rng.uniform(1, 3, 8), rng.uniform(-1, 2, 8), rng.normal(0.1, 0.5, (8, 20))),
    ]
    xs = rates(rng, (10,), 3)
    emulated, graph = emulate(xs, (10,), layers, steps=100)
    assert graph.node("pop0").op.refract_delay == 4 and graph.node("pop0").op.decay_v > 0
    result = assert_same(graph, emulated, xs, 100)
    # the refractory period is real: no neuron spikes within 3 steps of its last spike
    raster = result.spikes["pop0"]
    for gap in (1, 2, 3):
        assert not (raster[:, gap:] & raster[:, :-gap]).any()


def test_conv_split_over_cores_then_dense_matches_the_emulator(rng):
    kernel = rng.normal(0, 0.6, (4, 2, 3, 3))
    layers = [
        Layer(
            (4, 6, 6),
            relu(),
            np.full(144, 1.3),  # nengo-loihi folds the gain into a conv kernel: one for all
            rng.uniform(-1, 3, 144),
            kernel,
            conv={"padding": "same"},
            block_shape=(2, 3, 6),  # 4 blocks: two channel halves by two row halves
        ),
        Layer((6,), relu(), rng.uniform(0.5, 1.5, 6), rng.uniform(0, 2, 6), rng.normal(0, 0.3, (6, 144))),
    ]
    xs = rates(rng, (2, 6, 6), 2)
    emulated, graph = emulate(xs, (2, 6, 6), layers, steps=60)
    syn = graph.node("syn0")
    assert syn.op.blocks == 4
    assert_same(graph, emulated, xs, 60)


def test_strided_valid_conv_matches_the_emulator(rng):
    layers = [
        Layer(
            (3, 3, 3),
            lif(),
            np.full(27, 1.5),
            rng.uniform(0, 1, 27),
            rng.normal(0.1, 0.5, (3, 1, 3, 3)),
            conv={"stride": (2, 2)},
        ),
    ]
    xs = rates(rng, (1, 7, 7), 2)
    emulated, graph = emulate(xs, (1, 7, 7), layers, steps=60)
    assert graph.node("syn0").op.stride == (2, 2)
    assert_same(graph, emulated, xs, 60)


def test_pool_folded_conv_split_over_cores_matches_the_emulator(rng):
    # an average pool folded into the next conv: a 4x4 stride-2 kernel constant on 2x2 tiles
    kernel = np.kron(rng.normal(0, 0.5, (4, 2, 2, 2)), np.ones((2, 2))) / 4
    layers = [
        Layer(
            (4, 4, 4),
            relu(),
            np.full(64, 1.5),
            rng.uniform(0, 4, 64),
            kernel,
            conv={"stride": (2, 2), "padding": "same"},
            block_shape=(2, 4, 2),
        ),
    ]
    xs = rates(rng, (2, 8, 8), 2)
    emulated, graph = emulate(xs, (2, 8, 8), layers, steps=60)
    syn = graph.node("syn0")
    weight = syn.params["weight"]  # still an average pool folded into the conv after quantization
    assert np.array_equal(weight, np.repeat(np.repeat(weight[..., ::2, ::2], 2, axis=-2), 2, axis=-1))
    assert syn.op.pads == (1, 1, 1, 1)
    assert_same(graph, emulated, xs, 60)


def test_current_overflow_wraps_as_in_the_emulator(rng):
    # 150 inputs firing nearly every step through equal large weights into a filtered
    # synapse: u integrates past 2**23 and wraps around
    n_in = 150
    layers = [Layer((4,), lif(), np.ones(4), np.zeros(4), np.full((4, n_in), 1.0), tau_s=0.02)]
    xs = rates(rng, (n_in,), 2, low=700, high=990)
    emulated, graph = emulate(xs, (n_in,), layers, steps=40)
    assert graph.node("pop0").op.decay_u < 4094  # a real synaptic filter
    assert any("current" in w for w in emulated.overflow_warnings), emulated.overflow_warnings
    with pytest.warns(refsim.RefsimOverflowWarning, match="pop0"):
        result = assert_same(graph, emulated, xs, 40)
    assert result.overflow["pop0"]["u"] > 0


def test_voltage_wraps_in_int32_as_in_the_emulator(rng):
    # The lowest voltage floor NengoLoihi sets (vmin = -2**31 + 1), a leak of 2/4096 and a
    # filtered current near -2**23: v reaches the bottom of int32 in a few hundred steps and
    # the emulator's int32 addition wraps it to the top, where it is clipped to vmax and spikes
    n_in = 60
    neuron = lif(tau_ref=0.0, min_voltage=-1e7, tau_rc=2.5)
    layers = [Layer((4,), neuron, np.ones(4), np.array([1.5, -5.0, -50.0, -500.0]), -np.ones((4, n_in)), tau_s=0.008)]
    xs = rates(rng, (n_in,), 1, low=900, high=990)
    emulated, graph = emulate(xs, (n_in,), layers, steps=600)
    assert graph.node("pop0").params["vmin"][0] == -(2**31) + 1
    with pytest.warns(refsim.RefsimOverflowWarning, match="v "):
        result = assert_same(graph, emulated, xs, 600)
    assert result.overflow["pop0"]["v"] == 8 and result.spike_counts["pop0"].min() == 2


def test_negative_input_clips_at_vmin_as_in_the_emulator(rng):
    drive = rng.normal(0, 0.5, (12, 8))
    drive[6:] = -np.abs(drive[6:])
    inhibition = -np.abs(rng.normal(0.2, 0.1, (6, 12))) * np.r_[np.full(3, 0.05), np.ones(3)][:, None]
    layers = [
        # LIF with a negative voltage floor; the second half are driven far below it
        Layer((12,), lif(min_voltage=-1.0), np.full(12, 2.0), np.r_[np.full(6, 1.5), np.full(6, -30.0)], drive),
        # relu neurons: the second half, inhibited, stay at vmin = 0
        Layer((6,), relu(), np.ones(6), np.r_[np.full(3, 300.0), np.full(3, -50.0)], inhibition),
    ]
    xs = rates(rng, (8,), 2)
    emulated, graph = emulate(xs, (8,), layers, steps=60)
    vmin = graph.node("pop0").params["vmin"]
    assert vmin.min() < 0
    result = assert_same(graph, emulated, xs, 60)
    np.testing.assert_array_equal(result.voltages["pop0"][:, 6:], np.broadcast_to(vmin[6:], (2, 6)))
    assert (result.voltages["pop1"][:, 3:] == 0).all()


# ----------------------------------------------------------------------------- engine only


def small_int_graph(rng, n_in=6, n=5, blocks=1, readout=True):
    b = GraphBuilder("small", stage=ops.INTEGER)
    x = b.input("x", (n_in,))
    s = b.add(ops.IfNeuron(threshold=1.0, gain=0.3), [x], name="inp")
    block = np.arange(n, dtype=np.int32) % blocks
    weight = rng.integers(-40, 120, size=(n, n_in)).astype(np.int32) << 6
    syn = b.add(
        ops.LoihiSynapses("dense", "int", units=n, blocks=blocks),
        [s],
        params={"weight": weight, "block": block, "weight_exp": np.zeros(blocks, np.int32)},
        name="syn",
    )
    full = lambda v: np.full(n, v, np.int32)  # noqa: E731
    pop = b.add(
        ops.LoihiCompartments("relu", "int", decay_u=4094, decay_v=0, refract_delay=1, amplitude=0.5),
        [syn],
        params={"vth": full(5000), "bias": full(64), "vmin": full(0), "vmax": full(2**23 - 1)},
        name="pop",
    )
    dense = b.add(ops.Dense(2), [pop], params={"weight": rng.normal(size=(2, n)), "bias": np.zeros(2)}, name="dense")
    b.output(b.add(ops.Readout(), [dense], name="readout"))
    return b.build()


def test_dense_synapses_are_the_integer_product(rng):
    from snnc.backends.refsim.synapses import DenseSynapses

    weight = (rng.integers(-127, 128, size=(40, 1200)) << 7).astype(np.int32)
    weight[:, :1100] = 127 << 7  # sums up to 1.07 * 2**24: beyond float32's exact integers
    spikes = rng.random((6, 1200)) < 0.3
    spikes[0, :1100] = True
    synapses = DenseSynapses(weight)
    expected = spikes.astype(np.int64) @ weight.T.astype(np.int64)
    assert expected.max() > 2**24
    np.testing.assert_array_equal(synapses.current(spikes), expected)
    np.testing.assert_array_equal(synapses.current(spikes * 0.7), expected)  # any nonzero value is a spike
    small = DenseSynapses(weight[:, 1100:])
    few, light = spikes[:, 1100:], weight[:, 1100:]
    np.testing.assert_array_equal(small.current(few), few.astype(np.int64) @ light.T.astype(np.int64))


@pytest.mark.parametrize(
    "case",
    ["boxes", "pool_folded", "pool_folded_unpadded", "scattered_blocks"],
)
def test_conv_synapses_equal_the_interpreters_conv_per_block(rng, case):
    c, h, w, f = 3, 9, 8, 4
    kernel, stride, pads = (3, 3), (1, 1), (1, 0, 1, 2)
    blocks = 3
    kernels = rng.integers(-127, 128, size=(blocks, f, c, 3, 3)) << 7
    if case.startswith("pool_folded"):
        kernel, stride = (4, 4), (2, 2)
        pads = (0, 0, 0, 0) if case.endswith("unpadded") else pads
        kernels = np.kron(rng.integers(-127, 128, size=(blocks, f, c, 2, 2)), np.ones((2, 2), np.int64)) << 6
    conv = ops.Conv2d(f, kernel, stride, pads)
    out_shape = conv.infer_type([ops.TensorType((c, h, w), "f32")]).shape
    if case == "scattered_blocks":
        block = rng.integers(0, blocks, size=out_shape)
    else:  # channel ranges by row halves, as BlockShape cuts them
        block = np.zeros(out_shape, np.int64)
        block[2:, : out_shape[1] // 2] = 1
        block[:, out_shape[1] // 2 :] = 2
    spikes = rng.random((5, c, h, w)) < 0.3
    spikes = spikes if case.endswith("unpadded") else spikes.astype(np.float64)  # booleans or values
    synapses = ConvSynapses(kernels.astype(np.int32), block.ravel(), out_shape, kernel, stride, pads)
    ours = synapses.current(spikes)
    # each block's compartments take the interpreter's (float64) conv with the block's kernel
    expected = np.zeros((5, *out_shape))
    for k in range(blocks):
        b = GraphBuilder("conv")
        y = b.add(conv, [b.input("x", (c, h, w))], params={"weight": kernels[k], "bias": np.zeros(f)}, name="y")
        b.output(y)
        full = run_batch(b.build(), {"x": spikes.astype(np.float64)})["y"]
        expected[:, block == k] = full[:, block == k]
    np.testing.assert_array_equal(ours, expected.reshape(5, -1))


def test_batches_and_recording_do_not_change_results(rng):
    graph = small_int_graph(rng)
    xs = rng.uniform(0, 1, size=(7, 6))
    whole = refsim.simulate(graph, xs, [10, 25], batch_size=7, record="spikes")
    pieces = refsim.simulate(graph, xs, [10, 25], batch_size=3, workers=2)  # three batches in two threads
    one = refsim.simulate(graph, xs[4:5], [25], batch_size=1, record="spikes")
    assert whole.spike_counts["pop"].sum() > 0
    np.testing.assert_array_equal(whole.spike_counts["pop"], pieces.spike_counts["pop"])
    np.testing.assert_array_equal(whole.spikes["pop"].sum(axis=1), whole.spike_counts["pop"])
    np.testing.assert_array_equal(whole.spikes["pop"][4:5], one.spikes["pop"])
    np.testing.assert_array_equal(whole.voltages["pop"], pieces.voltages["pop"])
    assert pieces.spikes == {}
    for t in (10, 25):
        np.testing.assert_array_equal(whole.outputs[t]["output"], pieces.outputs[t]["output"])


def test_readout_and_activity_follow_the_chip_spikes(rng):
    graph = small_int_graph(rng)
    xs = rng.uniform(0, 1, size=(4, 6))
    result = refsim.simulate(graph, xs, [5, 20], record="spikes")
    w = graph.node("dense").params["weight"].astype(np.float64)
    for t in (5, 20):
        # the host output reads the chip's spikes of the same step, worth the amplitude
        expected = (result.spikes["pop"][:, :t].sum(axis=1) * 0.5) @ w.T / t
        np.testing.assert_allclose(result.outputs[t]["output"], expected, rtol=1e-6, atol=1e-6)
    act = result.activity["pop"]
    assert act.spikes == result.spike_counts["pop"].sum() and act.examples == 4 and act.timesteps == 20
    assert result.activity["inp"].spikes > 0  # the host input layer is counted too
    # the chip's spikes are binary: their bits follow from the raster (a neuron that spiked: 1 bit)
    assert act.spikes > 0 and act.significant_bits_per_weight == 1.0
    assert act.bits_per_activity == pytest.approx(result.spikes["pop"].any(axis=(0, 1)).mean())
    assert act.error_vs_ann is None
    # with the float network, each population's mean output is compared with its activations
    b = GraphBuilder("ann")
    dense = ops.Dense(5)
    b.output(b.add(dense, [b.input("x", (6,))], params={"weight": np.ones((5, 6)), "bias": np.zeros(5)}, name="pop"))
    compared = refsim.simulate(graph, xs, [20], reference=b.build())
    mean_output = result.spike_counts["pop"] * 0.5 / 20
    ann = xs.sum(axis=1, keepdims=True) * np.ones(5)
    assert compared.activity["pop"].error_vs_ann == pytest.approx(np.abs(mean_output - ann).sum() / np.abs(ann).sum())


def test_first_step_sees_no_input_and_spikes_arrive_one_step_late(rng):
    graph = small_int_graph(rng)
    weight = graph.node("syn").params["weight"].astype(np.int64)
    xs = np.array([[4.0, 0, 4.0, 0, 0, 0]])  # host neurons 0 and 2 spike at step 1 (0.3 * 4 >= 1)
    one, two = refsim.simulate(graph, xs, [1]), refsim.simulate(graph, xs, [2])
    assert one.activity["inp"].spikes == 2
    # step 1: no input reaches the chip (the emulator's t >= 2 rule); only the bias
    np.testing.assert_array_equal(one.currents["pop"], np.zeros((1, 5)))
    np.testing.assert_array_equal(one.voltages["pop"], np.full((1, 5), 64))
    # step 2: the host spikes of step 1 (u had nothing to decay)
    np.testing.assert_array_equal(two.currents["pop"], (weight[:, 0] + weight[:, 2])[None])


def test_refuses_graphs_and_options_it_cannot_run(rng):
    b = GraphBuilder("plain", stage=ops.SPIKING)
    x = b.input("x", (3,))
    b.output(b.add(ops.Readout(), [b.add(ops.IfNeuron(), [x])]))
    with pytest.raises(BuildError, match="no loihi_compartments"):
        refsim.simulate(b.build(), np.zeros((1, 3)), [4])
    graph = small_int_graph(rng)
    with pytest.raises(DataError, match="record"):
        refsim.simulate(graph, np.zeros((1, 6)), [4], record="voltage")
    with pytest.raises(DataError, match="shape"):
        refsim.simulate(graph, np.zeros((1, 5)), [4])


def float32_values(rng_values: np.ndarray) -> np.ndarray:
    """Values a float32 IR parameter holds exactly, so nengo's float64 transform is the same."""
    return rng_values.astype(np.float32).astype(np.float64)


def test_float_mode_matches_the_emulator_without_discretization(rng):
    kernel = float32_values(rng.normal(0, 0.6, (3, 2, 3, 3)))
    layers = [
        Layer(
            (3, 5, 5),
            relu(),
            np.full(75, 1.25),
            float32_values(rng.uniform(-1, 3, 75)),
            kernel,
            conv={"padding": "same"},
            block_shape=(3, 3, 5),
        ),
        Layer(
            (12,),
            lif(tau_ref=0.002),
            np.full(12, 2.0),
            float32_values(rng.uniform(0, 2, 12)),
            float32_values(rng.normal(0.1, 0.3, (12, 75))),
        ),
    ]
    xs = rates(rng, (2, 5, 5), 2)
    emulated, _ = emulate(xs, (2, 5, 5), layers, steps=60, target="simreal")
    graph = float_graph((2, 5, 5), layers)
    result = refsim.simulate(graph, xs, [60], record="spikes")
    assert result.mode == "float"
    for k in range(len(layers)):
        name, theirs = f"pop{k}", emulated.rasters[k]
        assert theirs.any()
        # the emulator adds spike by spike in float32, refsim sums in float64 and rounds once:
        # voltages agree to a few float32 ulps, and a spike could differ only where a voltage
        # lands that close to the threshold (here none does)
        np.testing.assert_array_equal(result.spikes[name], theirs, err_msg=name)
        np.testing.assert_allclose(result.voltages[name], emulated.voltage[k], rtol=1e-6, atol=1e-3, err_msg=name)
