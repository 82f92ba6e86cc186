"""Nothing silently wrong: an artifact applies the input preparation it was compiled with;
failures are one line with an exit status that says what kind (2 bad input, 3 a bug in snnc);
degenerate compiles are refused or explained; files keep the user's umask and name the
user's paths; library noise stays out of stderr unless --verbose."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cli_testing import one_error_line
from snnc.compiler.cli import EXIT_INTERNAL, main
from snnc.compiler.datasets import Dataset
from snnc.compiler.driver import compiled_inputs, load_compiled
from snnc.compiler.errors import DataError

EXAMPLE = "example:digits_cnn"
#: the digits' 17 grey levels as integers 0..16: a dataset whose right scale is 1/16, not 1/255
LEVELS = 16


@pytest.fixture(scope="module")
def levels(digits, tmp_path_factory):
    """The digits as uint8 grey levels 0..16 (train and test .npz)."""
    folder = tmp_path_factory.mktemp("levels")
    for split in ("train", "test"):
        with np.load(digits / f"{split}.npz") as data:
            np.savez(folder / f"{split}.npz", x=np.round(data["x"] * LEVELS).astype(np.uint8), y=data["y"])
    return folder


@pytest.fixture(scope="module")
def scaled_artifact(levels, tmp_path_factory):
    out = tmp_path_factory.mktemp("scaled") / "snn"
    args = ["compile", EXAMPLE, "--calib", str(levels / "train.npz"), "--input-scale", str(1 / LEVELS), "-o", str(out)]
    assert main(args) == 0
    return out


def _evaluate_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["evaluate", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# ----------------------------------------------------------------------------- 1. input preparation


def test_the_artifact_records_the_input_scale_and_layout(scaled_artifact):
    record = json.loads((scaled_artifact / "manifest.json").read_text())["input"]
    assert record["scale"] == pytest.approx(1 / LEVELS)
    assert record["layout"] == "HWC" and record["shape"] == [8, 8, 1]
    assert record["calibration_range"] == [0.0, 1.0]  # 0..16 times 1/16


def test_evaluate_applies_the_recorded_scale(scaled_artifact, levels, digits, capsys):
    """Without the flag the artifact's 1/16 applies, as if it were given; the uint8 rule
    (1/255) would have shrunk every input 16-fold."""
    recorded = _evaluate_json(capsys, scaled_artifact, "--data", levels / "test.npz", "--timesteps", "16")
    given = _evaluate_json(capsys, scaled_artifact, "--data", levels / "test.npz", "--timesteps", "16", "--input-scale", 1 / LEVELS)
    assert recorded["snn_accuracy"] == given["snn_accuracy"]
    assert recorded["ann_accuracy"] == given["ann_accuracy"] > 0.85
    assert recorded["snn_accuracy"]["16"] > 0.85
    assert recorded["notes"] == given["notes"] == []


def test_data_far_from_the_calibration_range_get_a_note(scaled_artifact, digits, capsys):
    """The float digits (0..1) times the recorded 1/16 reach 1/16: far below what the network
    was calibrated on, and said."""
    ev = _evaluate_json(capsys, scaled_artifact, "--data", digits / "test.npz", "--timesteps", "8")
    (note,) = ev["notes"]
    assert "the prepared inputs reach 0.0625, but the network was calibrated on inputs in [0, 1]" in note


def test_a_different_scale_is_an_override_that_is_said(scaled_artifact, levels, capsys):
    capsys.readouterr()
    args = ["evaluate", str(scaled_artifact), "--data", str(levels / "test.npz"), "--timesteps", "8", "--input-scale", str(1 / 255)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "--input-scale 0.00392157 overrides the artifact's recorded scale 0.0625" in err
    assert "calibrated on inputs in [0, 1]" in err  # and the inputs now reach only 16/255


def test_run_on_an_artifact_applies_the_recorded_scale(scaled_artifact, levels, tmp_path):
    """snnc run on uint8 levels gives what it gives on the same images already scaled and
    passed with --input-scale 1 (an override)."""
    with np.load(levels / "test.npz") as data:
        x = data["x"][:20]
    np.save(tmp_path / "levels.npy", x)
    np.save(tmp_path / "scaled.npy", x.astype(np.float32) / LEVELS)
    for name, flags in (("levels", []), ("scaled", ["--input-scale", "1"])):
        args = ["run", str(scaled_artifact), "--input", str(tmp_path / f"{name}.npy"), "--timesteps", "16", "-o", str(tmp_path / f"{name}_out.npy"), *flags]
        assert main(args) == 0
    assert np.load(tmp_path / "levels_out.npy").std() > 0
    np.testing.assert_array_equal(np.load(tmp_path / "levels_out.npy"), np.load(tmp_path / "scaled_out.npy"))


def test_verify_applies_the_recorded_scale(levels, tmp_path, capsys):
    out = tmp_path / "chip"
    compile_args = ["compile", EXAMPLE, "--calib", str(levels / "train.npz"), "--input-scale", str(1 / LEVELS), "--target", "loihi", "-o", str(out)]
    assert main(compile_args) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "--data", str(levels / "test.npz"), "-n", "2", "--timesteps", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["notes"] == []
    # what verify fed both simulators: the levels times the recorded 1/16
    x, _ = compiled_inputs(load_compiled(out), Dataset(np.full((1, 8, 8, 1), LEVELS, np.uint8), None, "ones"))
    assert np.all(next(iter(x.values())) == 1.0)


def test_a_model_that_rescales_its_input_is_not_scaled_twice(tmp_path, capsys):
    """Keras Rescaling(1/255) first: 8-bit data go in unscaled, the model divides them; the
    float network snnc runs on the prepared inputs equals Keras on the raw pixels."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1)),
        tf.keras.layers.Rescaling(1 / 255),
        tf.keras.layers.Conv2D(4, 3, activation="relu"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10),
    ])
    model.save(tmp_path / "rescaling.keras")
    pixels = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 1), dtype=np.uint8)
    np.savez(tmp_path / "pixels.npz", x=pixels, y=np.zeros(64, np.int64))
    capsys.readouterr()
    assert main(["compile", str(tmp_path / "rescaling.keras"), "--calib", str(tmp_path / "pixels.npz"), "-o", str(tmp_path / "out")]) == 0
    assert "the model scales its input itself" in capsys.readouterr().out
    compiled = load_compiled(tmp_path / "out")
    assert compiled.manifest["input"]["integer_scale"] == 1.0
    x, notes = compiled_inputs(compiled, Dataset(pixels, None, "pixels"))
    from snnc.compiler.interpreter import run

    (ours,) = run(compiled.ann, x).values()
    np.testing.assert_allclose(ours, model.predict(pixels.astype(np.float32), verbose=0), rtol=1e-4, atol=1e-4)
    assert notes == []


