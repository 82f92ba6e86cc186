"""The Nengo backend against the spiking interpreter (float64): the same spike trains and
outputs at every step, in nengo.Simulator and in nengo_dl.Simulator (minibatched).

The graphs make every neuron population and the readouts outputs, and the comparison runs
at every T = 1..steps, so the whole spike train of each population is compared. Spikes
must be identical. Readouts may differ in the last float32 bit: Nengo sums a layer's
currents in a different order than NumPy's matrix products (the summed spikes are the
same), so readouts are compared to 1e-6 relative.
"""

import subprocess
import sys
import time

import numpy as np
import pytest

from snnc.backends import nengo as nengo_backend
from snnc.compiler import load_model, ops
from snnc.compiler.api import to_ir_layout
from snnc.compiler.errors import BuildError, DataError, SnncError
from snnc.compiler.graph import GraphBuilder, Node
from snnc.compiler.passes import PassManager
from snnc.compiler.simulate import simulate

pytestmark = pytest.mark.filterwarnings(
    "ignore:No GPU support detected",
    "ignore:TensorFlow does not support convolution with channels_last=False",
    # the IF neurons must run in nengo-dl's TensorFlow graph, not through its Python fallback
    "error:.*does not have a native TensorFlow implementation",
)

SIMULATORS = ["nengo", pytest.param("nengo-dl", id="nengo_dl")]
READOUT_TOL = dict(rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- helpers


def weights(rng, *shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return (rng.normal(size=shape) * (scale or 1.5 / np.sqrt(fan_in))).astype(np.float32)


def dense(b, rng, x, units):
    n = b.type_of(x).shape[0]
    params = {"weight": weights(rng, units, n), "bias": weights(rng, units, scale=0.2)}
    return b.add(ops.Dense(units), [x], params)


def conv(b, rng, x, filters, k=3, stride=1, pads=(1, 1, 1, 1), groups=1, dilation=(1, 1)):
    c = b.type_of(x).shape[0]
    op = ops.Conv2d(filters, (k, k), (stride, stride), pads, dilation, groups)
    params = {"weight": weights(rng, filters, c // groups, k, k), "bias": weights(rng, filters, scale=0.2)}
    return b.add(op, [x], params)


def spiking(name: str) -> GraphBuilder:
    return GraphBuilder(name, stage="spiking")


def neurons(b, x, **params):
    """An IF population whose spike train is also a graph output."""
    spikes = b.add(ops.IfNeuron(**{"v_init": 0.5, **params}), [x])
    b.output(spikes, name=f"{spikes}_out")
    return spikes


def readout(b, x, name="output"):
    b.output(b.add(ops.Readout(), [x]), name=name)


def compare(graph, x, steps, simulator, batch_size=3):
    """Run both; returns the interpreter's and the backend's results at T = 1..steps."""
    ts = range(1, steps + 1)
    want = simulate(graph, x, ts, precision="float64")
    got = nengo_backend.simulate(graph, x, ts, simulator=simulator, batch_size=batch_size)
    return want, got


def assert_agree(graph, x, steps, simulator, batch_size=3):
    """Identical spike trains (outputs of neurons and gates), readouts to READOUT_TOL,
    identical spike statistics."""
    want, got = compare(graph, x, steps, simulator, batch_size)
    readouts = {n.name for n in graph.outputs if isinstance(graph.node(n.inputs[0]).op, ops.Readout)}
    fired = 0
    for t in want.outputs:
        assert got.outputs[t].keys() == want.outputs[t].keys()
        for name, expected in want.outputs[t].items():
            value, where = got.outputs[t][name], f"{name} at T={t}"
            assert value.shape == expected.shape and value.dtype == np.float32
            if name in readouts:
                np.testing.assert_allclose(value, expected, **READOUT_TOL, err_msg=where)
            else:
                np.testing.assert_array_equal(value, expected, err_msg=where)
                fired += int(np.count_nonzero(expected))
    assert fired > 0, "the test is vacuous: nothing spiked"
    assert got.activity.keys() == want.activity.keys()
    for name, activity in want.activity.items():
        expected = activity.to_dict()
        if activity.bits_per_event != 1:  # Nengo's spike totals cannot tell a burst of 2 from 2 spikes
            expected.update(bits_per_activity=None, significant_bits_per_weight=None)
        assert got.activity[name].to_dict() == expected, name
    return want, got


# ----------------------------------------------------------------------------- graphs


def dense_net(rng, **if_params):
    b = spiking("dense")
    h = neurons(b, dense(b, rng, b.input("x", (6,)), 10), **if_params)
    h = neurons(b, dense(b, rng, h, 8), **if_params)
    readout(b, dense(b, rng, h, 3))
    return b.build()


def conv_pool_net(rng):
    """Conv 'same', average pooling, a strided conv with asymmetric pads, flatten, dense."""
    b = spiking("conv_pool")
    h = neurons(b, conv(b, rng, b.input("x", (2, 8, 8)), 4))
    h = b.add(ops.AvgPool2d((2, 2), (2, 2)), [h])
    h = neurons(b, conv(b, rng, h, 5, k=3, stride=2, pads=(0, 1, 1, 0)))
    h = b.add(ops.Reshape((b.type_of(h).size,)), [h])
    readout(b, dense(b, rng, h, 3))
    return b.build()


def residual_net(rng):
    """A residual add of a conv and the spikes before it, through an affine; a padding with
    one value per channel (what fold_batchnorm writes)."""
    b = spiking("residual")
    a = neurons(b, conv(b, rng, b.input("x", (3, 6, 6)), 4))
    padded = b.add(ops.Pad2d((1, 1, 1, 1), per_channel=True), [a], {"values": rng.normal(0, 0.5, 4).astype(np.float32)})
    r = neurons(b, conv(b, rng, padded, 4, pads=(0, 0, 0, 0)))
    affine = {"scale": rng.uniform(0.5, 1.5, 4), "shift": rng.normal(0, 0.2, 4)}
    s = neurons(b, b.add(ops.Add(), [conv(b, rng, r, 4), b.add(ops.Affine(), [a], affine)]))
    readout(b, dense(b, rng, b.add(ops.GlobalAvgPool(), [s]), 3))
    return b.build()


def concat_net(rng):
    """Concats along channels and along height, padding with a value, a grouped and a
    dilated conv, a Keras-style flatten (transpose to HWC, reshape)."""
    b = spiking("concat")
    x = b.input("x", (2, 6, 6))
    a = neurons(b, conv(b, rng, x, 4, groups=2))
    c = neurons(b, conv(b, rng, x, 2, k=2, pads=(2, 2, 0, 0), dilation=(2, 2)))
    h = b.add(ops.Concat(0), [a, c])
    h = b.add(ops.Concat(1), [h, h])
    h = neurons(b, conv(b, rng, b.add(ops.Pad2d((0, 1, 2, 1), 0.25), [h]), 3, pads=(0, 0, 0, 0)))
    h = b.add(ops.Transpose((1, 2, 0)), [h])
    readout(b, dense(b, rng, b.add(ops.Reshape((b.type_of(h).size,)), [h]), 4))
    return b.build()


def parallel_net(rng):
    """Two IF populations of one size side by side, with different parameters: nengo-dl
    merges them into one group, whose parameters then vary per neuron."""
    b = spiking("parallel")
    x = b.input("x", (6,))
    a = neurons(b, dense(b, rng, x, 8))
    c = neurons(b, dense(b, rng, x, 8), threshold=0.8, gain=1.5, amplitude=2.0)
    readout(b, dense(b, rng, b.add(ops.Concat(0), [a, c]), 3))
    return b.build()


def parallel_bursts_net(rng):
    """As :func:`parallel_net`, one population with binary spikes and one with bursts of up
    to 3: nengo-dl's merged group then has ``bursts`` per neuron."""
    b = spiking("parallel_bursts")
    x = b.input("x", (6,))
    a = neurons(b, dense(b, rng, x, 8))
    c = neurons(b, dense(b, rng, x, 8), threshold=0.4, gain=1.5, amplitude=0.5, bursts=3)
    readout(b, dense(b, rng, b.add(ops.Concat(0), [a, c]), 3))
    return b.build()


def lif_net(rng, dt=0.001, tau_s=0.0):
    b = spiking("lif")
    lif = ops.LifNeuron(tau_rc=0.02, tau_ref=0.002, dt=dt, gain=30.0, bias=1.0, amplitude=0.5, tau_s=tau_s)
    h = b.add(lif, [dense(b, rng, b.input("x", (6,)), 10)])
    b.output(h, name="lif_out")
    h = b.add(ops.IfNeuron(v_init=0.5), [dense(b, rng, h, 8)])
    b.output(h, name="if_out")
    readout(b, dense(b, rng, h, 3))
    return b.build()


def sigma_delta_net(rng, **params):
    """Two sigma-delta layers (spike trains as outputs) and an IF layer between them: the IF
    layer's input is the first layer's graded events; ``params`` configure the first."""
    b = spiking("sigma_delta")
    first = ops.SigmaDeltaNeuron(**{"gain": 4000.0, "bits": 3, "amplitude": 0.25, **params})
    h = b.add(first, [dense(b, rng, b.input("x", (6,)), 10)])
    b.output(h, name="first_out")
    h = neurons(b, dense(b, rng, h, 8), gain=0.5)
    h = b.add(ops.SigmaDeltaNeuron(gain=900.0, bits=1, v_init=0.25), [dense(b, rng, h, 6)])
    b.output(h, name="second_out")
    readout(b, dense(b, rng, h, 3))
    return b.build()


def max_gate_net(rng, kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0)):
    b = spiking("gate")
    h = neurons(b, conv(b, rng, b.input("x", (2, 6, 6)), 3))
    gated = b.add(ops.SpikeMaxPool2d(kernel, stride, pads), [h])
    b.output(gated, name="gated")
    readout(b, dense(b, rng, b.add(ops.Reshape((b.type_of(gated).size,)), [gated]), 3))
    return b.build()


def inputs(rng, graph, n=4):
    return rng.uniform(0, 1, (n, *graph.inputs[0].type.shape)).astype(np.float32)


# ----------------------------------------------------------------------------- agreement

IF_PARAMS = {
    "subtract": dict(),
    "zero": dict(reset="zero"),
    "v_init_0": dict(v_init=0.0),
    "gain_amplitude": dict(threshold=2.0, gain=3.0, amplitude=0.5, v_init=1.0),
    "bursts": dict(threshold=0.5, gain=2.0, amplitude=0.25, bursts=3),
}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("params", IF_PARAMS.values(), ids=IF_PARAMS.keys())
def test_dense_if(params, simulator, rng):
    graph = dense_net(rng, **params)
    assert_agree(graph, inputs(rng, graph), 30, simulator)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_if_initial_membrane_per_channel(simulator, rng):
    """``v_init`` per channel (calibrate{mode=potential}): conv channels, then dense units."""
    b = spiking("v_init_per_channel")
    h = neurons(b, conv(b, rng, b.input("x", (2, 5, 5)), 3), v_init=(0.0, 0.5, 0.9))
    h = b.add(ops.Reshape((b.type_of(h).size,)), [h])
    h = neurons(b, dense(b, rng, h, 4), v_init=(0.9, 0.0, 0.3, 0.6))
    readout(b, dense(b, rng, h, 2))
    graph = b.build()
    assert_agree(graph, inputs(rng, graph), 12, simulator)


GRAPHS = {
    "conv_pool": conv_pool_net,
    "residual": residual_net,
    "concat": concat_net,
    "parallel": parallel_net,
    "parallel_bursts": parallel_bursts_net,
}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("make", GRAPHS.values(), ids=GRAPHS.keys())
def test_conv_graphs(make, simulator, rng):
    graph = make(rng)
    assert_agree(graph, inputs(rng, graph), 20, simulator)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_lif(simulator, rng):
    graph = lif_net(rng)
    assert_agree(graph, inputs(rng, graph), 60, simulator)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_lif_with_a_synapse_is_nengo_lowpass(simulator, rng):
    """tau_s: the interpreter's filtered current is the connection's ``nengo.Lowpass`` (one
    step late, as Nengo updates synapses), spike for spike."""
    graph = lif_net(np.random.default_rng(5), tau_s=0.005)
    x = inputs(rng, graph)
    want, _ = assert_agree(graph, x, 60, simulator)
    unfiltered = simulate(lif_net(np.random.default_rng(5)), x, [60], precision="float64")
    assert not np.array_equal(want.outputs[60]["lif_out"], unfiltered.outputs[60]["lif_out"])


SIGMA_DELTA_PARAMS = {
    "relu_3_bits": dict(),
    "relu_1_bit": dict(bits=1, gain=800.0, v_init=0.0),
    "relu_capped": dict(gain=9000.0, bits=2),
    "lif_2_bits": dict(base="lif", gain=40.0, bits=2, tau_rc=0.03, tau_ref=0.001, v_init=0.1),
}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("params", SIGMA_DELTA_PARAMS.values(), ids=SIGMA_DELTA_PARAMS.keys())
def test_sigma_delta(params, simulator, rng):
    graph = sigma_delta_net(rng, **params)
    want, _ = assert_agree(graph, inputs(rng, graph), 40, simulator)
    first = graph.node(graph.node("first_out").inputs[0]).op
    most = max(float(want.outputs[t]["first_out"].max()) for t in want.outputs) / first.amplitude
    assert most == 2**first.bits - 1 if first.base == "relu" else most >= 1  # events up to the cap


GATES = {
    "2x2": ((2, 2), (2, 2), (0, 0, 0, 0)),
    "3x3_padded": ((3, 3), (2, 2), (1, 1, 1, 1)),
    "2x3": ((2, 3), (1, 2), (0, 1, 1, 0)),
}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("window", GATES.values(), ids=GATES.keys())
def test_max_gate(window, simulator, rng):
    graph = max_gate_net(rng, *window)
    assert_agree(graph, inputs(rng, graph), 20, simulator)


# ----------------------------------------------------------------------------- converted models


def keras_model(tmp_path, rng):
    """A tiny channels-last CNN (conv+BN, max pooling, a strided conv, flatten, two dense)
    with random weights, saved as .h5 and imported."""
    import tensorflow as tf

    L = tf.keras.layers
    x = inputs = L.Input((10, 10, 2))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(4, 3, padding="same")(x)))
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(6, 3, strides=2, activation="relu")(x)
    x = L.Dense(12, activation="relu")(L.Flatten()(x))
    model = tf.keras.Model(inputs, L.Dense(4)(x))
    for w in model.weights:
        value = rng.uniform(0.5, 2.0, w.shape) if "variance" in w.name else rng.normal(0.0, 0.4, w.shape)
        w.assign(value.astype(np.float32))
    path = tmp_path / "tiny.h5"
    model.save(path)
    return load_model(path)


def with_spike_outputs(graph):
    """``graph`` with each neuron population's spike train as an extra output."""
    populations = [n for n in graph.nodes if isinstance(n.op, ops.NEURON_OPS)]
    extra = tuple(Node(f"{n.name}_out", ops.Output(), (n.name,), n.type) for n in populations)
    return graph.replace(nodes=graph.nodes + extra)


FLOAT_PASSES = "canonicalize,fold_batchnorm,threshold_balance"
PIPELINES = {
    "default": "default",
    "avg_pool": "avgpool",
    "zero_reset_spike_readout": FLOAT_PASSES + ",convert_to_spiking{reset=zero,readout=spikes}",
    "lif": FLOAT_PASSES + ",convert_to_spiking{neuron=lif,max_rate=0.2}",
}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("pipeline", PIPELINES.values(), ids=PIPELINES.keys())
def test_converted_keras_model(pipeline, simulator, tmp_path, rng):
    graph = keras_model(tmp_path, rng)
    images = rng.uniform(0, 1, (40, 10, 10, 2)).astype(np.float32)
    spiking, _ = PassManager(pipeline).run(graph, calibration=to_ir_layout(graph, images[:32]))
    assert_agree(with_spike_outputs(spiking), to_ir_layout(graph, images[32:]), 40, simulator, batch_size=5)


# ----------------------------------------------------------------------------- the API


def test_build_gives_the_network_and_its_probes(rng):
    import nengo

    graph = max_gate_net(rng)
    model = nengo_backend.build(graph).model
    assert isinstance(model.network, nengo.Network) and model.dt == 0.001
    assert list(model.inputs) == ["x"]
    assert set(model.outputs) == {n.name for n in graph.outputs}
    assert set(model.neurons) == {n.name for n in graph.nodes if isinstance(n.op, ops.IfNeuron)}
    x = inputs(rng, graph, 1)
    model.presented["x"].value = x.ravel()
    with nengo.Simulator(model.network, dt=model.dt, progress_bar=False) as sim:
        sim.run_steps(10)
    want = simulate(graph, x, range(1, 11)).outputs
    spikes = [n.name for n in graph.outputs if n.name.endswith("_out")]
    for name in ["gated", *spikes]:
        got = sim.data[model.outputs[name].probe]
        np.testing.assert_array_equal(got, np.stack([want[t][name].ravel() for t in range(1, 11)]))


def test_inputs_by_name_and_outputs_at_chosen_steps(rng):
    graph = dense_net(rng)
    x = inputs(rng, graph, 3)
    want = simulate(graph, x, [5, 17]).outputs
    got = nengo_backend.simulate(graph, {"x": x}, [17, 5]).outputs
    assert sorted(got) == [5, 17]
    for t in (5, 17):
        np.testing.assert_allclose(got[t]["output"], want[t]["output"], **READOUT_TOL)


def test_lif_steps_with_its_dt(rng):
    graph = lif_net(rng, dt=0.002)
    assert nengo_backend.build(graph).model.dt == 0.002
    assert_agree(graph, inputs(rng, graph), 40, "nengo")
    message = r"%lif_neuron: LIF neurons step with dt=0.002 but the simulator's dt is 0.001"
    with pytest.raises(BuildError, match=message):
        nengo_backend.build(graph, dt=0.001)


def test_an_op_without_lowering_is_a_build_error(rng):
    b = GraphBuilder("float_graph")
    b.output(b.add(ops.ReLU(), [dense(b, rng, b.input("x", (4,)), 3)]))
    with pytest.raises(BuildError, match=r"%relu: the Nengo backend has no lowering for op relu"):
        nengo_backend.build(b.build())


def test_a_readout_feeding_a_layer_is_a_build_error(rng):
    b = spiking("g")
    r = b.add(ops.Readout(), [dense(b, rng, b.input("x", (4,)), 3)])
    b.output(dense(b, rng, r, 2))
    message = r"%readout: a readout can only feed outputs .* \(read by %dense_1\)"
    with pytest.raises(BuildError, match=message):
        nengo_backend.build(b.build())


def test_bad_arguments(rng):
    graph = dense_net(rng)
    x = inputs(rng, graph)
    with pytest.raises(SnncError, match="simulator must be one of nengo, nengo-dl, got 'brian'"):
        nengo_backend.simulate(graph, x, [4], simulator="brian")
    with pytest.raises(DataError, match="time steps must be positive"):
        nengo_backend.simulate(graph, x, [0])
    with pytest.raises(DataError, match="no examples"):
        nengo_backend.simulate(graph, x[:0], [4])
    with pytest.raises(DataError, match=r"expects examples of shape \[6\]"):
        nengo_backend.simulate(graph, x[:, :4], [4])


def test_importing_the_backend_does_not_import_nengo():
    heavy = ("nengo", "nengo_dl", "tensorflow")
    code = f"import sys, snnc.backends.nengo; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ----------------------------------------------------------------------------- LeNet on MNIST

LENET = "models/snn_toolbox/lenet5/keras/99.14.h5"


@pytest.fixture(scope="module")
def lenet(shared_data, mnist_test):
    """The SNN Toolbox LeNet (channels first, max pooling), calibrated on 1000 training
    images, and the first 200 test images in its input layout."""
    from snnc.compiler.datasets import load_idx

    train = shared_data / "mnist" / "train-images-idx3-ubyte.gz"
    graph = load_model(shared_data / LENET)
    calibration = to_ir_layout(graph, load_idx(train)[:1000, None].astype(np.float32) / 255.0)
    (images,) = to_ir_layout(graph, mnist_test[0][:200, None]).values()
    return graph, calibration, images


def predictions_agree(lenet, pipeline, simulator, n, steps):
    """Interpreter vs backend on ``n`` images: the fraction of equal predictions at T=steps,
    and whether the readouts and spike counts are identical."""
    graph, calibration, images = lenet
    spiking, _ = PassManager(pipeline).run(graph, calibration=calibration)
    want = simulate(spiking, images[:n], [steps])
    start = time.perf_counter()
    got = nengo_backend.simulate(spiking, images[:n], [steps], simulator=simulator, batch_size=50)
    seconds = time.perf_counter() - start
    w, g = want.outputs[steps]["output"], got.outputs[steps]["output"]
    agreement = np.mean(w.argmax(1) == g.argmax(1))
    print(f"{pipeline} {simulator}: {n} images, T={steps}, {seconds:.1f} s; agreement {agreement:.4f}")
    same_spikes = all(got.activity[k].to_dict() == a.to_dict() for k, a in want.activity.items())
    return agreement, np.array_equal(w, g), same_spikes


@pytest.mark.data
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_lenet_subset_predictions_agree(lenet, simulator):
    """Fast tier: 50 images, T=32. The spike trains are identical, so the predictions are."""
    assert predictions_agree(lenet, "default", simulator, 50, 32) == (1.0, True, True)


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("pipeline", ["default", "avgpool"])
def test_lenet_200_images_predictions_agree(lenet, pipeline, simulator):
    """The issue's check: 200 test images at T=64, max-pool gates (default) and average
    pooling (avgpool). Measured: identical readouts and spike counts, so 100 % agreement."""
    assert predictions_agree(lenet, pipeline, simulator, 200, 64) == (1.0, True, True)


def test_leaky_relu_and_host_sigmoid(rng):
    """A converted leaky relu (two IF populations) and an output sigmoid, which the runner
    applies to the averaged readout: the interpreter's outputs at every step."""
    b = GraphBuilder("act")
    x = b.add(ops.ReLU(negative_slope=0.2), [dense(b, rng, b.input("x", (6,)), 8)])
    b.output(b.add(ops.Sigmoid(), [dense(b, rng, x, 3)]))
    snn = PassManager("convert_to_spiking").run(b.build())[0]
    assert [n.op.NAME for n in snn.nodes][-3:] == ["readout", "sigmoid", "output"]
    x = rng.uniform(-1, 1, (3, 6)).astype(np.float32)
    want, got = compare(snn, x, 12, "nengo")
    for t in want.outputs:
        np.testing.assert_allclose(got.outputs[t]["output"], want.outputs[t]["output"], **READOUT_TOL)
    assert got.activity.keys() == want.activity.keys() and len(want.activity) == 2
    for name, activity in want.activity.items():
        assert got.activity[name].to_dict() == activity.to_dict(), name


def test_a_host_sigmoid_without_readout_is_a_build_error(rng):
    b = spiking("g")
    b.output(b.add(ops.Sigmoid(), [dense(b, rng, b.input("x", (4,)), 3)]))
    with pytest.raises(BuildError, match=r"%sigmoid: sigmoid runs on the host on a readout's value; it reads %dense"):
        nengo_backend.build(b.build())
