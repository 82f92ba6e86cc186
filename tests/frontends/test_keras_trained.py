"""The Keras frontend reads snnc.training's SoftLIF and QCFS layers (and nengo-extras'
SoftLIF) as data: interpreter output against Keras ``predict`` for trained models saved as
``.h5``, ``.keras`` and SavedModel; bad configs give one clear error naming the layer."""

import json

import h5py
import numpy as np
import pytest
import tensorflow as tf

from error_testing import raises
from snnc.compiler import load_model, ops, run_model
from snnc.compiler.cli import main
from snnc.compiler.errors import ModelFormatError, UnsupportedError
from snnc.training import QCFS, SoftLIF
from test_keras import TOL, save

L = tf.keras.layers
#: distance, in quantization steps, that a QCFS floor's argument keeps from an integer in the
#: inputs compared: float32 rounding differs between Keras and the interpreter by ~1e-6 of a
#: step here, and nearer a step boundary the floor could flip one level by rounding alone
FLOOR_MARGIN = 1e-3


@pytest.fixture(autouse=True)
def seeded():
    """Fixed initial weights and training: whether a layer's inputs span several quantization
    levels must not depend on which tests ran before (TensorFlow's global random state)."""
    tf.keras.utils.set_random_seed(0)


def trained(model, rng):
    """``model`` after a few small training steps on random targets: every QCFS threshold
    moves from its initial value (what the frontend must read), the rest stays near its
    initialization (so that the layers stay active over the inputs compared)."""
    x = rng.normal(size=(64, *model.input_shape[1:])).astype(np.float32)
    y = rng.normal(size=(64, *model.output_shape[1:])).astype(np.float32)
    model.compile(tf.keras.optimizers.Adam(0.01), "mse")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for layer in qcfs_layers(model):
        assert float(layer.threshold.numpy()) != layer.initial_threshold
    return model


def qcfs_layers(model):
    return [layer for layer in model.layers if isinstance(layer, QCFS)]


def floor_arguments(model, x):
    """Each QCFS layer's ``input * levels / lambda + shift`` for inputs ``x`` (Keras's own)."""
    layers = qcfs_layers(model)
    probe = tf.keras.Model(model.inputs, [layer.input for layer in layers])
    inputs = probe.predict(x, verbose=0)
    inputs = inputs if isinstance(inputs, list) else [inputs]
    return [a * (q.levels / float(q.threshold.numpy())) + q.shift for q, a in zip(layers, inputs)]


def clear_of_floor_steps(model, x):
    """The rows of ``x`` at which no QCFS floor argument lies within FLOOR_MARGIN of a step."""
    keep = np.ones(len(x), bool)
    for arg in floor_arguments(model, x):
        distance = np.abs(arg - np.round(arg)).reshape(len(x), -1).min(axis=1)
        keep &= distance > FLOOR_MARGIN
    return x[keep]


def assert_matches_keras(model, path, rng, scale=1.0):
    x = clear_of_floor_steps(model, scale * rng.normal(size=(64, *model.input_shape[1:])).astype(np.float32))
    assert len(x) >= 16  # enough inputs left to compare
    for arg in floor_arguments(model, x):  # the inputs exercise several quantization levels
        assert np.unique(np.clip(np.floor(arg), 0, None)).size >= 3
    got = run_model(load_model(path), x)["output"]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), **TOL)


def dense_model():
    return tf.keras.Sequential([
        L.Input((6,)),
        L.Dense(8),
        QCFS(levels=4, threshold=2.0),
        L.Dense(5),
        SoftLIF(sigma=0.05, amplitude=0.05),
        L.Dense(3),
        QCFS(levels=8, threshold=3.0, shift=0.25),
    ])


def conv_model():
    inputs = L.Input((6, 6, 2))
    x = L.Conv2D(4, 3, padding="same")(inputs)
    x = QCFS(levels=6)(x)
    x = L.AveragePooling2D()(x)
    x = L.Conv2D(3, 2)(x)
    x = SoftLIF(amplitude=0.05)(x)
    x = L.Flatten()(x)
    x = L.Dense(4)(x)
    return tf.keras.Model(inputs, QCFS(levels=4, threshold=2.0)(x))


@pytest.mark.parametrize("fmt", ["h5", "keras", "tf"])
def test_dense_model_matches_keras(tmp_path, rng, fmt):
    model = trained(dense_model(), rng)
    assert_matches_keras(model, save(model, tmp_path, fmt), rng, scale=2.0)


@pytest.mark.parametrize("fmt", ["h5", "keras"])
def test_conv_model_matches_keras(tmp_path, rng, fmt):
    model = trained(conv_model(), rng)
    assert_matches_keras(model, save(model, tmp_path, fmt), rng, scale=2.0)


def test_ops_carry_the_trained_threshold_and_the_config(tmp_path, rng):
    model = trained(dense_model(), rng)
    graph = load_model(save(model, tmp_path, "keras"))
    qcfs = [n.op for n in graph.nodes if isinstance(n.op, ops.Qcfs)]
    lambdas = [float(layer.threshold.numpy()) for layer in qcfs_layers(model)]
    assert qcfs == [ops.Qcfs(4, lambdas[0], 0.5), ops.Qcfs(8, lambdas[1], 0.25)]
    (soft_lif,) = [n.op for n in graph.nodes if isinstance(n.op, ops.SoftLif)]
    assert soft_lif == ops.SoftLif(tau_rc=0.02, tau_ref=0.002, amplitude=0.05, sigma=0.05)


