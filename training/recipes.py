"""A network ready for spiking hardware in a few lines: a conversion-friendly CNN whose
activation is ReLU, :class:`~snnc.training.SoftLIF` or :class:`~snnc.training.QCFS`, and a
deterministic training loop::

    from snnc.training import fit, load_images, spiking_cnn

    x, y = load_images("../shared/data/mnist", "train")
    model = spiking_cnn(x.shape[1:], 10, activation="qcfs", levels=8)
    fit(model, x, y, epochs=3, validation=load_images("../shared/data/mnist", "test"))
    model.save("mnist_qcfs.h5")   # snnc compile mnist_qcfs.h5 --calib ../shared/data/mnist ...

The CNN is the same for every activation, so their accuracies (and their spiking networks')
compare fairly.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from .layers import QCFS, SoftLIF

#: the activations :func:`spiking_cnn` takes, by name
ACTIVATIONS = {"relu": tf.keras.layers.ReLU, "softlif": SoftLIF, "qcfs": QCFS}

#: the options :func:`spiking_cnn` gives each activation unless told otherwise, measured on
#: its MNIST CNN (docs/training.md): a sharper soft-LIF corner (sigma 0.002, not 0.02: 97.9 %
#: vs 96.9 % after one epoch, and nearer the hard curve of the LIF neurons it converts to) and
#: amplitude 0.02, not nengo-extras' 0.063: the amplitude sets the firing rates (an output of 1
#: is 1 / amplitude Hz), and at 0.063 most neurons fire under 15 Hz, one or two spikes in the
#: 128 ms of T = 64 steps of 2 ms, so the spiking network lost 10 points (docs/results.md), and
#: QCFS's threshold starting at 1, not the authors' 4 (their networks have BatchNorm before
#: each activation): 98.1 % vs 97.6 %
RECIPE_OPTIONS = {"relu": {}, "softlif": {"sigma": 0.002, "amplitude": 0.02}, "qcfs": {"threshold": 1.0}}


def activation_layer(activation: str, name: str, **options) -> tf.keras.layers.Layer:
    """A new ``activation`` layer (a key of :data:`ACTIVATIONS`) with its keyword ``options``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
    if activation == "relu" and options:
        raise ValueError(f"the relu activation takes no options; got {', '.join(sorted(options))}")
    return ACTIVATIONS[activation](name=name, **options)


def spiking_cnn(
    input_shape, classes: int, activation: str = "relu", *, filters=(32, 64), dense: int = 128, seed: int = 0, **activation_options
) -> tf.keras.Model:
    """A CNN that converts well to spiking neurons: for each entry of ``filters`` a 3x3
    convolution, the activation and a 2x2 average pool; then a dense layer of ``dense`` units
    with the activation, and ``classes`` logits.

    Why this shape: average pools (a spiking network sums spikes; a max of spike trains needs
    extra machinery), every activation in its own layer right after the layer it activates (no
    BatchNorm after an activation, which cannot fold into the weights), no softmax (the logits
    are read from the output neurons' potentials). ``input_shape`` is ``(height, width,
    channels)`` (channels last); ``activation_options`` go to every activation layer (e.g.
    ``levels=4`` for QCFS) over :data:`RECIPE_OPTIONS`; ``seed`` fixes the initial weights."""
    if len(input_shape) != 3:
        raise ValueError(f"spiking_cnn needs input_shape (height, width, channels); got {tuple(input_shape)}")
    _check_room_for_stages(input_shape[:2], len(filters))
    layers = tf.keras.layers
    seeds = iter(range(seed, seed + len(filters) + 2))
    activation_options = {**RECIPE_OPTIONS.get(activation, {}), **activation_options}
    stack = [layers.InputLayer(tuple(input_shape), name="image")]
    for i, width in enumerate(filters, start=1):
        stack += [
            layers.Conv2D(width, 3, kernel_initializer=tf.keras.initializers.GlorotUniform(next(seeds)), name=f"conv{i}"),
            activation_layer(activation, f"{activation}{i}", **activation_options),
            layers.AveragePooling2D(2, name=f"pool{i}"),
        ]
    hidden = len(filters) + 1
    stack += [
        layers.Flatten(name="flatten"),
        layers.Dense(dense, kernel_initializer=tf.keras.initializers.GlorotUniform(next(seeds)), name="dense"),
        activation_layer(activation, f"{activation}{hidden}", **activation_options),
        layers.Dense(classes, kernel_initializer=tf.keras.initializers.GlorotUniform(next(seeds)), name="logits"),
    ]
    return tf.keras.Sequential(stack, name=f"{activation}_cnn")


