"""lower_loihi: each chip population's synapses and bias reproduce, on random spikes, the
current the spiking graph's linear ops compute (the float interpreter is the reference)."""

import numpy as np
import pytest

from pass_testing import NETS, conv, dense, inputs_for, notes
from snnc.compiler import ops
from snnc.compiler.errors import PassError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.interpreter import EVALUATORS
from snnc.compiler.passes import PassManager
from snnc.compiler.passes.lower_loihi import lower_loihi
from snnc.compiler.passes.map_to_cores import map_to_cores

TO_SPIKING = "canonicalize,fold_batchnorm,maxpool_to_avgpool,threshold_balance,convert_to_spiking{reset=zero,v_init=0}"


def spiking(graph, rng, pipeline=TO_SPIKING):
    return PassManager(pipeline).run(graph, calibration=inputs_for(graph, rng, 64))[0]


def layer_currents(snn, spikes, x):
    """Every value of ``snn`` for one time step in which each neuron population emits
    ``spikes[name]`` (0/1) times its amplitude; the input is ``x``."""
    values = {snn.inputs[0].name: x}
    for node in snn.nodes[1:]:
        if isinstance(node.op, ops.NEURON_OPS):
            values[node.name] = spikes[node.name] * node.op.amplitude
        elif not isinstance(node.op, (ops.Readout, ops.Output)):
            values[node.name] = EVALUATORS[type(node.op)](node, [values[i] for i in node.inputs])
    return values


def synapse_current(node, pre_values):
    """A float-format loihi_synapses node applied to presynaptic values, written out."""
    w = node.params["weight"].astype(np.float64)
    if node.op.kind == "dense":
        return pre_values.reshape(len(pre_values), -1) @ w.T
    pt, pl, pb, pr = node.op.pads
    xp = np.pad(pre_values, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    sh, sw = node.op.stride
    kh, kw = node.op.kernel
    ho = (xp.shape[2] - kh) // sh + 1
    wo = (xp.shape[3] - kw) // sw + 1
    out = np.zeros((len(xp), w.shape[0], ho, wo))
    for u in range(kh):
        for v in range(kw):
            out += np.einsum("bchw,fc->bfhw", xp[:, :, u : u + sh * (ho - 1) + 1 : sh, v : v + sw * (wo - 1) + 1 : sw], w[:, :, u, v])
    return out.reshape(len(xp), -1)


def depthwise_net(rng, channels=4, size=6, dilation=1, pool=True):
    """host conv -> a depthwise conv (groups = channels; dilated 'same' if asked) -> average
    pool, then a grouped conv (groups=2): the two chip layers' synapses are grouped chains."""
    b = GraphBuilder("depthwise")
    x = b.add(ops.ReLU(), [conv(b, rng, b.input("input", (1, size, size)), channels)], name="relu1")
    op = ops.Conv2d(channels, (3, 3), pads=(dilation,) * 4, dilation=(dilation, dilation), groups=channels)
    params = {"weight": rng.normal(0, 0.6, (channels, 1, 3, 3)).astype(np.float32), "bias": rng.normal(0, 0.2, channels).astype(np.float32)}
    x = b.add(ops.ReLU(), [b.add(op, [x], params)], name="depthwise")
    if pool:
        x = b.add(ops.AvgPool2d((2, 2), (2, 2)), [x])
    x = b.add(ops.ReLU(), [conv(b, rng, x, 2 * channels, k=1, pad=0, groups=2)], name="grouped")
    b.output(dense(b, rng, b.add(ops.Reshape((b.type_of(x).size,)), [x]), 3, name="logits"))
    return b.build()


LOWERED_NETS = {**NETS, "depthwise": depthwise_net, "dilated": lambda rng: depthwise_net(rng, size=7, dilation=2)}


@pytest.mark.parametrize("net", ["flatten", "residual", "conv_bn", "depthwise", "dilated"])
def test_synapses_and_bias_reproduce_each_layer_current(net, rng):
    snn = spiking(LOWERED_NETS[net](rng), rng)
    chip = lower_loihi(snn)
    x = inputs_for(snn, rng, 3).astype(np.float64)
    spikes = {n.name: (rng.random((3, *n.type.shape)) < 0.4).astype(np.float64) for n in snn.nodes if isinstance(n.op, ops.NEURON_OPS)}
    reference = layer_currents(snn, spikes, x)
    populations = [n for n in chip.nodes if isinstance(n.op, ops.LoihiCompartments)]
    assert populations, "some layer must land on the chip"
    for node in populations:
        neuron = snn.node(node.name)
        want = reference[neuron.inputs[0]].reshape(3, -1)
        got = node.params["bias"].astype(np.float64) * node.op.dt / node.op.gain
        for syn_name in node.inputs:
            syn = chip.node(syn_name)
            pre = chip.node(syn.inputs[0])
            got = got + synapse_current(syn, spikes[pre.name] * pre.op.amplitude)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(), err_msg=node.name)
        assert node.op.gain == pytest.approx(neuron.op.gain / neuron.op.threshold)


