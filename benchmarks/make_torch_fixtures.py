"""Export the small seeded PyTorch models whose ``.onnx`` files the exported-model tests read
(``tests/frontends/fixtures/onnx/torch/``), so CI never needs PyTorch.

Not run by the tests, and not with the project's venv: it needs torch, which the project
does not install. Commands used for the committed files, from the repository root::

    python3.11 -m venv /tmp/exportenv
    /tmp/exportenv/bin/pip install torch==2.13.0
    /tmp/exportenv/bin/pip install -c constraints-lock.txt onnx onnxruntime numpy
    /tmp/exportenv/bin/python benchmarks/make_torch_fixtures.py

For each export NAME it writes ``NAME.onnx`` (``torch.onnx.export(..., dynamo=False)``, a
dynamic batch axis, and a dynamic number of steps for sequences) and ``NAME.npz`` holding
``x`` (a seeded random float32 batch in the model's own layout: ``(N, steps, features)``
for the ``batch_first`` RNNs, ``(N, channels, length)`` for Conv1d), ``y`` (onnxruntime's
output on ``x``) and ``torch`` (PyTorch's), plus ``MANIFEST.json`` (versions; per export:
model, opset, input shape, ops used). Every export is checked here: onnxruntime must
reproduce PyTorch.

What the exporter writes for ``nn.RNN(batch_first=True)``: ``Transpose(perm=[1,0,2])`` to
time major, an ``RNN`` per layer (``Slice`` of the initial state between layers), its zero
initial state computed from the batch size (``Shape``, ``Gather``, ``ConstantOfShape``),
``Squeeze`` of the direction axis, ``Transpose`` back to batch first; ``y[:, -1]`` is a
``Gather`` of index -1 on axis 1, a Linear on every step a ``MatMul`` + ``Add``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from onnx_fixture_tools import describe, new_manifest, onnxruntime_outputs  # this folder: the scripts run as files

OUT = Path(__file__).resolve().parents[1] / "tests" / "frontends" / "fixtures" / "onnx" / "torch"
BATCH, STEPS, FEATURES, HIDDEN, CLASSES = 5, 7, 3, 6, 2


class RNNClassifier(nn.Module):
    """``nn.RNN(relu, batch_first)`` and a Linear on the last step, or on every step."""

    def __init__(self, layers: int, every_step: bool = False):
        super().__init__()
        self.rnn = nn.RNN(FEATURES, HIDDEN, num_layers=layers, nonlinearity="relu", batch_first=True)
        self.fc = nn.Linear(HIDDEN, CLASSES)
        self.every_step = every_step

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y) if self.every_step else self.fc(y[:, -1])


def conv1d_classifier() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(4, 6, 3),
        nn.ReLU(),
        nn.AvgPool1d(2),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    )


SEQUENCE_AXES = {0: "N", 1: "steps"}
#: name -> (model function, input shape, input's dynamic axes, output's dynamic axes, opset)
EXPORTS = {
    "rnn_last_opset13": (lambda: RNNClassifier(1), (BATCH, STEPS, FEATURES), SEQUENCE_AXES, {0: "N"}, 13),
    "rnn2_last_opset17": (lambda: RNNClassifier(2), (BATCH, STEPS, FEATURES), SEQUENCE_AXES, {0: "N"}, 17),
    "rnn_steps_opset14": (lambda: RNNClassifier(1, True), (BATCH, STEPS, FEATURES), SEQUENCE_AXES, SEQUENCE_AXES, 14),
    "rnn2_steps_opset13": (lambda: RNNClassifier(2, True), (BATCH, STEPS, FEATURES), SEQUENCE_AXES, SEQUENCE_AXES, 13),
    "conv1d_opset13": (conv1d_classifier, (BATCH, 2, 16), {0: "N"}, {0: "N"}, 13),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = new_manifest(torch=torch.__version__)
    for seed, (name, (make, shape, in_axes, out_axes, opset)) in enumerate(EXPORTS.items()):
        torch.manual_seed(seed)
        model = make().eval()
        x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
        path = OUT / f"{name}.onnx"
        torch.onnx.export(
            model, (torch.from_numpy(x),), str(path), input_names=["x"], output_names=["y"],
            dynamic_axes={"x": in_axes, "y": out_axes}, opset_version=opset, dynamo=False,
        )
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        y = onnxruntime_outputs(path, x)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5, err_msg=name)
        np.savez(path.with_suffix(".npz"), x=x, y=y, torch=expected)
        manifest["exports"][name] = describe(path, f"torch.onnx (TorchScript) {torch.__version__}") | {"model": repr(model).splitlines()[0]}
        print(f"{name}: {path.stat().st_size} bytes, ops {manifest['exports'][name]['ops']}")
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
