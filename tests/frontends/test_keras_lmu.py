"""keras-lmu's LMU layer against keras-lmu itself: the discretized memory matrices, the float
graph against Keras predict (``.keras`` and ``.h5``; keras-lmu runs the recurrent cell or, without
recurrent connections, a convolution with the memory's impulse response), the hybrid structure
``convert_to_spiking`` makes of it, and the options snnc refuses, by name."""

import json

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

keras_lmu = pytest.importorskip("keras_lmu")

from error_testing import raises  # noqa: E402
from snnc.compiler import load_model, run_model, run_spiking  # noqa: E402
from snnc.compiler.datasets import Dataset  # noqa: E402
from snnc.compiler.driver import compile_model  # noqa: E402
from snnc.compiler.errors import ModelFormatError, UnsupportedError  # noqa: E402
from snnc.frontends.keras.lmu import discretized, expm, legendre_system  # noqa: E402

L = tf.keras.layers
TOL = dict(rtol=1e-5, atol=1e-5)
FORMATS = ("keras", "h5")
FEATURES = 3


def save(model, folder, fmt):
    path = folder / f"model.{fmt}"
    model.save(path, **({"save_format": "keras_v3"} if fmt == "keras" else {}))  # tf 2.12 writes HDF5 for .keras otherwise
    return path


def lmu_model(steps, head=True, features=FEATURES, seed=0, theta_inv=None, **options):
    """Input -> LMU(**options) [-> Dense head], every weight random (recurrent connections small
    so that the memory stays stable), a trainable theta set to ``theta_inv``."""
    inputs = L.Input((steps, features))
    lmu = keras_lmu.LMU(name="lmu", **options)
    x = lmu(inputs)
    model = tf.keras.Model(inputs, L.Dense(2, name="head")(x) if head else x)
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "theta_inv" in w.name:
            w.assign(np.float32(theta_inv))
        else:
            w.assign(rng.normal(0.0, 0.1 if "recurrent" in w.name else 0.5, w.shape).astype(np.float32))
    return model


CASES = {
    # no recurrent connection: keras-lmu convolves with the impulse response (LMUFeedforward)
    "feedforward_simple_rnn_cell": lambda: lmu_model(
        30, memory_d=2, order=6, theta=15, hidden_cell=L.SimpleRNNCell(5, activation="relu"),
    ),
    "feedforward_no_hidden_cell_sequences": lambda: lmu_model(
        20, head=False, memory_d=1, order=4, theta=10, hidden_cell=None, input_to_hidden=True,
        discretizer="euler", use_bias=True, return_sequences=True,
    ),
    # recurrent connections or a trained theta: keras-lmu runs its LMUCell step by step
    "recurrent_dense_cell_trained_theta": lambda: lmu_model(
        25, memory_d=2, order=8, theta=20, hidden_cell=L.Dense(6, activation="relu"), hidden_to_memory=True,
        memory_to_memory=True, use_bias=True, trainable_theta=True, theta_inv=1 / 17.3,
    ),
    "recurrent_euler_no_encoder_sequences": lambda: lmu_model(
        40, features=2, memory_d=2, order=5, theta=30, hidden_cell=L.SimpleRNNCell(4, activation="linear", use_bias=False),
        kernel_initializer=None, memory_to_memory=True, input_to_hidden=True, discretizer="euler",
        trainable_theta=True, theta_inv=1 / 26.0, return_sequences=True,
    ),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES)
def test_float_graph_equals_keras(case, fmt, tmp_path, rng):
    model = CASES[case]()
    steps, features = model.input_shape[1:]
    x = rng.uniform(-1, 1, (4, steps, features)).astype(np.float32)
    (got,) = run_model(load_model(save(model, tmp_path, fmt)), x).values()
    want = model.predict(x, verbose=0)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, **TOL)


# ----------------------------------------------------------------------------- memory matrices


def keras_lmu_matrices(layer):
    """keras-lmu's own discretized ``(A_bar, B_bar)`` of a built LMU layer, in the standard
    orientation (keras-lmu stores them transposed)."""
    if isinstance(layer.layer, keras_lmu.layers.LMUFeedforward):
        cell = layer.layer.delay_layer.cell
    else:
        cell = layer.layer.cell
    if cell.trainable_theta and cell.discretizer == "zoh":  # rediscretized from theta_inv at each call
        a, b = keras_lmu.LMUCell._cont2discrete_zoh(cell._base_A * cell.theta_inv, cell._base_B * cell.theta_inv)
    elif cell.trainable_theta:  # euler: m += (m A + u B) theta_inv, A without the identity
        a, b = np.eye(cell.order) + cell.A * cell.theta_inv, cell.B * cell.theta_inv
    else:
        a, b = cell.A, cell.B
    return np.asarray(a).T, np.asarray(b).reshape(-1)


