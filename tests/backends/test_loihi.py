"""The Loihi backend against NengoLoihi's own emulator and snnc's spiking interpreter.

Hand-built Loihi graphs (host conv + IF/LIF neurons, a chip conv population of relu
compartments, a chip dense population of LIF compartments, a host dense readout) are built
and run in the emulator. The checks: the host input layer spikes as the interpreter's
neurons do; the synapse integers :func:`discretized` reads are what the emulator adds to its
input accumulators, one step after the host spike (the timing the package docstring states);
conv pads map to Nengo's paddings without moving a weight; block shapes split populations
as NengoLoihi's ``BlockShape`` does; resetting the emulator in place gives exactly what a
new simulator per example gives; outputs are the host's dense readout of the chip spikes.
"""

import subprocess
import sys

import numpy as np
import pytest

from snnc.backends import loihi
from snnc.backends.loihi.runner import reset_state, simulator
from snnc.compiler import ops
from snnc.compiler.errors import BuildError, DataError, SnncError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.simulate import simulate

pytestmark = pytest.mark.filterwarnings(
    # NengoLoihi fills integer state arrays with NaN before setting them
    "ignore:invalid value encountered in cast:RuntimeWarning",
    "ignore:Lost .* extra bits in weight rounding",
)

STEPS = 12
IMAGE = (1, 6, 6)
HOST_SHAPE = (2, 6, 6)  # the host input layer's neurons
N_HOST, N_C1 = 72, 108
HOST_AMPLITUDE = 0.5  # neurons in the host layer and in the chip conv population (same pads)


# ----------------------------------------------------------------------------- graphs


def chip_graph(rng, host="if", pads=(1, 1, 1, 1), stride=(1, 1), block_shape=None, host_conv=True):
    """input (1,6,6) -> host conv 3x3 + IF or LIF (2,6,6) -> chip conv 3x3 (relu, bias) ->
    flatten -> chip dense (LIF, bias) -> host dense -> readout. Without ``host_conv`` the IF
    neurons read an input of shape (2,6,6) directly."""
    b = GraphBuilder("tiny", stage="spiking")
    if host_conv:
        x = b.input("image", IMAGE)
        conv_weight = rng.uniform(-0.2, 1.0, size=(2, 1, 3, 3)).astype(np.float32)
        params = {"weight": conv_weight, "bias": np.full(2, 0.1, np.float32)}
        current = b.add(ops.Conv2d(2, (3, 3), pads=(1, 1, 1, 1)), [x], params, name="conv")
    else:
        current = b.input("image", HOST_SHAPE)
    if host == "if":
        neurons = ops.IfNeuron(threshold=1.0, v_init=0.5, amplitude=HOST_AMPLITUDE)
    else:
        neurons = ops.LifNeuron(gain=4.0, bias=1.0, tau_ref=0.002, amplitude=HOST_AMPLITUDE)
    spikes = b.add(neurons, [current], name="conv_if")
    synapse = ops.LoihiSynapses("conv", filters=3, kernel=(3, 3), stride=stride, pads=pads)
    # magnitudes within 1:3, so none quantizes to zero
    kernel = rng.uniform(0.1, 0.3, size=(3, 2, 3, 3)) * rng.choice([-1, 1], size=(3, 2, 3, 3))
    kernel = kernel.astype(np.float32)
    syn1 = b.add(synapse, [spikes], {"weight": kernel}, name="c1_syn")
    n1 = b.type_of(syn1).size
    meta = {"cores": {"block_shape": list(block_shape)}} if block_shape else None
    c1 = b.add(
        ops.LoihiCompartments("relu", gain=1.0, amplitude=0.001),
        [syn1],
        {"bias": rng.uniform(-50, 300, size=n1).astype(np.float32)},
        name="c1",
        meta=meta,
    )
    flat = b.add(ops.Reshape((n1,)), [c1], name="flat")
    dense_weight = (rng.uniform(0, 1, size=(8, n1)) * 0.5).astype(np.float32)
    syn2 = b.add(ops.LoihiSynapses("dense", units=8), [flat], {"weight": dense_weight}, name="d2_syn")
    c2 = b.add(
        ops.LoihiCompartments("lif", gain=2.0, amplitude=0.001, tau_rc=0.02, tau_ref=0.002),
        [syn2],
        {"bias": np.full(8, 0.9, np.float32)},
        name="d2",
    )
    readout_weight = rng.normal(size=(3, 8)).astype(np.float32)
    params = {"weight": readout_weight, "bias": np.array([0.1, 0, -0.1], np.float32)}
    logits = b.add(ops.Dense(3), [c2], params, name="logits")
    b.output(b.add(ops.Readout(), [logits], name="logits_readout"))
    return b.build()


