"""calibrate: SNN calibration (Li et al. 2021) against hand-derived results on a one-layer
network, no change where the SNN is already exact, per-channel initial membranes on every
simulator that steps if_neuron, and lower per-layer error on a real conversion."""

import numpy as np
import pytest

from snnc.compiler import ops
from snnc.compiler.errors import PassError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.interpreter import run
from snnc.compiler.passes import PassManager
from snnc.compiler.passes.calibrate import calibrate_layers, channel_error, interpreter_simulate
from snnc.compiler.simulate import simulate
from snnc.compiler.text import parse, print_graph

T = 4
K = np.arange(T)


def one_layer(weight, bias=(0.0, 0.0)) -> "Graph":
    """x (1 feature) -> dense (2 units) -> relu -> dense (1 unit, read out)."""
    b = GraphBuilder("one_layer")
    x = b.input("x", (1,))
    d = b.add(ops.Dense(2), [x], {"weight": np.array(weight, np.float32).reshape(2, 1), "bias": np.array(bias, np.float32)}, name="d")
    r = b.add(ops.ReLU(), [d], name="r")
    b.output(b.add(ops.Dense(1), [r], {"weight": np.ones((1, 2), np.float32), "bias": np.zeros(1, np.float32)}, name="out"))
    return b.build()


def convert_and_calibrate(graph, x, options, v_init=0.0):
    manager = PassManager(f"convert_to_spiking{{v_init={v_init}}},calibrate{{timesteps={T},{options}}}", keep_graphs=True)
    calibrated, records = manager.run(graph, {"x": x})
    return records[0].graph, calibrated


def population_mean(graph, x, timesteps=T):
    """Population %r's mean output per example after ``timesteps`` steps (spike counts *
    amplitude / T), read out directly."""
    from snnc.compiler.passes.calibrate import probe_graph

    return simulate(probe_graph(graph, ["r"]), {"x": x}, [timesteps]).outputs[timesteps]["r__probe"]


# Channel 0 gets the current c_k = (k + 3/4) / T for example k; IF neurons from v_init = 0 with
# reset by subtraction fire floor(T * c_k) = k times in T steps, so the mean output is k / T and
# e = k/T - c_k = -3/(4T) for every example. Bias correction adds 3/(4T) to the current: k + 3/2
# -> floor = k + 1 spikes, mean (k + 1)/T, error +1/(4T). Potential correction starts the
# membrane at T * 3/(4T) = 3/4 instead: floor(3/4 + k + 3/4) = k + 1 spikes, the same outputs.
# Channel 1 (weight -1) is inactive in the ANN and silent in the SNN: no error, no change.
X = ((K + 0.75) / T).astype(np.float32)[:, None]


def test_bias_correction_of_floor_quantisation_matches_the_hand_derived_result():
    spiking, calibrated = convert_and_calibrate(one_layer([1.0, -1.0]), X, "mode=bias")
    np.testing.assert_allclose(population_mean(spiking, X)[:, 0], K / T)
    np.testing.assert_array_equal(calibrated.node("d").params["bias"], np.float32([3 / (4 * T), 0.0]))
    np.testing.assert_allclose(population_mean(calibrated, X), np.stack([(K + 1) / T, 0 * K], axis=1))
    layer = dict(calibrated.meta)["calibrate"]["layers"]["r"]
    assert layer["mean_abs_error_before"] == pytest.approx((3 / (4 * T) + 0) / 2)
    assert layer["mean_abs_error_after"] == pytest.approx((1 / (4 * T) + 0) / 2)
    assert calibrated.node("d").params["weight"].tolist() == spiking.node("d").params["weight"].tolist()


def test_potential_correction_moves_each_channels_initial_membrane():
    spiking, calibrated = convert_and_calibrate(one_layer([1.0, -1.0]), X, "mode=potential")
    assert calibrated.node("r").op.v_init == (0.75, 0.0)
    np.testing.assert_array_equal(calibrated.node("d").params["bias"], spiking.node("d").params["bias"])
    np.testing.assert_allclose(population_mean(calibrated, X), np.stack([(K + 1) / T, 0 * K], axis=1))
    assert parse(print_graph(calibrated, inline_params=True)) == calibrated  # the per-channel start round-trips


def test_exact_layers_are_left_unchanged():
    # currents k / T and 1 / T from v_init = 1/2: floor(1/2 + T c) = T c spikes, exactly the ANN
    x = (K / T).astype(np.float32)[:, None]
    for mode in ("bias", "potential"):
        spiking, calibrated = convert_and_calibrate(one_layer([1.0, 0.0], bias=(0.0, 0.25)), x, f"mode={mode}", v_init=0.5)
        assert [n.op for n in calibrated.nodes] == [n.op for n in spiking.nodes]
        for node in spiking.nodes:
            assert node.params == calibrated.node(node.name).params
        assert dict(calibrated.meta)["calibrate"]["layers"]["r"]["mean_abs_error_before"] == 0.0