@pytest.mark.parametrize("case", CASES)
def test_discretized_memory_equals_keras_lmus(case):
    layer = CASES[case]().get_layer("lmu")
    want_a, want_b = keras_lmu_matrices(layer)
    a, b = discretized(layer.order, 1 / float(layer.theta), layer.discretizer)
    np.testing.assert_allclose(a, want_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, want_b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("order", [1, 4, 8, 16])
@pytest.mark.parametrize("theta", [0.5, 10.0, 300.0])
def test_zoh_is_the_exact_matrix_exponential(order, theta):
    """expm against SciPy's (Pade) on the system's block matrix: both float64."""
    a, b = legendre_system(order)
    block = np.zeros((order + 1, order + 1))
    block[:order, :order], block[:order, order] = a / theta, b / theta
    np.testing.assert_allclose(expm(block), scipy.linalg.expm(block), rtol=1e-12, atol=1e-13)
    a_bar, b_bar = discretized(order, 1 / theta, "zoh")
    np.testing.assert_allclose(a_bar, scipy.linalg.expm(a / theta), rtol=1e-12, atol=1e-13)
    assert b_bar.shape == (order,)


# ----------------------------------------------------------------------------- hybrid structure


def compiled_rate_network(case, folder, rng, examples=32):
    """``(float graph, spiking graph, calibration inputs)`` of a case, compiled by the rate pipeline."""
    model = CASES[case]()
    steps, features = model.input_shape[1:]
    x = rng.uniform(-1, 1, (examples, steps, features)).astype(np.float32)
    graph = load_model(save(model, folder, "h5"))
    return graph, compile_model(graph, Dataset(x, None, "calibration"), pipeline="rate").spiking, x


def test_memory_stays_linear_and_only_the_hidden_cell_spikes(tmp_path, rng):
    """convert_to_spiking turns the hidden cell's relu into neurons and leaves the memory's
    encoders, matrices and loop (dense/add/delay on floats) as they are."""
    _, spiking, _ = compiled_rate_network("recurrent_dense_cell_trained_theta", tmp_path, rng)
    kinds = {node.name: node.op.NAME for node in spiking.nodes}
    assert [name for name, kind in kinds.items() if kind.endswith("neuron")] == ["lmu_hidden_relu"]
    for name in ("lmu_encoder", "lmu_hidden_encoder", "lmu_memory_encoder", "lmu_memory_decay", "lmu_memory_input"):
        assert kinds[name] == "dense" and spiking.node(name).type.dtype == "f32"
    assert kinds["lmu_memory"] == "add" and spiking.node("lmu_memory_previous").inputs == ("lmu_memory",)
    assert spiking.node("lmu_hidden_previous").inputs == ("lmu_hidden_relu",)


def test_spiking_lmu_approaches_the_float_one(tmp_path, rng):
    """T simulation steps per input step: the relative error falls from ~50 % (T=4) to ~4 % (T=64)."""
    graph, spiking, x = compiled_rate_network("feedforward_simple_rnn_cell", tmp_path, rng)
    want = run_model(graph, x)["output"]

    def error(timesteps):
        got = run_spiking(spiking, x, timesteps)["output"]
        return np.linalg.norm(got - want) / np.linalg.norm(want)

    coarse, fine = error(4), error(64)
    assert fine < 0.08 and fine < coarse / 5


# ----------------------------------------------------------------------------- refusals


REFUSALS = {
    "lstm_cell": (
        lambda: lmu_model(20, memory_d=1, order=4, theta=10, hidden_cell=L.LSTMCell(3)),
        UnsupportedError, ["'lmu' (LMU)", "LSTMCell hidden cell", "SimpleRNNCell, Dense or None"],
    ),
    "tanh_hidden_cell": (
        lambda: lmu_model(20, memory_d=1, order=4, theta=10, hidden_cell=L.SimpleRNNCell(3)),
        UnsupportedError, ["'lmu' (LMU)", "activation 'tanh'", "relu, linear"],
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_name_the_layer(case, tmp_path):
    build, error, fragments = REFUSALS[case]
    raises(error, save(build(), tmp_path, "h5"), *fragments)


def test_unknown_discretizer_is_refused(tmp_path):
    """keras-lmu itself builds only zoh and euler; a config naming another is refused by name."""
    model = CASES["feedforward_simple_rnn_cell"]()
    config = json.loads(model.to_json())
    lmu = next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == "lmu")
    lmu["config"]["discretizer"] = "bilinear"
    path = tmp_path / "model.json"
    path.write_text(json.dumps(config))
    model.save_weights(tmp_path / "model.weights.h5")
    raises(UnsupportedError, path, "'lmu' (LMU)", "discretizer 'bilinear'", "zoh, euler")


def test_missing_encoder_size_mismatch_is_malformed(tmp_path):
    """Without an encoder the input must have memory_d features (keras-lmu cannot build
    otherwise): a config that says so of a file whose shapes disagree is malformed."""
    model = lmu_model(20, memory_d=3, order=4, theta=10, hidden_cell=None, kernel_initializer=None, features=3)
    config = json.loads(model.to_json())
    lmu = next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == "lmu")
    lmu["config"]["memory_d"] = 2
    path = tmp_path / "model.json"
    path.write_text(json.dumps(config))
    model.save_weights(tmp_path / "model.weights.h5")
    raises(ModelFormatError, path, "'lmu' (LMU)", "kernel_initializer=None", "2 (memory_d) inputs, not 3")