@pytest.mark.parametrize("scale", ["0", "-1", "nan", "inf"])
def test_a_scale_that_is_not_positive_is_refused(scale, digits, tmp_path, capsys):
    args = ["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "--input-scale", scale, "-o", str(tmp_path / "out")]
    assert main(args) == 2
    assert "--input-scale" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_the_python_api_refuses_a_scale_that_is_not_positive(digits):
    from snnc.compiler import compile_model, load_dataset, load_model

    with pytest.raises(DataError, match="positive"):
        compile_model(load_model(EXAMPLE), load_dataset(digits / "train.npz"), input_scale=-1.0)


# ----------------------------------------------------------------------------- 2. exit statuses


def test_lowering_twice_is_bad_input_not_a_failed_check(digits, tmp_path, capsys):
    pipeline = "default,lower_loihi{adapt=true},lower_loihi,map_to_cores,quantize_loihi"
    args = ["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "--pipeline", pipeline, "--target", "loihi", "-o", str(tmp_path / "o")]
    assert main(args) == 2
    line = one_error_line(capsys)
    assert "already lowered" in line and "pass lower_loihi" in line


def test_an_exception_inside_a_pass_is_an_internal_error_naming_the_pass(digits, tmp_path, capsys, monkeypatch):
    from snnc.compiler.passes import PASSES

    def broken(graph, **options):
        raise KeyError("surprise")

    info = PASSES["fold_batchnorm"]
    monkeypatch.setitem(PASSES, "fold_batchnorm", type(info)(info.name, broken, info.options, info.needs_calibration))
    assert main(["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "-o", str(tmp_path / "o")]) == EXIT_INTERNAL
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("snnc: internal error in pass fold_batchnorm: KeyError: 'surprise'")
    assert "--verbose" in err[0]


def test_an_exception_inside_a_backend_is_an_internal_error_naming_it(digits, tmp_path, capsys, monkeypatch):
    import snnc.compiler.simulate as simulate_module

    def broken(*args, **kwargs):
        raise IndexError("off by one")

    monkeypatch.setattr(simulate_module, "simulate", broken)
    # (the rate method: the default's calibration pass would meet the broken simulator first)
    assert main(["evaluate", EXAMPLE, "--data", str(digits / "test.npz"), "--timesteps", "4", "--method", "rate"]) == EXIT_INTERNAL
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("snnc: internal error in backend interp: IndexError: off by one")


def test_an_exception_reading_a_model_names_the_file(tmp_path, capsys, monkeypatch):
    import snnc.frontends as frontends

    def broken(path, weights=None):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(frontends, "load", broken)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"")
    assert main(["dump", str(path)]) == EXIT_INTERNAL
    assert f"internal error in reading {path}: ZeroDivisionError" in capsys.readouterr().err


def _labelled(tmp_path, name, **arrays):
    np.savez(tmp_path / name, **arrays)
    return tmp_path / name


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array(["cat", "dog"] * 5), "labels must be integers"),
        (np.arange(10) + 0.5, "labels must be integers"),
        (np.r_[np.arange(9), np.nan], "NaN"),
    ],
)
def test_labels_that_are_not_classes_are_refused(labels, message, tmp_path, capsys):
    path = _labelled(tmp_path, "bad.npz", x=np.zeros((10, 8, 8, 1), np.float32), y=labels)
    assert main(["evaluate", EXAMPLE, "--data", str(path), "--timesteps", "4"]) == 2
    assert message in one_error_line(capsys)


