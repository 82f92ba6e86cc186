"""Bad Keras files and unsupported models: one clear error naming the file and what is wrong
(never a raw h5py/zipfile/json traceback), and exit status 2 with one line from the CLI."""

import json
import zipfile

import h5py
import numpy as np
import pytest
import tensorflow as tf

from error_testing import raises
from snnc.compiler.cli import main
from snnc.compiler.errors import ModelFormatError, UnsupportedError

L = tf.keras.layers


@pytest.fixture
def h5_model(tmp_path):
    model = tf.keras.Sequential([L.Input((6, 6, 2)), L.Conv2D(3, 3, name="conv"), L.Flatten(), L.Dense(4, name="fc")])
    path = tmp_path / "model.h5"
    model.save(path)
    return path


@pytest.fixture
def keras_model(tmp_path):
    model = tf.keras.Sequential([L.Input((5,)), L.Dense(4, name="fc")])
    path = tmp_path / "model.keras"
    model.save(path, save_format="keras_v3")
    return path


def assert_cli_error(path, tmp_path, capsys, *fragments):
    np.save(tmp_path / "x.npy", np.zeros((1, 5), np.float32))
    rc = main(["run", str(path), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith("snnc: error: ") and str(path) in lines[0], lines
    for fragment in fragments:
        assert fragment in lines[0]


# ----------------------------------------------------------------------------- damaged files


def test_truncated_h5(h5_model, tmp_path, capsys):
    data = h5_model.read_bytes()
    h5_model.write_bytes(data[: len(data) // 2])
    raises(ModelFormatError, h5_model, "corrupt or truncated HDF5")
    assert_cli_error(h5_model, tmp_path, capsys, "HDF5")


def test_truncated_keras_archive(keras_model, tmp_path, capsys):
    data = keras_model.read_bytes()
    keras_model.write_bytes(data[: len(data) // 2])
    raises(ModelFormatError, keras_model, "zip archive")
    assert_cli_error(keras_model, tmp_path, capsys, "zip archive")


def test_corrupt_keras_archive_member(keras_model):
    data = bytearray(keras_model.read_bytes())
    start = data.index(b"\x89HDF")  # inside model.weights.h5 (stored uncompressed)
    data[start + 200 : start + 400] = bytes(b ^ 0xFF for b in data[start + 200 : start + 400])
    keras_model.write_bytes(bytes(data))
    raises(ModelFormatError, keras_model, "corrupt")


def test_keras_archive_without_config(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.weights.h5", b"")
    raises(ModelFormatError, path, "no config.json", "model.weights.h5")


def test_keras_archive_without_weights(keras_model, tmp_path):
    path = tmp_path / "no_weights.keras"
    with zipfile.ZipFile(keras_model) as src, zipfile.ZipFile(path, "w") as dst:
        for name in ("config.json", "metadata.json"):
            dst.writestr(name, src.read(name))
    raises(ModelFormatError, path, "no model.weights.h5")


def test_keras_archive_with_bad_json(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{not json")
    raises(ModelFormatError, path, "config.json is not valid JSON")


def test_malformed_config(h5_model):
    with h5py.File(h5_model, "r+") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": [{"oops": 1}]}})
    raises(ModelFormatError, h5_model, "malformed model config")


def test_not_a_model_file(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("just some text\n")
    raises(ModelFormatError, path, "neither a Keras zip archive")


def test_weights_only_h5(tmp_path):
    path = tmp_path / "weights.h5"
    tf.keras.Sequential([L.Input((5,)), L.Dense(4)]).save_weights(path)
    raises(ModelFormatError, path, "no model config", "weights-only")


def test_missing_layer_weights(h5_model):
    with h5py.File(h5_model, "r+") as f:
        del f["model_weights/fc"]
    raises(ModelFormatError, h5_model, "layer 'fc' (Dense)", "no weights group 'fc'")


def test_weight_listed_but_absent(h5_model):
    with h5py.File(h5_model, "r+") as f:
        del f["model_weights/conv/conv/bias:0"]
    raises(ModelFormatError, h5_model, "layer 'conv' (Conv2D)", "does not hold it")


def test_weight_shape_mismatch(h5_model):
    with h5py.File(h5_model, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][-1]["config"]["units"] = 5
        f.attrs["model_config"] = json.dumps(config)
    raises(ModelFormatError, h5_model, "layer 'fc' (Dense)", "weight kernel has shape [48, 4], expected [48, 5]")


def rewrite_archive(src_path, dst_path, member: str, edit) -> None:
    """Copy a zip archive, passing the bytes of ``member`` through ``edit``."""
    with zipfile.ZipFile(src_path) as src, zipfile.ZipFile(dst_path, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, edit(data) if name == member else data)


def test_missing_archive_weights(keras_model, tmp_path):
    path = tmp_path / "emptied.keras"

    def drop_bias(data: bytes) -> bytes:
        weights = tmp_path / "w.h5"
        weights.write_bytes(data)
        with h5py.File(weights, "r+") as f:
            del f["_layer_checkpoint_dependencies/dense/vars/1"]
        return weights.read_bytes()

    rewrite_archive(keras_model, path, "model.weights.h5", drop_bias)
    raises(ModelFormatError, path, "layer 'fc' (Dense)", "expected 2 weight arrays (kernel, bias), the file has 1")


# ----------------------------------------------------------------------------- unsupported models


def save_h5(model, tmp_path):
    path = tmp_path / "model.h5"
    model.save(path)
    return path


@pytest.mark.parametrize(
    "layer, name, class_name",
    [(L.LSTM(4, name="recurrent"), "recurrent", "LSTM"), (L.Cropping1D(1, name="temporal"), "temporal", "Cropping1D")],
)
def test_unsupported_layer(layer, name, class_name, tmp_path, capsys):
    path = save_h5(tf.keras.Sequential([L.Input((5, 3)), layer]), tmp_path)
    supported = ("supported types:", "Conv2D", "Dense", "MaxPooling2D")
    raises(UnsupportedError, path, f"layer '{name}' ({class_name})", *supported)
    assert_cli_error(path, tmp_path, capsys, class_name, "supported types:")


def test_unsupported_activation(tmp_path, capsys):
    path = save_h5(tf.keras.Sequential([L.Input((5,)), L.Dense(3, activation="elu", name="fc")]), tmp_path)
    raises(UnsupportedError, path, "layer 'fc' (Dense)", "activation 'elu'", "supported activations: linear, relu")
    assert_cli_error(path, tmp_path, capsys, "elu")


def test_lambda_layer_is_not_run(tmp_path):
    path = save_h5(tf.keras.Sequential([L.Input((5,)), L.Lambda(lambda x: x * 2, name="code")]), tmp_path)
    raises(UnsupportedError, path, "layer 'code' (Lambda)")


def test_registered_custom_layer(tmp_path):
    @tf.keras.saving.register_keras_serializable(package="mypkg")
    class Dense(L.Dense):
        pass

    path = tmp_path / "model.keras"
    tf.keras.Sequential([L.Input((5,)), Dense(3, name="mine")]).save(path, save_format="keras_v3")
    raises(UnsupportedError, path, "layer 'mine' (mypkg>Dense)", "not supported")


def test_custom_class_with_a_builtin_name(keras_model, tmp_path):
    """Keras 3 records each layer's module: a user's class called Dense is not Keras's."""
    path = tmp_path / "custom.keras"

    def mark_custom(data: bytes) -> str:
        config = json.loads(data)
        config["config"]["layers"][1]["module"] = "my_project.layers"
        return json.dumps(config)

    rewrite_archive(keras_model, path, "config.json", mark_custom)
    raises(UnsupportedError, path, "layer 'fc' is a custom class", "my_project.layers")


def test_tensorflow_op_layer(tmp_path):
    x = L.Input((5,))
    path = save_h5(tf.keras.Model(x, tf.math.square(x)), tmp_path)
    raises(UnsupportedError, path, "(TFOpLambda)")


def test_dense_on_an_image(tmp_path):
    # (Dense on (N, steps, features) is a kernel-1 Conv1D: tests/frontends/test_keras_signals.py)
    path = save_h5(tf.keras.Sequential([L.Input((4, 5, 2)), L.Dense(3, name="fc")]), tmp_path)
    raises(UnsupportedError, path, "layer 'fc' (Dense)", "add a Flatten")


def test_inner_softmax(tmp_path):
    path = save_h5(tf.keras.Sequential([L.Input((5,)), L.Softmax(), L.Dense(3)]), tmp_path)
    raises(UnsupportedError, path, "softmax is only supported just before an output")


def test_input_of_unknown_size(tmp_path):
    path = save_h5(tf.keras.Sequential([L.Input((None, None, 3)), L.GlobalAveragePooling2D()]), tmp_path)
    raises(UnsupportedError, path, "fixed size")


def test_subclassed_savedmodel(tmp_path):
    class Net(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.fc = L.Dense(3)

        def call(self, x):
            return self.fc(x)

    model = Net()
    model(np.zeros((1, 5), np.float32))
    path = tmp_path / "saved"
    model.save(path, save_format="tf")
    raises(UnsupportedError, path, "subclassed")


def test_not_a_savedmodel(tmp_path):
    path = tmp_path / "broken"
    path.mkdir()
    (path / "saved_model.pb").write_bytes(b"\x00garbage")
    raises(ModelFormatError, path, "TensorFlow cannot load this SavedModel")
