"""The digits CNN: scikit-learn's 8x8 digits (real data that ships inside scikit-learn) and a
small tf.keras CNN trained on them in seconds. Used by ``snnc demo`` and to make the packaged
``example:digits_cnn`` (``benchmarks/make_examples.py``)."""

from __future__ import annotations

import os
import time

TRAIN_EXAMPLES = 1400  # of 1797; the rest is the held-out test set


def load_digits_split(seed: int = 0):
    """``((x_train, y_train), (x_test, y_test))``: images (N, 8, 8, 1) in [0, 1], int labels."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:TRAIN_EXAMPLES], y[:TRAIN_EXAMPLES]), (x[TRAIN_EXAMPLES:], y[TRAIN_EXAMPLES:])


def build_model():
    import tensorflow as tf

    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            layers.InputLayer((8, 8, 1), name="image"),
            layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            layers.AveragePooling2D(2, name="pool1"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            layers.AveragePooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(10, name="logits"),
        ],
        name="digits_cnn",
    )


def train_digits_cnn(x_train, y_train, epochs: int = 30, seed: int = 0):
    """The trained tf.keras model and the seconds training took (deterministic per seed)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = build_model()
    model.compile(
        optimizer=tf.keras.optimizers.Adam(3e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    return model, time.perf_counter() - start
