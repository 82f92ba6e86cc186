"""``--weights FILE``: a Keras model config (``model.to_json()``) with its weights file, on
every command that takes a MODEL; refused for models that hold their own weights; each bad
pairing one line and exit status 2."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from cli_testing import one_error_line
from snnc.compiler.cli import main

L = tf.keras.layers
ONNX_MODEL = Path(__file__).parents[1] / "frontends" / "fixtures" / "onnx" / "lenet_bn_opset11.onnx"


def cnn(units=4):
    model = tf.keras.Sequential([
        L.Input((6, 6, 2)),
        L.Conv2D(3, 3, activation="relu", name="conv"),
        L.BatchNormalization(name="bn"),
        L.Flatten(name="flatten"),
        L.Dense(units, name="fc"),
    ])
    rng = np.random.default_rng(units)
    for w in model.weights:
        value = rng.uniform(0.5, 2.0, w.shape) if "variance" in w.name else rng.normal(0.0, 0.5, w.shape)
        w.assign(value.astype(np.float32))
    return model


@pytest.fixture
def pair(tmp_path):
    """``model.json`` and weights ``params.h5`` (a name not looked for beside it), the Keras
    model, and a batch of inputs."""
    model = cnn()
    (tmp_path / "model.json").write_text(model.to_json())
    model.save_weights(tmp_path / "params.h5", save_format="h5")
    x = np.random.default_rng(0).normal(size=(5, 6, 6, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "model.json", tmp_path / "params.h5", model, x


def test_dump_with_weights(pair, capsys):
    config, weights, _, _ = pair
    assert main(["dump", str(config), "--weights", str(weights)]) == 0
    out = capsys.readouterr().out
    for layer in ("%conv =", "%bn =", "%fc ="):
        assert layer in out
    assert '"weights": "params.h5"' in out


def test_run_with_weights_matches_keras(pair, tmp_path):
    config, weights, model, x = pair
    y = tmp_path / "y.npy"
    assert main(["run", str(config), "--weights", str(weights), "--input", str(tmp_path / "x.npy"), "-o", str(y)]) == 0
    np.testing.assert_allclose(np.load(y), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_compile_records_the_weights_file(pair, tmp_path, capsys):
    config, weights, model, x = pair
    np.savez(tmp_path / "calib.npz", x=x)
    out = tmp_path / "out"
    assert main(["compile", str(config), "--weights", str(weights), "--calib", str(tmp_path / "calib.npz"), "-o", str(out)]) == 0
    source = json.loads((out / "manifest.json").read_text())["source"]
    assert source["sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    assert source["weights"] == "params.h5"
    assert source["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    capsys.readouterr()
    # a compiled artifact holds its weights
    np.savez(tmp_path / "labelled.npz", x=x, y=np.zeros(len(x), int))
    argv = ["evaluate", str(out), "--data", str(tmp_path / "labelled.npz"), "--weights", str(weights)]
    assert main(argv) == 2
    assert "--weights applies when compiling" in one_error_line(capsys)
    argv = ["run", str(out), "--weights", str(weights), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]
    assert main(argv) == 2
    assert "goes with a Keras .json model config only" in one_error_line(capsys)


def no_weights(folder):
    return []


def weights_missing_a_layer(folder):
    conv_only = tf.keras.Sequential([L.Input((6, 6, 2)), L.Conv2D(3, 3, name="conv")])
    conv_only.save_weights(folder / "w.h5", save_format="h5")
    return ["--weights", str(folder / "w.h5")]


def weights_of_a_wider_fc(folder):
    cnn(units=7).save_weights(folder / "w.h5", save_format="h5")
    return ["--weights", str(folder / "w.h5")]


ERRORS = {
    "no_weights_found": (no_weights, ["no weights file beside", "model.weights.h5", "model_weights.h5", "model.h5", "--weights"]),
    "weights_missing_a_layer": (weights_missing_a_layer, ["layer 'bn' (BatchNormalization)", "no weights group 'bn'"]),
    "shape_mismatch": (weights_of_a_wider_fc, ["layer 'fc' (Dense)", "weight kernel has shape [48, 7]", "expected [48, 4]"]),
}


@pytest.mark.parametrize("case", ERRORS)
def test_bad_pairs_are_one_line_and_exit_2(case, tmp_path, capsys):
    (tmp_path / "model.json").write_text(cnn().to_json())
    extra, fragments = ERRORS[case]
    assert main(["dump", str(tmp_path / "model.json"), *extra(tmp_path)]) == 2
    line = one_error_line(capsys)
    assert str(tmp_path / "model.json") in line
    for fragment in fragments:
        assert fragment in line, line


def test_json_that_is_not_a_keras_model(tmp_path, capsys):
    (tmp_path / "model.json").write_text('{"layers": []}')
    assert main(["dump", str(tmp_path / "model.json")]) == 2
    assert "not a Keras model config" in one_error_line(capsys)


def test_weights_with_an_onnx_model(pair, capsys):
    _, weights, _, _ = pair
    assert main(["dump", str(ONNX_MODEL), "--weights", str(weights)]) == 2
    line = one_error_line(capsys)
    assert str(ONNX_MODEL) in line and "goes with a Keras .json model config only" in line
