"""snnc.training's Keras layers against their papers' formulas, written here independently of
``snnc.compiler.neurons`` (soft-LIF: Hunsberger & Eliasmith 2015; QCFS: Bu et al. 2022, as the
authors' PyTorch code computes it), against ``nengo.LIFRate`` in soft-LIF's hard limit, and
through Keras' own saving and loading."""

import nengo
import numpy as np
import pytest
import tensorflow as tf

from snnc.training import QCFS, SoftLIF

TAU_RC, TAU_REF, AMPLITUDE = 0.02, 0.002, 0.063
FLOAT32_RTOL = 1e-5  # the layers compute in float32; the references in float64


def soft_lif_reference(x, sigma, tau_rc=TAU_RC, tau_ref=TAU_REF, amplitude=AMPLITUDE):
    """``amplitude / (tau_ref + tau_rc * log(1 + 1 / rho(x)))``, ``rho(x) = sigma * log(1 + e^(x / sigma))``."""
    rho = sigma * np.logaddexp(0.0, x / sigma)
    return amplitude / (tau_ref + tau_rc * np.log1p(1.0 / rho))


def soft_lif_derivative_reference(x, sigma, tau_rc=TAU_RC, tau_ref=TAU_REF, amplitude=AMPLITUDE):
    """d/dx of :func:`soft_lif_reference`: ``rho' = sigmoid(x / sigma)`` and
    ``d log(1 + 1/rho) / d rho = -1 / (rho^2 + rho)``."""
    rho = sigma * np.logaddexp(0.0, x / sigma)
    drho = 1.0 / (1.0 + np.exp(-x / sigma))
    denominator = tau_ref + tau_rc * np.log1p(1.0 / rho)
    return amplitude * tau_rc * drho / (rho**2 + rho) / denominator**2


def qcfs_reference(x, levels, threshold, shift):
    """``lambda * clip(floor(x * L / lambda + shift) / L, 0, 1)``, the authors' ``MyFloor``."""
    return threshold * np.clip(np.floor(x * levels / threshold + shift) / levels, 0.0, 1.0)


def qcfs_gradients_reference(x, levels, threshold, shift):
    """``(dy/dx, dy/dlambda)`` by the chain rule with the floor's derivative taken as 1 (a
    straight-through floor) and the clip passing gradients where the floored value is inside
    ``[0, 1]``, bounds included (PyTorch's ``clamp``, TensorFlow's ``clip_by_value``)::

        inside:  y = lambda * q, q = floor(u) / L, u = x L / lambda + shift
                 dy/dx = lambda * (1/L) * (L / lambda) = 1
                 dy/dlambda = q + lambda * (1/L) * (-x L / lambda^2) = q - x / lambda
        above:   y = lambda: dy/dx = 0, dy/dlambda = 1;   below: y = 0, both 0."""
    floored = np.floor(x * levels / threshold + shift)
    inside = (floored >= 0) & (floored <= levels)
    dx = np.where(inside, 1.0, 0.0)
    dlambda = np.where(inside, floored / levels - x / threshold, np.where(floored > levels, 1.0, 0.0))
    return dx, dlambda


def layer_output(layer, x, **call_options):
    return layer(tf.constant(x, dtype=tf.float32), **call_options).numpy().astype(np.float64)


# ----------------------------------------------------------------------------- SoftLIF


@pytest.mark.parametrize("sigma", [0.002, 0.02, 0.1, 1.0])
def test_soft_lif_is_the_softplus_rate_curve(sigma):
    x = np.concatenate([np.linspace(-0.5, 3.0, 351), [0.0]]).astype(np.float32)
    y = layer_output(SoftLIF(sigma=sigma), x)
    np.testing.assert_allclose(y, soft_lif_reference(x.astype(np.float64), sigma), rtol=FLOAT32_RTOL)


def test_soft_lif_options_enter_the_curve():
    options = dict(tau_rc=0.05, tau_ref=0.001, amplitude=0.01)
    x = np.linspace(-0.2, 2.0, 45, dtype=np.float32)
    y = layer_output(SoftLIF(sigma=0.05, **options), x)
    np.testing.assert_allclose(y, soft_lif_reference(x.astype(np.float64), 0.05, **options), rtol=FLOAT32_RTOL)


