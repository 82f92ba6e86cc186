"""The Loihi target end to end, with NengoLoihi as the reference: networks compiled by the
``loihi`` pipeline (lower_loihi, map_to_cores, quantize_loihi) get exactly the integers
NengoLoihi chooses for the same float network, block by block, and refsim's spikes equal the
emulator's at every step (``snnc verify``'s check): a convolutional residual network with
populations split over several cores, a dense network with LIF neurons and biases, and the
LeNet-5 model on MNIST (data)."""

import numpy as np
import pytest

from snnc.backends import loihi
from snnc.compiler import ops
from snnc.compiler.datasets import Dataset
from snnc.compiler.driver import compile_model
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.passes.lower_loihi import correlate
from snnc.compiler.loihi_crosscheck import verify_loihi

pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered in cast:RuntimeWarning",  # NengoLoihi's NaN-filled int state
    "ignore:Lost .* extra bits in weight rounding",
    "ignore:Non-finite values detected in `max_rates`",  # nengo on LIF ensembles with gain and bias
    "ignore:divide by zero encountered",
    "ignore:invalid value encountered in log1p",
)

RELU_PIPELINE = (
    "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{reset=zero,v_init=0},"
    "lower_loihi,map_to_cores{max_compartments=64},quantize_loihi"
)
LIF_PIPELINE = (
    "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{neuron=lif,max_rate=0.2},"
    "lower_loihi,map_to_cores,quantize_loihi"
)


def conv(b, rng, x, filters):
    """3x3 'same' convolution with random weights and biases."""
    c = b.type_of(x).shape[0]
    params = {"weight": rng.normal(0, 0.5, (filters, c, 3, 3)).astype(np.float32), "bias": rng.normal(0, 0.1, filters).astype(np.float32)}
    return b.add(ops.Conv2d(filters, (3, 3), (1, 1), (1, 1, 1, 1)), [x], params)


def dense(b, rng, x, units, name=None):
    n = b.type_of(x).shape[0]
    params = {"weight": rng.normal(0, 1.5 / np.sqrt(n), (units, n)).astype(np.float32), "bias": rng.normal(0, 0.2, units).astype(np.float32)}
    return b.add(ops.Dense(units), [x], params, name=name)


def residual_cnn(rng):
    """host conv → chip conv → chip conv + residual add of the host layer (two synapses into
    one population) → avg pool, flatten → chip dense → host dense; 'same' padding
    throughout (what Nengo's Convolution can express)."""
    b = GraphBuilder("residual_cnn")
    x = b.add(ops.ReLU(), [conv(b, rng, b.input("input", (1, 8, 8)), 4)], name="host")
    a = b.add(ops.ReLU(), [conv(b, rng, x, 4)], name="a")
    s = b.add(ops.ReLU(), [b.add(ops.Add(), [conv(b, rng, a, 4), x])], name="b")
    p = b.add(ops.AvgPool2d((2, 2), (2, 2)), [s])
    d = b.add(ops.ReLU(), [dense(b, rng, b.add(ops.Reshape((64,)), [p]), 12)], name="c")
    b.output(dense(b, rng, d, 3, name="logits"))
    return b.build()


def lif_mlp(rng):
    b = GraphBuilder("lif_mlp")
    x = b.add(ops.ReLU(), [dense(b, rng, b.input("input", (20,)), 24)], name="host")
    x = b.add(ops.ReLU(), [dense(b, rng, x, 16)], name="d1")
    x = b.add(ops.ReLU(), [dense(b, rng, x, 10)], name="d2")
    b.output(dense(b, rng, x, 3, name="logits"))
    return b.build()


def depthwise_cnn(rng):
    """host conv → chip depthwise conv (groups = channels) → chip dilated grouped conv
    (dilation 2, groups 2), 'same' padding → avg pool, flatten → host dense."""
    b = GraphBuilder("depthwise_cnn")
    x = b.add(ops.ReLU(), [conv(b, rng, b.input("input", (1, 7, 7)), 4)], name="host")
    depthwise = {"weight": rng.normal(0, 0.8, (4, 1, 3, 3)).astype(np.float32), "bias": rng.normal(0, 0.1, 4).astype(np.float32)}
    x = b.add(ops.ReLU(), [b.add(ops.Conv2d(4, (3, 3), pads=(1, 1, 1, 1), groups=4), [x], depthwise)], name="depthwise")
    dilated = {"weight": rng.normal(0, 0.5, (6, 2, 3, 3)).astype(np.float32), "bias": rng.normal(0, 0.1, 6).astype(np.float32)}
    x = b.add(ops.ReLU(), [b.add(ops.Conv2d(6, (3, 3), pads=(2, 2, 2, 2), dilation=(2, 2), groups=2), [x], dilated)], name="dilated")
    x = b.add(ops.Reshape((6 * 3 * 3,)), [b.add(ops.AvgPool2d((2, 2), (2, 2)), [x])])
    b.output(dense(b, rng, x, 3, name="logits"))
    return b.build()


