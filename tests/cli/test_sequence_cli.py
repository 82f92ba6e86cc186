"""The CLI on a model with a sequence input (a small ReLU RNN saved as IR): data ``(N, steps,
...)`` read without extra flags, per-step or last-step labels, the 8-bit rule, and one-line
errors for data of the wrong rank. References are NumPy loops written here."""

import json

import numpy as np
import pytest

from cli_testing import one_error_line
from rnn_testing import simple_rnn_outputs
from snnc.compiler import ops
from snnc.compiler.cli import main
from snnc.compiler.driver import SEQUENCE_TIMESTEPS
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.simulate import simulate
from snnc.compiler.text import load, save
from snnc.compiler.types import TensorType

F, H, CLASSES, STEPS, N = 4, 8, 3, 5, 60


def weights(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w": rng.normal(0, 0.6, (H, F)).astype(np.float32),
        "u": rng.normal(0, 0.3, (H, H)).astype(np.float32),
        "b": rng.normal(0, 0.1, H).astype(np.float32),
        "v": rng.normal(0, 1.0, (CLASSES, H)).astype(np.float32),
        "c": np.zeros(CLASSES, np.float32),
    }


def rnn(p, every_step):
    """``h_t = relu(W x_t + U h_{t-1} + b)``, ``y_t = V h_t + c``."""
    b = GraphBuilder("seq_rnn")
    x = b.input("x", (F,), sequence=True)
    d = b.delay(TensorType((H,)), name="h_prev")
    s = b.add(ops.Add(), [b.add(ops.Dense(H), [x], {"weight": p["w"], "bias": p["b"]}),
                          b.add(ops.Dense(H), [d], {"weight": p["u"], "bias": np.zeros(H, np.float32)})])
    h = b.add(ops.ReLU(), [s], name="h")
    b.close_delay(d, h)
    b.output(b.add(ops.Dense(CLASSES), [h], {"weight": p["v"], "bias": p["c"]}), sequence=every_step)
    return b.build()


@pytest.fixture
def pixels(rng):
    return rng.integers(0, 256, (N, STEPS, F), dtype=np.uint8)


@pytest.fixture(params=[True, False], ids=["per-step", "last-step"])
def seq_model(request, tmp_path, pixels):
    """The saved model and an .npz of 8-bit sequences labelled with the float RNN's own
    classes (per step or at the last step)."""
    p = weights()
    classes = simple_rnn_outputs(p, pixels / 255.0).argmax(axis=-1)
    y = classes if request.param else classes[:, -1]
    np.savez(tmp_path / "seq.npz", x=pixels, y=y)
    return save(rnn(p, request.param), tmp_path / "rnn.ir"), tmp_path / "seq.npz", request.param


def test_compile_evaluate_and_run_a_sequence_model(seq_model, tmp_path, pixels, capsys):
    model, data, every_step = seq_model
    out = tmp_path / "art"
    assert main(["compile", str(model), "--calib", str(data), "-o", str(out), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["input"]["sequence"] is True and manifest["input"]["shape"] == [F]
    low, high = manifest["input"]["calibration_range"]
    assert 0 <= low < high <= 1  # 8-bit sequences divided by 255

    assert main(["evaluate", str(out), "--data", str(data), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["timesteps"] == list(SEQUENCE_TIMESTEPS)
    assert ev["sequence"]["input_steps"] == STEPS
    assert ev["sequence"]["total_timesteps"] == {str(t): t * STEPS for t in SEQUENCE_TIMESTEPS}
    assert ev["ann_accuracy"] == 1.0  # labelled by the NumPy reference
    assert ev["snn_accuracy"][str(SEQUENCE_TIMESTEPS[-1])] >= 0.75
    assert main(["evaluate", str(out), "--data", str(data), "--timesteps", "2,32"]) == 0
    table = capsys.readouterr().out
    assert f"T is simulation steps per input step, {STEPS} x T in all" in table
    assert f"{32 * STEPS:11d}" in table

    np.save(tmp_path / "x.npy", pixels)
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    got = np.load(tmp_path / "y.npy")
    t = SEQUENCE_TIMESTEPS[-1]  # run's default
    want = simulate(load(out / "model.ir"), pixels / np.float32(255), [t]).outputs[t]["output"]
    assert got.shape == ((N, STEPS, CLASSES) if every_step else (N, CLASSES))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_run_a_float_sequence_model(seq_model, tmp_path, pixels):
    model, _, every_step = seq_model
    x = (pixels / 255.0).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(model), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    want = simple_rnn_outputs(weights(), x)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want if every_step else want[:, -1], rtol=1e-5, atol=1e-5)


def test_data_of_the_wrong_rank_get_one_line(seq_model, tmp_path, pixels, capsys):
    model, data, _ = seq_model
    np.savez(tmp_path / "flat.npz", x=pixels[:, 0], y=np.zeros(N, np.int64))
    assert main(["evaluate", str(model), "--data", str(tmp_path / "flat.npz")]) == 2
    assert f"the model's input is a sequence: expected x of shape (N, steps, {F}), got [{N}, {F}]" in one_error_line(capsys)
    np.save(tmp_path / "flat.npy", pixels[:, 0])
    assert main(["run", str(model), "--input", str(tmp_path / "flat.npy"), "-o", str(tmp_path / "y.npy")]) == 2
    assert f"input x takes a batch of shape [N,steps,{F}]" in one_error_line(capsys)


def test_labels_must_match_the_output(seq_model, tmp_path, pixels, capsys):
    model, _, every_step = seq_model
    y = np.zeros(N, np.int64) if every_step else np.zeros((N, STEPS), np.int64)
    np.savez(tmp_path / "bad.npz", x=pixels, y=y)
    assert main(["evaluate", str(model), "--data", str(tmp_path / "bad.npz"), "--timesteps", "2"]) == 2
    want = f"expected y of shape (N, steps) = (N, {STEPS})" if every_step else "is the last input step's: expected y of shape (N,)"
    assert want in one_error_line(capsys)