def test_soft_lif_tends_to_nengo_lif_rate_as_sigma_vanishes():
    """sigma = 1e-6: for x > 30 sigma the softplus is x exactly (nengo's curve); for x < 0
    the rate is positive but at most ``amplitude * sigma / (tau_rc * |x|)`` (log(1 + 1/rho)
    >= |x| / sigma), where nengo's is 0."""
    sigma = 1e-6
    x = np.concatenate([np.linspace(-2.0, -0.01, 50), np.linspace(0.01, 5.0, 100)]).astype(np.float32)
    y = layer_output(SoftLIF(sigma=sigma), x)
    lif = nengo.LIFRate(tau_rc=TAU_RC, tau_ref=TAU_REF, amplitude=AMPLITUDE)
    hard = lif.rates(x.astype(np.float64), gain=np.ones(1), bias=np.ones(1))[:, 0]  # (samples, neurons)
    firing = x > 0
    np.testing.assert_allclose(y[firing], hard[firing], rtol=FLOAT32_RTOL)
    assert np.all(hard[~firing] == 0)
    silent = y[~firing]
    assert np.all(silent >= 0) and np.all(silent <= AMPLITUDE * sigma / (TAU_RC * np.abs(x[~firing])))


def test_soft_lif_noise_only_while_training_and_only_where_firing(seed):
    """Training adds N(0, noise) Hz to the rate where x > 0: ``amplitude * noise`` on the output."""
    noise = 10.0
    layer = SoftLIF(noise=noise)
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, 200_000).astype(np.float32)
    x[:1000] = 0.0  # the threshold itself does not fire
    tf.random.set_seed(seed)
    clean = layer_output(layer, x)
    np.testing.assert_array_equal(layer_output(layer, x, training=False), clean)
    difference = layer_output(layer, x, training=True) - clean
    firing = x > 0
    assert np.all(difference[~firing] == 0)
    n = firing.sum()
    expected_std = AMPLITUDE * noise
    # 5 standard errors of a sample's std (std / sqrt(2n)) and mean (std / sqrt(n))
    assert abs(difference[firing].std() - expected_std) < 5 * expected_std / np.sqrt(2 * n)
    assert abs(difference[firing].mean()) < 5 * expected_std / np.sqrt(n)


def test_soft_lif_noise_reaches_it_inside_a_model_only_in_fit_mode(seed):
    model = tf.keras.Sequential([tf.keras.layers.InputLayer((4,)), SoftLIF(noise=10.0)])
    x = np.full((1000, 4), 0.5, dtype=np.float32)
    tf.random.set_seed(seed)
    assert np.ptp(model(x, training=True).numpy()) > 0
    assert np.ptp(model(x, training=False).numpy()) == 0
    assert np.ptp(model.predict(x, verbose=0)) == 0


@pytest.mark.parametrize("sigma", [0.002, 0.02, 1.0])
def test_soft_lif_gradients_are_the_curves_derivative_and_finite_everywhere(sigma):
    moderate = np.concatenate([np.linspace(-10 * sigma, 2.0, 41), [0.0]]).astype(np.float32)
    extreme = np.array([-1e6, -1e4, -100.0, -1.0, -1e-30, 0.0, 1e-30, 100.0, 1e4, 1e6], dtype=np.float32)
    for x, check_value in ((moderate, True), (extreme, False)):
        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = SoftLIF(sigma=sigma)(x)
        gradient = tape.gradient(y, x).numpy().astype(np.float64)
        assert np.all(np.isfinite(gradient)) and np.all(gradient >= 0), (x.numpy(), gradient)
        if check_value:
            reference = soft_lif_derivative_reference(x.numpy().astype(np.float64), sigma)
            np.testing.assert_allclose(gradient, reference, rtol=1e-4)  # float32 through log1p(1 / rho)


# ----------------------------------------------------------------------------- QCFS

QCFS_CASES = [(8, 4.0, 0.5), (4, 1.5, 0.5), (2, 3.0, 0.0), (1, 1.0, 0.5), (16, 0.7, 0.25)]


def qcfs_test_inputs(rng, threshold):
    """Random points (so not on a step's edge) from below 0 to past ``(L + 1 - shift) lambda / L``
    (at most ``2 lambda``), where the clip stops passing gradients."""
    return rng.uniform(-0.5 * threshold, 2.5 * threshold, 2000).astype(np.float32)


@pytest.mark.parametrize("levels, threshold, shift", QCFS_CASES)
def test_qcfs_forward_is_the_formula(levels, threshold, shift, rng):
    x = qcfs_test_inputs(rng, threshold)
    y = layer_output(QCFS(levels=levels, threshold=threshold, shift=shift), x)
    np.testing.assert_allclose(y, qcfs_reference(x.astype(np.float64), levels, threshold, shift), rtol=FLOAT32_RTOL, atol=0)
    assert len(np.unique(y)) == levels + 1  # 0, lambda / L, ..., lambda: L + 1 values


def test_qcfs_uses_the_trained_threshold_not_the_initial_one(rng):
    layer = QCFS(levels=4, threshold=2.0)
    x = qcfs_test_inputs(rng, 3.0)
    layer(x[:1])
    layer.threshold.assign(3.0)
    np.testing.assert_allclose(layer_output(layer, x), qcfs_reference(x.astype(np.float64), 4, 3.0, 0.5), rtol=FLOAT32_RTOL)


