"""Keras frontend against tf.keras: every supported layer and small mixed models, saved as
``.h5``, ``.keras`` (zip) and SavedModel, must give what ``model.predict`` gives."""

import numpy as np
import pytest
import tensorflow as tf

from snnc.compiler import load_model, run_model
from snnc.compiler.cli import main
from snnc.frontends.keras import SUPPORTED_LAYERS

L = tf.keras.layers
TOL = dict(rtol=1e-5, atol=1e-5)
FORMATS = ("h5", "keras")


def save(model, folder, fmt):
    """Save ``model`` in ``fmt`` under ``folder``; returns the path."""
    if fmt == "h5":
        path = folder / "model.h5"
        model.save(path)
    elif fmt == "keras":
        path = folder / "model.keras"
        model.save(path, save_format="keras_v3")  # tf 2.12 writes HDF5 for .keras without this
    else:
        path = folder / "saved_model"
        model.save(path, save_format="tf")
    return path


def randomize(model, rng):
    """Give every weight a random, non-trivial value (BN variances positive). Adapted
    Normalization layers keep theirs: Keras caches statistics computed from them."""
    layers = [m for m in model.submodules if isinstance(m, L.Layer) and not isinstance(m, tf.keras.Model)]
    for layer in layers:
        if isinstance(layer, L.Normalization):
            continue
        for w in layer.weights:
            positive = "variance" in w.name
            value = rng.uniform(0.5, 2.0, w.shape) if positive else rng.normal(0.0, 0.5, w.shape)
            w.assign(value.astype(np.float32))
    return model


def random_inputs(model, rng, batch=4):
    return [rng.normal(size=(batch, *t.shape[1:])).astype(np.float32) for t in model.inputs]


def assert_matches_keras(model, path, rng):
    x = random_inputs(model, rng)
    expected = model.predict(x, verbose=0)
    expected = expected if isinstance(expected, list) else [expected]
    got = list(run_model(load_model(path), x).values())
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, **TOL)


def functional(shape, *layers):
    """``Input(shape)`` through ``layers`` as a functional model."""
    x = inputs = L.Input(shape)
    for layer in layers:
        x = layer(x)
    return tf.keras.Model(inputs, x)


# ----------------------------------------------------------------------------- each layer

IMG = (7, 8, 3)
IMG_CF = (3, 7, 8)
CF = dict(data_format="channels_first")


def _adapted_normalization():
    norm = L.Normalization(axis=-1)
    norm.adapt(np.random.default_rng(0).normal(2.0, 3.0, size=(32, *IMG)).astype(np.float32))
    return functional(IMG, norm)


