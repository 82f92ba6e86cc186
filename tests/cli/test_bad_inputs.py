"""A catalogue of bad invocations: each gives one ``snnc: error:`` line naming what is wrong
and what is supported, exit status 2, and leaves no file behind (never a traceback, never
``snnc: internal error``, never exit 0 with meaningless numbers).

Each case is a command line (``{t}``: the case's own folder, ``{d}``: scikit-learn's digits
as ``train.npz`` / ``test.npz``, ``{a}``: an artifact compiled from ``example:digits_cnn``
for Nengo), the files it needs (written into ``{t}`` first), the exit status, and a
substring of the error line.
"""

import hashlib
import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from snnc.compiler.cli import main

EX = "example:digits_cnn"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def _images(n: int, shape=(8, 8, 1)) -> np.ndarray:
    return np.random.default_rng(n).random((n, *shape)).astype(np.float32)


def _labels(n: int) -> np.ndarray:
    return np.arange(n) % 10


# ----------------------------------------------------------------------------- files a case needs


def text(name: str, content: str = "not what it claims to be\n"):
    return lambda t, fx: (t / name).write_text(content)


def data(name: str, content: bytes):
    return lambda t, fx: (t / name).write_bytes(content)


def folder(name: str, *files: str):
    def make(t, fx):
        (t / name).mkdir()
        for f in files:
            (t / name / f).write_text("x\n")

    return make


def npy(name: str, array: np.ndarray, pickled: bool = False):
    return lambda t, fx: np.save(t / name, array, allow_pickle=pickled)


def npz(name: str, pickled: bool = False, **arrays: np.ndarray):
    def make(t, fx):
        if pickled:  # only pickle can read it: snnc must refuse it, so the test has to write one
            np.savez(t / name, **arrays)
        else:
            np.savez(t / name, **{k: np.asarray(v) for k, v in arrays.items()})

    return make


def artifact(change: Callable[[Path], None]):
    """A copy of the compiled artifact at {t}/art, then ``change``d."""

    def make(t, fx):
        shutil.copytree(fx["a"], t / "art")
        change(t / "art")

    return make


def _manifest(edit):
    def change(art: Path):
        path = art / "manifest.json"
        path.write_text(edit(path.read_text()))

    return change


def _newer(manifest: str) -> str:
    record = json.loads(manifest)
    record["format_version"] += 1
    return json.dumps(record)


def _truncate(art: Path):
    path = art / "model.npz"
    path.write_bytes(path.read_bytes()[:200])


def both(*makers):
    def make(t, fx):
        for m in makers:
            m(t, fx)

    return make


def two_output_ir(name: str):
    """A float IR model with two outputs (a dense layer and its ReLU)."""

    def make(t, fx):
        from snnc.compiler import ops
        from snnc.compiler.graph import GraphBuilder
        from snnc.compiler.text import save

        b = GraphBuilder("two_outputs")
        x = b.input("input", (4,))
        y = b.add(ops.Dense(3), [x], {"weight": np.ones((3, 4)), "bias": np.zeros(3)})
        b.output(y)
        b.output(b.add(ops.ReLU(), [y]))
        save(b.build(), t / name)

    return make


# ----------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Case:
    argv: str
    status: int
    message: str
    setup: Callable | None = None


def case(id: str, argv: str, message: str, setup=None, status: int = 2):
    return pytest.param(Case(argv, status, message, setup), id=id)


X = _images(4)
RUN = "run {ex} -o {t}/y.npy --input"
COMPILE = "compile {ex} --calib {d}/train.npz -o {t}/out"
EVAL = "evaluate {a} --data"
EVAL_EX = "evaluate {ex} --data {d}/test.npz"
VERIFY = "verify {a} --data {d}/test.npz"