def test_an_empty_data_file_says_so(tmp_path, capsys):
    (tmp_path / "empty.npz").write_bytes(b"")
    assert main(["evaluate", EXAMPLE, "--data", str(tmp_path / "empty.npz")]) == 2
    line = one_error_line(capsys)
    assert "empty.npz: empty" in line and "pickle" not in line
    np.savez(tmp_path / "nothing.npz")
    assert main(["evaluate", EXAMPLE, "--data", str(tmp_path / "nothing.npz")]) == 2
    assert "holds no arrays" in one_error_line(capsys)


def test_nan_inputs_to_run_are_refused(scaled_artifact, tmp_path, capsys):
    x = np.zeros((2, 8, 8, 1), np.float32)
    x[1, 3, 3, 0] = np.nan
    np.save(tmp_path / "x.npy", x)
    for model in (EXAMPLE, str(scaled_artifact)):
        assert main(["run", model, "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 2
        assert "NaN" in one_error_line(capsys)
    assert not (tmp_path / "y.npy").exists()


# ----------------------------------------------------------------------------- 3. degenerate results


def test_a_network_without_neurons_is_refused(tmp_path, capsys):
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3), tf.keras.layers.Softmax()])
    model.save(tmp_path / "linear.keras")
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((16, 4), dtype=np.float32), y=np.zeros(16, int))
    assert main(["compile", str(tmp_path / "linear.keras"), "--calib", str(tmp_path / "d.npz"), "-o", str(tmp_path / "o")]) == 2
    assert "no relu layer" in one_error_line(capsys)


