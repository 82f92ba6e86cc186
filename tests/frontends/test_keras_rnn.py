"""Recurrent Keras models (SimpleRNN, TimeDistributed(Dense), Dense on sequences) against
tf.keras's eager call, saved as ``.keras`` and ``.h5``; and the recurrent layers and options
snnc refuses, by name."""

import numpy as np
import pytest
import tensorflow as tf

from error_testing import raises
from snnc.compiler import load_model, run_model
from snnc.compiler.errors import UnsupportedError

L = tf.keras.layers
TOL = dict(rtol=1e-5, atol=1e-5)
FORMATS = ("keras", "h5")
STEPS, FEATURES = 6, 3


def save(model, folder, fmt):
    path = folder / f"model.{fmt}"
    model.save(path, **({"save_format": "keras_v3"} if fmt == "keras" else {}))  # tf 2.12 writes HDF5 for .keras otherwise
    return path


def randomized(model, seed=0):
    """Every weight random, recurrent kernels small enough that ReLU recurrences stay bounded."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        scale = 0.3 if "recurrent" in w.name else 0.6
        w.assign(rng.normal(0.0, scale, w.shape).astype(np.float32))
    return model


def model_of(*layers, steps=STEPS):
    x = inputs = L.Input((steps, FEATURES))
    for layer in layers:
        x = layer(x)
    return randomized(tf.keras.Model(inputs, x))


def stacked():
    """Two RNNs with per-step layers between them, a sequence output."""
    return model_of(
        L.SimpleRNN(5, activation="relu", return_sequences=True, name="rnn1"),
        L.TimeDistributed(L.Dense(4, activation="relu"), name="td"),
        L.Dropout(0.5, name="drop"),
        L.SimpleRNN(4, activation="linear", use_bias=False, return_sequences=True, dropout=0.2, name="rnn2"),
        L.Dense(2, name="per_step_dense"),  # Keras applies Dense to each step of a 3-D tensor
    )


def functional_branches():
    """Dense on the sequence and a residual Add, then the last step of a second RNN."""
    x = inputs = L.Input((None, FEATURES))
    h = L.SimpleRNN(4, activation="relu", return_sequences=True, name="rnn1")(x)
    skip = L.Dense(4, name="skip")(x)
    s = L.ReLU(name="merge_relu")(L.Add(name="merge")([h, skip]))
    y = L.SimpleRNN(3, activation="relu", name="rnn2")(s)
    y = L.Dense(2, activation="softmax", name="head")(y)
    return randomized(tf.keras.Model(inputs, y))


CASES = {
    "relu_last": lambda: model_of(L.SimpleRNN(5, activation="relu")),
    "relu_sequence": lambda: model_of(L.SimpleRNN(5, activation="relu", return_sequences=True)),
    "linear_no_bias": lambda: model_of(L.SimpleRNN(4, activation="linear", use_bias=False, return_sequences=True)),
    "any_steps_dense_head": lambda: model_of(L.SimpleRNN(5, activation="relu"), L.Dense(3), steps=None),
    "unrolled": lambda: model_of(L.SimpleRNN(4, activation="relu", unroll=True)),
    "stacked": stacked,
    "functional_branches": functional_branches,
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES)
def test_matches_keras(case, fmt, tmp_path, rng):
    model = CASES[case]()
    x = rng.uniform(-1, 1, (4, STEPS, FEATURES)).astype(np.float32)
    want = model(x).numpy()
    graph = load_model(save(model, tmp_path, fmt))
    (got,) = run_model(graph, x).values()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, **TOL)


def test_steps_none_takes_any_length(tmp_path, rng):
    model = CASES["any_steps_dense_head"]()
    graph = load_model(save(model, tmp_path, "h5"))
    assert graph.inputs[0].op.sequence and graph.inputs[0].type.shape == (FEATURES,)
    for steps in (1, 9):
        x = rng.uniform(-1, 1, (2, steps, FEATURES)).astype(np.float32)
        np.testing.assert_allclose(run_model(graph, x)["output"], model(x).numpy(), **TOL)


def test_the_loop_passes_through_a_delay(tmp_path):
    graph = load_model(save(CASES["relu_sequence"](), tmp_path, "h5"))
    (delay,) = graph.delays
    assert graph.node(delay.inputs[0]).op.NAME == "relu"
    assert graph.outputs[0].op.sequence


# ----------------------------------------------------------------------------- refusals


def bidirectional():
    return model_of(L.Bidirectional(L.SimpleRNN(3, activation="relu"), name="bi"))


def stateful():
    inputs = L.Input(batch_shape=(2, STEPS, FEATURES))
    return tf.keras.Model(inputs, L.SimpleRNN(3, activation="relu", stateful=True, name="rnn")(inputs))


REFUSALS = {
    "tanh": (lambda: model_of(L.SimpleRNN(3, name="rnn")), ["'rnn' (SimpleRNN)", "'tanh'", "relu, linear"]),
    "backwards": (lambda: model_of(L.SimpleRNN(3, activation="relu", go_backwards=True, name="rnn")), ["'rnn'", "go_backwards"]),
    "stateful": (stateful, ["'rnn'", "stateful"]),
    "return_state": (
        lambda: model_of(L.SimpleRNN(3, activation="relu", return_state=True, name="rnn")), ["'rnn'", "return_state"]
    ),
    "lstm": (lambda: model_of(L.LSTM(3, name="lstm")), ["'lstm' (LSTM)", "SimpleRNN layers only"]),
    "gru": (lambda: model_of(L.GRU(3, name="gru")), ["'gru' (GRU)", "SimpleRNN layers only"]),
    "bidirectional": (bidirectional, ["'bi' (Bidirectional)", "SimpleRNN layers only"]),
    "masking": (
        lambda: model_of(L.Masking(name="mask"), L.SimpleRNN(3, activation="relu")), ["'mask' (Masking)", "takes a sequence"]
    ),
    "flatten_sequence": (
        lambda: model_of(L.SimpleRNN(3, activation="relu", return_sequences=True), L.Flatten(name="flat")),
        ["'flat' (Flatten)", "takes a sequence", "TimeDistributed"],
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_name_the_layer(case, tmp_path):
    build, fragments = REFUSALS[case]
    raises(UnsupportedError, save(build(), tmp_path, "h5"), *fragments)


def test_time_distributed_of_another_layer_is_refused(tmp_path):
    model = model_of(
        L.SimpleRNN(4, activation="relu", return_sequences=True),
        L.TimeDistributed(L.Activation("relu"), name="td"),
    )
    raises(UnsupportedError, save(model, tmp_path, "keras"), "'td' (TimeDistributed)", "wraps a Activation", "Dense")
