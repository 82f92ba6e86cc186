"""Keras model configs from ``model.to_json()`` with a separate weights file (hls4ml's and
SNN Toolbox's convention) against tf.keras: every weights layout, every name the weights are
found under beside the JSON, Keras 3's format, and the errors."""

import hashlib
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf

from error_testing import raises
from snnc.compiler import load_model, run_model
from snnc.compiler.errors import ModelFormatError
from snnc.frontends.keras import WEIGHTS_BESIDE_JSON

L = tf.keras.layers
TOL = dict(rtol=1e-5, atol=1e-5)
KERAS3 = Path(__file__).parent / "fixtures" / "keras3"


def randomized(model, seed=0):
    """``model`` with every weight random (BN variances positive), so a weight read from the
    wrong place shows in the outputs."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.uniform(0.5, 2.0, w.shape) if "variance" in w.name else rng.normal(0.0, 0.5, w.shape)
        w.assign(value.astype(np.float32))
    return model


def sequential_cnn():
    return randomized(tf.keras.Sequential([
        L.Input((10, 10, 2)),
        L.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
        L.BatchNormalization(name="bn1"),
        L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(6, 3, name="conv2"),
        L.Flatten(name="flatten"),
        L.Dense(5, activation="softmax", name="fc"),
    ]))


def functional_residual():
    x = inputs = L.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="stem")(x)
    y = L.Conv2D(4, 3, padding="same", name="branch")(x)
    y = L.BatchNormalization(name="branch_bn")(y)
    x = L.ReLU(name="merge_relu")(L.Add(name="merge")([x, y]))
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return randomized(tf.keras.Model(inputs, L.Dense(3, name="fc")(x)))


MODELS = {"sequential_cnn": sequential_cnn, "functional_residual": functional_residual}


def save_weights(model, path, layout):
    """Write ``model``'s weights to ``path`` in one of the layouts a weights file has (tf.keras
    picks the ``.weights.h5`` layout by that suffix alone)."""
    if layout == "save_weights_h5":  # Keras 2: groups named after the layers
        model.save_weights(path, save_format="h5")
    elif layout == "weights_h5":  # the .weights.h5 layout (Keras 3's; tf 2.12 for this suffix)
        assert str(path).endswith(".weights.h5")
        model.save_weights(path)
    else:  # a whole model saved as .h5 given as the weights
        model.save(path, save_format="h5")
    return path


def to_json(model, path):
    path.write_text(model.to_json())
    return path


def assert_matches(model, graph, seed=1):
    """The reference is Keras's eager call: ``model.predict`` runs a traced graph, and in
    tf 2.12 oneDNN's cached graph kernels can give BatchNormalization -> MaxPooling2D wrong
    values depending on the models run before in the same process."""
    x = np.random.default_rng(seed).normal(size=(4, *model.input_shape[1:])).astype(np.float32)
    (got,) = run_model(graph, x).values()
    np.testing.assert_allclose(got, model(x, training=False).numpy(), **TOL)


# ----------------------------------------------------------------------------- weights given


@pytest.mark.parametrize("layout", ["save_weights_h5", "weights_h5", "full_model_h5"])
@pytest.mark.parametrize("name", MODELS)
def test_matches_keras_with_weights_given(name, layout, tmp_path):
    model = MODELS[name]()
    config = to_json(model, tmp_path / "model.json")
    (tmp_path / "elsewhere").mkdir()
    name = "params.weights.h5" if layout == "weights_h5" else "params.h5"
    weights = save_weights(model, tmp_path / "elsewhere" / name, layout)
    graph = load_model(config, weights=weights)
    assert_matches(model, graph)
    source = graph.meta["source"]
    assert source["format"] == "json" and source["file"] == "model.json"
    assert source["weights"] == name
    assert source["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert source["keras_version"] == tf.keras.__version__


# ----------------------------------------------------------------------------- weights found


@pytest.mark.parametrize("pattern", WEIGHTS_BESIDE_JSON)
def test_weights_found_beside_the_json(pattern, tmp_path):
    model = sequential_cnn()
    config = to_json(model, tmp_path / "net.json")
    name = pattern.format("net")
    save_weights(model, tmp_path / name, "weights_h5" if name.endswith(".weights.h5") else "save_weights_h5")
    graph = load_model(config)
    assert graph.meta["source"]["weights"] == name
    assert_matches(model, graph)


def test_hls4ml_and_snn_toolbox_names(tmp_path):
    """hls4ml writes model.json + model_weights.h5, SNN Toolbox NAME.json + NAME.h5."""
    model = functional_residual()
    save_weights(model, tmp_path / "model_weights.h5", "save_weights_h5")
    assert load_model(to_json(model, tmp_path / "model.json")).meta["source"]["weights"] == "model_weights.h5"
    save_weights(model, tmp_path / "snn.h5", "save_weights_h5")
    assert load_model(to_json(model, tmp_path / "snn.json")).meta["source"]["weights"] == "snn.h5"


def test_first_name_in_order_wins(tmp_path):
    model, other = sequential_cnn(), randomized(sequential_cnn(), seed=5)
    config = to_json(model, tmp_path / "net.json")
    save_weights(model, tmp_path / "net_weights.h5", "save_weights_h5")
    save_weights(other, tmp_path / "net.h5", "save_weights_h5")
    graph = load_model(config)
    assert graph.meta["source"]["weights"] == "net_weights.h5"
    assert_matches(model, graph)


# ----------------------------------------------------------------------------- Keras 3


@pytest.mark.parametrize("name", ["seq_cnn", "func_residual", "nested"])
def test_keras3_json_and_weights(name, tmp_path):
    """Keras 3's ``model.to_json()`` is the ``config.json`` of its ``.keras`` archive and its
    ``save_weights("NAME.weights.h5")`` the archive's ``model.weights.h5`` (both written by
    the same serializer), so the Keras 3 fixtures give a real Keras 3 pair."""
    with zipfile.ZipFile(KERAS3 / f"{name}.keras") as archive:
        (tmp_path / f"{name}.json").write_bytes(archive.read("config.json"))
        (tmp_path / f"{name}.weights.h5").write_bytes(archive.read("model.weights.h5"))
    config = json.loads((tmp_path / f"{name}.json").read_text())
    assert config["module"].startswith("keras") and "registered_name" in config  # the Keras 3 format
    data = np.load(KERAS3 / f"{name}.npz")
    graph = load_model(tmp_path / f"{name}.json")
    assert graph.meta["source"]["weights"] == f"{name}.weights.h5"
    (got,) = run_model(graph, data["x"]).values()
    np.testing.assert_allclose(got, data["y"], **TOL)


# ----------------------------------------------------------------------------- errors


def test_no_weights_found(tmp_path):
    config = to_json(sequential_cnn(), tmp_path / "net.json")
    message = raises(ModelFormatError, config, "no weights file beside", "--weights")
    for pattern in WEIGHTS_BESIDE_JSON:
        assert pattern.format("net") in message


def test_weights_missing_a_layer(tmp_path):
    model = tf.keras.Sequential([L.Input((6,)), L.Dense(4, name="fc1"), L.Dense(3, name="fc2")])
    smaller = tf.keras.Sequential([L.Input((6,)), L.Dense(4, name="fc1")])
    weights = save_weights(smaller, tmp_path / "w.h5", "save_weights_h5")
    config = to_json(model, tmp_path / "model.json")
    raises(ModelFormatError, config, "layer 'fc2' (Dense)", str(weights), "no weights group 'fc2'", weights=weights)


def test_weights_of_another_shape(tmp_path):
    model = tf.keras.Sequential([L.Input((6,)), L.Dense(4, name="fc")])
    wider = tf.keras.Sequential([L.Input((6,)), L.Dense(5, name="fc")])
    weights = save_weights(wider, tmp_path / "w.h5", "save_weights_h5")
    config = to_json(model, tmp_path / "model.json")
    raises(ModelFormatError, config, "layer 'fc' (Dense)", f"weight kernel has shape [6, 5] in {weights}, expected [6, 4]",
           weights=weights)


@pytest.mark.parametrize("text", ['{"name": "not a model"}', "[1, 2]"])
def test_json_that_is_not_a_model_config(text, tmp_path):
    config = tmp_path / "settings.json"
    config.write_text(text)
    raises(ModelFormatError, config, "not a Keras model config" if text.startswith("{") else "not a JSON object",
           weights=tmp_path / "unused.h5")


def test_weights_file_that_is_not_keras_weights(tmp_path):
    """The error names the file at fault: the weights file."""
    config = to_json(sequential_cnn(), tmp_path / "model.json")
    not_hdf5 = tmp_path / "model_weights.h5"
    not_hdf5.write_text("hello")
    raises(ModelFormatError, not_hdf5, "not a Keras weights file", path_loaded=config)
    other_hdf5 = tmp_path / "other.h5"
    with h5py.File(other_hdf5, "w") as f:
        f["data"] = np.zeros(3)
    raises(ModelFormatError, other_hdf5, "an HDF5 file but not Keras weights", path_loaded=config, weights=other_hdf5)
    raises(ModelFormatError, tmp_path / "absent.h5", "cannot read", path_loaded=config, weights=tmp_path / "absent.h5")


def test_weights_refused_for_a_model_file_with_its_own(tmp_path):
    model = sequential_cnn()
    model.save(tmp_path / "model.h5")
    raises(ModelFormatError, tmp_path / "model.h5", "goes with a Keras .json model config only",
           weights=tmp_path / "w.h5")