@pytest.mark.parametrize(
    "target, pipeline, message",
    [
        ("loihi", "rate", "--target loihi: the pipeline 'canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking' does not reach the chip"),
        ("nengo", "loihi", "runs lower_loihi, a Loihi pass; compile with --target loihi"),
    ],
)
def test_a_pipeline_that_does_not_give_the_target_is_refused(target, pipeline, message, digits, tmp_path, capsys):
    args = ["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "--target", target, "--pipeline", pipeline, "-o", str(tmp_path / "o")]
    assert main(args) == 2
    assert message in one_error_line(capsys)


def test_a_float_pipeline_is_said_to_give_no_spiking_network(digits, tmp_path, capsys):
    assert main(["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "--pipeline", "float", "-o", str(tmp_path / "o")]) == 0
    assert "the artifact holds no spiking network" in capsys.readouterr().out


def test_an_artifact_of_another_target_is_kept_without_force(scaled_artifact, digits, tmp_path, capsys, monkeypatch):
    import shutil

    out = tmp_path / "artifact"
    shutil.copytree(scaled_artifact, out)
    before = (out / "manifest.json").read_text()
    import snnc.compiler.driver as driver

    monkeypatch.setattr(driver, "compile_model", lambda *a, **k: pytest.fail("compiled before refusing"))
    args = ["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "--target", "loihi", "-o", str(out)]
    assert main(args) == 2
    assert "holds an artifact compiled for nengo; not replacing it with one for loihi (give --force" in one_error_line(capsys)
    assert (out / "manifest.json").read_text() == before
    monkeypatch.undo()
    assert main([*args, "--force"]) == 0
    assert json.loads((out / "manifest.json").read_text())["target"] == "loihi"


def test_lif_neurons_on_a_relu_network_come_with_their_measured_error(digits, tmp_path, capsys):
    """The note's per-layer errors are the ones evaluate measures on the same images."""
    pipeline = "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{neuron=lif,max_rate=0.3}"
    out = tmp_path / "lif"
    assert main(["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "--pipeline", pipeline, "-o", str(out)]) == 0
    notes = [n["message"] for n in json.loads((out / "manifest.json").read_text())["notes"] if "LIF neurons" in n["message"]]
    assert len(notes) == 1
    first64 = tmp_path / "first64.npz"
    with np.load(digits / "train.npz") as data:
        np.savez(first64, x=data["x"][:64], y=data["y"][:64])
    layers = _evaluate_json(capsys, out, "--data", first64, "--timesteps", "64")["layers"]
    for name in ("conv1_relu", "conv2_relu"):
        assert f"%{name} {100 * layers[name]['error_vs_ann']:.0f} %" in notes[0]
    assert layers["conv2_relu"]["error_vs_ann"] > 0.2  # why the note is there: LIF is not ReLU


# ----------------------------------------------------------------------------- 7. output hygiene


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_artifacts_and_dumps_get_the_users_permissions(umask, digits, tmp_path):
    old = os.umask(umask)
    try:
        assert main(["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "-o", str(tmp_path / "out")]) == 0
        assert main(["dump", EXAMPLE, "-o", str(tmp_path / "dump" / "g.ir")]) == 0
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "out").iterdir()] + [tmp_path / "dump" / "g.ir", tmp_path / "dump" / "g.npz"]
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o666 & ~umask)}
    assert oct((tmp_path / "out").stat().st_mode & 0o777) == oct(0o777 & ~umask)


def test_a_failed_write_names_the_users_path_not_a_temporary_one(digits, tmp_path, capsys, monkeypatch):
    import snnc.compiler.text as text

    def full_disk(graph, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(text, "save", full_disk)
    out = tmp_path / "out"
    assert main(["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "-o", str(out)]) == 2
    assert one_error_line(capsys) == f"snnc: error: {out}: No space left on device"
    assert list(tmp_path.iterdir()) == []  # and the staging directory is gone


def test_an_output_under_a_file_names_the_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    assert main(["dump", EXAMPLE, "-o", str(tmp_path / "taken" / "g.ir")]) == 2
    assert one_error_line(capsys) == f"snnc: error: {tmp_path / 'taken'}: a file, not a directory"


def test_library_noise_stays_off_stderr_unless_verbose(scaled_artifact, levels, tmp_path):
    """The console script, as a user runs it, on the nengo-dl backend (TensorFlow's native
    TF-TRT line, nengo-dl's "No GPU" and channels_last warnings)."""
    args = [sys.executable, "-c", "from snnc.compiler.cli import console_main; console_main()", "evaluate",
            str(scaled_artifact), "--data", str(levels / "test.npz"), "-n", "4", "--timesteps", "2", "--backend", "nengo-dl"]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert "SNN accuracy" in quiet.stdout
    loud = subprocess.run([*args, "--verbose"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert loud.returncode == 0 and "Warning" in loud.stderr
