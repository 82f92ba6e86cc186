"""snnc.training's recipe: the conversion-friendly CNN, the training loop, the image loader."""

import numpy as np
import pytest
import tensorflow as tf

from snnc.compiler.examples.digits import load_digits_split
from snnc.training import QCFS, SoftLIF, fit, load_images, spiking_cnn
from snnc.training.recipes import RECIPE_OPTIONS

ACTIVATION_TYPES = {"relu": tf.keras.layers.ReLU, "softlif": SoftLIF, "qcfs": QCFS}


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


def layer_kinds(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("activation", sorted(ACTIVATION_TYPES))
def test_the_cnn_has_the_same_shape_for_every_activation(activation):
    model = spiking_cnn((28, 28, 1), 10, activation)
    activation_name = ACTIVATION_TYPES[activation].__name__
    assert layer_kinds(model) == [
        "Conv2D", activation_name, "AveragePooling2D", "Conv2D", activation_name, "AveragePooling2D",
        "Flatten", "Dense", activation_name, "Dense",
    ]  # fmt: skip
    assert model.output_shape == (None, 10)
    assert model.count_params() == spiking_cnn((28, 28, 1), 10, "relu").count_params() + (3 if activation == "qcfs" else 0)


def test_activation_options_reach_every_activation_layer():
    model = spiking_cnn((12, 12, 3), 4, "qcfs", filters=(8,), dense=16, levels=4, threshold=2.0)
    qcfs_layers = [layer for layer in model.layers if isinstance(layer, QCFS)]
    assert len(qcfs_layers) == 2 and all(layer.levels == 4 and layer.initial_threshold == 2.0 for layer in qcfs_layers)
    softlif_model = spiking_cnn((12, 12, 3), 4, "softlif", filters=(8,), sigma=0.05)
    softlif = [layer for layer in softlif_model.layers if isinstance(layer, SoftLIF)]
    assert len(softlif) == 2 and all(layer.sigma == 0.05 for layer in softlif)


def test_the_recipe_options_are_defaults_the_caller_overrides():
    def activation_layers(activation, **options):
        model = spiking_cnn((12, 12, 1), 2, activation, filters=(4,), **options)
        return [layer for layer in model.layers if isinstance(layer, ACTIVATION_TYPES[activation])]

    assert {layer.sigma for layer in activation_layers("softlif")} == {RECIPE_OPTIONS["softlif"]["sigma"]}
    assert {layer.initial_threshold for layer in activation_layers("qcfs")} == {RECIPE_OPTIONS["qcfs"]["threshold"]}
    assert {layer.initial_threshold for layer in activation_layers("qcfs", threshold=4.0)} == {4.0}


def test_the_seed_fixes_the_initial_weights():
    first, again, other = (spiking_cnn((8, 8, 1), 10, "relu", filters=(8,), seed=s) for s in (1, 1, 2))
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: spiking_cnn((28, 28), 10), r"input_shape \(height, width, channels\); got \(28, 28\)"),
        (lambda: spiking_cnn((28, 28, 1), 10, "sigmoid"), r"'sigmoid' is not one of relu, softlif, qcfs"),
        (lambda: spiking_cnn((28, 28, 1), 10, "relu", levels=4), r"relu activation takes no options; got levels"),
        (lambda: spiking_cnn((8, 8, 1), 10, filters=(8, 16)), r"8x8 input is too small for 2 convolution and pooling stages"),
        (lambda: spiking_cnn((28, 28, 1), 10, "qcfs", levels=0), r"QCFS needs .*levels=0"),
    ],
)
def test_bad_recipes_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_fit_learns_the_digits(digits):
    (x, y), (x_test, y_test) = digits
    model = spiking_cnn(x.shape[1:], 10, "relu", filters=(16,), dense=32)
    history = fit(model, x, y, epochs=4, batch_size=32, learning_rate=2e-2, validation=(x_test, y_test), verbose=0)
    assert history.history["val_accuracy"][-1] > 0.9  # chance is 0.1
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_fit_is_deterministic_training_noise_included(digits):
    (x, y), _ = digits
    weights = []
    for _ in range(2):
        model = spiking_cnn(x.shape[1:], 10, "softlif", filters=(4,), dense=8)
        fit(model, x[:256], y[:256], epochs=1, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_fit_prints_a_line_per_epoch_and_the_time(digits, capsys):
    (x, y), _ = digits
    fit(spiking_cnn(x.shape[1:], 10, "softlif", filters=(4,), dense=8), x[:256], y[:256], epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "softlif_cnn: trained 2 epochs on 256 examples in" in out


def test_load_images_scales_8_bit_pixels_and_adds_the_channel_axis(tmp_path, rng):
    pixels = rng.integers(0, 256, (5, 6, 7), dtype=np.uint8)
    np.savez(tmp_path / "images.npz", x=pixels, y=np.arange(5))
    x, y = load_images(tmp_path / "images.npz")
    assert x.dtype == np.float32 and x.shape == (5, 6, 7, 1)
    np.testing.assert_array_equal(x[..., 0], pixels.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, np.arange(5))


@pytest.mark.data
def test_load_images_reads_mnist_as_the_idx_files_say(shared_data, mnist_test):
    x_reference, y_reference = mnist_test
    x, y = load_images(shared_data / "mnist", "test")
    assert x.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(x[..., 0], x_reference)
    np.testing.assert_array_equal(y, y_reference)