def compiled_for_loihi(graph, rng, pipeline, n=64):
    (inp,) = graph.inputs
    x = np.abs(rng.normal(size=(n, *inp.type.shape))).astype(np.float32)
    return compile_model(graph, Dataset(x, None, "random"), pipeline=pipeline, target="loihi"), Dataset(x, None, "random")


@pytest.fixture(scope="module")
def residual():
    rng = np.random.default_rng(7)
    return compiled_for_loihi(residual_cnn(rng), rng, RELU_PIPELINE)


def connection_matrix(model, synapse, members):
    """What one spike of each presynaptic neuron adds to each compartment of a block, from
    snnc's integer synapse node (conv kernels expanded with a written-out correlation)."""
    node = model.node(synapse)
    weight = node.params["weight"]
    if node.op.kind == "dense":
        return weight[members]
    pre_shape = model.node(node.inputs[0]).type.shape
    n_pre = int(np.prod(pre_shape))
    kernel = weight[node.params["block"][members[0]]].astype(np.float64)
    impulses = np.eye(n_pre).reshape(n_pre, *pre_shape)
    full = correlate(impulses, kernel, node.op.stride, node.op.pads, node.type.shape[1:])
    return full.reshape(n_pre, -1).T[members]


def test_the_pipeline_splits_populations_over_cores(residual):
    compiled, _ = residual
    blocks = {n.name: len(n.meta["cores"]["blocks"]) for n in compiled.chip.nodes if "cores" in n.meta}
    assert blocks["a"] >= 4 and blocks["b"] >= 4  # 256 compartments, at most 64 per core
    assert {n.op.format for n in compiled.model.nodes if isinstance(n.op, ops.CHIP_OPS)} == {"int"}


def test_snnc_chooses_nengo_loihis_integers_block_by_block(residual):
    compiled, _ = residual
    blocks = loihi.discretized(loihi.build(compiled.chip))
    checked = 0
    for name, population in blocks.items():
        node = compiled.model.node(name)
        assert len(population) == len(node.meta["cores"]["blocks"])
        for k, block in enumerate(population):
            members = block.compartments
            for key in ("vth", "bias", "vmin", "vmax"):
                np.testing.assert_array_equal(node.params[key][members], np.broadcast_to(getattr(block, key), members.shape), err_msg=f"{name} block {k} {key}")
            assert node.op.decay_u == int(np.unique(block.decay_u)[0]) and node.op.decay_v == int(np.unique(block.decay_v)[0])
            for synapse, theirs in block.synapses.items():
                ours = connection_matrix(compiled.model, synapse, members)
                np.testing.assert_array_equal(ours, theirs.weights, err_msg=f"{name} block {k} {synapse}")
                assert compiled.model.node(synapse).params["weight_exp"][k] == theirs.weight_exp
                checked += 1
    assert checked >= 10


def test_refsim_spikes_as_the_emulator_on_a_split_residual_cnn(residual):
    compiled, data = residual
    result = verify_loihi(compiled, data.head(3), 25, progress=False)
    assert [layer.name for layer in result.layers] == ["a", "b", "c"]
    assert all(layer.emulator_spikes > 0 for layer in result.layers)
    assert [layer.mismatches for layer in result.layers] == [0, 0, 0]
    assert [layer.voltage_mismatches for layer in result.layers] == [0, 0, 0]
    assert result.ok and result.prediction_agreement == 1.0


def test_refsim_spikes_as_the_emulator_on_a_dense_lif_network_with_biases():
    rng = np.random.default_rng(3)
    compiled, data = compiled_for_loihi(lif_mlp(rng), rng, LIF_PIPELINE)
    populations = [n for n in compiled.model.nodes if isinstance(n.op, ops.LoihiCompartments)]
    assert {n.op.neuron for n in populations} == {"lif"}
    assert all(np.any(n.params["bias"] != 0) for n in populations)
    assert all(n.op.decay_v > 0 and n.op.refract_delay > 1 for n in populations)  # leaky, refractory
    result = verify_loihi(compiled, data.head(3), 40, progress=False)
    assert all(layer.emulator_spikes > 0 for layer in result.layers)
    assert result.ok, [(layer.name, layer.mismatches, layer.first_mismatch) for layer in result.layers]


