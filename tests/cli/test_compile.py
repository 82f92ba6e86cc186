"""snnc compile / evaluate / run on compiled networks / demo, on the packaged example model and
scikit-learn's digits (real data that ships with the install); bad inputs give one line and
exit status 2."""

import json

import numpy as np
import pytest

from cli_testing import one_error_line
from snnc.compiler import load_model
from snnc.compiler.api import to_ir_layout
from snnc.compiler.cli import main
from snnc.compiler.passes import parse_pipeline
from snnc.compiler.simulate import simulate

EXAMPLE = "example:digits_cnn"



@pytest.fixture(scope="module")
def compiled(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("artifact") / "digits_snn"
    assert main(["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "-o", str(out)]) == 0
    return out



def test_compile_writes_a_self_describing_artifact(compiled):
    manifest = json.loads((compiled / "manifest.json").read_text())
    assert manifest["format"] == "snnc-artifact"
    assert manifest["method"] == "default"
    assert manifest["pipeline"] == ("canonicalize,fold_batchnorm,threshold_balance{per_channel=auto},convert_to_spiking,"
                                    "calibrate{mode=potential,timesteps=16}")
    assert manifest["target"] == "nengo" and manifest["stage"] == "spiking"
    assert len(manifest["source"]["sha256"]) == 64
    assert {"snnc", "numpy", "nengo", "tensorflow"} <= set(manifest["versions"])
    assert [p["pass"] for p in manifest["passes"]] == [s.name for s in parse_pipeline(manifest["pipeline"])]
    calibration = manifest["calibration"]
    assert calibration["examples"] == 1000 and calibration["method"]["method"] == "percentile"
    assert set(calibration["layers"]) == {"conv1_relu", "conv2_relu"}
    model = load_model(compiled)  # the artifact directory loads as its compiled graph
    assert model.stage == "spiking"
    assert [n.op.NAME for n in model.nodes if "relu" in n.name] == ["if_neuron", "if_neuron"]
    assert model.node("conv1_relu").meta["scale"] == calibration["layers"]["conv1_relu"]["scale"]
    assert load_model(compiled / "ann.ir").stage == "float"


def test_evaluate_json_reports_ann_and_snn_accuracy(compiled, digits, capsys):
    assert main(["evaluate", str(compiled), "--data", str(digits / "test.npz"), "--timesteps", "4,32", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 397
    assert 0.9 < report["ann_accuracy"] <= 1
    assert set(report["snn_accuracy"]) == {"4", "32"}
    # the rate code converges: more steps, closer to the ANN
    assert report["agreement_with_ann"]["32"] >= report["agreement_with_ann"]["4"]
    assert report["snn_accuracy"]["32"] >= report["ann_accuracy"] - 0.02
    assert set(report["layers"]) == {"conv1_relu", "conv2_relu"}
    assert 0 < report["layers"]["conv1_relu"]["mean_rate"] < 1
    assert 0 < report["layers"]["conv1_relu"]["error_vs_ann"] < 0.5  # where accuracy goes, per layer
    # binary spikes: 1 bit for each neuron that ever spiked, each spike adds its weights once
    layers = report["layers"].values()
    for layer in layers:
        assert layer["bits_per_activity"] == pytest.approx(1 - layer["silent_fraction"])
        assert layer["significant_bits_per_weight"] == 1.0
    neurons = sum(a["neurons"] for a in layers)
    weighted = sum(a["bits_per_activity"] * a["neurons"] for a in layers)
    assert report["bits_per_activity"] == pytest.approx(weighted / neurons)
    assert report["significant_bits_per_weight"] == 1.0


def test_evaluate_table_compiles_a_model_first(digits, tmp_path, capsys):
    args = ["evaluate", EXAMPLE, "--data", str(digits / "test.npz"), "--calib", str(digits / "train.npz"),
            "--timesteps", "4,16", "-n", "50", "--plot", str(tmp_path / "acc.png")]
    assert main(args) == 0
    assert (tmp_path / "acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "50 examples, backend interp" in out
    assert "ANN accuracy (imported model)" in out
    assert "conv1_relu" in out and "firing" in out


def test_evaluate_reports_bits_per_event_of_burst_layers(digits, capsys):
    args = ["evaluate", EXAMPLE, "--data", str(digits / "test.npz"), "--calib", str(digits / "train.npz"), "--timesteps", "4",
            "-n", "20", "--pipeline", "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{bursts=3}"]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    layer = report["layers"]["conv1_relu"]
    assert layer["bits_per_event"] == 2.0 and layer["max_neuron_rate"] <= 3
    # events of 1..3 spikes: 1 or 2 significant bits each, more than 1 on average where bursts happen
    assert 1.0 < layer["significant_bits_per_weight"] <= 2.0
    assert 1.0 < layer["bits_per_activity"] <= 2.0  # log2(1 + largest event) per neuron, at most log2 4
    assert 1.0 < report["significant_bits_per_weight"] <= 2.0 and 0 < report["bits_per_activity"] <= 2.0
    assert main(args) == 0
    assert "conv1_relu" in (out := capsys.readouterr().out) and "2.00 bits per event" in out
    bits, significant = report["bits_per_activity"], report["significant_bits_per_weight"]
    assert f"all layers: {bits:.2f} bits per activity, {significant:.2f} significant bits" in out


def test_evaluate_on_a_backend_that_counts_spikes_says_burst_bits_are_not_measured(digits, capsys):
    args = ["evaluate", EXAMPLE, "--data", str(digits / "test.npz"), "--calib", str(digits / "train.npz"), "--timesteps",
            "4", "-n", "3", "--backend", "nengo",
            "--pipeline", "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{bursts=3}"]
    assert main([*args, "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["bits_per_activity"] is None and report["significant_bits_per_weight"] is None
    assert all(a["bits_per_activity"] is None for a in report["layers"].values())
    assert "snnc: note: backend nengo gives each neuron's spike total, not its events per step" in captured.err
    assert "%conv1_relu" in captured.err


def test_run_a_compiled_network(compiled, digits, tmp_path):
    x = np.load(digits / "test.npz")["x"][:20]
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(compiled), "--input", str(tmp_path / "x.npy"), "--timesteps", "12", "-o", str(tmp_path / "y.npy")]) == 0
    model = load_model(compiled)
    want = simulate(model, to_ir_layout(model, x), [12]).outputs[12]["output"]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)


def test_pass_instruments_from_the_command_line(digits, tmp_path, capsys):
    args = ["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "-o", str(tmp_path / "out"),
            "--dump-after", "fold_batchnorm", "--dump-dir", str(tmp_path / "dumps"), "--time-passes",
            "--pipeline", "canonicalize,fold_batchnorm,threshold_balance{method=max},convert_to_spiking{v_init=0.0}"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "# IR after fold_batchnorm\ngraph @digits_cnn : float" in err
    assert "# pass timings" in err and "threshold_balance{method=max}" in err
    assert sorted(p.name for p in (tmp_path / "dumps").glob("*.ir")) == [
        "00_input.ir", "01_canonicalize.ir", "02_fold_batchnorm.ir", "03_threshold_balance.ir", "04_convert_to_spiking.ir"]
    model = load_model(tmp_path / "out")
    assert model.node("conv1_relu").op.v_init == 0.0
    assert model.meta["threshold_balance"]["method"] == "max"


def test_demo_trains_compiles_and_reports(tmp_path, capsys):
    """README's main job as it runs it (30 epochs, T up to 64), on the 397 held-out digits.
    Measured: ANN 95.2 %, SNN at T=64 95.2 % agreeing with the ANN on 100 %; the margins: 2 pt
    (8 digits) below the ANN, 97 % agreement."""
    assert main(["demo", "--json", "-o", str(tmp_path / "demo")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["snn_accuracy"]) == {"8", "16", "32", "64"}
    assert report["ann_accuracy"] > 0.9
    assert report["snn_accuracy"]["64"] >= report["ann_accuracy"] - 0.02
    assert report["agreement_with_ann"]["64"] >= 0.97
    assert (tmp_path / "demo" / "manifest.json").is_file()


# ----------------------------------------------------------------------------- bad input


def test_calibration_data_of_the_wrong_shape(tmp_path, capsys):
    np.savez(tmp_path / "calib.npz", x=np.zeros((10, 5, 5), np.float32))
    assert main(["compile", EXAMPLE, "--calib", str(tmp_path / "calib.npz"), "-o", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys)
    assert "calib.npz" in line and "[5, 5]" in line and "[8, 8, 1]" in line
    assert not (tmp_path / "out").exists()


def test_empty_data(tmp_path, digits, capsys):
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 8, 8, 1), np.float32), y=np.zeros(0, np.int64))
    assert main(["compile", EXAMPLE, "--calib", str(tmp_path / "empty.npz"), "-o", str(tmp_path / "out")]) == 2
    assert "empty.npz: the dataset is empty" in one_error_line(capsys)
    assert main(["evaluate", EXAMPLE, "--data", str(tmp_path / "empty.npz"), "--calib", str(digits / "train.npz")]) == 2
    assert "the dataset is empty" in one_error_line(capsys)


def test_nan_weights(tmp_path, digits, capsys):
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.layers.Input((8, 8, 1)), tf.keras.layers.Flatten(), tf.keras.layers.Dense(10, name="fc")])
    weights = model.get_weights()
    weights[0][3, 4] = np.nan
    model.set_weights(weights)
    model.save(tmp_path / "nan.h5")
    assert main(["compile", str(tmp_path / "nan.h5"), "--calib", str(digits / "train.npz"), "-o", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys)
    assert "nan.h5: layer 'fc' (Dense): weight kernel" in line and "NaN" in line  # refused as it is read


@pytest.mark.parametrize(
    "pipeline, message",
    [
        ("canonicalize,fold_bn", "unknown pass 'fold_bn'"),
        ("threshold_balance{method=median}", "option method='median' is not one of max, percentile"),
        ("threshold_balance{p=high}", "option p='high' is not a float"),
        ("convert_to_spiking{colour=red}", "unknown option 'colour=red'"),
    ],
)
def test_bad_pipelines(pipeline, message, digits, tmp_path, capsys):
    args = ["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "-o", str(tmp_path / "out"), "--pipeline", pipeline]
    assert main(args) == 2
    assert message in one_error_line(capsys)


def test_evaluate_needs_labels_and_good_timesteps(compiled, tmp_path, capsys):
    np.savez(tmp_path / "unlabelled.npz", x=np.zeros((4, 8, 8, 1), np.float32))
    assert main(["evaluate", str(compiled), "--data", str(tmp_path / "unlabelled.npz")]) == 2
    assert "no labels 'y'" in one_error_line(capsys)
    assert main(["evaluate", str(compiled), "--data", str(tmp_path / "unlabelled.npz"), "--timesteps", "8,x"]) == 2
    assert "--timesteps '8,x'" in one_error_line(capsys)


def test_compile_does_not_overwrite_other_directories(digits, tmp_path, capsys):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    assert main(["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "-o", str(tmp_path / "precious")]) == 2
    assert "not an snnc artifact; not overwriting it" in one_error_line(capsys)
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


def test_timesteps_only_for_compiled_networks(digits, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8, 1), np.float32))
    assert main(["run", EXAMPLE, "--input", str(tmp_path / "x.npy"), "--timesteps", "8", "-o", str(tmp_path / "y.npy")]) == 2
    assert "--timesteps applies to compiled spiking networks" in one_error_line(capsys)


@pytest.mark.parametrize("fixture", ["lenet_bn_opset11.onnx", "resnet_block_dynamo/resnet_block_dynamo.onnx"])
def test_compile_and_run_an_onnx_export(fixture, tmp_path, rng):
    """PyTorch exports (see benchmarks/make_onnx_fixtures.py) compile like Keras models, and
    the spiking network's readout approaches the ONNX model's output as T grows."""
    from pathlib import Path

    model = Path(__file__).parents[1] / "frontends" / "fixtures" / "onnx" / fixture
    reference = np.load(model.parent / (model.stem + ".npz"))
    x = reference["x"]
    calib = rng.uniform(x.min(), x.max(), size=(64, *x.shape[1:])).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=np.concatenate([x, calib]))
    np.save(tmp_path / "x.npy", x)
    assert main(["compile", str(model), "--calib", str(tmp_path / "calib.npz"), "-o", str(tmp_path / "out")]) == 0
    errors = []
    for t in (8, 256):
        assert main(["run", str(tmp_path / "out"), "--input", str(tmp_path / "x.npy"), "--timesteps", str(t), "-o", str(tmp_path / "y.npy")]) == 0
        errors.append(np.abs(np.load(tmp_path / "y.npy") - reference["y"]).mean())
    assert errors[1] < errors[0]
    assert errors[1] < 0.1 * np.abs(reference["y"]).mean()


def test_a_method_picks_its_pipeline_and_is_recorded(digits, tmp_path):
    out = tmp_path / "rate"
    assert main(["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "--method", "rate", "-o", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "rate"
    assert manifest["pipeline"] == "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking"


def test_a_pipeline_given_as_passes_records_no_method(digits, tmp_path):
    out = tmp_path / "custom"
    args = ["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "--pipeline", "canonicalize,threshold_balance,convert_to_spiking"]
    assert main(args + ["-o", str(out)]) == 0
    assert json.loads((out / "manifest.json").read_text())["method"] is None


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "bsnn", "--target", "loihi"], "method bsnn has no loihi form"),
        (["--method", "rate", "--pipeline", "rate"], "not allowed with argument"),
        (["--method", "fast"], "invalid choice: 'fast'"),
    ],
)
def test_bad_methods_are_refused_in_one_line(extra, message, digits, tmp_path, capsys):
    assert main(["compile", EXAMPLE, "--calib", str(digits / "train.npz"), "-o", str(tmp_path / "o"), *extra]) == 2
    assert message in capsys.readouterr().err