def test_pooling_folds_into_the_next_convolution_and_the_input_layer_stays_on_the_host(rng):
    b = GraphBuilder("g")
    x = b.add(ops.ReLU(), [conv(b, rng, b.input("input", (1, 8, 8)), 4, pad=0)], name="relu1")
    x = b.add(ops.AvgPool2d((2, 2), (2, 2)), [x])
    x = b.add(ops.ReLU(), [conv(b, rng, x, 5, pad=0)], name="relu2")
    b.output(dense(b, rng, b.add(ops.Reshape((5 * 1 * 1,)), [x]), 3, name="logits"))
    chip = lower_loihi(spiking(b.build(), rng))
    assert chip.node("relu1").op.NAME == "if_neuron"  # reads the analog input: host
    syn = chip.node("relu2_from_relu1")
    assert (syn.op.kind, syn.op.kernel, syn.op.stride) == ("conv", (6, 6), (2, 2))
    assert chip.node("relu2").op.NAME == "loihi_compartments"
    assert chip.node("logits").op.NAME == "dense"  # the output layer reads chip spikes on the host
    assert any("run on the host" in m for _, m in notes(chip, "lower_loihi"))


def synapse_ops(chip):
    return {n.name: n.op for n in chip.nodes if isinstance(n.op, ops.LoihiSynapses)}


def test_grouped_and_dilated_convolutions_become_conv_synapses(rng):
    """A grouped conv's kernel is its full kernel, zero off the groups' channel blocks; a
    dilated one's is the larger kernel it spans, zero between its taps."""
    syn = synapse_ops(lower_loihi(spiking(NETS["conv_bn"](rng), rng)))["relu2_from_relu_after_pool"]
    assert (syn.kind, syn.kernel, syn.stride) == ("conv", (6, 6), (2, 2))  # 2x2 pool, then 3x3 groups=2
    chip = lower_loihi(spiking(depthwise_net(rng, size=7, dilation=2), rng))
    depthwise, grouped = chip.node("depthwise_from_relu1"), chip.node("grouped_from_depthwise")
    assert (depthwise.op.kind, depthwise.op.kernel, depthwise.op.pads) == ("conv", (5, 5), (2, 2, 2, 2))
    kernel = depthwise.params["weight"]
    assert kernel.shape == (4, 4, 5, 5)
    zero = np.ones((4, 4, 5, 5), bool)  # off the diagonal (depthwise) channel blocks
    zero[np.arange(4), np.arange(4)] = np.add.outer(np.arange(5) % 2, np.arange(5) % 2) > 0  # between the dilated taps
    assert not np.any(kernel[zero]) and np.all(kernel[~zero] != 0)
    assert (grouped.op.kind, grouped.op.kernel, grouped.op.stride) == ("conv", (2, 2), (2, 2))
    assert not np.any(grouped.params["weight"][:4, 2:]) and not np.any(grouped.params["weight"][4:, :2])


def test_a_depthwise_conv_on_32_channels_of_14x14_fits_the_cores(rng):
    """6272 neurons: as a dense synapse the fan-in (6272 axons) would exceed a core's 4096;
    as a conv synapse each compartment reads 9 pixels and the layer fits 7 cores."""
    chip = lower_loihi(spiking(depthwise_net(rng, channels=32, size=14), rng))
    assert synapse_ops(chip)["depthwise_from_relu1"].kind == "conv"
    placed = map_to_cores(chip).meta["core_map"]["populations"]["depthwise"]
    assert placed["cores"] == 7 and placed["largest"]["input_axons"] <= 4096


def test_a_dense_connection_no_core_can_take_is_refused_at_lowering(rng):
    """Not map_to_cores' fan-in error after probing 4160 columns: one line naming both layers."""
    b = GraphBuilder("g")
    x = b.add(ops.ReLU(), [conv(b, rng, b.input("input", (1, 8, 8)), 65)], name="wide")
    b.output(b.add(ops.ReLU(), [dense(b, rng, b.add(ops.Reshape((65 * 64,)), [x]), 3)], name="narrow"))
    snn = spiking(b.build(), rng)
    message = (
        r"%narrow = if_neuron: the connection from %wide is not a convolution .* dense 3x4160 synapse: "
        "its 4160 presynaptic neurons exceed the 4096 input axons of a Loihi core"
    )
    with pytest.raises(PassError, match=message):
        lower_loihi(snn)