def test_channel_error_counts_active_or_firing_positions_only():
    ann = np.array([[[0.0, 0.5]], [[0.0, 0.0]]])  # (N=2, C=1, positions=2)
    snn = np.array([[[0.0, 0.25]], [[0.5, 0.0]]])
    # counted: (0.25 - 0.5) and (0.5 - 0): a spike of an inactivated neuron counts, silence does not
    np.testing.assert_allclose(channel_error(snn, ann), [(-0.25 + 0.5) / 2])


def test_bias_goes_into_an_affine_where_the_producer_is_shared():
    b = GraphBuilder("shared")
    x = b.input("x", (1,))
    d = b.add(ops.Dense(1), [x], {"weight": np.ones((1, 1), np.float32), "bias": np.zeros(1, np.float32)}, name="d")
    r = b.add(ops.ReLU(), [d], name="r")
    b.output(b.add(ops.Add(), [r, d], name="sum"))
    float_graph = b.build()
    spiking = PassManager("convert_to_spiking{v_init=0}").run(float_graph)[0]
    reference = {"r": run(float_graph, {"x": X}, keep=True)["r"]}
    calibrated, (layer,) = calibrate_layers(spiking, reference, {"x": X}, timesteps=T)
    affine = calibrated.node("r_calibration")
    assert calibrated.node("r").inputs == ("r_calibration",) and affine.inputs == ("d",)
    np.testing.assert_array_equal(affine.params["shift"], np.float32([3 / (4 * T)]))
    np.testing.assert_allclose(layer.error_after, [1 / (4 * T)])


def test_custom_simulator_is_used():
    calls = []

    def counting(graph, inputs, timesteps):
        calls.append([n.name for n in graph.outputs])
        return interpreter_simulate(graph, inputs, timesteps)

    float_graph = one_layer([1.0, -1.0])
    spiking = PassManager("convert_to_spiking{v_init=0}").run(float_graph)[0]
    reference = {"r": run(float_graph, {"x": X}, keep=True)["r"]}
    calibrate_layers(spiking, reference, {"x": X}, timesteps=T, simulate_fn=counting)
    assert calls == [["r__probe"], ["r__probe"]]  # before, then after the correction


def test_refusals():
    with pytest.raises(PassError, match="r = lif_neuron: calibrate corrects if_neuron"):
        PassManager("convert_to_spiking{neuron=lif,max_rate=0.25},calibrate").run(one_layer([1.0, -1.0]), {"x": X})
    with pytest.raises(PassError, match="r: mode=potential needs reset=subtract"):
        PassManager("convert_to_spiking{reset=zero},calibrate{mode=potential}").run(one_layer([1.0, -1.0]), {"x": X})
    with pytest.raises(PassError, match="needs calibration data"):
        PassManager("convert_to_spiking,calibrate").run(one_layer([1.0, -1.0]))
    with pytest.raises(PassError, match="runs on spiking graphs"):
        PassManager("calibrate").run(one_layer([1.0, -1.0]), {"x": X})
    spiking = PassManager("convert_to_spiking").run(one_layer([1.0, -1.0]))[0]
    with pytest.raises(PassError, match="run it in the pipeline after convert_to_spiking"):
        PassManager("calibrate").run(spiking, {"x": X})


@pytest.mark.slow
def test_calibration_reduces_each_layers_channel_error_on_held_out_digits():
    """The digits CNN (example:digits_cnn) at T=4, calibrated on 64 training images: on 200
    held-out images each layer's per-channel mean error against the ANN shrinks."""
    from snnc.compiler.api import load_model
    from snnc.compiler.examples.digits import load_digits_split
    from snnc.compiler.passes.calibrate import probe_graph, reference_activations

    (x_train, _), (x_test, _) = load_digits_split()
    calib = {"image": np.transpose(x_train[:64], (0, 3, 1, 2))}
    test = {"image": np.transpose(x_test[:200], (0, 3, 1, 2))}
    manager = PassManager("rate,calibrate{timesteps=4}", keep_graphs=True)
    calibrated, records = manager.run(load_model("example:digits_cnn"), calib)
    spiking, float_graph = records[-2].graph, records[-3].graph
    layers = ["conv1_relu", "conv2_relu"]
    reference = reference_activations(float_graph, test, layers)

    def errors(graph):
        means = interpreter_simulate(probe_graph(graph, layers), test, 4)
        return [np.abs(channel_error(means[f"{n}__probe"], reference[n])).mean() for n in layers]

    before, after = errors(spiking), errors(calibrated)
    assert all(a < 0.5 * b for a, b in zip(after, before)), (before, after)
