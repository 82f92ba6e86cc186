"""convert_to_spiking: before/expected IR for each option, clear errors, and the spiking
network's readout approaching the ANN's output as the number of time steps T grows."""

import math

import numpy as np
import pytest

from pass_testing import assert_ir, conv, dense, keras_flatten, notes, op_names
from snnc.compiler import interpreter, ops
from snnc.compiler.errors import PassError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.neurons.lif import lif_gain
from snnc.compiler.passes import PassManager
from snnc.compiler.passes.convert_to_spiking import convert_to_spiking
from snnc.compiler.simulate import simulate
from snnc.compiler.text import parse

BEFORE = """
graph @g : float {
  %x = input() {shape=[1,2,2]} : f32[1,2,2]
  %conv = conv2d(%x) {filters=1, kernel=[1,1], weight=<1x1x1x1 f32 = [1]>, bias=<1 f32 = [0]>} : f32[1,2,2]
  %r = relu(%conv) : f32[1,2,2] meta {"scale": 2.5}
  %pool = max_pool2d(%r) {kernel=[2,2], stride=[2,2]} : f32[1,1,1]
  %flat = reshape(%pool) {shape=[1]} : f32[1]
  %d = dense(%flat) {units=2, weight=<2x1 f32 = [1,-1]>, bias=<2 f32 = [0,0]>} : f32[2]
  %output = output(%d) : f32[2]
}
"""


def expected(neuron="if_neuron(%conv) {v_init=0.5}", pool="spike_max_pool2d(%r) {kernel=[2,2], stride=[2,2]}",
             pooled="spike", readout=None):
    """The spiking form of BEFORE with the given neuron, pooling (and the type it gives),
    and output lines."""
    readout = readout or ["%d_readout = readout(%d) : f32[2]", "%output = output(%d_readout) : f32[2]"]
    lines = [
        "graph @g : spiking {",
        "%x = input() {shape=[1,2,2]} : f32[1,2,2]",
        "%conv = conv2d(%x) {filters=1, kernel=[1,1], weight=<1x1x1x1 f32 = [1]>, bias=<1 f32 = [0]>} : f32[1,2,2]",
        f'%r = {neuron} : spike[1,2,2] meta {{"scale": 2.5}}',
        f"%pool = {pool} : {pooled}[1,1,1]",
        f"%flat = reshape(%pool) {{shape=[1]}} : {pooled}[1]",
        "%d = dense(%flat) {units=2, weight=<2x1 f32 = [1,-1]>, bias=<2 f32 = [0,0]>} : f32[2]",
        *readout,
        "}",
    ]
    return "\n".join(lines)


def test_default_if_neurons_gate_and_membrane_readout():
    after = convert_to_spiking(parse(BEFORE))
    assert after.stage == "spiking"
    assert_ir(after, expected())
    assert dict(after.meta)["spiking"] == {"neuron": "if", "max_rate": 1.0, "readout": "membrane"}
    assert notes(after) == [("x", "the graph is not threshold-balanced: neurons fire at the raw activation values")]


def test_if_options():
    after = convert_to_spiking(parse(BEFORE), reset="zero", threshold=2.0, v_init=0.25, max_rate=0.5)
    # gain = threshold * max_rate, v_init in units of the threshold, each spike worth 1 / max_rate
    assert_ir(after, expected(neuron='if_neuron(%conv) {threshold=2.0, reset="zero", v_init=0.5, amplitude=2.0}'))
    assert after.node("r").op == ops.IfNeuron(threshold=2.0, gain=1.0, reset="zero", v_init=0.5, amplitude=2.0)


def test_lif_neurons():
    after = convert_to_spiking(parse(BEFORE), neuron="lif", max_rate=0.2, tau_rc=0.05)
    gain = lif_gain(200.0, 0.05, 0.002)
    assert after.node("r").op == ops.LifNeuron(tau_rc=0.05, tau_ref=0.002, dt=0.001, gain=gain, bias=1.0, amplitude=5.0, tau_s=0.005)
    assert_ir(after, expected(neuron=f"lif_neuron(%conv) {{tau_rc=0.05, gain={gain!r}, amplitude=5.0, tau_s=0.005}}"))
    assert dict(after.meta)["spiking"]["neuron"] == "lif"