CASES = [
    # --- the command line itself
    case("no-command", "", "give a command"),
    case("unknown-command", "frobnicate", "invalid choice: 'frobnicate'"),
    case("unknown-global-flag", "--frobnicate", "unrecognized arguments: --frobnicate"),
    case("version-after-command", "dump {ex} --version", "unrecognized arguments: --version"),
    case("help-with-a-value", "--help=me", "ignored explicit argument 'me'"),
    case("dump-without-model", "dump", "the following arguments are required: model"),
    case("model-empty-path", "dump ''", "argument model: an empty path"),
    case("data-empty-path", "evaluate {ex} --data ''", "argument --data: an empty path"),
    case("output-empty-path", "compile {ex} --calib {d}/train.npz -o ''", "argument -o/--output: an empty path"),
    case("weights-empty-path", "dump {t}/m.json --weights ''", "argument --weights: an empty path"),
    # --- model files
    case("model-missing", "dump {t}/missing.h5", "missing.h5: no such file or directory"),
    case("model-directory", "dump {t}/dir", "dir: a directory but not a SavedModel", folder("dir", "a.txt")),
    case("model-directory-named-onnx", "dump {t}/dir.onnx", "dir.onnx: a directory but not a SavedModel", folder("dir.onnx")),
    case("model-empty-h5", "dump {t}/m.h5", "m.h5: ", data("m.h5", b"")),
    case("model-text-as-h5", "dump {t}/m.h5", "m.h5: ", text("m.h5")),
    case("model-text-as-hdf5", "dump {t}/m.hdf5", "m.hdf5: ", text("m.hdf5")),
    case("model-text-as-keras", "dump {t}/m.keras", "m.keras: ", text("m.keras")),
    case("model-text-as-onnx", "dump {t}/m.onnx", "m.onnx: ", text("m.onnx")),
    case("model-empty-onnx", "dump {t}/m.onnx", "m.onnx: ", data("m.onnx", b"")),
    case("model-png-as-onnx", "dump {t}/m.onnx", "m.onnx: ", data("m.onnx", PNG)),
    case("model-text-as-json", "dump {t}/m.json", "m.json: ", text("m.json")),
    case("model-json-list", "dump {t}/m.json", "m.json: ", text("m.json", "[1, 2]")),
    case("model-text-as-ir", "dump {t}/m.ir", "m.ir: ", text("m.ir")),
    case("model-unknown-suffix", "dump {t}/m.pt", "m.pt: unknown model file type .pt; supported: Keras", text("m.pt")),
    case("model-no-suffix", "dump {t}/model", "unknown model file type (no suffix)", text("model")),
    case("example-unknown", "dump example:nope", "example:nope: no such example; examples: example:digits_cnn"),
    case("example-empty-name", "dump example:", "example:: no such example"),
    case("dump-bad-format", "dump {ex} --format yaml", "invalid choice: 'yaml'"),
    case("dump-output-under-a-file", "dump {ex} -o {t}/taken/g.ir", "taken: a file, not a directory", text("taken")),
    # --- --weights
    case("weights-with-keras-model", "dump {ex} --weights {t}/w.h5", "goes with a Keras .json model config only", text("w.h5")),
    case("model-json-not-keras", "dump {t}/m.json --weights {t}/w.h5", "m.json: not a Keras model config", text("m.json", "{}")),
    case("weights-on-artifact", "run {a} --weights {t}/w.h5 --input {t}/x.npy -o {t}/y.npy", "goes with a Keras .json model config only",
         both(text("w.h5"), npy("x.npy", X))),
    # --- run
    case("run-input-missing", RUN + " {t}/none.npy", "none.npy: no such file"),
    case("run-input-directory", RUN + " {t}/x.npy", "x.npy: ", folder("x.npy")),
    case("run-input-suffix", RUN + " {t}/x.csv", "x.csv: unsupported data file type .csv; use .npy or .npz", text("x.csv", "1,2\n")),
    case("run-input-text-as-npy", RUN + " {t}/x.npy", "x.npy: not a NumPy .npy file", text("x.npy")),
    case("run-input-empty-npz", RUN + " {t}/x.npz", "x.npz: empty", data("x.npz", b"")),
    case("run-input-wrong-keys", RUN + " {t}/x.npz", "holds ['a', 'b'], but the model's inputs are", npz("x.npz", a=X, b=X)),
    case("run-input-nan", RUN + " {t}/x.npy", "the inputs contain NaN", npy("x.npy", np.where(X > 0.5, np.nan, X))),
    case("run-input-inf", RUN + " {t}/x.npy", "the inputs contain NaN or infinite", npy("x.npy", np.where(X > 0.5, np.inf, X))),
    case("run-input-wrong-shape", RUN + " {t}/x.npy", "got data of shape [4, 7, 7, 1]", npy("x.npy", _images(4, (7, 7, 1)))),
    case("run-input-one-example-unbatched", RUN + " {t}/x.npy", "got data of shape [8, 8, 1]", npy("x.npy", X[0])),
    case("run-input-no-examples", RUN + " {t}/x.npy", "no examples", npy("x.npy", X[:0])),
    case("run-input-strings", RUN + " {t}/x.npy", "not numeric", npy("x.npy", np.array(["a", "b"]))),
    case("run-input-objects", RUN + " {t}/x.npy", "x.npy: Object arrays cannot be loaded", npy("x.npy", np.array([{}], dtype=object), pickled=True)),
    case("run-output-suffix", "run {ex} --input {t}/x.npy -o {t}/y.csv", "y.csv: unsupported output file type .csv", npy("x.npy", X)),
    case("run-npy-output-two-outputs", "run {t}/two.ir --input {t}/x.npy -o {t}/y.npy", "the model has 2 outputs",
         both(two_output_ir("two.ir"), npy("x.npy", _images(3, (4,))))),
    case("run-timesteps-on-float-model", "run {ex} --input {t}/x.npy -o {t}/y.npy --timesteps 8", "--timesteps applies to compiled",
         npy("x.npy", X)),
    case("run-timesteps-0", "run {a} --input {t}/x.npy -o {t}/y.npy --timesteps 0", "argument --timesteps: 0 must be at least 1", npy("x.npy", X)),
    case("run-timesteps-huge", "run {a} --input {t}/x.npy -o {t}/y.npy --timesteps 10000000", "10000000: at most 1,000,000 steps", npy("x.npy", X)),
    case("run-timesteps-text", "run {a} --input {t}/x.npy -o {t}/y.npy --timesteps a", "'a' is not an integer", npy("x.npy", X)),
    case("run-batch-size-0", "run {a} --input {t}/x.npy -o {t}/y.npy --batch-size 0", "argument --batch-size: 0 must be at least 1", npy("x.npy", X)),
    case("run-artifact-wrong-shape", "run {a} --input {t}/x.npy -o {t}/y.npy", "do not fit the model's input [8, 8, 1]", npy("x.npy", _images(4, (28, 28)))),
    case("run-artifact-nan", "run {a} --input {t}/x.npy -o {t}/y.npy", "NaN", npy("x.npy", X * np.nan)),
    case("run-output-a-directory", "run {ex} --input {t}/x.npy -o {t}/y.npy", "y.npy: Is a directory", both(npy("x.npy", X), folder("y.npy"))),
    case("run-without-output", "run {ex} --input {t}/x.npy", "the following arguments are required: -o/--output", npy("x.npy", X)),
    # --- --input-scale
    case("input-scale-0", COMPILE + " --input-scale 0", "argument --input-scale: 0 must be a positive finite number"),
    case("input-scale-negative", COMPILE + " --input-scale -1", "argument --input-scale: -1 must be a positive finite number"),
    case("input-scale-nan", COMPILE + " --input-scale nan", "argument --input-scale: nan must be a positive finite number"),
    case("input-scale-inf", COMPILE + " --input-scale inf", "argument --input-scale: inf must be a positive finite number"),
    case("input-scale-text", COMPILE + " --input-scale half", "argument --input-scale: 'half' is not a number"),
    case("run-input-scale-0", "run {a} --input {t}/x.npy -o {t}/y.npy --input-scale 0", "must be a positive finite number", npy("x.npy", X)),
    # --- compile
    case("compile-without-calib", "compile {ex} -o {t}/out", "the following arguments are required: --calib"),
    case("compile-without-output", "compile {ex} --calib {d}/train.npz", "the following arguments are required: -o/--output"),
    case("calib-missing", "compile {ex} --calib {t}/none.npz -o {t}/out", "none.npz: no such file"),
    case("calib-suffix", "compile {ex} --calib {t}/c.txt -o {t}/out", "c.txt: unsupported data file type .txt", text("c.txt")),
    case("calib-not-idx-folder", "compile {ex} --calib {t}/c -o {t}/out", "c: not an IDX dataset folder", folder("c", "x.npy")),
    case("calib-wrong-size", "compile {ex} --calib {t}/c.npy -o {t}/out", "examples of shape [28, 28] do not fit the model's input [8, 8, 1]",
         npy("c.npy", _images(4, (28, 28)))),
    case("calib-more-channels", "compile {ex} --calib {t}/c.npy -o {t}/out", "examples of shape [8, 8, 3] do not fit the model's input [8, 8, 1]",
         npy("c.npy", _images(4, (8, 8, 3)))),
    case("calib-no-examples", "compile {ex} --calib {t}/c.npy -o {t}/out", "empty", npy("c.npy", X[:0])),
    case("calib-nan", "compile {ex} --calib {t}/c.npy -o {t}/out", "NaN", npy("c.npy", X * np.nan)),
    case("calib-examples-0", COMPILE + " --calib-examples 0", "argument --calib-examples: 0 must be at least 1"),
    case("output-existing-file", "compile {ex} --calib {d}/train.npz -o {t}/out", "out: exists and is not an snnc artifact", text("out")),
    case("output-non-empty-dir", "compile {ex} --calib {d}/train.npz -o {t}/out", "out: exists and is not an snnc artifact", folder("out", "mine.txt")),
    case("output-under-a-file", "compile {ex} --calib {d}/train.npz -o {t}/f/out", "f: a file, not a directory", text("f")),
    case("dump-dir-a-file", COMPILE + " --dump-dir {t}/f", "f: a file, not a directory", text("f")),
    case("dump-dir-under-a-file", COMPILE + " --dump-dir {t}/f/ir", "f: a file, not a directory", text("f")),
    case("target-loihi-float-pipeline", COMPILE + " --target loihi --pipeline default", "does not reach the chip's integers"),
    case("target-unknown", COMPILE + " --target spinnaker", "argument --target: invalid choice: 'spinnaker'"),
    # --- --pipeline
    case("pipeline-unknown-pass", COMPILE + " --pipeline canonicalize,fold_bn", "unknown pass 'fold_bn'; passes: canonicalize"),
    case("pipeline-unknown-option", COMPILE + " --pipeline 'convert_to_spiking{colour=red}'", "convert_to_spiking: unknown option 'colour=red'"),
    case("pipeline-option-without-value", COMPILE + " --pipeline 'threshold_balance{p}'", "option p needs a value"),
    case("pipeline-bad-float", COMPILE + " --pipeline 'default,threshold_balance{p=high}'", "option p='high' is not a float"),
    case("pipeline-bad-bool", COMPILE + " --target loihi --pipeline 'loihi,lower_loihi{adapt=maybe}'", "option adapt='maybe' is not a bool"),
    case("pipeline-bad-choice", COMPILE + " --pipeline 'canonicalize,threshold_balance{method=median},convert_to_spiking'",
         "option method='median' is not one of max, percentile"),
    case("pipeline-unbalanced-brace", COMPILE + " --pipeline 'threshold_balance{method=max'", "cannot parse the pipeline at"),
    case("pipeline-stray-brace", COMPILE + " --pipeline 'canonicalize},convert_to_spiking'", "cannot parse the pipeline at"),
    case("pipeline-empty-item", COMPILE + " --pipeline canonicalize,,convert_to_spiking", "empty item"),
    case("pipeline-trailing-comma", COMPILE + " --pipeline canonicalize,convert_to_spiking,", "empty item at the end of the pipeline"),
    case("pipeline-leading-comma", COMPILE + " --pipeline ,canonicalize,convert_to_spiking", "empty item in the pipeline"),
    case("pipeline-empty", COMPILE + " --pipeline ''", "empty pipeline"),
    case("pipeline-spaces-only", COMPILE + " --pipeline ' '", "empty pipeline"),
    case("pipeline-named-with-options", COMPILE + " --pipeline 'default{x=1}'", "pipeline default takes no options"),
    case("pipeline-loihi-for-nengo", COMPILE + " --pipeline loihi", "a Loihi pass; compile with --target loihi"),
    case("dump-after-unknown", COMPILE + " --dump-after fold_bn", "--dump-after fold_bn"),
    case("dump-after-not-in-pipeline", COMPILE + " --pipeline canonicalize,convert_to_spiking --dump-after fold_batchnorm", "--dump-after fold_batchnorm: the pipeline does not run it; it runs canonicalize, convert_to_spiking"),
    # --- evaluate: data
    case("eval-data-missing", EVAL + " {t}/none.npz", "none.npz: no such file"),
    case("eval-data-without-labels", EVAL + " {t}/x.npy", "no labels 'y'", npy("x.npy", X)),
    case("eval-data-without-x", EVAL + " {t}/d.npz", "no array 'x' (holds ['images', 'y'])", npz("d.npz", images=X, y=_labels(4))),
    case("eval-labels-count", EVAL + " {t}/d.npz", "4 inputs but 3 labels", npz("d.npz", x=X, y=_labels(3))),
    case("eval-labels-strings", EVAL + " {t}/d.npz", "labels must be integers", npz("d.npz", x=X, y=np.array(list("abcd")))),
    case("eval-labels-fractions", EVAL + " {t}/d.npz", "labels must be integers", npz("d.npz", x=X, y=np.full(4, 0.5))),
    case("eval-labels-nan", EVAL + " {t}/d.npz", "the labels contain NaN", npz("d.npz", x=X, y=np.array([0, 1, np.nan, 2]))),
    case("eval-labels-negative", EVAL + " {t}/d.npz", "d.npz: labels range over -1..3, but model digits_cnn has 10 classes (labels 0..9)",
         npz("d.npz", x=X, y=np.array([0, -1, 2, 3]))),
    case("eval-labels-past-the-classes", EVAL + " {t}/d.npz", "d.npz: labels range over 1..10, but model digits_cnn has 10 classes",
         npz("d.npz", x=X, y=np.array([1, 2, 3, 10]))),
    case("eval-labels-2d", EVAL + " {t}/d.npz", "labels must be integers", npz("d.npz", x=X, y=np.zeros((4, 1, 2)))),
    case("eval-labels-objects", EVAL + " {t}/d.npz", "d.npz: Object arrays cannot be loaded",
         npz("d.npz", pickled=True, x=X, y=np.array([{}, {}, {}, {}], dtype=object))),
    case("eval-no-examples", EVAL + " {t}/d.npz", "the dataset is empty", npz("d.npz", x=X[:0], y=_labels(0))),
    case("eval-wrong-size", EVAL + " {t}/d.npz", "examples of shape [28, 28] do not fit the model's input [8, 8, 1]",
         npz("d.npz", x=_images(4, (28, 28)), y=_labels(4))),
    case("eval-inputs-strings", EVAL + " {t}/d.npz", "not numeric", npz("d.npz", x=np.array(list("abcd")), y=_labels(4))),
    case("eval-data-not-idx-folder", EVAL + " {t}/mnist", "mnist: not an IDX dataset folder", folder("mnist", "train.csv")),
    case("eval-idx-not-idx", EVAL + " {t}/mnist", "not an IDX file",
         both(folder("mnist"), *(text(f"mnist/{n}-ubyte") for n in ("t10k-images-idx3", "t10k-labels-idx1")))),
    # --- evaluate: flags
    case("eval-n-0", EVAL + " {d}/test.npz -n 0", "argument -n: 0 must be at least 1"),
    case("eval-batch-size-0", EVAL + " {d}/test.npz --batch-size 0", "argument --batch-size: 0 must be at least 1"),
    case("eval-timesteps-0", EVAL + " {d}/test.npz --timesteps 0", "--timesteps '0': give positive integers"),
    case("eval-timesteps-negative", EVAL + " {d}/test.npz --timesteps=-1", "--timesteps '-1': give positive integers"),
    case("eval-timesteps-text", EVAL + " {d}/test.npz --timesteps a", "--timesteps 'a': give positive integers"),
    case("eval-timesteps-empty", EVAL + " {d}/test.npz --timesteps ''", "--timesteps '': give positive integers"),
    case("eval-timesteps-empty-item", EVAL + " {d}/test.npz --timesteps 8,,16", "--timesteps '8,,16': give positive integers"),
    case("eval-timesteps-float", EVAL + " {d}/test.npz --timesteps 8.5", "--timesteps '8.5': give positive integers"),
    case("eval-timesteps-huge", EVAL + " {d}/test.npz --timesteps 8,100000000000000000000000", "--timesteps 100000000000000000000000: at most 1,000,000 steps"),
    case("eval-backend-unknown", EVAL + " {d}/test.npz --backend gpu", "argument --backend: invalid choice: 'gpu'"),
    case("eval-refsim-on-nengo-artifact", EVAL + " {d}/test.npz --backend refsim", "backend refsim runs networks compiled for Loihi"),
    case("eval-loihi-on-float-model", EVAL_EX + " --backend loihi", "--backend loihi runs networks compiled for Loihi; give --target loihi"),
    case("eval-refsim-compiling-for-nengo", EVAL_EX + " --backend refsim --target nengo", "--backend refsim runs networks compiled for Loihi"),
    case("eval-artifact-with-time-passes", EVAL + " {d}/test.npz --time-passes", "--time-passes applies when compiling"),
    case("eval-artifact-with-pipeline", EVAL + " {d}/test.npz --pipeline default", "--pipeline applies when compiling"),
    case("eval-artifact-with-calib", EVAL + " {d}/test.npz --calib {d}/train.npz", "--calib applies when compiling"),
    case("eval-artifact-with-target", EVAL + " {d}/test.npz --target loihi", "--target applies when compiling; {a} is already compiled"),
    case("eval-artifact-with-calib-examples", EVAL + " {d}/test.npz --calib-examples 5", "--calib-examples applies when compiling"),
    case("eval-calib-wrong-size", EVAL_EX + " --calib {t}/c.npy", "examples of shape [28, 28] do not fit", npy("c.npy", _images(4, (28, 28)))),
    case("eval-plot-under-a-file", EVAL + " {d}/test.npz --timesteps 4 -n 5 --plot {t}/f/acc.png", "f: a file, not a directory", text("f")),
    case("eval-plot-suffix", EVAL + " {d}/test.npz --timesteps 4 -n 5 --plot {t}/acc.pdf", "--plot {t}/acc.pdf: draws a PNG image; give a file name ending in .png"),
    # --- artifacts
    case("artifact-empty-dir", "evaluate {t}/art --data {d}/test.npz", "art: a directory but not a SavedModel", folder("art")),
    case("artifact-manifest-not-json", "evaluate {t}/art --data {d}/test.npz", "manifest.json: not a readable manifest",
         artifact(_manifest(lambda m: m[: len(m) // 2]))),
    case("artifact-manifest-a-list", "evaluate {t}/art --data {d}/test.npz", "manifest.json is not an snnc artifact manifest",
         artifact(_manifest(lambda m: "[]"))),
    case("artifact-manifest-foreign", "evaluate {t}/art --data {d}/test.npz", "manifest.json is not an snnc artifact manifest",
         artifact(_manifest(lambda m: '{"name": "my package"}'))),
    case("artifact-newer-format", "evaluate {t}/art --data {d}/test.npz", "is newer than this snnc reads", artifact(_manifest(_newer))),
    case("artifact-bad-format-version", "evaluate {t}/art --data {d}/test.npz", "format_version",
         artifact(_manifest(lambda m: m.replace('"format_version": 1', '"format_version": "one"')))),
    case("artifact-missing-model-ir", "evaluate {t}/art --data {d}/test.npz", "model.ir", artifact(lambda a: (a / "model.ir").unlink())),
    case("artifact-truncated-npz", "evaluate {t}/art --data {d}/test.npz", "model.npz", artifact(_truncate)),
    case("run-artifact-missing-model-ir", "run {t}/art --input {t}/x.npy -o {t}/y.npy", "model.ir",
         both(artifact(lambda a: (a / "model.ir").unlink()), npy("x.npy", X))),
    case("compile-an-artifact", "compile {a} --calib {d}/train.npz -o {t}/out", "model digits_cnn is already compiled (a spiking graph)"),
    # --- verify
    case("verify-nengo-artifact", VERIFY, "verify checks networks compiled for Loihi"),
    case("verify-not-an-artifact", "verify {ex} --data {d}/test.npz", "not a compiled artifact"),
    case("verify-directory", "verify {t}/dir --data {d}/test.npz", "dir: not a compiled artifact", folder("dir")),
    case("verify-n-0", VERIFY + " -n 0", "argument -n: 0 must be at least 1"),
    case("verify-timesteps-0", VERIFY + " --timesteps 0", "argument --timesteps: 0 must be at least 1"),
    case("verify-timesteps-empty", VERIFY + " --timesteps ''", "argument --timesteps: '' is not an integer"),
    case("verify-data-missing", "verify {a} --data {t}/none.npz", "none.npz: no such file"),
    case("verify-without-data", "verify {a}", "the following arguments are required: --data"),
    # --- demo
    case("demo-epochs-0", "demo --epochs 0", "argument --epochs: 0 must be at least 1"),
    case("demo-timesteps-bad", "demo --timesteps 8,x", "--timesteps '8,x': give positive integers"),
    case("demo-target-unknown", "demo --target tpu", "argument --target: invalid choice: 'tpu'"),
    case("demo-seed-text", "demo --seed one", "argument --seed: invalid int value: 'one'"),
    case("demo-output-existing-file", "demo --epochs 1 -o {t}/out", "out: exists and is not an snnc artifact", text("out")),
    case("demo-output-nengo-artifact-for-loihi", "demo --epochs 1 --target loihi -o {t}/art", "holds an artifact compiled for nengo",
         artifact(lambda a: None)),
]


@pytest.fixture(scope="module")
def compiled_artifact(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("artifact") / "snn"
    assert main(["compile", EX, "--calib", str(digits / "train.npz"), "--calib-examples", "200", "-o", str(out)]) == 0
    return out


def _fill(template: str, fixtures: dict) -> str:
    """``{t}`` etc. replaced by the paths (not str.format: pipelines have braces)."""
    for key, value in fixtures.items():
        template = template.replace("{%s}" % key, str(value))
    return template


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with a hash of its content (directories: '/')."""
    return {
        str(p.relative_to(folder)): "/" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
    }


@pytest.mark.parametrize("bad", CASES)
def test_bad_invocation(bad: Case, digits, compiled_artifact, tmp_path, capsys):
    fixtures = {"t": tmp_path, "d": digits, "a": compiled_artifact, "ex": EX}
    if bad.setup:
        bad.setup(tmp_path, fixtures)
    before, artifact_before = _snapshot(tmp_path), _snapshot(compiled_artifact)
    capsys.readouterr()
    status = main(shlex.split(_fill(bad.argv, fixtures)))
    err = capsys.readouterr().err
    assert status == bad.status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnc: error: "), err
    assert _fill(bad.message, fixtures) in lines[0]
    assert _snapshot(tmp_path) == before, "a file was left behind or changed"
    assert _snapshot(compiled_artifact) == artifact_before