# ----------------------------------------------------------------------------- edited files


def edit_layer_config(path, layer_name, edit):
    """Apply ``edit(layer_data)`` to one layer's entry in an ``.h5`` model's config."""
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        (layer,) = [d for d in config["config"]["layers"] if d["config"]["name"] == layer_name]
        edit(layer)
        f.attrs["model_config"] = json.dumps(config)


def soft_lif_h5(tmp_path, **soft_lif):
    model = tf.keras.Sequential([L.Input((5,)), L.Dense(4), SoftLIF(name="rates", **soft_lif)])
    model.layers[0].set_weights([np.eye(5, 4, dtype=np.float32), np.full(4, -0.02, np.float32)])
    return save(model, tmp_path, "h5")


def test_nengo_extras_soft_lif(tmp_path, rng):
    """nengo-extras' SoftLIF (unregistered, so plain ``SoftLIF``, with its own keys) computes
    ``amplitude / (tau_ref + tau_rc * log1p(1 / (sigma * softplus(x / sigma))))``."""
    path = soft_lif_h5(tmp_path)
    nengo_extras = {"sigma": 0.03, "amplitude": 0.5, "tau_rc": 0.05, "tau_ref": 0.001, "noise_model": "alpharc", "tau_s": 0.005}

    def as_nengo_extras(layer):
        layer["class_name"] = "SoftLIF"
        layer["config"] = {"name": "rates", "trainable": True, "dtype": "float32", **nengo_extras}

    edit_layer_config(path, "rates", as_nengo_extras)
    x = rng.uniform(-0.2, 0.5, size=(16, 5)).astype(np.float32)
    j = x[:, :4] - 0.02
    softplus = nengo_extras["sigma"] * np.log1p(np.exp(j / nengo_extras["sigma"]))
    expected = nengo_extras["amplitude"] / (nengo_extras["tau_ref"] + nengo_extras["tau_rc"] * np.log1p(1 / softplus))
    np.testing.assert_allclose(run_model(load_model(path), x)["output"], expected, rtol=1e-5)


@pytest.mark.parametrize(
    "edit, error_type, fragments",
    [
        (lambda d: d["config"].update(bias=1.0), UnsupportedError, ["config keys bias are not SoftLIF's", "tau_rc"]),
        (lambda d: d["config"].update(noise_model="poisson"), UnsupportedError, ["noise_model 'poisson'", "'alpharc'"]),
        (lambda d: d["config"].update(sigma=-1.0), UnsupportedError, ["sigma must not be negative"]),
        (lambda d: d["config"].pop("tau_rc"), ModelFormatError, ["malformed layer config", "tau_rc"]),
        (lambda d: d.update(class_name="mylib>SoftLIF"), UnsupportedError, ["(mylib>SoftLIF): layer type not supported"]),
    ],
)
def test_bad_soft_lif_config(tmp_path, edit, error_type, fragments):
    path = soft_lif_h5(tmp_path)
    edit_layer_config(path, "rates", edit)
    raises(error_type, path, *fragments, "'rates'")


@pytest.mark.parametrize(
    "entry, error",
    [
        ({"module": None, "class_name": "QCFS", "registered_name": "snnc>QCFS"}, None),
        ({"module": "snnc.training.layers", "class_name": "QCFS", "registered_name": "snnc>QCFS"}, None),
        ({"module": None, "class_name": "QCFS", "registered_name": "mylib>QCFS"}, "custom class"),
    ],
)
def test_keras3_style_entries(tmp_path, rng, entry, error):
    """Keras 3 names a registered class by ``class_name`` and ``registered_name``; only
    snnc's registration is read as snnc's QCFS."""
    path = qcfs_h5(tmp_path)
    edit_layer_config(path, "quant", lambda d: d.update(entry))
    if error:
        raises(UnsupportedError, path, "'quant'", error)
    else:
        assert [n.op for n in load_model(path).nodes if isinstance(n.op, ops.Qcfs)] == [ops.Qcfs(8, 4.0, 0.5)]


def qcfs_h5(tmp_path):
    model = tf.keras.Sequential([L.Input((5,)), L.Dense(4), QCFS(name="quant")])
    return save(model, tmp_path, "h5")


@pytest.mark.parametrize(
    "edit, error_type, fragments",
    [
        (lambda d: d["config"].update(levels=2.5), ModelFormatError, ["levels is 2.5, not an integer"]),
        (lambda d: d["config"].update(levels=0), UnsupportedError, ["levels must be a positive integer"]),
        (lambda d: d["config"].update(channelwise=True), UnsupportedError, ["config keys channelwise are not QCFS's"]),
    ],
)
def test_bad_qcfs_config(tmp_path, edit, error_type, fragments):
    path = qcfs_h5(tmp_path)
    edit_layer_config(path, "quant", edit)
    raises(error_type, path, *fragments, "'quant'")


def test_per_channel_threshold_refused(tmp_path, capsys):
    path = qcfs_h5(tmp_path)
    with h5py.File(path, "r+") as f:
        group = f["model_weights/quant/quant"]
        del group["threshold:0"]
        group["threshold:0"] = np.full(4, 3.0, np.float32)
    raises(UnsupportedError, path, "'quant'", "threshold of shape [4]", "one threshold (lambda) per layer")
    np.save(tmp_path / "x.npy", np.zeros((1, 5), np.float32))
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "one threshold (lambda) per layer" in line