def images(rng, n):
    return rng.uniform(0, 1, size=(n, *IMAGE))


def emulator_state(sim, ensemble, attr: str) -> np.ndarray:
    """An emulator compartment array (``voltage``, ``current``) of one ensemble, in the
    ensemble's order, gathered from its blocks (NengoLoihi's own bookkeeping)."""
    emulator = sim.sims["emulator"]
    values = np.zeros(ensemble.n_neurons, dtype=np.int64)
    for block in sim.model.objs[ensemble]["in"]:
        state = getattr(emulator.compartment, attr)[emulator.block_info.slices[block]]
        values[sim.model.block_comp_map[block].list] = state
    return values


def population_weights(blocks, synapse: str, n_post: int) -> np.ndarray:
    """A synapse node's integer weights ``(n_post, n_pre)`` assembled from its blocks."""
    parts = [(block.compartments, block.synapses[synapse].weights) for block in blocks]
    matrix = np.zeros((n_post, parts[0][1].shape[1]), dtype=np.int64)
    for compartments, weights in parts:
        matrix[compartments] = weights
    return matrix


def conv_matrix(kernel, in_shape, out_shape, stride, pads) -> np.ndarray:
    """The dense matrix of a cross-correlation with explicit pads, by plain loops."""
    f_n, c_n, kh, kw = kernel.shape
    _, h, w = in_shape
    _, ho, wo = out_shape
    matrix = np.zeros((f_n, ho, wo, c_n, h, w))
    for f in range(f_n):
        for y in range(ho):
            for x in range(wo):
                for c in range(c_n):
                    for u in range(kh):
                        for v in range(kw):
                            yi, xi = y * stride[0] + u - pads[0], x * stride[1] + v - pads[1]
                            if 0 <= yi < h and 0 <= xi < w:
                                matrix[f, y, x, c, yi, xi] = kernel[f, c, u, v]
    return matrix.reshape(f_n * ho * wo, c_n * h * w)


# ----------------------------------------------------------------------------- building and running


def test_build_and_run_shapes(rng):
    graph = chip_graph(rng)
    built = loihi.build(graph)
    result = loihi.run(built, images(rng, 2), [4, STEPS], voltage_traces=True)
    assert set(result.spikes) == {"c1", "d2"} and set(result.host_spikes) == {"conv_if"}
    assert result.spikes["c1"].shape == (2, STEPS, N_C1) and result.spikes["c1"].dtype == bool
    assert result.spikes["d2"].shape == (2, STEPS, 8)
    host = result.host_spikes["conv_if"]
    assert host.shape == (2, STEPS, N_HOST) and host.dtype == bool
    assert result.voltages["c1"].shape == (2, N_C1) and result.voltages["c1"].dtype == np.int32
    assert result.voltage_traces["d2"].shape == (2, STEPS, 8)
    np.testing.assert_array_equal(result.voltage_traces["d2"][:, -1], result.voltages["d2"])
    assert set(result.outputs) == {4, STEPS}
    output = result.outputs[STEPS]["output"]
    assert output.shape == (2, 3) and output.dtype == np.float32
    for name in ("c1", "d2"):  # every population takes part, so the other tests mean something
        assert result.spikes[name].any(), name
    assert result.seconds > 0
    assert result.activity["c1"].spikes == result.spikes["c1"].sum()


@pytest.mark.parametrize("host", ["if", "lif"])
def test_host_layer_spikes_as_the_interpreter(rng, host):
    """The host input layer is the Nengo backend's neurons: spike for spike the spiking
    interpreter's."""
    graph = chip_graph(rng, host=host)
    x = images(rng, 2)
    result = loihi.run(loihi.build(graph), x, [STEPS])
    host_part = GraphBuilder("host", stage="spiking")
    image = host_part.input("image", IMAGE)
    conv, neurons = graph.node("conv"), graph.node("conv_if")
    current = host_part.add(conv.op, [image], dict(conv.params), name="conv")
    host_part.output(host_part.add(neurons.op, [current], name="conv_if"))
    reference = simulate(host_part.build(), x, range(1, STEPS + 1))
    steps = range(1, STEPS + 1)
    expected = np.stack([reference.outputs[t]["output"].reshape(2, -1) != 0 for t in steps], axis=1)
    assert expected.any()
    np.testing.assert_array_equal(result.host_spikes["conv_if"], expected)


