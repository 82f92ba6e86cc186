"""Activations trained for spiking neurons (qcfs, soft_lif) through balancing, conversion,
calibration and the driver: kept as trained, and the spiking neurons they become compute
them (QCFS: exactly at T = L; soft-LIF: the hard LIF rate curve, in closed form)."""

import numpy as np
import pytest

from pass_testing import assert_same_outputs, conv, dense, notes
from snnc.compiler import interpreter, ops
from snnc.compiler.datasets import Dataset
from snnc.compiler.driver import compile_model, default_timesteps
from snnc.compiler.errors import PassError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.neurons.if_ import qcfs
from snnc.compiler.neurons.lif import soft_lif_rate
from snnc.compiler.neurons.sigma_delta import SigmaDeltaNeuron
from snnc.compiler.passes.calibrate import calibrate
from snnc.compiler.passes.convert_to_spiking import convert_to_spiking
from snnc.compiler.passes.threshold_balance import threshold_balance
from snnc.compiler.simulate import simulate

QCFS = ops.Qcfs(levels=4, threshold=2.5, shift=0.5)
SOFT_LIF = ops.SoftLif(tau_rc=0.02, tau_ref=0.002, amplitude=0.063, sigma=0.02)


def mixed_mlp(rng):
    """dense -> qcfs -> dense -> relu -> dense -> soft_lif -> dense: every kind of activation."""
    b = GraphBuilder("mixed")
    x = b.add(QCFS, [dense(b, rng, b.input("x", (6,)), 8)], name="q")
    x = b.add(ops.ReLU(), [dense(b, rng, x, 6)], name="r")
    x = b.add(SOFT_LIF, [dense(b, rng, x, 5, name="into_lif")], name="s")
    b.output(dense(b, rng, x, 3, name="logits"))
    return b.build()


def mixed_conv(rng):
    """conv -> relu -> conv -> qcfs -> flatten -> dense: per-channel relu scales next to a qcfs."""
    b = GraphBuilder("mixed_conv")
    x = b.add(ops.ReLU(), [conv(b, rng, b.input("x", (2, 6, 6)), 4)], name="r")
    x = b.add(ops.Qcfs(levels=8, threshold=1.7), [conv(b, rng, x, 3)], name="q")
    b.output(dense(b, rng, b.add(ops.Reshape((3 * 36,)), [x]), 3, name="logits"))
    return b.build()


def single(op, n):
    """input -> op -> output: the output reads the population's mean output once converted."""
    b = GraphBuilder("single")
    b.output(b.add(op, [b.input("x", (n,))], name="act"))
    return b.build()


# ----------------------------------------------------------------------------- threshold_balance


