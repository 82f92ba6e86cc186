"""Train the small example model that ships inside snnc (``example:digits_cnn``).

Real data that ships with scikit-learn (the UCI optical digits, 8x8, 1797 images), a
tf.keras 2.12 CNN, saved as ``compiler/examples/digits_cnn.keras``. Deterministic; about
10 s on 2 cores. Run from the repository root::

    python benchmarks/make_examples.py
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OUT = Path(__file__).resolve().parents[1] / "compiler" / "examples" / "digits_cnn.keras"


def load_digits_split():
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]  # (N, 8, 8, 1) in [0, 1]
    y = digits.target.astype("int64")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


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


def main():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = load_digits_split()
    model = build_model()
    model.compile(
        optimizer=tf.keras.optimizers.Adam(3e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=30, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    model.save(OUT, save_format="keras_v3")  # TF 2.12 writes HDF5 for ".keras" unless asked
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes); held-out accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