@pytest.mark.parametrize("max_rate", [0.05, 0.2, 0.4])
def test_lif_gain_makes_activation_one_fire_at_max_rate(max_rate):
    """The gain solves the LIF rate equation: a balanced activation of 1 fires at max_rate."""
    tau_rc, tau_ref, dt = 0.02, 0.002, 0.001
    gain = lif_gain(max_rate / dt, tau_rc, tau_ref)
    assert 1 / (tau_ref + tau_rc * math.log1p(1 / gain)) == pytest.approx(max_rate / dt)
    b = GraphBuilder("g", stage="spiking")
    x = b.input("x", (2,))
    b.output(b.add(ops.Readout(), [b.add(ops.LifNeuron(tau_rc, tau_ref, dt, gain, 1.0, 1.0), [x])]))
    rates = simulate(b.build(), np.float32([[1.0, 0.0]]), [2000]).outputs[2000]["output"][0]
    assert rates[0] == pytest.approx(max_rate, abs=1 / 2000)
    assert rates[1] == 0  # bias 1: activation 0 is the firing threshold


def test_maxpool_avg_replaces_the_gate_and_says_so():
    after = convert_to_spiking(parse(BEFORE), maxpool="avg")
    assert_ir(after, expected(pool="avg_pool2d(%r) {kernel=[2,2], stride=[2,2]}", pooled="f32"))
    assert ("pool", "max pooling replaced by average pooling (maxpool=avg); accuracy may drop") in notes(after)


def test_spike_readout_adds_output_neurons():
    after = convert_to_spiking(parse(BEFORE), readout="spikes")
    assert_ir(after, expected(readout=[
        "%d_neurons = if_neuron(%d) {v_init=0.5} : spike[2]",
        "%d_readout = readout(%d_neurons) : f32[2]",
        "%output = output(%d_readout) : f32[2]",
    ]))


def test_balanced_graph_gets_no_note_and_keeps_its_records():
    before = parse(BEFORE)
    before = before.replace(meta={"threshold_balance": {"method": "max"}})
    after = convert_to_spiking(before)
    assert notes(after) == []
    assert after.meta["threshold_balance"] == {"method": "max"}


