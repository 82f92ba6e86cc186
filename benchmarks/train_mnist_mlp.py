"""Train a small MNIST multilayer perceptron (784-256-128-64-10, ReLU, biases), saved as Keras HDF5.

The dense network of the Loihi checks: converted with LIF neurons (``convert_to_spiking
{neuron=lif}``) its biases and leaky neurons exercise the parts of the chip that the CNNs do
not. Reads MNIST like ``train_mnist_resnet_bn.py`` and writes
``benchmarks/models/mnist_mlp.h5``; seeded, about 10 s on 2 CPU cores::

    /tmp/venv/bin/python benchmarks/train_mnist_mlp.py
"""

import os

from train_mnist_resnet_bn import REPO, parse_args, train_and_save

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_OUT = REPO / "benchmarks" / "models" / "mnist_mlp.h5"


def build_model():
    import tensorflow as tf

    layers = tf.keras.layers
    image = layers.Input((28, 28, 1), name="image")
    x = layers.Flatten(name="flatten")(image)
    x = layers.Dense(256, activation="relu", name="dense1")(x)  # on the host: reads pixels
    x = layers.Dense(128, activation="relu", name="dense2")(x)
    x = layers.Dense(64, activation="relu", name="dense3")(x)
    logits = layers.Dense(10, name="logits")(x)
    return tf.keras.Model(image, logits, name="mnist_mlp")


def main(argv=None):
    train_and_save(build_model, parse_args(argv, default_out=DEFAULT_OUT, epochs=5, description=__doc__))


if __name__ == "__main__":
    main()
