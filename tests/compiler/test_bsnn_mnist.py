"""BSNN (docs/bsnn.md) on the residual MNIST network benchmarks/models/mnist_resnet_bn.h5 against
plain IF conversion at equal T, calibrated on the first 1000 training images.

Measured on the first 500 test images (ANN 99.4 %), in %, T = 8 / 16 / 32 / 64:
  IF (default pipeline)          99.4 / 99.4 / 99.4 / 99.4
  bistable, period 2             8.4 / 96.8 / 99.4 / 99.4   (6 levels: no output before 12 steps)
IF is already at the ANN at T=8 on this network, so BSNN cannot beat it; its pipeline latency
(levels x period steps) and its integrate-then-fire halving leave it fewer useful steps at
equal T. The slow test states the issue's claim and is expected to fail (strict)."""

from pathlib import Path

import pytest

from snnc.compiler import load_model
from snnc.compiler.driver import compile_model, evaluate

RESNET = Path(__file__).resolve().parents[2] / "benchmarks" / "models" / "mnist_resnet_bn.h5"
BSNN = "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{neuron=bistable,period=2}"

pytestmark = pytest.mark.data


@pytest.mark.slow  # ~20 s (compile + calibration); the fast version: test_bistable.py, hand-built net
def test_bsnn_reaches_the_ann_once_the_pipeline_has_filled(mnist):
    # 64 images, T=32 (period 2, 6 levels: 12 steps of latency, then 5 integrate cycles)
    calibration, test = mnist
    ev = evaluate(compile_model(load_model(RESNET), calibration, pipeline=BSNN), test.head(64), [32], progress=False)
    assert ev.snn_accuracy[32] >= ev.ann_accuracy - 1 / 64
    assert ev.agreement[32] >= 62 / 64


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="measured: IF is at the ANN (99.4 %) from T=8; BSNN period 2 gives 8.4 / 96.8 "
                   "/ 99.4 / 99.4 % at T=8/16/32/64 (latency 6 levels x 2 steps)")
def test_bsnn_beats_if_at_equal_t(mnist):
    calibration, test = mnist
    ts = [8, 16, 32, 64]
    plain = evaluate(compile_model(load_model(RESNET), calibration), test.head(500), ts, progress=False)
    bsnn = evaluate(compile_model(load_model(RESNET), calibration, pipeline=BSNN), test.head(500), ts, progress=False)
    assert all(bsnn.snn_accuracy[t] >= plain.snn_accuracy[t] for t in ts)
    assert any(bsnn.snn_accuracy[t] > plain.snn_accuracy[t] for t in ts)
