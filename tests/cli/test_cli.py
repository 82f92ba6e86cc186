"""The snnc command line: help, version, dump formats, run, and one-line errors with exit status 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_testing import one_error_line
from snnc.compiler import interpreter, ops
from snnc.compiler.cli import main
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.text import load, save

SNNC = Path(sys.executable).with_name("snnc")


@pytest.fixture
def ir_model(tmp_path, rng):
    """A small saved IR model with an HWC source layout: conv -> relu -> flatten -> dense."""
    b = GraphBuilder("small")
    x = b.input("input", (2, 5, 5), source_layout="HWC")
    x = b.add(ops.Conv2d(3, (3, 3)), [x], {"weight": rng.normal(size=(3, 2, 3, 3)), "bias": rng.normal(size=3)})
    x = b.add(ops.ReLU(), [x])
    x = b.add(ops.Transpose((1, 2, 0)), [x])
    x = b.add(ops.Reshape((27,)), [x])
    x = b.add(ops.Dense(4), [x], {"weight": rng.normal(size=(4, 27)), "bias": rng.normal(size=4)})
    b.output(x)
    return save(b.build(), tmp_path / "small.ir")



def test_help_does_not_import_tensorflow():
    code = "import sys; from snnc.compiler.cli import main; rc = main(['--help']); assert rc == 0; print(sorted(m for m in ('tensorflow', 'keras', 'onnx', 'onnxruntime', 'nengo', 'h5py') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command", ["dump", "run", "compile", "evaluate", "demo"])
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert f"usage: snnc {command}" in capsys.readouterr().out


def test_console_script_version():
    out = subprocess.run([str(SNNC), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "snnc 0.1.0"


def test_dump_text_is_the_ir_and_round_trips(ir_model, tmp_path, capsys):
    assert main(["dump", str(ir_model)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("graph @small : float {")
    assert "%conv2d = conv2d(%input) {filters=3, kernel=[3,3], weight=<3x2x3x3 f32 #" in text
    assert main(["dump", str(ir_model), "-o", str(tmp_path / "copy.ir")]) == 0
    assert load(tmp_path / "copy.ir") == load(ir_model)


def test_dump_json_and_dot(ir_model, capsys):
    assert main(["dump", str(ir_model), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [n["op"] for n in data["nodes"]] == ["input", "conv2d", "relu", "transpose", "reshape", "dense", "output"]
    assert data["nodes"][1]["params"]["weight"]["shape"] == [3, 2, 3, 3]
    assert main(["dump", str(ir_model), "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "small" {') and '"conv2d" -> "relu";' in dot


def test_run_takes_and_returns_the_source_layout(ir_model, tmp_path, rng):
    x_hwc = rng.normal(size=(6, 5, 5, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x_hwc)
    assert main(["run", str(ir_model), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    want = interpreter.run(load(ir_model), x_hwc.transpose(0, 3, 1, 2))["output"]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)
    np.savez(tmp_path / "x.npz", x=x_hwc)
    assert main(["run", str(ir_model), "--input", str(tmp_path / "x.npz"), "-o", str(tmp_path / "y.npz")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npz")["output"], want)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["dump", "{tmp}/model.txt"], r"model.txt: unknown model file type .txt; supported: Keras"),
        (["dump", "{tmp}/missing.h5"], r"missing.h5: no such file or directory"),
        (["dump", "{tmp}"], r"a directory but not a SavedModel"),
        (["run", "{model}", "--input", "{tmp}/wrong.npy", "-o", "{tmp}/y.npy"], r"input input takes a batch of shape \[N,5,5,2\] \(HWC\), got data of shape \[3, 2, 5, 5\]"),
        (["run", "{model}", "--input", "{tmp}/missing.npy", "-o", "{tmp}/y.npy"], r"missing.npy: no such file"),
        (["run", "{model}", "--input", "{tmp}/x.npy", "-o", "{tmp}/y.csv"], r"y.csv: unsupported output file type .csv"),
        (["run", "{model}", "-o", "{tmp}/y.npy"], r"the following arguments are required: --input"),
        (["compile-everything"], r"invalid choice: 'compile-everything'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, ir_model, tmp_path, capsys):
    (tmp_path / "model.txt").write_text("not a model")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 2, 5, 5), np.float32))
    np.save(tmp_path / "x.npy", np.zeros((3, 5, 5, 2), np.float32))
    argv = [a.format(tmp=tmp_path, model=ir_model) for a in argv]
    assert main(argv) == 2
    assert pytest.importorskip("re").search(message, one_error_line(capsys))


def test_corrupt_ir_text_and_object_arrays(ir_model, tmp_path, capsys):
    bad = tmp_path / "bad.ir"
    bad.write_text(ir_model.read_text().replace("relu(%conv2d)", "relu(%nowhere)"))
    assert main(["dump", str(bad)]) == 2
    assert "bad.ir: parameter file " in one_error_line(capsys)  # no bad.npz beside it
    bad.with_suffix(".npz").write_bytes(ir_model.with_suffix(".npz").read_bytes())
    assert main(["dump", str(bad)]) == 2
    assert "bad.ir: %relu = relu: input %nowhere is not defined" in one_error_line(capsys)
    # a file that only pickle can read: snnc must refuse it, so the test has to write one
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert main(["run", str(ir_model), "--input", str(tmp_path / "objects.npy"), "-o", str(tmp_path / "y.npy")]) == 2
    assert "objects.npy" in one_error_line(capsys)  # refused: loading it would need pickle


def test_verbose_shows_the_traceback(tmp_path, capsys):
    assert main(["dump", str(tmp_path / "missing.onnx"), "--verbose"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("snnc: error:")
