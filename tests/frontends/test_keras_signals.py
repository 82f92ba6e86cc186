"""Keras 1-D layers (Conv1D, 1-D pooling, TimeDistributed(Dense), Flatten/Reshape around them)
against tf.keras: the IR holds a signal (steps, channels) as a one-row image (C, 1, L), and
data in the model's own (N, steps, channels) layout goes in and comes out unchanged."""

import re

import numpy as np
import pytest
import tensorflow as tf

from error_testing import raises
from snnc.compiler import load_model, ops, run_model
from snnc.compiler.errors import DataError, UnsupportedError
from test_keras import FORMATS, assert_matches_keras, functional, randomize, save

L = tf.keras.layers
SIG = (11, 3)  # (steps, channels)
SIG_CF = (3, 11)
CF = dict(data_format="channels_first")

SIGNAL_LAYER_CASES = {
    "conv1d_valid": lambda: functional(SIG, L.Conv1D(4, 3)),
    "conv1d_same_stride": lambda: functional(SIG, L.Conv1D(4, 4, strides=2, padding="same", activation="relu")),
    "conv1d_causal_dilated": lambda: functional(SIG, L.Conv1D(3, 3, padding="causal", dilation_rate=2)),
    "conv1d_groups": lambda: functional((9, 4), L.Conv1D(6, 3, groups=2, use_bias=False)),
    "conv1d_channels_first": lambda: functional(SIG_CF, L.Conv1D(4, 3, strides=2, padding="same", **CF)),
    "conv1d_softmax": lambda: functional(SIG, L.Conv1D(4, 1, activation="softmax")),
    "avgpool1d_valid": lambda: functional(SIG, L.AveragePooling1D(2)),
    "avgpool1d_same": lambda: functional(SIG, L.AveragePooling1D(3, strides=2, padding="same")),
    "maxpool1d_same": lambda: functional(SIG, L.MaxPooling1D(3, strides=2, padding="same")),
    "maxpool1d_channels_first": lambda: functional(SIG_CF, L.MaxPooling1D(2, **CF)),
    "global_avgpool1d": lambda: functional(SIG, L.GlobalAveragePooling1D()),
    "global_avgpool1d_keepdims": lambda: functional(SIG, L.GlobalAveragePooling1D(keepdims=True)),
    "global_avgpool1d_channels_first": lambda: functional(SIG_CF, L.GlobalAveragePooling1D(**CF)),
    "global_maxpool1d": lambda: functional(SIG, L.GlobalMaxPooling1D()),
    "global_maxpool1d_keepdims": lambda: functional(SIG, L.GlobalMaxPooling1D(keepdims=True)),
    "zero_padding1d": lambda: functional(SIG, L.ZeroPadding1D((1, 2)), L.Conv1D(2, 3)),
    "time_distributed_dense": lambda: functional(SIG, L.TimeDistributed(L.Dense(5, activation="relu"))),
    "dense_on_steps": lambda: functional(SIG, L.Dense(5, use_bias=False)),
    "flatten_after_conv1d": lambda: functional(SIG, L.Conv1D(4, 3), L.Flatten(), L.Dense(3)),
    "flatten_channels_first_conv1d": lambda: functional(SIG_CF, L.Conv1D(4, 3, **CF), L.Flatten(**CF), L.Dense(3)),
    "reshape_to_signal": lambda: functional((24,), L.Reshape((8, 3)), L.Conv1D(2, 3)),
    "reshape_from_signal": lambda: functional(SIG, L.Conv1D(4, 3), L.Reshape((6, 6))),
    "batchnorm_signal": lambda: functional(SIG, L.Conv1D(4, 3), L.BatchNormalization()),
    "signal_output": lambda: functional(SIG, L.Conv1D(4, 3, padding="same"), L.ReLU()),
}


def conv1d_classifier():
    x = inputs = L.Input(SIG)
    x = L.Conv1D(6, 3, padding="same", activation="relu")(x)
    skip = x
    x = L.Conv1D(6, 3, padding="same")(x)
    x = L.Add()([x, skip])
    x = L.MaxPooling1D(2)(x)
    y = L.TimeDistributed(L.Dense(4))(x)
    x = L.Concatenate()([x, y])
    x = L.GlobalAveragePooling1D()(x)
    return tf.keras.Model(inputs, L.Dense(3, activation="softmax")(x))


def sequential_conv1d():
    return tf.keras.Sequential([
        L.Input(SIG),
        L.Conv1D(4, 3, activation="relu"),
        L.AveragePooling1D(2),
        L.Flatten(),
        L.Dense(3),
    ])


SIGNAL_MODEL_CASES = {"conv1d_classifier": conv1d_classifier, "sequential_conv1d": sequential_conv1d}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", [*SIGNAL_LAYER_CASES, *SIGNAL_MODEL_CASES])
def test_signal_layer(case, fmt, tmp_path, rng):
    model = randomize({**SIGNAL_LAYER_CASES, **SIGNAL_MODEL_CASES}[case](), rng)
    assert_matches_keras(model, save(model, tmp_path, fmt), rng)


def test_signal_is_a_one_row_image_in_the_source_layout(tmp_path, rng):
    """A channels-last (steps, channels) input is the IR's (C, 1, L) with source layout WC:
    the conv is a conv2d with a 1-row kernel, and no transposes are added."""
    model = randomize(functional(SIG, L.Conv1D(4, 3, padding="same"), L.Conv1D(2, 3)), rng)
    graph = load_model(save(model, tmp_path, "keras"))
    (node,) = graph.inputs
    assert node.type.shape == (3, 1, 11) and node.op.source_layout == "WC"
    assert graph.outputs[0].op.source_layout == "WC"
    kinds = [type(n.op) for n in graph.nodes]
    assert kinds.count(ops.Conv2d) == 2 and ops.Transpose not in kinds and ops.Reshape not in kinds
    assert {n.op.kernel for n in graph.nodes if isinstance(n.op, ops.Conv2d)} == {(1, 3)}


def test_signal_data_shape_is_checked(tmp_path, rng):
    model = randomize(functional(SIG, L.Conv1D(4, 3)), rng)
    graph = load_model(save(model, tmp_path, "keras"))
    with pytest.raises(DataError, match=re.escape("takes a batch of shape [N,11,3] (WC), got data of shape [2, 3, 11]")):
        run_model(graph, np.zeros((2, 3, 11), np.float32))


def test_rnn_wrapped_layer_is_refused_by_name(tmp_path):
    model = functional(SIG, L.TimeDistributed(L.Dropout(0.1), name="td"))
    path = save(model, tmp_path, "h5")
    raises(UnsupportedError, path, "layer 'td' (TimeDistributed): wraps a Dropout; snnc supports TimeDistributed(Dense)")


def test_time_distributed_conv_is_refused_by_name(tmp_path):
    model = functional((5, 6, 3), L.TimeDistributed(L.Conv1D(2, 3), name="td"), L.Flatten())
    raises(UnsupportedError, save(model, tmp_path, "h5"), "layer 'td' (TimeDistributed): wraps a Conv1D")
