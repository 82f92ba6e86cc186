"""The issue's headline on a real CIFAR-10 network, reduced for the fast tier: SNN Toolbox's
AlexNet-BN (`models/snn_toolbox/cifar10_alexnet_bn/81.45.h5`: 3x3 stride-2 max pools, batch
norms) converted with the default method at low T. The full measurement (500 / 500 split, every
method, T = 4 to 128) is `benchmarks/low_latency.py`, in docs/results.md."""

import numpy as np
import pytest

from snnc.compiler import load_model
from snnc.compiler.datasets import Dataset
from snnc.compiler.driver import compile_model, evaluate

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def cifar(shared_data):
    """The issue's split of cifar10-subset (calibration: the first 500 images, test: the last
    500), mapped from the stored ``2 x / 255 - 1`` to the model's ``x / 255``."""
    folder = shared_data / "cifar10-subset"
    model = shared_data / "models/snn_toolbox/cifar10_alexnet_bn/81.45.h5"
    if not folder.is_dir() or not model.is_file():
        pytest.skip("cifar10-subset or the AlexNet-BN model is absent from the shared data")
    x = (np.load(folder / "x_test.npz")["arr_0"] + 1.0) / 2.0
    y = np.load(folder / "y_test.npz")["arr_0"].argmax(axis=1)
    return load_model(model), Dataset(x[:500], y[:500], "calibration"), Dataset(x[500:], y[500:], "test")


def test_the_default_method_converts_alexnet_bn_within_a_few_points_at_t16_and_t32(cifar):
    """Measured on all 500 test images (docs/results.md): ANN 83.8 %, default 82.0 % at T=16 and
    83.0 % at T=32 (rate conversion: 78.0 and 81.0). Here 128 calibration and 100 test images."""
    ann, calibration, test = cifar
    compiled = compile_model(ann, calibration, calibration_examples=128, input_scale=1.0)
    assert compiled.manifest["method"] == "default"
    ev = evaluate(compiled, test.head(100), [16, 32], input_scale=1.0, progress=False)
    assert ev.snn_accuracy[32] >= ev.ann_accuracy - 0.03, ev.snn_accuracy
    assert ev.snn_accuracy[16] >= ev.ann_accuracy - 0.05, ev.snn_accuracy
    assert ev.agreement[32] >= 0.9, ev.agreement