@pytest.mark.parametrize(
    "pipeline, message",
    [
        ("canonicalize,maxpool_to_avgpool,threshold_balance,convert_to_spiking", r"Loihi resets the membrane to zero .* convert_to_spiking\{reset=zero,v_init=0\}"),
        ("canonicalize,threshold_balance,convert_to_spiking{reset=zero,v_init=0}", "Loihi cannot gate spikes by rate; replace max pooling"),
    ],
)
def test_what_the_chip_cannot_do_is_a_clear_error(pipeline, message, rng):
    b = GraphBuilder("g")
    x = b.add(ops.ReLU(), [conv(b, rng, b.input("input", (1, 6, 6)), 2)], name="relu1")
    x = b.add(ops.MaxPool2d((2, 2), (2, 2)), [x])
    x = b.add(ops.ReLU(), [conv(b, rng, x, 2)], name="relu2")
    b.output(x)
    with pytest.raises(PassError, match=message):
        lower_loihi(spiking(b.build(), rng, pipeline))


def test_a_float_graph_is_refused(rng):
    with pytest.raises(PassError, match="runs on spiking graphs"):
        lower_loihi(NETS["flatten"](rng))


def test_adapt_runs_chip_neurons_with_the_chips_reset_and_keeps_the_host_layer(rng):
    snn = spiking(NETS["flatten"](rng), rng, "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking")
    chip = lower_loihi(snn, adapt=True)
    host = chip.node("relu1")
    assert (host.op.NAME, host.op.reset, host.op.v_init) == ("if_neuron", "subtract", 0.5)
    assert chip.node("relu2").op.NAME == "loihi_compartments"
    assert ("relu2", "on the chip: reset to zero from zero (the spiking graph has reset=subtract, v_init=0.5)") in notes(chip, "lower_loihi")


def test_leaky_relu_lowers_as_two_chip_populations_and_sigmoid_stays_on_the_host(rng):
    """The leaky relu's two parts become two chip populations whose spikes the host's
    output layer weights (negative part by -slope); the output sigmoid runs on the host on
    the readout. refsim runs it within the chip's usual distance from the ANN (measured
    5.5 % of the mean |output| at T=512, from the chip's reset to zero and membrane floor)."""
    from snnc.backends.refsim import simulate as refsim
    from snnc.compiler.interpreter import run

    b = GraphBuilder("leaky")
    x = b.add(ops.ReLU(), [dense(b, rng, b.input("input", (8,)), 16)])
    x = b.add(ops.ReLU(negative_slope=0.2), [dense(b, rng, x, 12)], name="leaky")
    b.output(b.add(ops.Sigmoid(), [dense(b, rng, x, 4)], name="head"))
    ann = b.build()
    data = rng.uniform(-1, 1, (64, 8)).astype(np.float32)
    lowered = spiking(ann, rng, "canonicalize,threshold_balance,convert_to_spiking,lower_loihi{adapt=true}")
    chip = [n.name for n in lowered.nodes if isinstance(n.op, ops.LoihiCompartments)]
    assert chip == ["leaky_pos", "leaky_neg"]
    assert [n.op.NAME for n in lowered.nodes][-3:] == ["readout", "sigmoid", "output"]
    want = run(ann, data)["output"]
    got = refsim(lowered, data, [512]).outputs[512]["output"]
    assert np.abs(got - want).mean() < 0.1 * np.abs(want).mean()


def test_a_recurrent_first_layer_is_refused_with_the_fix(rng):
    """A SimpleRNN reading the analog input cannot be a host layer (its recurrence) nor a
    chip one (the input is not spikes): the message says to put a layer before it."""
    from snnc.compiler.types import TensorType

    b = GraphBuilder("rnn")
    x = b.input("x", (4,), sequence=True)
    d = b.delay(TensorType((6,)), name="h_prev")
    s = b.add(ops.Add(), [dense(b, rng, x, 6), dense(b, rng, d, 6)])
    h = b.add(ops.ReLU(), [s], name="h")
    b.close_delay(d, h)
    b.output(dense(b, rng, h, 3))
    snn = PassManager(TO_SPIKING).run(b.build(), calibration=rng.uniform(0, 1, (16, 5, 4)).astype(np.float32))[0]
    with pytest.raises(PassError, match="%h = if_neuron: is a recurrent layer reading the analog input.*put a layer before it"):
        lower_loihi(snn)