def test_refsim_spikes_as_the_emulator_on_depthwise_and_dilated_convolutions():
    """The loihi target lowers grouped and dilated convolutions as conv synapses, which
    NengoLoihi runs as Convolution transforms: refsim and the emulator agree spike for spike."""
    rng = np.random.default_rng(5)
    compiled, data = compiled_for_loihi(depthwise_cnn(rng), rng, None)  # the loihi target's pipeline
    synapses = {n.name: n.op for n in compiled.chip.nodes if isinstance(n.op, ops.LoihiSynapses)}
    assert (synapses["depthwise_from_host"].kind, synapses["depthwise_from_host"].kernel) == ("conv", (3, 3))
    assert (synapses["dilated_from_depthwise"].kind, synapses["dilated_from_depthwise"].kernel) == ("conv", (5, 5))
    result = verify_loihi(compiled, data.head(3), 30, progress=False)
    assert [layer.name for layer in result.layers] == ["depthwise", "dilated"]
    assert all(layer.emulator_spikes > 0 for layer in result.layers)
    assert [layer.mismatches for layer in result.layers] == [0, 0]
    assert [layer.voltage_mismatches for layer in result.layers] == [0, 0]
    assert result.ok


def test_a_keras_depthwise_conv_compiles_for_loihi_as_a_conv_synapse(tmp_path):
    """Keras DepthwiseConv2D (dilated, 'same') read from a saved model: one conv synapse,
    and refsim spikes as the emulator."""
    import tensorflow as tf

    from snnc.compiler import load_model

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(2)
    model = tf.keras.Sequential([
        layers.Conv2D(4, 3, padding="same", activation="relu", input_shape=(7, 7, 1)),
        layers.DepthwiseConv2D(3, padding="same", dilation_rate=2, activation="relu", name="depthwise"),
        layers.AveragePooling2D(2),
        layers.Flatten(),
        layers.Dense(3),
    ])  # fmt: skip
    model.save(tmp_path / "model.h5")
    rng = np.random.default_rng(4)
    compiled, data = compiled_for_loihi(load_model(tmp_path / "model.h5"), rng, None)
    (synapse,) = [n.op for n in compiled.chip.nodes if isinstance(n.op, ops.LoihiSynapses) and n.name.startswith("depthwise")]
    assert (synapse.kind, synapse.kernel) == ("conv", (5, 5))
    result = verify_loihi(compiled, data.head(2), 30, progress=False)
    assert all(layer.emulator_spikes > 0 for layer in result.layers)
    assert result.ok, [(layer.name, layer.mismatches, layer.first_mismatch) for layer in result.layers]


def test_a_changed_integer_is_caught(residual):
    """verify must fail when snnc's integers are not what NengoLoihi runs."""
    compiled, data = residual
    node = compiled.model.node("b")
    vth = node.params["vth"].copy()
    vth[:] = vth // 2
    tampered = compiled.model.replace(nodes=tuple(n.replace(params={**n.params, "vth": vth}) if n.name == "b" else n for n in compiled.model.nodes))
    compiled_tampered = type(compiled)(tampered, compiled.ann, compiled.float, [], {}, compiled.snn, compiled.chip)
    result = verify_loihi(compiled_tampered, data.head(2), 20, progress=False)
    b = next(layer for layer in result.layers if layer.name == "b")
    assert not result.ok and b.mismatches > 0 and b.first_mismatch["step"] >= 1


@pytest.mark.data
def test_lenet_on_mnist_spikes_as_the_emulator(shared_data):
    """LeNet-5 (max pooling replaced by average pooling: the loihi_avgpool pipeline) on real images; the full 20 images x 100 steps is
    ``benchmarks/loihi_check.py``."""
    from snnc.compiler import load_model
    from snnc.compiler.datasets import load_dataset

    if not (shared_data / "mnist").is_dir():
        pytest.skip("MNIST is absent from the shared data")
    calibration = load_dataset(shared_data / "mnist", split="train").head(200)
    test = load_dataset(shared_data / "mnist", split="test").head(2)
    path = shared_data / "models/snn_toolbox/lenet5/keras/99.14.h5"
    compiled = compile_model(load_model(path), calibration, pipeline="loihi_avgpool", target="loihi")
    result = verify_loihi(compiled, test, 40, progress=False)
    assert len(result.layers) == 3 and result.ok


@pytest.mark.slow
@pytest.mark.data
def test_lenet_with_max_pooling_as_relus_spikes_as_the_emulator(shared_data):
    """The loihi pipeline's max pooling (maxpool_to_relu: two chip populations per 2x2 pool,
    their pass-through synapses into the next layer) on real images; ~80 s."""
    from snnc.compiler import load_model
    from snnc.compiler.datasets import load_dataset

    if not (shared_data / "mnist").is_dir():
        pytest.skip("MNIST is absent from the shared data")
    calibration = load_dataset(shared_data / "mnist", split="train").head(200)
    test = load_dataset(shared_data / "mnist", split="test").head(2)
    compiled = compile_model(load_model(shared_data / "models/snn_toolbox/lenet5/keras/99.14.h5"), calibration, target="loihi")
    result = verify_loihi(compiled, test, 40, progress=False)
    assert [layer.name for layer in result.layers][:2] == ["max_pooling2d_1_max", "max_pooling2d_1_max_1"]
    assert len(result.layers) == 7 and result.ok
