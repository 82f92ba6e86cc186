"""Export the small PyTorch models whose ``.onnx`` files the ONNX frontend tests read
(``tests/frontends/fixtures/onnx/``), so CI never needs PyTorch.

Not run by the tests, and not with the project's venv: it needs PyTorch (an optional extra,
see STACK.md) and onnxruntime beside it. Commands used for the committed files, from the
repository root::

    /tmp/k3venv/bin/pip install torch==2.13.0                   # on its own (CPU wheel)
    /tmp/k3venv/bin/pip install onnx==1.17.0 onnxscript==0.7.2 onnxruntime==1.32.0
    /tmp/k3venv/bin/python benchmarks/make_onnx_fixtures.py

For each export NAME it writes ``NAME.onnx`` (and ``NAME.onnx.data`` for external data)
and ``NAME.npz`` holding ``x`` (a seeded random float32 batch in the model's NCHW layout)
and ``y`` (onnxruntime's output on ``x``), plus ``MANIFEST.json`` (versions; per export:
model, exporter, opset, batch handling, ops used). Every export is also checked here:
onnxruntime must reproduce PyTorch's output.

Models are tiny (a few KB each) with seeded weights, BatchNorm statistics made non-trivial,
and are exported by the TorchScript exporter (``dynamo=False``) at an old and a recent
opset, with a dynamic batch axis or the fixed batch of 1 that exports without
``dynamic_axes`` have; one is exported by the dynamo exporter with external data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from onnx_fixture_tools import describe, new_manifest, onnxruntime_outputs  # this folder: the scripts run as files

OUT = Path(__file__).resolve().parents[1] / "tests" / "frontends" / "fixtures" / "onnx"
BATCH = 5


# --------------------------------------------------------------------------- models


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(20, 16), nn.Linear(16, 12), nn.Linear(12, 10)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = self.drop(F.relu(self.fc1(x)))
        x = F.leaky_relu(self.fc2(x), 0.1)
        return F.softmax(self.fc3(x), dim=1)


class LeNetBN(nn.Module):
    """LeNet with BatchNorm and MaxPool (the second with ceil_mode over an odd size);
    flattens with ``x.view(x.size(0), -1)``."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 5, padding=2), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 8, 2), nn.BatchNorm2d(8)
        self.fc1, self.fc2 = nn.Linear(8 * 4 * 4, 16), nn.Linear(16, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2, ceil_mode=True)
        x = x.view(x.size(0), -1)
        return self.fc2(F.relu(self.fc1(x)))


class BasicBlock(nn.Module):
    """The ResNet basic block: two 3x3 conv-BN, a residual Add (through a strided 1x1
    conv-BN where the shape changes)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNetBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU())
        self.block1, self.block2 = BasicBlock(6, 6, 1), BasicBlock(6, 8, 2)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class ConcatNet(nn.Module):
    """Inception-like branches joined by Concat, with a depthwise conv, ReLU6, padding,
    average pooling and input normalization by constants."""

    def __init__(self):
        super().__init__()
        self.branch1 = nn.Conv2d(3, 4, 1)
        self.branch3 = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, groups=3), nn.Conv2d(3, 4, 1))
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.conv = nn.Conv2d(8, 6, 3)
        self.fc = nn.Linear(6 * 4 * 4, 10)
        self.register_buffer("mean", torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))

    def forward(self, x):
        x = (x - self.mean) / 0.25
        x = torch.cat([F.relu6(self.branch1(x)), F.relu6(self.branch3(x))], dim=1)
        x = F.pad(self.pool(x), (1, 1, 1, 1))
        return self.fc(torch.flatten(F.relu(self.conv(x)), 1))


# --------------------------------------------------------------------------- exports

#: name -> (model class, input shape without batch, exporter options)
EXPORTS = {
    "mlp_opset9": (MLP, (20,), dict(opset_version=9, dynamic_batch=True)),
    "mlp_opset17": (MLP, (20,), dict(opset_version=17, dynamic_batch=True)),
    "lenet_bn_opset11": (LeNetBN, (1, 16, 16), dict(opset_version=11, dynamic_batch=True)),
    "lenet_bn_opset13_batch1": (LeNetBN, (1, 16, 16), dict(opset_version=13, dynamic_batch=False)),
    "resnet_block_opset9": (ResNetBlock, (3, 8, 8), dict(opset_version=9, dynamic_batch=False)),
    "resnet_block_opset17": (ResNetBlock, (3, 8, 8), dict(opset_version=17, dynamic_batch=True)),
    "concat_opset11": (ConcatNet, (3, 8, 8), dict(opset_version=11, dynamic_batch=True)),
    "concat_opset18": (ConcatNet, (3, 8, 8), dict(opset_version=18, dynamic_batch=True)),
    "resnet_block_dynamo": (ResNetBlock, (3, 8, 8), dict(dynamo=True)),
    "lenet_bn_dynamo": (LeNetBN, (1, 16, 16), dict(dynamo=True)),
}


def build(cls, seed: int) -> nn.Module:
    """``cls`` with seeded weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = cls()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n) * 0.2)
            module.running_var.copy_(torch.rand(n) + 0.5)
            module.weight.data.copy_(torch.rand(n) + 0.5)
            module.bias.data.copy_(torch.randn(n) * 0.2)
    return model.eval()


def export(name: str, model: nn.Module, x: torch.Tensor, options: dict) -> Path:
    path = OUT / name / f"{name}.onnx" if options.get("dynamo") else OUT / f"{name}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    if options.get("dynamo"):
        # the dynamo exporter writes weights as external data (model.onnx.data beside it);
        # each such export gets its own folder, as external data must stay inside it
        program = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},))
        program.save(str(path), external_data=True)
        return path
    dynamic = {"x": {0: "batch"}, "y": {0: "batch"}} if options["dynamic_batch"] else None
    torch.onnx.export(
        model,
        (x,),
        str(path),
        dynamo=False,
        opset_version=options["opset_version"],
        input_names=["x"],
        output_names=["y"],
        dynamic_axes=dynamic,
        # keep BatchNormalization nodes (an eval export would fold them into the convs)
        training=torch.onnx.TrainingMode.PRESERVE,
    )
    return path


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = new_manifest(torch=torch.__version__)
    for seed, (name, (cls, shape, options)) in enumerate(EXPORTS.items()):
        model = build(cls, seed)
        batch = 1 if options.get("dynamic_batch") is False else BATCH
        x = torch.from_numpy(np.random.default_rng(seed).normal(size=(batch, *shape)).astype(np.float32))
        path = export(name, model, x, options)
        with torch.no_grad():
            expected = model(x).numpy()
        y = onnxruntime_outputs(path, x.numpy())
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5, err_msg=name)
        np.savez(path.with_suffix(".npz"), x=x.numpy(), y=y)
        manifest["exports"][name] = describe(
            path,
            "dynamo" if options.get("dynamo") else "torchscript",
            file=str(path.relative_to(OUT)),
            external_data=sorted(p.name for p in path.parent.glob(f"{path.name}.data")),
        ) | {"model": cls.__name__}
        print(f"{name}: {path.stat().st_size} bytes, ops {manifest['exports'][name]['ops']}")
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