def sigma_delta_cnn(
    input_shape, classes: int, dt, *, filters=(16, 32), dense: int = 128, seed: int = 0
) -> tf.keras.Model:
    """:func:`spiking_cnn`'s layers with keras-spiking's ``SpikingActivation("relu", dt)``
    (spiking-aware training) as the activation: the sigma-delta network of Voelker et al. (2020),
    which snnc converts to sigma-delta neurons with the trained ``dt``. keras-spiking's layers run
    on sequences, so the model takes each image flattened, as a sequence of steps ``(N, steps,
    height * width * channels)`` (one step to train on images), and gives logits at each step
    (labels ``(N, steps)``). ``dt`` is a number, or the ``tf.Variable`` a
    ``keras_spiking.callbacks.DtScheduler`` anneals (then save :func:`fixed_dt`'s copy).
    Imports keras-spiking."""
    import keras_spiking

    if len(input_shape) != 3:
        raise ValueError(f"sigma_delta_cnn needs input_shape (height, width, channels); got {tuple(input_shape)}")
    _check_room_for_stages(input_shape[:2], len(filters))
    layers = tf.keras.layers
    seeds = iter(range(seed, seed + len(filters) + 2))

    def per_step(layer):
        return layers.TimeDistributed(layer, name=layer.name)

    def spikes(name):
        return keras_spiking.SpikingActivation("relu", dt=dt, spiking_aware_training=True, seed=seed, name=name)

    stack = [
        layers.InputLayer((None, int(np.prod(input_shape))), name="image"),
        per_step(layers.Reshape(tuple(input_shape), name="unflatten")),
    ]
    for i, width in enumerate(filters, start=1):
        stack += [
            per_step(layers.Conv2D(
                width, 3, kernel_initializer=tf.keras.initializers.GlorotUniform(next(seeds)), name=f"conv{i}",
            )),
            spikes(f"spikes{i}"),
            per_step(layers.AveragePooling2D(2, name=f"pool{i}")),
        ]
    stack += [
        per_step(layers.Flatten(name="flatten")),
        per_step(layers.Dense(dense, kernel_initializer=tf.keras.initializers.GlorotUniform(next(seeds)), name="dense")),
        spikes(f"spikes{len(filters) + 1}"),
        per_step(layers.Dense(classes, kernel_initializer=tf.keras.initializers.GlorotUniform(next(seeds)), name="logits")),
    ]
    return tf.keras.Sequential(stack, name="sigma_delta_cnn")


def fixed_dt(model: tf.keras.Model) -> tf.keras.Model:
    """A copy of ``model`` (same weights) whose keras-spiking layers hold their ``dt``'s current
    value as a number: a ``tf.Variable`` dt (a DtScheduler's) does not save."""
    def clone(layer):
        config = layer.get_config()
        if isinstance(config.get("dt"), tf.Variable):
            config["dt"] = float(config["dt"].numpy())
        return type(layer).from_config(config)

    copy = tf.keras.models.clone_model(model, clone_function=clone)
    # the dt variable is one of the model's weights (tracked by the layers that hold it)
    dts = {id(layer.dt) for layer in model.layers if isinstance(getattr(layer, "dt", None), tf.Variable)}
    copy.set_weights([w.numpy() for w in model.weights if id(w) not in dts])
    return copy


def _check_room_for_stages(size, stages: int) -> None:
    """Each stage (3x3 valid convolution, 2x2 pool) maps a side ``s`` to ``(s - 2) // 2``,
    which must stay at least 1."""
    side = min(size)
    for _ in range(stages):
        side = (side - 2) // 2
    if side < 1:
        raise ValueError(
            f"spiking_cnn: a {size[0]}x{size[1]} input is too small for {stages} convolution and pooling stages; "
            "pass fewer filters (e.g. filters=(16,))"
        )


def fit(
    model: tf.keras.Model, x, y, *, epochs: int = 3, batch_size: int = 64, learning_rate: float = 1e-3, validation=None,
    seed: int = 0, verbose: int = 2, callbacks=(),
) -> tf.keras.callbacks.History:
    """Trains ``model`` (logits out) on integer labels ``y``: Adam with the learning rate
    decaying to 0 along a cosine over the run, sparse cross-entropy from logits, accuracy.
    ``validation``: ``(x, y)`` scored after each epoch. ``seed`` fixes the shuffling and the
    training noise (the same seed, data and model give the same weights). ``verbose=2``
    prints a line per epoch and the time taken. ``callbacks`` go to Keras (e.g. keras-spiking's
    ``DtScheduler``). Returns Keras' ``History``."""
    tf.keras.utils.set_random_seed(seed)
    steps = epochs * -(-len(x) // batch_size)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.CosineDecay(learning_rate, steps)),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = model.fit(
        x, y, batch_size=batch_size, epochs=epochs, validation_data=validation, shuffle=True, verbose=verbose,
        callbacks=list(callbacks),
    )
    if verbose:
        print(f"{model.name}: trained {epochs} epochs on {len(x)} examples in {time.perf_counter() - start:.0f} s")
    return history


def load_images(path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of an IDX folder (MNIST's layout: ``../shared/data/mnist``,
    ``fashion-mnist``) or an ``.npz`` with ``x`` and ``y``, as :func:`spiking_cnn` takes them:
    float32 images ``(N, height, width, channels)``, 8-bit pixels scaled to [0, 1] (as
    ``snnc compile`` / ``evaluate`` scale them), and integer labels."""
    from snnc.compiler.datasets import load_dataset

    data = load_dataset(path, split)
    x = data.x.astype(np.float32) / 255.0 if np.issubdtype(data.x.dtype, np.integer) else data.x.astype(np.float32)
    return (x[..., None] if x.ndim == 3 else x), data.y