def test_clipped_relu_saturation_is_reported():
    exact = convert_to_spiking(parse(BEFORE.replace("%r = relu(%conv) :", "%r = relu(%conv) {max_value=1.0} :")))
    assert [n for n in notes(exact) if n[0] == "r"] == []
    clipped = convert_to_spiking(parse(BEFORE.replace("%r = relu(%conv) :", "%r = relu(%conv) {max_value=0.5} :")))
    assert ("r", "clipped relu (max 0.5 after balancing) becomes a neuron that saturates at 1") in notes(clipped)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "replace, message",
    [
        (("relu(%conv) :", "relu(%conv) {negative_slope=0.1, threshold=0.5} :"),
         r"%r = relu: only a plain or clipped relu converts to spiking neurons, or a leaky one without threshold "
         r"\(negative_slope=0.1, threshold=0.5\)"),
        (("relu(%conv) :", "relu(%conv) {threshold=0.5} :"),
         r"%r = relu: only a plain or clipped relu .* \(negative_slope=0.0, threshold=0.5\)"),
        (("%r = relu(%conv)", "%s = sigmoid(%conv) : f32[1,2,2]\n%r = relu(%s)"),
         r"%s = sigmoid: cannot be spiking neurons \(read by %r\); sigmoid, tanh and softmax convert only as the "
         r"last operation before an output, where they run on the host on the time-averaged value"),
        (("%r = relu(%conv)", "%bn = batch_norm(%conv) {gamma=<1 f32 = [1]>, beta=<1 f32 = [0]>, mean=<1 f32 = [0]>, "
          "var=<1 f32 = [1]>} : f32[1,2,2]\n%r = relu(%bn)"),
         r"%bn = batch_norm: has no spiking form; run fold_batchnorm before convert_to_spiking"),
    ],
    ids=["thresholded_leaky_relu", "thresholded_relu", "inner_sigmoid", "batch_norm"],
)
def test_ops_without_a_spiking_form(replace, message):
    with pytest.raises(PassError, match=message):
        convert_to_spiking(parse(BEFORE.replace(*replace)))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"neuron": "foo"}, r"option neuron='foo' is not one of bistable, if, lif, sigma_delta"),
        ({"reset": "none"}, r"option reset='none' is not one of subtract, zero"),
        ({"readout": "rate"}, r"option readout='rate' is not one of membrane, spikes"),
        ({"maxpool": "min"}, r"option maxpool='min' is not one of gate, avg"),
        ({"threshold": 0.0}, r"option threshold=0.0 must be positive"),
        ({"max_rate": -1.0}, r"option max_rate=-1.0 must be positive"),
        ({"max_rate": 1.5}, r"option max_rate=1.5: an integrate-and-fire neuron fires at most once per step"),
        ({"neuron": "lif"}, r"max_rate=1.0 spikes per step is 1000 Hz at dt=0.001, at or above a LIF neuron's "
                            r"limit 1/tau_ref = 500 Hz; use max_rate < 0.5"),
        ({"neuron": "lif", "max_rate": 0.5}, r"max_rate=0.5 spikes per step is 500 Hz .* use max_rate < 0.5"),
        ({"bursts": 0}, r"option bursts=0 must be positive"),
        ({"bursts": 2, "reset": "zero"}, r"option bursts=2 needs reset=subtract"),
        ({"neuron": "lif", "max_rate": 0.1, "bursts": 2}, r"option bursts=2: lif neurons fire at most once per step"),
        ({"neuron": "bistable", "bursts": 2}, r"option bursts=2: bistable neurons fire at most once per step"),
        ({"bits": 0}, r"option bits=0 must be positive"),
        ({"bits": 4}, r"option bits=4 sizes sigma-delta events \(neuron=sigma_delta, or spiking_relu layers\); neuron=if does not take it"),
        ({"neuron": "sigma_delta", "bursts": 3}, r"option bursts=3 is integrate-and-fire's; sigma-delta events are sized by bits"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(PassError, match=message):
        convert_to_spiking(parse(BEFORE), **options)


def test_spiking_graphs_are_not_converted_again():
    spiking = convert_to_spiking(parse(BEFORE))
    with pytest.raises(PassError, match="runs on float graphs; this one is spiking"):
        convert_to_spiking(spiking)


# ----------------------------------------------------------------------------- accuracy

TIMESTEPS = (4, 16, 64, 256)


def mlp(rng):
    b = GraphBuilder("mlp")
    x = b.input("input", (10,))
    x = b.add(ops.ReLU(), [dense(b, rng, x, 16)])
    x = b.add(ops.ReLU(), [dense(b, rng, x, 16)])
    b.output(b.add(ops.Softmax(), [dense(b, rng, x, 4, name="logits")]))
    return b.build()


def cnn(rng):
    b = GraphBuilder("cnn")
    x = b.input("input", (1, 8, 8))
    x = b.add(ops.MaxPool2d((2, 2), (2, 2)), [conv(b, rng, x, 4)])
    x = b.add(ops.ReLU(), [x])  # canonicalize moves it before the pool, which becomes a gate
    x = b.add(ops.ReLU(), [conv(b, rng, x, 6)])
    x = b.add(ops.ReLU(), [dense(b, rng, keras_flatten(b, x), 16)])
    b.output(dense(b, rng, x, 4, name="logits"))
    return b.build()


def readout_errors(net, rng, pipeline):
    """Mean absolute error between the spiking readout at each T and the ANN's logits."""
    ann = net(rng)
    x = rng.uniform(0, 1, size=(64, *ann.inputs[0].type.shape)).astype(np.float32)
    snn, _ = PassManager(pipeline).run(ann, calibration=x)
    logits = interpreter.run(canonicalize_only(ann), x)["output"]
    result = simulate(snn, x, TIMESTEPS)
    return [float(np.abs(result.outputs[t]["output"] - logits).mean()) for t in TIMESTEPS], float(np.abs(logits).mean())


def canonicalize_only(graph):
    return PassManager("canonicalize").run(graph)[0]  # the ANN without its softmax


# Measured (the rng fixture's seed comes from the test's name), MAE at T = 4, 16, 64, 256
# and the mean |logit| it is compared with:
#   mlp_default   0.274  0.072  0.018  0.0055   |logit| 1.44   (0.4 % at T=256: error ~ 1/T)
#   mlp_max       0.273  0.059  0.016  0.0035   |logit| 0.63   (0.6 %)
#   cnn_max       0.208  0.110  0.050  0.022    |logit| 0.54   (4.1 %; the max gate adds error)
#   cnn_default   0.197  0.082  0.039  0.019    |logit| 0.31   (6.0 %)
@pytest.mark.parametrize(
    "net, pipeline, bound",
    [
        (mlp, "default", 0.02),
        (mlp, "canonicalize,threshold_balance{method=max},convert_to_spiking", 0.02),
        (cnn, "canonicalize,threshold_balance{method=max},convert_to_spiking", 0.08),
        (cnn, "default", 0.08),
    ],
    ids=["mlp_default", "mlp_max", "cnn_max", "cnn_default"],
)
def test_spiking_readout_approaches_the_ann_as_t_grows(net, pipeline, bound, rng):
    errors, scale = readout_errors(net, rng, pipeline)
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0] / 5
    assert errors[-1] < bound * scale, (errors, scale)


