"""A feed-forward Keras CNN (built here, channels-last) on frame sequences through the CLI:
``(N, steps, 8, 8, 1)`` data are frames, each held for T steps with the state carried across
frames. References: Keras on each frame alone; nengo against the interpreter spike for spike."""

import json

import numpy as np
import pytest

from cli_testing import one_error_line
from snnc.compiler.cli import main

N, STEPS, CLASSES = 24, 3, 3


@pytest.fixture(scope="module")
def keras_cnn(tmp_path_factory):
    """The saved model, frames in [0, 1], and Keras's outputs on each frame ``(N, steps, 3)``."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1)),
        tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        tf.keras.layers.AveragePooling2D(2),
        tf.keras.layers.Conv2D(6, 3, padding="same", activation="relu"),  # (Loihi: a layer reading spikes)
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(CLASSES),
    ])
    folder = tmp_path_factory.mktemp("frames")
    model.save(folder / "cnn.keras")
    frames = np.random.default_rng(1).uniform(0, 1, (N, STEPS, 8, 8, 1)).astype(np.float32)
    per_frame = model.predict(frames.reshape(-1, 8, 8, 1), verbose=0).reshape(N, STEPS, CLASSES)
    np.save(folder / "frames.npy", frames)
    np.savez(folder / "frames.npz", x=frames, y=per_frame[:, -1].argmax(-1))
    np.savez(folder / "per_frame.npz", x=frames, y=per_frame.argmax(-1))
    return folder, frames, per_frame


def run_json(capsys, argv):
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_the_float_model_runs_on_every_frame(keras_cnn, tmp_path, capsys):
    folder, _, per_frame = keras_cnn
    assert main(["run", str(folder / "cnn.keras"), "--input", str(folder / "frames.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    assert f"taken as {N} sequences of {STEPS} frames of the model's input (8, 8, 1)" in capsys.readouterr().err
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), per_frame, rtol=1e-4, atol=1e-5)


def test_compile_evaluate_and_run_on_frames(keras_cnn, tmp_path, capsys):
    folder, _, per_frame = keras_cnn
    art = tmp_path / "art"
    manifest = run_json(capsys, ["compile", str(folder / "cnn.keras"), "--calib", str(folder / "frames.npz"), "-o", str(art)])
    assert manifest["input"]["frames"] is True and manifest["input"]["shape"] == [8, 8, 1]
    for data in ("frames.npz", "per_frame.npz"):  # labels (N,): the last frame; (N, steps): every frame
        ev = run_json(capsys, ["evaluate", str(art), "--data", str(folder / data), "--timesteps", "32"])
        assert ev["ann_accuracy"] == 1.0  # labelled by Keras on each frame
        assert ev["sequence"] == {**ev["sequence"], "input_steps": STEPS, "frames": True}
        assert ev["agreement_with_ann"]["32"] >= 0.8
    errors = {}
    for t in (2, 64):  # the SNN's every-frame outputs approach Keras's on each frame as T grows
        assert main(["run", str(art), "--input", str(folder / "frames.npy"), "--timesteps", str(t), "-o", str(tmp_path / "y.npy")]) == 0
        y = np.load(tmp_path / "y.npy")
        assert y.shape == (N, STEPS, CLASSES)
        errors[t] = np.abs(y - per_frame).mean() / np.abs(per_frame).mean()
    # (what stays, about 4 %, is the floored membrane's (floor=auto for sequences), on the first frame as on later ones)
    assert errors[64] < errors[2] / 4 and errors[64] < 0.05, errors


def test_nengo_runs_frames_spike_for_spike(keras_cnn, capsys):
    """nengo (synapse None) against the spiking interpreter: the same predictions at every T."""
    folder = keras_cnn[0]
    common = [str(folder / "cnn.keras"), "--data", str(folder / "per_frame.npz"), "--timesteps", "4,8", "-n", "6"]
    interp = run_json(capsys, ["evaluate", *common])
    nengo = run_json(capsys, ["evaluate", *common, "--backend", "nengo"])
    assert nengo["backend"] == "nengo" and nengo["sequence"]["frames"] is True
    assert nengo["snn_accuracy"] == interp["snn_accuracy"] and nengo["agreement_with_ann"] == interp["agreement_with_ann"]


def test_refsim_runs_frames_compiled_for_loihi(keras_cnn, tmp_path, capsys):
    folder = keras_cnn[0]
    art = tmp_path / "loihi"
    assert main(["compile", str(folder / "cnn.keras"), "--calib", str(folder / "frames.npz"), "--target", "loihi", "-o", str(art)]) == 0
    capsys.readouterr()
    ev = run_json(capsys, ["evaluate", str(art), "--data", str(folder / "frames.npz"), "--timesteps", "32"])
    assert ev["backend"] == "refsim" and ev["sequence"]["frames"] is True
    assert ev["agreement_with_ann"]["32"] >= 0.75


def test_the_ambiguous_shape_is_said_and_decided_by_the_option(keras_cnn, tmp_path, capsys):
    folder, frames, per_frame = keras_cnn
    one = tmp_path / "one.npz"  # (N, 1, 8, 8): single images with an extra axis, or one frame each
    np.savez(one, x=frames[:, -1, :, :, 0][:, None], y=per_frame[:, -1].argmax(-1))
    evaluate = ["evaluate", str(folder / "cnn.keras"), "--data", str(one), "--timesteps", "8"]
    ev = run_json(capsys, evaluate)
    assert "sequence" not in ev and ev["ann_accuracy"] == 1.0
    assert main(evaluate) == 0
    assert "fits the model's input (8, 8, 1) as single inputs and as sequences of one frame; taken as single inputs (give --frames" in capsys.readouterr().err
    ev = run_json(capsys, [*evaluate, "--frames"])
    assert ev["sequence"]["frames"] is True and ev["sequence"]["input_steps"] == 1 and ev["ann_accuracy"] == 1.0


def test_bad_frames_get_one_line(keras_cnn, tmp_path, capsys):
    folder, frames, _ = keras_cnn
    np.savez(tmp_path / "rank.npz", x=np.stack([frames] * 2, axis=2), y=np.zeros(N, np.int64))
    assert main(["evaluate", str(folder / "cnn.keras"), "--data", str(tmp_path / "rank.npz")]) == 2
    assert f"examples of shape [{STEPS}, 2, 8, 8, 1] do not fit the model's input [8, 8, 1], nor do [2, 8, 8, 1] as frames of sequences (N, steps, 8, 8, 1)" in one_error_line(capsys)

    single = tmp_path / "single"  # compiled for single inputs, then given frames
    assert main(["compile", str(folder / "cnn.keras"), "--calib", str(folder / "frames.npz"), "--no-frames", "-o", str(single)]) == 2
    assert "holds frame sequences, but the network was compiled for single inputs; compile it with --frames" in one_error_line(capsys)
    np.savez(tmp_path / "images.npz", x=frames[:, -1], y=np.zeros(N, np.int64))
    assert main(["compile", str(folder / "cnn.keras"), "--calib", str(tmp_path / "images.npz"), "-o", str(single)]) == 0
    assert main(["evaluate", str(single), "--data", str(folder / "frames.npz")]) == 2
    assert "holds frame sequences, but the network was compiled for single inputs" in one_error_line(capsys)
    assert main(["evaluate", str(single), "--data", str(folder / "frames.npz"), "--frames"]) == 2
    assert "--frames/--no-frames apply when compiling" in one_error_line(capsys)