@pytest.mark.parametrize("per_channel", ["false", "true", "auto"])
def test_balancing_takes_the_trained_qcfs_threshold_and_leaves_soft_lif(per_channel, rng):
    graph = mixed_mlp(rng)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    after = threshold_balance(graph, calibration=x, per_channel=per_channel)
    assert_same_outputs(graph, after, x)
    q, s = after.node("q"), after.node("s")
    assert q.op == ops.Qcfs(levels=4, threshold=1.0, shift=0.5)
    assert dict(q.meta) == {"scale": 2.5, "trained": "qcfs"}
    assert s.op == SOFT_LIF and dict(s.meta) == {"scale": 1.0, "trained": "soft_lif"}
    assert after.meta["threshold_balance"]["kept_as_trained"] == ["q", "s"]
    want, got = interpreter.run_batch(graph, {"x": x}), interpreter.run_batch(after, {"x": x})
    np.testing.assert_allclose(got["q"], want["q"] / 2.5, rtol=1e-5, atol=1e-6)
    # the value into the soft-LIF and its output keep scale 1
    for name in ("into_lif", "s"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


def test_per_channel_relu_scales_next_to_a_qcfs_layer(rng):
    graph = mixed_conv(rng)
    x = rng.normal(size=(32, 2, 6, 6)).astype(np.float32)
    after = threshold_balance(graph, calibration=x, per_channel="auto", method="max")
    assert_same_outputs(graph, after, x)
    relu_scale = after.node("r").meta["scale"]
    assert isinstance(relu_scale, list) and len(set(relu_scale)) == 4  # per channel
    assert after.node("q").meta["scale"] == 1.7 and after.node("q").op.threshold == 1.0
    assert notes(after) == []


# ----------------------------------------------------------------------------- QCFS -> IF


@pytest.mark.parametrize("levels,threshold,shift", [(4, 2.5, 0.5), (8, 1.0, 0.5), (2, 0.7, 0.25)])
def test_qcfs_neurons_equal_the_op_at_t_equal_l(levels, threshold, shift, rng):
    graph = single(ops.Qcfs(levels, threshold, shift), 500)
    x = rng.uniform(-0.5, 1.3 * threshold, size=(4, 500))
    spiking = convert_to_spiking(graph, neuron="if", v_init=0.0, reset="zero", threshold=3.0)  # options for relus only
    assert spiking.node("act").op == ops.IfNeuron(
        threshold=threshold, gain=1.0, reset="subtract", v_init=shift * threshold, amplitude=threshold
    )
    assert spiking.node("act").meta["trained"] == "qcfs"
    assert spiking.meta["spiking"]["recommended_timesteps"] == levels
    ts = [levels * k for k in (1, 2, 4, 8)]
    exact = dict(rtol=0, atol=1e-6)  # the readout is float32; one level is lambda / T >> 1e-6
    outputs = simulate(spiking, {"x": x}, ts).outputs
    np.testing.assert_allclose(outputs[levels]["output"], interpreter.run(graph, {"x": x})["output"], **exact)
    # at any T the count is floor(x T / lambda + shift) clipped to [0, T]: the clipped relu it was
    # trained to approximate, to within lambda * max(shift, 1 - shift) / T
    clipped = np.clip(x, 0, threshold)
    errors = []
    for t in ts:
        np.testing.assert_allclose(outputs[t]["output"], qcfs(x, t, threshold, shift), **exact)
        errors.append(np.abs(outputs[t]["output"] - clipped).max())
        assert errors[-1] <= threshold * max(shift, 1 - shift) / t + 1e-6
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 4


def test_balanced_qcfs_network_equals_the_ann_at_t_equal_l(rng):
    """Balancing moves lambda into the weights; the first spiking layer's input is constant,
    so a one-hidden-layer QCFS network's readout equals the ANN's exactly at T = L."""
    b = GraphBuilder("qcfs_mlp")
    h = b.add(QCFS, [dense(b, rng, b.input("x", (6,)), 16)], name="q")
    b.output(dense(b, rng, h, 3, name="logits"))
    graph = b.build()
    x = rng.normal(size=(64, 6)).astype(np.float32)
    spiking = convert_to_spiking(threshold_balance(graph, calibration=x))
    assert spiking.node("q").op.threshold == 1.0 and spiking.node("q").op.amplitude == 1.0
    got = simulate(spiking, {"x": x}, [4]).outputs[4]["output"]
    np.testing.assert_allclose(got, interpreter.run(graph, {"x": x})["output"], rtol=1e-5, atol=1e-5)


def test_qcfs_layers_stay_integrate_and_fire_with_neuron_lif(rng):
    spiking = convert_to_spiking(mixed_mlp(rng), neuron="lif", max_rate=0.2)
    assert isinstance(spiking.node("q").op, ops.IfNeuron)
    assert isinstance(spiking.node("r").op, ops.LifNeuron) and spiking.node("r").op.gain != 1.0
    assert ("q", "qcfs layers stay integrate-and-fire neurons (neuron=lif applies to relu layers)") in notes(spiking)


@pytest.mark.parametrize("sigma", [0.0, 0.02])
def test_a_softened_lif_curve_is_noted_where_the_neurons_take_the_hard_one(sigma):
    spiking = convert_to_spiking(single(ops.SoftLif(sigma=sigma), 4))
    noted = [message for node, message in notes(spiking) if node == "act" and "sigma" in message]
    assert len(noted) == (sigma > 0), notes(spiking)
    assert isinstance(spiking.node("act").op, ops.LifNeuron)


def test_bistable_neurons_refuse_trained_activations(rng):
    with pytest.raises(PassError, match=r"%q = qcfs: neuron=bistable cannot convert activations trained for IF or LIF"):
        convert_to_spiking(mixed_mlp(rng), neuron="bistable")


def test_sequence_graphs_floor_qcfs_membranes_at_zero():
    b = GraphBuilder("seq")
    b.output(b.add(QCFS, [b.input("x", (3,), sequence=True)], name="act"), sequence=True)
    op = convert_to_spiking(b.build()).node("act").op
    assert op.v_min == 0.0 and op.v_init == 1.25


# ----------------------------------------------------------------------------- soft-LIF -> LIF


def test_soft_lif_neurons_fire_at_the_hard_lif_rate(rng):
    graph = single(SOFT_LIF, 300)
    x = rng.uniform(-0.5, 10.0, size=(1, 300))
    spiking = convert_to_spiking(graph, dt=0.001, neuron="if", synapse=0.0)
    assert spiking.node("act").op == ops.LifNeuron(tau_rc=0.02, tau_ref=0.002, dt=0.001, gain=1.0, bias=1.0, amplitude=63.0)
    assert spiking.node("act").meta["trained"] == "soft_lif"
    assert "recommended_timesteps" not in spiking.meta["spiking"]
    want = SOFT_LIF.amplitude * soft_lif_rate(x, SOFT_LIF.tau_rc, SOFT_LIF.tau_ref, 0.0)
    assert want.max() > 10 and (want == 0).any()  # up to ~250 Hz, and silent neurons
    outputs = simulate(spiking, {"x": x}, [1000, 4000]).outputs
    for t in (1000, 4000):
        # the count differs from rate * time by less than one spike (the first one's latency)
        one_spike = SOFT_LIF.amplitude / 0.001 / t
        assert np.abs(outputs[t]["output"] - want).max() <= one_spike


def test_soft_lif_neurons_on_nengo_fire_at_the_hard_lif_rate(rng):
    from snnc.backends import nengo as nengo_backend

    graph = single(SOFT_LIF, 100)
    x = rng.uniform(-0.5, 10.0, size=(1, 100))
    spiking = convert_to_spiking(graph, synapse=0.0)
    got = nengo_backend.simulate(spiking, {"x": x}, [2000], simulator="nengo").outputs[2000]["output"]
    want = SOFT_LIF.amplitude * soft_lif_rate(x, SOFT_LIF.tau_rc, SOFT_LIF.tau_ref, 0.0)
    assert np.abs(got - want).max() <= SOFT_LIF.amplitude / 0.001 / 2000 + 1e-4


def two_soft_lif_layers(seed, sigma, n=200):
    """input -> soft_lif -> dense -> soft_lif -> output: the second layer reads spikes."""
    rng = np.random.default_rng(seed)
    op = ops.SoftLif(tau_rc=SOFT_LIF.tau_rc, tau_ref=SOFT_LIF.tau_ref, amplitude=SOFT_LIF.amplitude, sigma=sigma)
    b = GraphBuilder("two_layers")
    h = b.add(op, [b.input("x", (n,))], name="first")
    weight = (rng.uniform(0.0, 0.1, size=(n, n)) * rng.choice([-1, 1], p=[0.3, 0.7], size=(n, n))).astype(np.float32)
    h = b.add(ops.Dense(n), [h], {"weight": weight, "bias": np.full(n, -0.3, np.float32)}, name="into_second")
    b.output(b.add(op, [h], name="second_neurons"), name="second")
    return b.build()


def test_a_synapse_gives_a_spike_driven_lif_layer_its_rate_back(rng):
    """LIF neurons reset to zero: fed spikes as one-step pulses (synapse=0) the second layer
    fires below the rate curve of its mean input; a 10 ms synapse gives most of
    that rate back. The reference is the hard-curve ANN (sigma=0)."""
    graph = two_soft_lif_layers(7, sigma=0.0)
    x = rng.uniform(0.0, 3.0, size=(1, 200)).astype(np.float32)
    want = interpreter.run(graph, {"x": x})["second"]
    assert (want > 1).mean() > 0.3  # many neurons firing
    steps = 4000  # 4 s: the synapse's start-up lag is a few steps in 4000
    errors = {}
    for tau_s in (0.0, 0.01):
        got = simulate(convert_to_spiking(graph, synapse=tau_s), {"x": x}, [steps]).outputs[steps]["second"]
        errors[tau_s] = np.abs(got - want).mean() / want.mean()
    assert errors[0.0] > 0.04, errors  # pulses: a lasting deficit (measured 5.4 %)
    assert errors[0.01] < 0.25 * errors[0.0] and errors[0.01] < 0.015, errors  # (measured 0.55 %)


# ----------------------------------------------------------------------------- calibrate, driver


def test_calibration_keeps_trained_populations_and_corrects_the_relus(rng):
    graph = mixed_mlp(rng)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    balanced = threshold_balance(graph, calibration=x)
    spiking = convert_to_spiking(balanced)
    calibrated = calibrate(spiking, calibration=x, float_graph=balanced, mode="potential", timesteps=16)
    for name in ("q", "s"):
        assert calibrated.node(name).op == spiking.node(name).op
    assert list(calibrated.meta["calibrate"]["layers"]) == ["r"]
    assert calibrated.node("r").op.v_init != spiking.node("r").op.v_init
    assert ("q", "kept as trained, not calibrated: q, s") in notes(calibrated, "calibrate")
    bias = calibrate(spiking, calibration=x, float_graph=balanced, mode="bias", timesteps=16)
    assert [n.op for n in bias.nodes if n.name in ("q", "s")] == [spiking.node("q").op, spiking.node("s").op]


def test_compile_recommends_t_equal_l_and_measures_lif_error_only_for_relus(rng):
    graph = mixed_mlp(rng)
    data = Dataset(rng.normal(size=(64, 6)).astype(np.float32), None, "normal")
    compiled = compile_model(graph, data)
    messages = [n["message"] for n in compiled.manifest["notes"]]
    assert "QCFS trained with L=4: T >= 4 recommended (its neurons compute the trained activation exactly at T = L)" in messages
    assert not any("LIF neurons in place of the ReLUs" in m for m in messages)  # the soft_lif's LIF is trained
    assert compiled.spiking.meta["spiking"]["recommended_timesteps"] == 4
    assert default_timesteps(compiled.ann) == [4, 8, 16, 32, 64] == default_timesteps(compiled.spiking)
    lif = compile_model(graph, data, pipeline="canonicalize,threshold_balance,convert_to_spiking{neuron=lif,max_rate=0.2}")
    (warning,) = [n["message"] for n in lif.manifest["notes"] if "LIF neurons in place of the ReLUs" in n["message"]]
    assert "%r " in warning and "%s " not in warning and "%q " not in warning


def test_default_timesteps_include_the_largest_qcfs_levels():
    b = GraphBuilder("q")
    x = b.add(ops.Qcfs(levels=12), [b.input("x", (3,))])
    b.output(b.add(ops.Qcfs(levels=6), [x]))
    assert default_timesteps(b.build()) == [8, 12, 16, 32, 64]
    assert default_timesteps(single(ops.ReLU(), 3)) == [8, 16, 32, 64]


# ----------------------------------------------------------------------------- Loihi


def soft_lif_mlp(rng, tau_ref=0.002):
    """A host soft-LIF layer and two chip ones, dense with biases."""
    b = GraphBuilder("soft_lif_mlp")
    x = b.input("input", (12,))
    for name, units in (("host", 16), ("l1", 10), ("l2", 8)):
        n = b.type_of(x).shape[0]  # currents of a few units: LIF rates of tens to hundreds of Hz
        params = {"weight": rng.normal(0, 3 / np.sqrt(n), (units, n)).astype(np.float32),
                  "bias": rng.normal(0, 0.5, units).astype(np.float32)}
        x = b.add(ops.SoftLif(0.02, tau_ref, 0.05, 0.02), [b.add(ops.Dense(units), [x], params)], name=name)
    b.output(dense(b, rng, x, 3, name="logits"))
    return b.build()


@pytest.mark.filterwarnings(
    "ignore:invalid value encountered in cast:RuntimeWarning",  # NengoLoihi's NaN-filled int state
    "ignore:Lost .* extra bits in weight rounding",
    "ignore:Non-finite values detected in `max_rates`",
    "ignore:divide by zero encountered",
    "ignore:invalid value encountered in log1p",
)
def test_a_soft_lif_network_compiles_for_loihi_and_refsim_spikes_as_the_emulator(rng):
    from snnc.compiler.loihi_crosscheck import verify_loihi

    data = Dataset(np.abs(rng.normal(size=(16, 12))).astype(np.float32), None, "random")
    compiled = compile_model(soft_lif_mlp(rng), data, target="loihi")  # the loihi pipeline
    chip = {n.name: n for n in compiled.model.nodes if isinstance(n.op, ops.LoihiCompartments)}
    assert {n.op.neuron for n in chip.values()} == {"lif"} and all(n.op.refract_delay == 3 for n in chip.values())
    # the default 5 ms synapse is the compartments' current decay (NengoLoihi: 1 - exp(-dt/tau_s), 12 bits, less 1)
    assert {n.op.decay_u for n in chip.values()} == {round((1 - np.exp(-0.001 / 0.005)) * 4095 - 1)}
    assert ("l1", "kept as trained, not fitted: l1, l2") in [(n["node"], n["message"]) for n in compiled.manifest["notes"]]
    result = verify_loihi(compiled, data.head(3), 40, progress=False)
    assert [layer.name for layer in result.layers] == ["l1", "l2"]
    assert all(layer.emulator_spikes > 0 for layer in result.layers)
    assert result.ok, [(layer.name, layer.mismatches, layer.first_mismatch) for layer in result.layers]


def test_a_tau_ref_between_chip_steps_is_noted_or_refused(rng):
    from snnc.compiler.passes.lower_loihi import lower_loihi

    spiking = convert_to_spiking(soft_lif_mlp(rng, tau_ref=0.0025))
    lowered = lower_loihi(spiking, adapt=True)
    assert ("l1", "on the chip: a refractory period of 2 steps (0.002 s; tau_ref=0.0025 s is 2.5 steps of dt=0.001 s)") in notes(lowered)
    with pytest.raises(PassError, match=r"%l1 = lif_neuron: Loihi's refractory period is a whole number of steps .*tau_ref=0.0025 s"):
        lower_loihi(spiking, adapt=False)


# ----------------------------------------------------------------------------- spiking relu -> sigma-delta

SPIKING_RELU = ops.SpikingRelu(dt=0.05)


def relu_then_spiking_relu(rng):
    """dense -> relu -> dense -> spiking_relu -> dense: a balanced relu beside a trained one."""
    b = GraphBuilder("spiking_relu")
    x = b.add(ops.ReLU(), [dense(b, rng, b.input("x", (6,)), 8)], name="r")
    x = b.add(SPIKING_RELU, [dense(b, rng, x, 5, name="into_spikes")], name="s")
    b.output(dense(b, rng, x, 3, name="logits"))
    return b.build()


def test_balancing_leaves_a_spiking_relu_at_its_trained_scale(rng):
    graph = relu_then_spiking_relu(rng)
    x = 3 * rng.normal(size=(64, 6)).astype(np.float32)
    after = threshold_balance(graph, calibration=x)
    assert_same_outputs(graph, after, x)
    assert after.node("s").op == SPIKING_RELU and dict(after.node("s").meta) == {"scale": 1.0, "trained": "spiking_relu"}
    assert after.node("r").meta["scale"] != 1.0  # the plain relu is balanced
    want, got = interpreter.run_batch(graph, {"x": x}), interpreter.run_batch(after, {"x": x})
    for name in ("into_spikes", "s"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bits", [1, 3])
def test_spiking_relu_neurons_send_its_rate_in_events_of_one_over_dt(bits, rng):
    """Whatever ``neuron`` says, a spiking relu becomes sigma-delta neurons with its dt and
    amplitude 1/dt; their mean output over T steps is relu(x) to within one event's worth
    (1 / (dt T)) below the cap of 2^bits - 1 events per step, the cap's rate above it."""
    graph = single(SPIKING_RELU, 200)
    x = rng.uniform(-20, 150, size=(1, 200))
    spiking = convert_to_spiking(graph, neuron="if", bits=bits, v_init=0.5)
    op = spiking.node("act").op
    assert op == SigmaDeltaNeuron(base="relu", gain=1.0, bits=bits, amplitude=20.0, v_init=0.5, dt=0.05)
    assert spiking.node("act").meta["trained"] == "spiking_relu"
    cap = (2**bits - 1) / 0.05
    want = np.minimum(np.maximum(x, 0), cap)
    assert (x > cap).any() and (want == 0).any()
    t = 400
    got = simulate(spiking, {"x": x}, [t]).outputs[t]["output"]
    below = x < cap
    assert np.abs(got - want)[below].max() <= 1 / (0.05 * t)
    np.testing.assert_allclose(got[~below], cap, rtol=1e-12)