def test_bursts_option_sets_finer_steps_and_records_itself():
    after = convert_to_spiking(parse(BEFORE), bursts=4)
    assert_ir(after, expected(neuron="if_neuron(%conv) {gain=4.0, v_init=0.5, amplitude=0.25, bursts=4}"))
    assert dict(after.meta)["spiking"] == {"neuron": "if", "max_rate": 1.0, "readout": "membrane", "bursts": 4}


@pytest.mark.parametrize("net", [mlp, cnn])
def test_bursts_bring_low_t_closer_to_the_ann(net, seed):
    """Up to 4 spikes per step, each worth 1/4: at T=4 the readout's error is about what binary
    spikes reach at T=16 (error ~ 1 / (bursts * T)). Measured, MAE at T = 4, 16, 64, 256:
    mlp binary 0.243 0.067 0.017 0.0045, bursts=4 0.062 0.016 0.0042 0.0014;
    cnn binary 0.127 0.039 0.011 0.0039, bursts=4 0.033 0.0084 0.0037 0.0022."""
    binary, _ = readout_errors(net, np.random.default_rng(seed), "rate")
    bursts, _ = readout_errors(net, np.random.default_rng(seed), "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{bursts=4}")
    assert bursts[0] < binary[0] / 2
    assert bursts[0] < 1.2 * binary[1]


def test_bits_option_makes_sigma_delta_neurons_and_records_itself():
    after = convert_to_spiking(parse(BEFORE), neuron="sigma_delta", bits=4, dt=0.5)
    assert_ir(after, expected(neuron="sigma_delta_neuron(%conv) {gain=30.0, bits=4, amplitude=0.06666666666666667, dt=0.5}"))
    assert dict(after.meta)["spiking"] == {"neuron": "sigma_delta", "max_rate": 1.0, "readout": "membrane", "bits": 4}
    assert ("r", "sigma-delta neurons rectify each step's input: a layer fed by events keeps an error that T does not "
                 "average away (it shrinks with bits)") in notes(after)


SIGMA_DELTA = "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{neuron=sigma_delta,bits=%d}"


def test_sigma_delta_approaches_the_ann_to_a_floor_set_by_bits(seed):
    """bits=4 (15 events per step at most): the readout approaches the ANN as T grows, down
    to a floor. A layer fed by events rectifies each step's input, so the rounding noise of
    the events before it leaves a bias that T does not average away; more bits, less noise.
    Measured on the mlp (this test's seed), MAE at T = 4, 16, 64, 256 (|logit| 0.30): bits=4
    0.0159 0.0086 0.0074 0.0072, bits=8 0.0013 0.0007 0.0005 0.0005, bits=1 0.54 0.42 0.42
    0.41 (IF with bursts=15: 0.0133 0.0036 0.0013 0.0007); seeds 1-3 alike (bits=4's floor
    0.4-2.4 % of |logit|, bits=1's 26-140 %)."""
    four, scale = readout_errors(mlp, np.random.default_rng(seed), SIGMA_DELTA % 4)
    eight, _ = readout_errors(mlp, np.random.default_rng(seed), SIGMA_DELTA % 8)
    assert all(later < earlier for earlier, later in zip(four[:3], four[1:3])), four
    assert four[2] < four[0] / 2 and four[-1] < 0.03 * scale, (four, scale)
    assert eight[-1] < four[-1] / 3 and eight[-1] < 0.005 * scale, (eight, four, scale)


def test_reset_to_zero_loses_the_residual_charge(seed):
    """Reset by subtraction keeps what exceeded the threshold; reset to zero drops it, so its
    error stops shrinking with T (Rueckauer et al. 2017)."""
    subtract, _ = readout_errors(cnn, np.random.default_rng(seed), "rate")
    zero, _ = readout_errors(cnn, np.random.default_rng(seed), "canonicalize,threshold_balance,convert_to_spiking{reset=zero}")
    assert zero[-1] > 2 * subtract[-1]


def test_the_ann_output_layer_is_read_out_not_spiked(rng):
    snn, _ = PassManager("default").run(mlp(rng), calibration=rng.uniform(0, 1, (8, 10)).astype(np.float32))
    assert op_names(snn)[-3:] == ["dense", "readout", "output"]
