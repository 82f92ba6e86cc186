"""Export a small PyTorch CNN with the QCFS activation of Bu et al. (2022), written as the
authors' code writes it, to the ``.onnx`` fixture the ONNX frontend's QCFS tests read
(``tests/frontends/fixtures/onnx/torch_qcfs/``), so CI never needs PyTorch.

The activation (``MyFloor`` in the authors' ``modules.py``): ``x / up``, then ``floor(x * t +
0.5) / t`` through an autograd Function whose backward passes the gradient straight
through, ``clamp(x, 0, 1)``, ``x * up``; ``up`` (lambda) a trainable parameter of shape
``[1]``, ``t`` the number of levels L. ``torch.onnx.export(..., dynamo=False)`` inlines the
Function's forward, so the file holds the chain ``Div -> Mul -> Add -> Floor -> Div -> Clip
-> Mul`` that the frontend fuses into one ``qcfs`` op. Each layer has its own lambda, away
from the default 8 (as after training), and its own L.

Not run by the tests, and not with the project's venv: it needs torch, which the project
does not install. Commands used for the committed files, from the repository root::

    python3.11 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 onnx==1.17.0 numpy==1.24.3 onnxruntime==1.32.0
    /tmp/torchenv/bin/python benchmarks/make_torch_qcfs_fixture.py

It writes ``qcfs_cnn_opset13.onnx``, ``qcfs_cnn_opset13.npz`` holding ``x`` (seeded float32
inputs, kept only where every floor's argument is at least :data:`FLOOR_MARGIN` from an
integer, so that float rounding differences between runtimes cannot flip a level) and
``torch`` (PyTorch's outputs on them), and ``MANIFEST.json``. onnxruntime must reproduce
PyTorch here; the tests compute onnxruntime's outputs themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from onnx_fixture_tools import describe, new_manifest, onnxruntime_outputs  # this folder: the scripts run as files

OUT = Path(__file__).resolve().parents[1] / "tests" / "frontends" / "fixtures" / "onnx" / "torch_qcfs"
NAME, OPSET, SEED = "qcfs_cnn_opset13", 13, 0
#: how far (in quantization steps) every floor's argument stays from an integer in the inputs kept
FLOOR_MARGIN = 1e-3
CANDIDATES, KEPT = 64, 8


class StraightThroughFloor(torch.autograd.Function):
    """``floor`` forward, the incoming gradient unchanged backward."""

    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class QCFS(nn.Module):
    """The authors' activation, operation for operation (see the module docstring)."""

    def __init__(self, up: float, t: int):
        super().__init__()
        self.up = nn.Parameter(torch.tensor([up]), requires_grad=True)
        self.t = t
        self.floor_arguments = None  # the last forward's, to choose inputs clear of the steps

    def forward(self, x):
        x = x / self.up
        self.floor_arguments = x * self.t + 0.5
        x = StraightThroughFloor.apply(self.floor_arguments) / self.t
        x = torch.clamp(x, 0, 1)
        return x * self.up


def qcfs_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        QCFS(up=2.5, t=4),
        nn.AvgPool2d(2),
        nn.Conv2d(4, 6, 3),
        QCFS(up=3.75, t=8),
        nn.Flatten(),
        nn.Linear(6 * 2 * 2, 5),
        QCFS(up=1.5, t=2),
    )


def clear_of_steps(model: nn.Sequential, x: torch.Tensor) -> np.ndarray:
    """Which rows of ``x`` keep every floor's argument FLOOR_MARGIN from an integer."""
    with torch.no_grad():
        model(x)
    keep = np.ones(len(x), bool)
    for layer in model:
        if isinstance(layer, QCFS):
            arg = layer.floor_arguments.numpy().reshape(len(x), -1)
            keep &= np.abs(arg - np.round(arg)).min(axis=1) > FLOOR_MARGIN
    return keep


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    model = qcfs_cnn().eval()
    candidates = torch.from_numpy(np.random.default_rng(SEED).normal(0, 2, size=(CANDIDATES, 1, 10, 10)).astype(np.float32))
    x = candidates[clear_of_steps(model, candidates)][:KEPT].numpy()
    assert len(x) == KEPT, f"only {len(x)} inputs clear of the quantization steps"
    path = OUT / f"{NAME}.onnx"
    torch.onnx.export(
        model, (torch.from_numpy(x),), str(path), input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=OPSET, dynamo=False,
    )
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(onnxruntime_outputs(path, x), expected, rtol=1e-5, atol=1e-5)
    np.savez(path.with_suffix(".npz"), x=x, torch=expected)
    manifest = new_manifest(torch=torch.__version__)
    lambdas = [layer.up.item() for layer in model if isinstance(layer, QCFS)]
    levels = [layer.t for layer in model if isinstance(layer, QCFS)]
    manifest["exports"][NAME] = describe(
        path, f"torch.onnx (TorchScript) {torch.__version__}", qcfs_levels=levels, qcfs_thresholds=lambdas
    )
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{NAME}: {path.stat().st_size} bytes, ops {manifest['exports'][NAME]['ops']}")


if __name__ == "__main__":
    main()
