"""Export the small channels-last Keras models whose tf2onnx ``.onnx`` files the ONNX layout
tests read (``tests/frontends/fixtures/onnx/tf2onnx/``) and the 1-D and recurrent ones the
exported-sequence tests read (``tests/frontends/fixtures/onnx/tf2onnx_1d/``), so CI never
needs TensorFlow's ONNX exporter.

Not run by the tests, and not with the project's venv: it needs tf2onnx, which the project
does not install. Commands used for the committed files, from the repository root::

    python3.11 -m venv /tmp/tf2onnx-venv
    /tmp/tf2onnx-venv/bin/pip install -c constraints-lock.txt tensorflow-cpu==2.12.1 tf2onnx onnxruntime
    /tmp/tf2onnx-venv/bin/python benchmarks/make_tf2onnx_fixtures.py

(pip picked tf2onnx 1.17.0.) For each export NAME it writes ``NAME.onnx`` and ``NAME.npz``
holding ``x`` (a seeded random float32 batch in the model's own NHWC layout) and ``y``
(onnxruntime's output on ``x``), plus a ``MANIFEST.json`` per folder (versions; per export: model,
exporter, opset, input shape, ops used). Every export is also checked here: onnxruntime
must reproduce Keras's output.

tf2onnx keeps the model's NHWC (NLC) input and opens the graph with ``Transpose(perm=[0,3,1,2])``
before the convolutions; a ``Flatten`` becomes ``Transpose(perm=[0,2,3,1])`` + ``Reshape``
before the dense ``MatMul``. Keras ``Conv1D`` and its pooling become ``Unsqueeze`` +
``Conv``/``MaxPool``/``AveragePool`` (2-D) + ``Squeeze``; ``SimpleRNN`` becomes a ``Loop``. Models are tiny (a few KB each), with seeded weights, non-zero
biases and non-trivial BatchNorm statistics.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf2onnx
from tensorflow import keras
from tensorflow.keras import layers
from onnx_fixture_tools import describe, new_manifest, onnxruntime_outputs  # this folder: the scripts run as files

OUT = Path(__file__).resolve().parents[1] / "tests" / "frontends" / "fixtures" / "onnx" / "tf2onnx"
BATCH = 5


# --------------------------------------------------------------------------- models


def keras_cnn() -> keras.Model:
    """Conv2D-ReLU-MaxPool-Conv2D-ReLU-AvgPool-Flatten-Dense-softmax, channels last."""
    return keras.Sequential(
        [
            keras.Input((12, 12, 2)),
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(6, 3, activation="relu"),
            layers.AveragePooling2D(2),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ],
        name="keras_cnn",
    )


def keras_residual() -> keras.Model:
    """A Keras-2-style functional model: conv-BN-ReLU stem, a residual block (two conv-BN,
    an Add with the stem, BN-ReLU after the Add), global average pooling and a dense layer.
    tf2onnx folds a BN that follows a conv into its weights; the one after the Add stays."""
    x = keras.Input((8, 8, 3))
    stem = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(6, 3, padding="same", use_bias=False)(x)))
    y = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(6, 3, padding="same", use_bias=False)(stem)))
    y = layers.BatchNormalization()(layers.Conv2D(6, 3, padding="same", use_bias=False)(y))
    y = layers.ReLU()(layers.BatchNormalization()(layers.Add()([y, stem])))
    y = layers.MaxPooling2D(2)(y)
    y = layers.Dense(10)(layers.GlobalAveragePooling2D()(y))
    return keras.Model(x, y, name="keras_residual")


def keras_mlp() -> keras.Model:
    """No convolution: the NHWC input is flattened straight into the dense layers."""
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(10),
        ],
        name="keras_mlp",
    )


def keras_conv1d() -> keras.Model:
    """Conv1D-ReLU-MaxPool1D-Conv1D-ReLU-AvgPool1D-GAP1D-Dense, channels last. tf2onnx
    writes each 1-D conv and pooling as ``Unsqueeze`` + a 2-D op + ``Squeeze``."""
    return keras.Sequential(
        [
            keras.Input((16, 2)),
            layers.Conv1D(4, 3, padding="same", activation="relu"),
            layers.MaxPooling1D(2),
            layers.Conv1D(6, 3, activation="relu"),
            layers.AveragePooling1D(2),
            layers.GlobalAveragePooling1D(),
            layers.Dense(3),
        ],
        name="keras_conv1d",
    )


def keras_simple_rnn() -> keras.Model:
    """SimpleRNN(relu) and a Dense on its last step. tf2onnx writes the recurrence as a
    ``Loop`` (not an ONNX ``RNN``), which snnc refuses by name."""
    return keras.Sequential(
        [keras.Input((6, 3)), layers.SimpleRNN(5, activation="relu"), layers.Dense(2)], name="keras_simple_rnn"
    )


# --------------------------------------------------------------------------- exports

#: name -> (model function, opset)
EXPORTS = {
    "keras_cnn_opset13": (keras_cnn, 13),
    "keras_residual_opset15": (keras_residual, 15),
    "keras_mlp_opset13": (keras_mlp, 13),
}
#: 1-D and recurrent models, in their own folder (and manifest)
SEQUENCE_EXPORTS = {
    "keras_conv1d_opset13": (keras_conv1d, 13),
    "keras_simple_rnn_opset13": (keras_simple_rnn, 13),
}
#: folder -> its exports
FOLDERS = {OUT: EXPORTS, OUT.with_name("tf2onnx_1d"): SEQUENCE_EXPORTS}


def build(make, seed: int) -> keras.Model:
    """The model with seeded weights, non-zero biases (tf2onnx drops zero ones) and
    non-trivial BatchNorm statistics."""
    keras.utils.set_random_seed(seed)
    model = make()
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape).astype(np.float32))
        if isinstance(layer, layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, n).astype(np.float32),  # gamma
                    rng.normal(0, 0.2, n).astype(np.float32),  # beta
                    rng.normal(0, 0.2, n).astype(np.float32),  # moving mean
                    rng.uniform(0.5, 1.5, n).astype(np.float32),  # moving variance
                ]
            )
    return model


def export(folder: Path, name: str, model: keras.Model, opset: int) -> Path:
    path = folder / f"{name}.onnx"
    spec = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="x")]
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset, output_path=str(path))
    return path


def main() -> None:
    for folder, exports in FOLDERS.items():
        write_folder(folder, exports)


def write_folder(folder: Path, exports: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = new_manifest(tensorflow=tf.__version__, tf2onnx=tf2onnx.__version__)
    for seed, (name, (make, opset)) in enumerate(exports.items()):
        model = build(make, seed)
        x = np.random.default_rng(seed).normal(size=(BATCH, *model.input_shape[1:])).astype(np.float32)
        path = export(folder, name, model, opset)
        expected = model(x, training=False).numpy()
        y = onnxruntime_outputs(path, x)
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5, err_msg=name)
        np.savez(path.with_suffix(".npz"), x=x, y=y)
        manifest["exports"][name] = describe(path, f"tf2onnx {tf2onnx.__version__}") | {"model": make.__name__}
        print(f"{name}: {path.stat().st_size} bytes, ops {manifest['exports'][name]['ops']}")
    (folder / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
