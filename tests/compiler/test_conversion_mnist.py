"""ANN -> SNN conversion on real MNIST models (../shared/data): the default pipeline keeps the
ANN's accuracy. The fast tier checks the first 500 test images of LeNet-5, the residual network,
the PyTorch CNN and a Loihi artifact on refsim; ``-m slow`` checks the issue's targets on the
full test set (the numbers in docs/results.md come from benchmarks/conversion_accuracy.py)."""

from pathlib import Path

import numpy as np
import pytest

from snnc.compiler import load_model
from snnc.compiler.driver import compile_model, evaluate

REPO = Path(__file__).resolve().parents[2]
LENET = "models/snn_toolbox/lenet5/keras/99.14.h5"
RESNET = REPO / "benchmarks" / "models" / "mnist_resnet_bn.h5"
TORCH_ONNX = REPO / "benchmarks" / "models" / "mnist_torch_cnn.onnx"  # benchmarks/train_mnist_torch.py

pytestmark = pytest.mark.data


def converted(model_path, calibration, pipeline=None):
    return compile_model(load_model(model_path), calibration, pipeline=pipeline)


# The fast tier's accuracy targets, on the first 500 MNIST test images (one image: 0.2 pt) with the
# calibration docs/results.md used (the first 1000 training images). Measured there (ANN; SNN at
# T=8, T=32; agreement with the ANN at T=32), all in %:
#   LeNet-5 99.14.h5         98.8; 98.6, 99.0; 99.6     (full test set: 99.14; 99.08, 99.11)
#   residual + BN            99.4; 99.4, 99.4; 100      (full test set: 99.34; 98.84, 99.25)
#   PyTorch CNN (ONNX)       99.2; 98.4, 99.2; 99.6     (full test set: 99.26; 99.06, 99.13)
# The margins: at T=32 three images (0.6 pt) below the ANN, and 99 % agreement (the measured gaps
# are at most one image); at T=8 1.5 pt (measured: up to 0.8 pt on these images, 0.5 pt on the
# full set). Measured to fail: max-norm with v0=0 (Diehl 2015) on LeNet-5 at T=8 (96.4 %), and
# balancing at the 90th percentile instead of the 99.9th on LeNet-5 at T=32 (98.0 %) and on the
# PyTorch CNN (92.4 %).
SUBSET = 500
MARGIN_T32 = 0.006
MARGIN_T8 = 0.015


@pytest.mark.parametrize(
    "model", [LENET, RESNET, TORCH_ONNX], ids=["lenet5", "residual_batchnorm_keras", "pytorch_onnx"]
)
def test_subset_within_the_margin_of_the_ann(model, shared_data, mnist):
    calibration, test = mnist
    path = shared_data / model if model == LENET else model
    ev = evaluate(converted(path, calibration), test.head(SUBSET), [8, 32], progress=False)
    assert ev.ann_accuracy >= 0.98
    assert ev.snn_accuracy[32] >= ev.ann_accuracy - MARGIN_T32
    assert ev.agreement[32] >= 0.99
    assert ev.snn_accuracy[8] >= ev.ann_accuracy - MARGIN_T8


def test_loihi_artifact_on_refsim_within_the_margin_of_the_ann(shared_data, mnist):
    """mnist_cnn_avgpool.h5 compiled for Loihi, the chip's integers on refsim: on these 500
    images ANN 98.8 %, refsim at T=32 98.8 % with 99.6 % agreement (full test set: 98.70 and
    98.68, docs/results.md); the margins as above."""
    calibration, test = mnist
    compiled = compile_model(load_model(shared_data / "models" / "mnist_cnn_avgpool.h5"), calibration, target="loihi")
    ev = evaluate(compiled, test.head(SUBSET), [32], progress=False)
    assert ev.backend == "refsim"
    assert ev.ann_accuracy >= 0.98
    assert ev.snn_accuracy[32] >= ev.ann_accuracy - MARGIN_T32
    assert ev.agreement[32] >= 0.99


@pytest.mark.slow
def test_lenet_full_test_set_within_0_3_points(shared_data, mnist):
    calibration, test = mnist
    ev = evaluate(converted(shared_data / LENET, calibration), test, [16, 32, 64], progress=False)
    assert ev.ann_accuracy == pytest.approx(0.9914, abs=1e-9)
    assert max(ev.snn_accuracy.values()) >= ev.ann_accuracy - 0.003


@pytest.mark.slow
def test_lenet_with_max_pooling_replaced_is_reported(shared_data, mnist):
    calibration, test = mnist
    compiled = converted(shared_data / LENET, calibration, pipeline="avgpool")
    assert any("max pooling 2x2 replaced by average pooling" in n["message"] for n in compiled.manifest["notes"])
    ev = evaluate(compiled, test, [64], progress=False)
    assert ev.float_accuracy < ev.ann_accuracy  # the replacement costs accuracy, and it shows


@pytest.mark.slow
@pytest.mark.parametrize("model", [RESNET, TORCH_ONNX], ids=["residual_batchnorm_keras", "pytorch_onnx"])
def test_trained_models_within_0_5_points(model, mnist):
    calibration, test = mnist
    ev = evaluate(converted(model, calibration), test, [32, 64], progress=False)
    assert ev.ann_accuracy >= 0.99
    assert max(ev.snn_accuracy.values()) >= ev.ann_accuracy - 0.005


def test_pytorch_onnx_model_imports_like_onnxruntime(mnist):
    import onnxruntime

    from snnc.compiler import run_model

    x = mnist[1].head(64).x.astype(np.float32)[:, None] / 255
    session = onnxruntime.InferenceSession(str(TORCH_ONNX), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: x})[0]
    got = run_model(load_model(TORCH_ONNX), x)["logits"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