LAYER_CASES = {
    "input_only": lambda: functional((5,)),
    "dense_relu": lambda: functional((6,), L.Dense(5, activation="relu")),
    "dense_no_bias_softmax": lambda: functional((6,), L.Dense(4, use_bias=False, activation="softmax")),
    "conv2d_valid": lambda: functional(IMG, L.Conv2D(4, 3)),
    "conv2d_same_asymmetric": lambda: functional(
        IMG, L.Conv2D(4, (3, 4), strides=2, padding="same", activation="relu")
    ),
    "conv2d_dilation": lambda: functional(IMG, L.Conv2D(3, 3, dilation_rate=2, padding="same")),
    "conv2d_groups": lambda: functional((6, 6, 4), L.Conv2D(6, 3, groups=2, use_bias=False)),
    "conv2d_channels_first": lambda: functional(IMG_CF, L.Conv2D(4, 3, strides=2, padding="same", **CF)),
    "conv2d_softmax": lambda: functional(IMG, L.Conv2D(4, 1, activation="softmax")),
    "depthwise": lambda: functional(IMG, L.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same")),
    "depthwise_channels_first": lambda: functional(IMG_CF, L.DepthwiseConv2D(3, **CF)),
    "separable": lambda: functional(IMG, L.SeparableConv2D(5, 3, depth_multiplier=2, activation="relu")),
    "avgpool_valid": lambda: functional(IMG, L.AveragePooling2D(2)),
    "avgpool_same": lambda: functional(IMG, L.AveragePooling2D(3, strides=2, padding="same")),
    "maxpool_same": lambda: functional(IMG, L.MaxPooling2D((3, 2), strides=(2, 1), padding="same")),
    "maxpool_channels_first": lambda: functional(IMG_CF, L.MaxPooling2D(2, **CF)),
    "global_avgpool": lambda: functional(IMG, L.GlobalAveragePooling2D()),
    "global_avgpool_keepdims": lambda: functional(IMG, L.GlobalAveragePooling2D(keepdims=True)),
    "flatten_dense": lambda: functional(IMG, L.Flatten(), L.Dense(3)),
    "flatten_channels_first": lambda: functional(IMG_CF, L.Flatten(**CF), L.Dense(3)),
    "reshape_to_image": lambda: functional((24,), L.Reshape((2, 4, 3)), L.Conv2D(2, 2)),
    "reshape_inferred": lambda: functional(IMG, L.Reshape((-1, 3))),
    "permute": lambda: functional(IMG, L.Permute((2, 1, 3)), L.Conv2D(2, 3)),
    "batchnorm_image": lambda: functional(IMG, L.BatchNormalization()),
    "batchnorm_plain": lambda: functional(IMG, L.BatchNormalization(center=False, scale=False, epsilon=0.01)),
    "batchnorm_channels_first": lambda: functional(IMG_CF, L.BatchNormalization(axis=1)),
    "batchnorm_vector": lambda: functional((6,), L.BatchNormalization()),
    "relu_options": lambda: functional(IMG, L.ReLU(max_value=0.6, negative_slope=0.1, threshold=0.2)),
    "leaky_relu": lambda: functional((6,), L.LeakyReLU(0.2)),
    "activation_relu": lambda: functional(IMG, L.Activation("relu")),
    "activation_softmax": lambda: functional((6,), L.Activation("softmax")),
    "activation_sigmoid": lambda: functional(IMG, L.Activation("sigmoid")),
    "activation_tanh": lambda: functional((6,), L.Activation("tanh")),
    "dense_hard_sigmoid": lambda: functional((6,), L.Dense(5, activation="hard_sigmoid")),
    "conv2d_tanh": lambda: functional(IMG, L.Conv2D(3, 2, activation="tanh")),
    "relu_max_value": lambda: functional(IMG, L.ReLU(max_value=0.5)),
    "softmax_image": lambda: functional(IMG, L.Softmax()),
    "dropouts_removed": lambda: functional(
        IMG, L.Dropout(0.5), L.SpatialDropout2D(0.5), L.GaussianNoise(1.0), L.ActivityRegularization()
    ),
    "zero_padding": lambda: functional(IMG, L.ZeroPadding2D(((1, 2), (0, 3)))),
    "zero_padding_channels_first": lambda: functional(IMG_CF, L.ZeroPadding2D(1, **CF)),
    "rescaling": lambda: functional(IMG, L.Rescaling(1 / 255.0, offset=-0.5)),
    "normalization_config": lambda: functional(IMG, L.Normalization(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0])),
    "normalization_adapted": _adapted_normalization,
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", LAYER_CASES)
def test_layer(case, fmt, tmp_path, rng):
    model = randomize(LAYER_CASES[case](), rng)
    assert_matches_keras(model, save(model, tmp_path, fmt), rng)


def test_every_registered_layer_is_tested():
    from test_keras_signals import SIGNAL_LAYER_CASES, SIGNAL_MODEL_CASES
    from test_keras_lmu import CASES as LMU_CASES
    from test_keras_spiking import CASES as SPIKING_CASES
    from test_keras_trained import conv_model, dense_model

    cases = [
        *LAYER_CASES.values(), *MODEL_CASES.values(), *SIGNAL_LAYER_CASES.values(), *SIGNAL_MODEL_CASES.values(),
        *SPIKING_CASES.values(), *LMU_CASES.values(), dense_model, conv_model,  # keras-spiking, keras-lmu; SoftLIF and QCFS
    ]
    tested = {type(layer).__name__ for case in cases for layer in case().layers}
    assert set(SUPPORTED_LAYERS) - tested - {"Sequential", "Functional"} <= {
        "AlphaDropout", "GaussianDropout", "SpatialDropout1D", "SpatialDropout3D", "Identity"
    }


# ----------------------------------------------------------------------------- mixed models


def sequential_cnn():
    return tf.keras.Sequential([
        L.Input((12, 12, 2)),
        L.Rescaling(0.5),
        L.Conv2D(6, 3, padding="same"),
        L.BatchNormalization(),
        L.ReLU(),
        L.MaxPooling2D(2),
        L.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        L.AveragePooling2D(2, padding="same"),
        L.Flatten(),
        L.Dense(10, activation="relu"),
        L.Dropout(0.3),
        L.Dense(5, activation="softmax"),
    ])


def sequential_without_input_layer():
    return tf.keras.Sequential([L.Conv2D(4, 3, input_shape=(8, 8, 1)), L.Flatten(), L.Dense(3)])


def residual_concat():
    x = L.Input((8, 8, 3), name="image")
    y = L.Conv2D(4, 3, padding="same")(x)
    y = L.BatchNormalization()(y)
    y = L.ReLU()(y)
    z = L.Conv2D(4, 3, padding="same")(y)
    y = L.ReLU()(L.Add()([y, z]))
    w = L.Conv2D(3, 1)(x)
    y = L.Concatenate()([y, w])
    y = L.GlobalAveragePooling2D()(y)
    return tf.keras.Model(x, L.Dense(4)(y))


def concat_flat_and_image():
    x = L.Input((6, 6, 2))
    a = L.Flatten()(L.Conv2D(3, 3)(x))
    b = L.Dense(5)(L.Flatten()(x))
    return tf.keras.Model(x, L.Concatenate()([a, b]))


def nested_sequential():
    inner = tf.keras.Sequential(
        [L.Input((6, 6, 4)), L.Conv2D(4, 3, padding="same"), L.BatchNormalization(), L.ReLU()], name="block"
    )
    x = L.Input((6, 6, 3))
    y = L.Conv2D(4, 1)(x)
    y = inner(y)
    y = L.Flatten()(L.MaxPooling2D()(y))
    return tf.keras.Model(x, L.Dense(3)(y))


def shared_layers_two_outputs():
    """Two inputs, a Dense and a nested model shared by both, two outputs."""
    block = tf.keras.Sequential([L.Input((5,)), L.Dense(5, activation="relu"), L.Dense(5)], name="shared_block")
    dense = L.Dense(5, name="shared_dense")
    a, b = L.Input((4,), name="a"), L.Input((4,), name="b")
    ya, yb = block(dense(a)), block(dense(b))
    return tf.keras.Model([a, b], [L.Add()([ya, yb]), L.Dense(2, activation="softmax")(yb)])


def shared_layer_fed_by_a_later_layer():
    """The config lists ``shared`` before ``middle``, but its second call reads ``middle``."""
    shared = L.Dense(4, activation="relu", name="shared")
    x = L.Input((4,))
    y = shared(L.Dense(4, name="middle")(shared(x)))
    return tf.keras.Model(x, y)


def channels_first_lenet():
    return tf.keras.Sequential([
        L.Input((1, 12, 12)),
        L.Conv2D(4, 3, activation="relu", **CF),
        L.MaxPooling2D(2, **CF),
        L.BatchNormalization(axis=1),
        L.Conv2D(6, 3, padding="same", **CF),
        L.Flatten(**CF),
        L.Dense(3, activation="softmax"),
    ])


def simple_rnn_time_distributed():
    """A recurrent model (tests/frontends/test_keras_rnn.py has the variants)."""
    return tf.keras.Sequential([
        L.Input((5, 3)),
        L.SimpleRNN(4, activation="relu", return_sequences=True),
        L.TimeDistributed(L.Dense(2)),
    ])


MODEL_CASES = {
    "sequential_cnn": sequential_cnn,
    "sequential_without_input_layer": sequential_without_input_layer,
    "residual_concat": residual_concat,
    "concat_flat_and_image": concat_flat_and_image,
    "nested_sequential": nested_sequential,
    "shared_layers_two_outputs": shared_layers_two_outputs,
    "shared_layer_fed_by_a_later_layer": shared_layer_fed_by_a_later_layer,
    "channels_first_lenet": channels_first_lenet,
    "simple_rnn_time_distributed": simple_rnn_time_distributed,
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", MODEL_CASES)
def test_model(case, fmt, tmp_path, rng):
    model = randomize(MODEL_CASES[case](), rng)
    assert_matches_keras(model, save(model, tmp_path, fmt), rng)


SAVEDMODEL_CASES = ["residual_concat", "nested_sequential", "shared_layers_two_outputs"]


@pytest.mark.parametrize("case", SAVEDMODEL_CASES)
def test_savedmodel(case, tmp_path, rng):
    model = randomize(MODEL_CASES[case](), rng)
    assert_matches_keras(model, save(model, tmp_path, "savedmodel"), rng)


@pytest.mark.parametrize("case", ["separable", "normalization_adapted", "flatten_channels_first"])
def test_savedmodel_layer(case, tmp_path, rng):
    model = randomize(LAYER_CASES[case](), rng)
    assert_matches_keras(model, save(model, tmp_path, "savedmodel"), rng)


def edit_h5_config(path, edit):
    """Change the model config stored in an .h5 file: for what tf 2.12 cannot write."""
    import json

    import h5py

    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config["config"]["layers"])
        f.attrs["model_config"] = json.dumps(config)


def test_normalization_invert(tmp_path, rng):
    """tf 2.12 leaves ``invert`` out of the config (Keras 3 saves it)."""
    mean, variance = np.array([0.5, -1.0, 2.0]), np.array([4.0, 0.25, 1.0])
    path = save(functional((3,), L.Normalization(mean=mean, variance=variance)), tmp_path, "h5")
    edit_h5_config(path, lambda layers: layers[1]["config"].update(invert=True))
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(run_model(load_model(path), x)["output"], mean + x * np.sqrt(variance), **TOL)


def test_relu6_activation(tmp_path, rng):
    """Keras 3's ``activation="relu6"`` (tf 2.12 has no such activation name)."""
    model = randomize(functional((6,), L.Dense(8)), rng)
    path = save(model, tmp_path, "h5")
    edit_h5_config(path, lambda layers: layers[1]["config"].update(activation="relu6"))
    x = 10 * rng.normal(size=(4, 6)).astype(np.float32)
    expected = np.clip(model.predict(x, verbose=0), 0, 6)
    assert 0 < np.mean(expected == 6) < 1
    np.testing.assert_allclose(run_model(load_model(path), x)["output"], expected, **TOL)


def test_hard_sigmoid_clips(tmp_path, rng):
    """Keras 2's ``hard_sigmoid``, ``clip(0.2 x + 0.5, 0, 1)``, on inputs that reach both clips."""
    model = randomize(functional((6,), L.Dense(8, activation="hard_sigmoid")), rng)
    x = 10 * rng.normal(size=(16, 6)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    assert np.mean(expected == 0) > 0.1 and np.mean(expected == 1) > 0.1
    graph = load_model(save(model, tmp_path, "h5"))
    assert [n.op.NAME for n in graph.nodes][-3:] == ["affine", "relu", "output"]
    np.testing.assert_allclose(run_model(graph, x)["output"], expected, **TOL)


@pytest.mark.parametrize(
    "activation, formula",
    [
        ("hard_sigmoid", lambda z: np.clip(z / 6 + 0.5, 0, 1)),  # relu6(z + 3) / 6
        ("leaky_relu", lambda z: np.where(z > 0, z, 0.2 * z)),
    ],
    ids=["hard_sigmoid", "leaky_relu"],
)
def test_keras3_activations(activation, formula, tmp_path, rng):
    """Keras 3's definitions (tf 2.12 cannot run them): the file's keras_version decides."""
    import h5py

    model = randomize(functional((6,), L.Dense(8)), rng)
    path = save(model, tmp_path, "h5")
    edit_h5_config(path, lambda layers: layers[1]["config"].update(activation=activation))
    with h5py.File(path, "r+") as f:
        f.attrs["keras_version"] = "3.3.3"
    x = 10 * rng.normal(size=(16, 6)).astype(np.float32)
    expected = formula(model.predict(x, verbose=0))
    np.testing.assert_allclose(run_model(load_model(path), x)["output"], expected, **TOL)


def test_keras_suffix_holding_hdf5(tmp_path, rng):
    """tf 2.12's plain ``model.save("m.keras")`` writes HDF5: the content decides."""
    model = randomize(sequential_cnn(), rng)
    path = tmp_path / "model.keras"
    model.save(path)
    assert path.read_bytes()[:4] == b"\x89HDF"
    assert_matches_keras(model, path, rng)


def test_layouts_recorded_on_inputs_and_outputs(tmp_path, rng):
    model = randomize(functional(IMG, L.Conv2D(4, 3)), rng)
    graph = load_model(save(model, tmp_path, "h5"))
    (inp,), (out,) = graph.inputs, graph.outputs
    assert inp.type.shape == (3, 7, 8) and inp.op.source_layout == "HWC"
    assert out.type.shape == (4, 5, 6) and out.op.source_layout == "HWC"
    assert graph.meta["source"]["keras_version"] == tf.keras.__version__


def test_fixed_batch_of_one_is_the_batch(tmp_path, rng):
    model = randomize(tf.keras.Sequential([L.InputLayer(batch_input_shape=(1, 6)), L.Dense(3)]), rng)
    path = save(model, tmp_path, "h5")
    x = rng.normal(size=(1, 6)).astype(np.float32)
    np.testing.assert_allclose(run_model(load_model(path), x)["output"], model.predict(x, verbose=0), **TOL)


def test_loading_a_file_does_not_import_tensorflow(tmp_path, rng):
    import subprocess
    import sys

    path = save(randomize(sequential_cnn(), rng), tmp_path, "keras")
    code = (
        "import sys; from snnc.compiler import load_model; "
        f"load_model({str(path)!r}); print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_cli_run(tmp_path, rng):
    model = randomize(residual_concat(), rng)
    path = save(model, tmp_path, "keras")
    x = random_inputs(model, rng)[0]
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0), **TOL)


# ----------------------------------------------------------------------------- real files


LENET = "models/snn_toolbox/lenet5/keras"


def accuracy(graph, x, y) -> float:
    (out,) = run_model(graph, x).values()
    return float(np.mean(out.argmax(axis=1) == y))


@pytest.mark.data
@pytest.mark.parametrize("name, expected", [("99.14.h5", 0.9914), ("98.96.h5", 0.9896)])
def test_snn_toolbox_lenet_accuracy(name, expected, shared_data, mnist_test):
    """Keras 2.2.4 channels-first (Flatten in HWC order), and Keras 2.0.4 on Theano
    (flipped kernels, Flatten in CHW order): the accuracies their authors reported."""
    x, y = mnist_test
    graph = load_model(shared_data / LENET / name)
    assert accuracy(graph, x[:, None], y) == pytest.approx(expected, abs=1e-9)


@pytest.mark.data
def test_tf212_mnist_cnn_accuracy(shared_data, mnist_test):
    x, y = mnist_test
    graph = load_model(shared_data / "models/mnist_cnn_avgpool.h5")
    assert accuracy(graph, x[..., None], y) == pytest.approx(0.9870, abs=1e-9)


@pytest.mark.data
@pytest.mark.slow
def test_theano_cifar10_alexnet_bn_accuracy(shared_data):
    folder = shared_data / "cifar10-subset"
    x = (np.load(folder / "x_test.npz")["arr_0"] + 1.0) / 2.0  # stored as 2*x/255-1; the model takes x/255
    y = np.load(folder / "y_test.npz")["arr_0"].argmax(axis=1)
    graph = load_model(shared_data / "models/snn_toolbox/cifar10_alexnet_bn/81.45.h5")
    assert accuracy(graph, x, y) == pytest.approx(0.828, abs=1e-9)