@pytest.mark.parametrize("levels, threshold, shift", QCFS_CASES)
def test_qcfs_gradients_pass_straight_through_the_floor(levels, threshold, shift, rng):
    x = tf.constant(qcfs_test_inputs(rng, threshold))
    layer = QCFS(levels=levels, threshold=threshold, shift=shift)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
    dx = tape.gradient(y, x).numpy()
    dlambda = tape.jacobian(y, layer.threshold).numpy()
    reference_dx, reference_dlambda = qcfs_gradients_reference(x.numpy().astype(np.float64), levels, threshold, shift)
    np.testing.assert_array_equal(dx, reference_dx)
    np.testing.assert_allclose(dlambda, reference_dlambda, rtol=FLOAT32_RTOL, atol=1e-6)
    inside = (x.numpy() > 0) & (x.numpy() < threshold)
    assert np.all(dx[inside] == 1)
    beyond = (x.numpy() < -shift * threshold / levels) | (x.numpy() >= (levels + 1 - shift) * threshold / levels)
    assert beyond.any() and np.all(dx[beyond] == 0)


def test_qcfs_threshold_learns(rng):
    model = tf.keras.Sequential([tf.keras.layers.InputLayer((3,)), tf.keras.layers.Dense(4), QCFS(threshold=4.0)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
    qcfs_layer = model.layers[-1]
    assert any(weight is qcfs_layer.threshold for weight in model.trainable_weights)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    model.fit(x, np.ones((32, 4), np.float32), epochs=1, batch_size=32, verbose=0)
    assert float(qcfs_layer.threshold.numpy()) != 4.0


# ----------------------------------------------------------------------------- construction and saving


def test_defaults_construct_and_run():
    x = tf.constant([[-1.0, 0.0, 0.5, 10.0]])
    soft_lif, qcfs_layer = SoftLIF(), QCFS()
    soft_lif_options = (soft_lif.tau_rc, soft_lif.tau_ref, soft_lif.amplitude, soft_lif.sigma, soft_lif.noise)
    assert soft_lif_options == (0.02, 0.002, 0.063, 0.02, 10.0)
    assert (qcfs_layer.levels, qcfs_layer.initial_threshold, qcfs_layer.shift) == (8, 4.0, 0.5)
    expected = soft_lif_reference(x.numpy()[0].astype(np.float64), 0.02)
    np.testing.assert_allclose(soft_lif(x).numpy()[0], expected, rtol=FLOAT32_RTOL)
    np.testing.assert_allclose(qcfs_layer(x).numpy()[0], qcfs_reference(x.numpy()[0].astype(np.float64), 8, 4.0, 0.5))


LAYERS = {
    "softlif": lambda: SoftLIF(tau_rc=0.03, tau_ref=0.001, amplitude=0.05, sigma=0.01, noise=5.0, name="act"),
    "qcfs": lambda: QCFS(levels=4, threshold=2.0, shift=0.5, name="act"),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_get_config_round_trips(kind):
    layer = LAYERS[kind]()
    again = type(layer).from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    assert tf.keras.layers.deserialize(tf.keras.layers.serialize(layer)).get_config() == layer.get_config()


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_saved_models_reload_with_the_same_predictions(kind, suffix, tmp_path, rng):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [tf.keras.layers.InputLayer((6,)), tf.keras.layers.Dense(5), LAYERS[kind](), tf.keras.layers.Dense(3)]
    )
    if kind == "qcfs":
        model.get_layer("act").threshold.assign(1.37)  # as if trained: the config keeps 2.0
    path = tmp_path / f"model{suffix}"
    model.save(path, save_format="keras_v3" if suffix == ".keras" else "h5")  # TF 2.12 writes HDF5 for .keras unless asked

    loaded = tf.keras.models.load_model(path)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    layer = loaded.get_layer("act")
    assert type(layer) is type(model.get_layer("act"))
    assert layer.get_config() == model.get_layer("act").get_config()
    if kind == "qcfs":
        assert float(layer.threshold.numpy()) == pytest.approx(1.37) and layer.initial_threshold == 2.0


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "make, named",
    [
        (lambda: SoftLIF(tau_rc=0), "tau_rc=0"),
        (lambda: SoftLIF(tau_ref=-0.001), "tau_ref=-0.001"),
        (lambda: SoftLIF(amplitude=0), "amplitude=0"),
        (lambda: SoftLIF(sigma=0), "sigma=0"),
        (lambda: SoftLIF(noise=-1), "noise=-1"),
        (lambda: QCFS(levels=0), "levels=0"),
        (lambda: QCFS(levels=2.5), "levels=2.5"),
        (lambda: QCFS(threshold=0), "threshold=0"),
        (lambda: QCFS(threshold=-2), "threshold=-2"),
    ],
)
def test_bad_arguments_say_what_is_needed(make, named):
    with pytest.raises(ValueError, match=r"needs .*; got .*") as error:
        make()
    assert named in str(error.value)