def test_outputs_are_the_host_readout_of_chip_spikes(rng):
    graph = chip_graph(rng)
    result = loihi.run(loihi.build(graph), images(rng, 3), [3, 7, STEPS])
    logits = graph.node("logits")
    weight, bias = logits.params["weight"].astype(np.float64), logits.params["bias"].astype(np.float64)
    for t, outputs in result.outputs.items():
        mean_spikes = result.spikes["d2"][:, :t].mean(axis=1) * 0.001
        np.testing.assert_allclose(outputs["output"], mean_spikes @ weight.T + bias, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- integers and timing


def test_discretized_weights_reach_the_input_one_step_after_a_host_spike(rng):
    """Host neurons that spike at step 1 add the discretized weight columns to the chip's
    input at step 2, not before; the next chip population hears of it at step 3."""
    built = loihi.build(chip_graph(rng, block_shape=(3, 2, 3), host_conv=False))
    c1, d2 = built.chip["c1"].ensemble, built.chip["d2"].ensemble
    with simulator(built) as sim:
        weights = population_weights(loihi.discretized(built, sim)["c1"], "c1_syn", N_C1)
        for spiking in ([0], [5, 40], range(N_HOST)):  # a corner, a neuron of each map, all
            drive = np.zeros(N_HOST)  # IF neurons from v_init 0.5: only these reach 1 at step 1
            drive[list(spiking)] = 0.6
            built.presented["image"].value = drive
            reset_state(sim)
            sim.run_steps(1)
            assert not emulator_state(sim, c1, "current").any()
            sim.run_steps(1)
            host = sim.data[built.host["conv_if"].spikes]
            np.testing.assert_array_equal(np.flatnonzero(host[0]), list(spiking))
            assert not host[1].any()
            expected = weights[:, list(spiking)].sum(axis=1)
            np.testing.assert_array_equal(emulator_state(sim, c1, "current"), expected)
            assert not emulator_state(sim, d2, "current").any()
            sim.clear_probes()


def test_bias_acts_from_step_one(rng):
    """With no input, a relu compartment's voltage after step t is t times its integer bias
    (clipped at 0, reset when it passes vth)."""
    graph = chip_graph(rng)
    built = loihi.build(graph)
    blocks = loihi.discretized(built)["c1"]
    bias = np.zeros(N_C1, dtype=np.int64)
    vth = np.zeros(N_C1, dtype=np.int64)
    for block in blocks:
        bias[block.compartments], vth[block.compartments] = block.bias, block.vth
    result = loihi.run(built, np.zeros((1, *IMAGE)), [4], voltage_traces=True)
    assert not result.host_spikes["conv_if"].any()
    voltage = np.zeros(N_C1, dtype=np.int64)
    for t in range(4):
        voltage = np.maximum(voltage + bias, 0)
        spiked = voltage > vth
        voltage[spiked] = 0
        np.testing.assert_array_equal(result.voltage_traces["c1"][0, t], voltage)
        np.testing.assert_array_equal(result.spikes["c1"][0, t], spiked)


@pytest.mark.parametrize("host", ["if", "lif"])
def test_chip_weights_are_transform_over_dt_times_pre_amplitude_times_gain(rng, host):
    """The float weights NengoLoihi discretizes (each block's ``w_max``) are the synapse
    transform / dt * presynaptic amplitude * postsynaptic gain, with a host population's
    amplitude its op's (LIF too), and the parameters of both neuron models arrive."""
    graph = chip_graph(rng, host=host)
    blocks = loihi.discretized(loihi.build(graph))
    dt = 0.001
    kernel, dense = graph.node("c1_syn").params["weight"], graph.node("d2_syn").params["weight"]
    w_max = np.float32(np.abs(kernel).max() / dt * HOST_AMPLITUDE * 1.0)
    assert max(block.scales["w_max"] for block in blocks["c1"]) == pytest.approx(w_max, rel=1e-6)
    assert blocks["d2"][0].scales["w_max"] == pytest.approx(np.abs(dense).max() / dt * 0.001 * 2.0, rel=1e-6)
    (c1,), (d2,) = blocks["c1"], blocks["d2"]
    assert (c1.decay_v == 0).all() and (c1.refract_delay == 1).all()  # configure_relu
    # configure_lif
    assert (d2.decay_v == round(-np.expm1(-dt / 0.02) * 4095)).all() and (d2.refract_delay == 3).all()
    assert (c1.decay_u == 4094).all() and (d2.decay_u == 4094).all()  # synapse=None: no filter
    for block in (c1, d2):
        np.testing.assert_array_equal(block.bias_mantissa.astype(np.int64) << block.bias_exponent, block.bias)
        assert (block.vth % 64 == 0).all() and block.vmin == 0


def test_dense_weights_from_split_presynaptic_blocks(rng):
    """Weights read back through the axons of a split presynaptic population are the float
    weights in the population's order, quantized."""
    graph = chip_graph(rng, block_shape=(3, 2, 3))
    (block,) = loihi.discretized(loihi.build(graph))["d2"]
    expected = graph.node("d2_syn").params["weight"].astype(np.float64)
    weights = block.synapses["d2_syn"].weights.astype(np.float64)
    scale = np.abs(weights).max() / np.abs(expected).max()
    np.testing.assert_allclose(weights / scale, expected, atol=0.01 * np.abs(expected).max())


@pytest.mark.parametrize(
    "pads, stride",
    [
        ((0, 0, 0, 0), (1, 1)),  # valid
        ((1, 1, 1, 1), (1, 1)),  # same
        ((0, 0, 1, 1), (2, 2)),  # same with stride 2: TensorFlow's odd padding at the end
        ((0, 0, 2, 2), (2, 2)),  # an extra row/column of padding that no window reads
    ],
)
def test_conv_pads_become_nengo_paddings_exactly(rng, pads, stride):
    """The chip's conv weights (read back per block) are the explicitly padded
    cross-correlation, quantized: same nonzero pattern and signs, values within rounding."""
    graph = chip_graph(rng, pads=pads, stride=stride, block_shape=(2, 2, 2))
    built = loihi.build(graph)
    blocks = loihi.discretized(built)["c1"]
    synapse = graph.node("c1_syn")
    kernel = synapse.params["weight"].astype(np.float64)
    expected = conv_matrix(kernel, HOST_SHAPE, synapse.type.shape, stride, pads)
    weights = population_weights(blocks, "c1_syn", synapse.type.size).astype(np.float64)
    np.testing.assert_array_equal(np.sign(weights), np.sign(expected))
    for block in blocks:  # each block has its own scale
        rows = block.compartments
        scale = np.abs(weights[rows]).max() / np.abs(expected[rows]).max()
        atol = 0.01 * np.abs(expected[rows]).max()
        np.testing.assert_allclose(weights[rows] / scale, expected[rows], atol=atol)


def test_block_shape_splits_the_population(rng):
    """(3,6,6) in blocks of (3,2,3): six blocks, tiled in C, H, W order; the probed voltages
    are the emulator's, in the population's order."""
    built = loihi.build(chip_graph(rng, block_shape=(3, 2, 3)))
    with simulator(built) as sim:
        assert len(sim.model.blocks) == 6 + 1  # and d2 in one block
        blocks = loihi.discretized(built, sim)
        sim.run_steps(5)
        for population in built.chip.values():
            probed = sim.data[population.voltage][-1]
            np.testing.assert_array_equal(probed, emulator_state(sim, population.ensemble, "voltage"))
    index = np.arange(N_C1).reshape(3, 6, 6)
    tiles = [index[:, y : y + 2, x : x + 3].ravel() for y in (0, 2, 4) for x in (0, 3)]
    assert len(blocks["c1"]) == 6 and len(blocks["d2"]) == 1
    for block, tile in zip(blocks["c1"], tiles):
        np.testing.assert_array_equal(block.compartments, tile)
        assert set(block.synapses) == {"c1_syn"} and block.synapses["c1_syn"].weights.shape == (18, N_HOST)
    np.testing.assert_array_equal(blocks["d2"][0].compartments, np.arange(8))


def test_without_block_shapes_one_block(rng):
    built = loihi.build(chip_graph(rng, block_shape=(3, 2, 3)), block_shapes=False)
    blocks = loihi.discretized(built)
    assert len(blocks["c1"]) == 1
    np.testing.assert_array_equal(blocks["c1"][0].compartments, np.arange(N_C1))


@pytest.mark.parametrize("host", ["if", "lif"])
def test_reset_in_place_equals_a_new_simulator_per_example(rng, host):
    """Refractory LIF neurons on host and chip, relu on chip: every example starts from the
    initial state whichever way the emulator is reset."""
    graph = chip_graph(rng, host=host, block_shape=(3, 2, 3))
    built = loihi.build(graph)
    x = images(rng, 3)
    in_place = loihi.run(built, x, [STEPS], reset="state")
    rebuilt = loihi.run(built, x, [STEPS], reset="rebuild")
    alone = loihi.run(built, x[2:], [STEPS], reset="rebuild")
    for name in in_place.spikes:
        assert in_place.spikes[name].any()
        np.testing.assert_array_equal(in_place.spikes[name], rebuilt.spikes[name])
        np.testing.assert_array_equal(in_place.voltages[name], rebuilt.voltages[name])
        np.testing.assert_array_equal(in_place.spikes[name][2:], alone.spikes[name])
    np.testing.assert_array_equal(in_place.host_spikes["conv_if"], rebuilt.host_spikes["conv_if"])


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("pads, stride", [((1, 1, 0, 0), (1, 1)), ((1, 1, 1, 1), (3, 3))])
def test_unsupported_padding(rng, pads, stride):
    with pytest.raises(BuildError, match=r"%c1_syn: conv pads \[1, 1, .*neither Nengo's 'valid' nor 'same'"):
        loihi.build(chip_graph(rng, pads=pads, stride=stride))


def test_graph_without_chip_ops():
    b = GraphBuilder("plain", stage="spiking")
    x = b.input("x", (4,))
    b.output(b.add(ops.Readout(), [b.add(ops.IfNeuron(), [x])]))
    with pytest.raises(BuildError, match="graph plain has no chip populations"):
        loihi.build(b.build())


def test_integer_format_is_refused():
    b = GraphBuilder("ints", stage="integer")
    spikes = b.add(ops.IfNeuron(), [b.input("x", (4,))], name="s")
    i32 = lambda *shape: np.zeros(shape, np.int32)  # noqa: E731
    synapse_params = {"weight": i32(3, 4), "block": i32(3), "weight_exp": i32(1)}
    syn = b.add(ops.LoihiSynapses("dense", format="int", units=3), [spikes], synapse_params, name="syn")
    params = {"vth": i32(3) + 64, "bias": i32(3), "vmin": i32(3), "vmax": i32(3) + 511}
    c = b.add(ops.LoihiCompartments(format="int"), [syn], params)
    b.output(b.add(ops.Readout(), [c]))
    with pytest.raises(BuildError, match="%syn: loihi_synapses holds the chip's integers"):
        loihi.build(b.build())


def test_host_ops_the_backend_cannot_run(rng):
    b = GraphBuilder("gated", stage="spiking")
    spikes = b.add(ops.IfNeuron(), [b.input("x", (1, 4, 4))], name="s")
    pooled = b.add(ops.SpikeMaxPool2d((2, 2), (2, 2)), [spikes], name="pool")
    flat = b.add(ops.Reshape((4,)), [pooled])
    syn = b.add(ops.LoihiSynapses("dense", units=2), [flat], {"weight": np.ones((2, 4), np.float32)})
    b.output(b.add(ops.Readout(), [b.add(ops.LoihiCompartments(), [syn], {"bias": np.zeros(2, np.float32)})]))
    with pytest.raises(BuildError, match="%pool: spike_max_pool2d cannot run in the host input layer"):
        loihi.build(b.build())


def test_relu_with_refractory_period_is_refused(rng):
    graph = chip_graph(rng)
    node = graph.node("c1")
    refractory = node.replace(op=ops.LoihiCompartments("relu", amplitude=0.001, tau_ref=0.002))
    graph = graph.replace(nodes=[refractory if n is node else n for n in graph.nodes])
    with pytest.raises(BuildError, match="%c1: relu compartments with tau_ref=0.002"):
        loihi.build(graph)


def test_chip_target_needs_nxsdk(rng):
    built = loihi.build(chip_graph(rng))
    with pytest.raises(SnncError, match="NxSDK, which is not installed here; .* target='sim'"):
        loihi.run(built, images(rng, 1), [2], target="loihi")


def test_bad_input_shape(rng):
    built = loihi.build(chip_graph(rng))
    with pytest.raises(DataError, match=r"input %image expects examples of shape \[1, 6, 6\]"):
        loihi.run(built, np.zeros((1, 6, 6)), [2])


def test_nengo_loihi_is_imported_only_when_used():
    code = (
        "import sys, snnc.backends.loihi\n"
        "print(any(m.split('.')[0] in ('nengo', 'nengo_loihi') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_nengo_loihi_limits_become_build_errors():
    """A chip limit NengoLoihi enforces (4096 input axons per core) is one clear line."""
    b = GraphBuilder("wide", stage="spiking")
    spikes = b.add(ops.IfNeuron(), [b.input("x", (5000,))], name="s")
    syn = b.add(ops.LoihiSynapses("dense", units=2), [spikes], {"weight": np.ones((2, 5000), np.float32)})
    c = b.add(ops.LoihiCompartments(), [syn], {"bias": np.zeros(2, np.float32)}, name="c")
    b.output(b.add(ops.Readout(), [c]))
    message = r"graph wide: NengoLoihi cannot build it: .*Input axons \(5000\) exceeded"
    with pytest.raises(BuildError, match=message):
        loihi.run(loihi.build(b.build()), np.zeros((1, 5000)), [2])
