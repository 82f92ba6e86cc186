"""Train a small PyTorch MNIST CNN and export it to ONNX, to test snnc's ONNX frontend.

The network is a typical conversion-friendly PyTorch model:
Conv2d(1, 16, 5) -> BatchNorm2d -> ReLU -> MaxPool2d(2) -> Conv2d(16, 32, 5) -> BatchNorm2d
-> ReLU -> MaxPool2d(2) -> Flatten -> Linear(512, 128) -> ReLU -> Dropout -> Linear(128, 10),
giving logits (no softmax). Input: (N, 1, 28, 28) channels_first, pixels / 255.

Reads the MNIST IDX files from ``../shared/data/mnist`` (or ``$SNNC_SHARED_DATA/mnist``, or
``--data DIR``) with gzip + numpy (no snnc needed), trains with Adam on 2 CPU threads (seeded;
a few minutes), exports in eval mode with ``torch.onnx.export(..., dynamo=False)`` (opset 13,
dynamic batch axis; the exporter folds BatchNorm into the convolutions) and writes
``benchmarks/models/mnist_torch_cnn.onnx``. Needs torch and onnx; run from the repository root::

    /tmp/k3venv/bin/python benchmarks/train_mnist_torch.py
"""

import argparse
import gzip
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "models" / "mnist_torch_cnn.onnx"
IDX_MAGIC = {0x00000803: 3, 0x00000801: 1}  # unsigned-byte images (3 dims) / labels (1 dim)


def default_data_dir() -> Path:
    shared = os.environ.get("SNNC_SHARED_DATA")
    return (Path(shared) if shared else REPO.parent / "shared" / "data") / "mnist"


def read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte IDX file (gzipped) as a uint8 array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic not in IDX_MAGIC:
        raise ValueError(f"{path}: unexpected IDX magic 0x{magic:08x}")
    ndim = IDX_MAGIC[magic]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return array.reshape(dims)


def load_mnist(data_dir: Path):
    """``(x_train, y_train), (x_test, y_test)``: images float32 (N, 1, 28, 28) in [0, 1]."""

    def split(prefix):
        x = read_idx(data_dir / f"{prefix}-images-idx3-ubyte.gz")
        y = read_idx(data_dir / f"{prefix}-labels-idx1-ubyte.gz")
        images = torch.from_numpy((x.astype(np.float32) / 255.0)[:, None])
        return images, torch.from_numpy(y.astype(np.int64))

    return split("train"), split("t10k")


def build_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 5),  # 24x24x16
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 12x12x16
        nn.Conv2d(16, 32, 5),  # 8x8x32
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 4x4x32
        nn.Flatten(),  # 512
        nn.Linear(512, 128),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.Linear(128, 10),  # logits
    )


def train(model, x_train, y_train, epochs: int, batch_size: int, lr: float, seed: int):
    """Adam with a cosine learning-rate decay to zero over the whole run."""
    steps = epochs * -(-len(x_train) // batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        start, total, correct = time.perf_counter(), 0.0, 0
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(order), batch_size):
            batch = order[i : i + batch_size]
            logits = model(x_train[batch])
            loss = loss_fn(logits, y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
            correct += (logits.argmax(1) == y_train[batch]).sum().item()
        print(
            f"epoch {epoch + 1}/{epochs}: loss {total / len(order):.4f}, "
            f"train accuracy {100 * correct / len(order):.2f} %, {time.perf_counter() - start:.1f} s"
        )


@torch.no_grad()
def accuracy(model, x, y, batch_size: int = 1000) -> float:
    """Fraction of ``x`` classified as ``y`` (eval mode: BatchNorm running statistics, no dropout)."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += (model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum().item()
    return correct / len(x)


def export_atomic(model, path: Path, opset: int):
    """``torch.onnx.export`` (TorchScript exporter) to a temporary file beside ``path``, then rename it.

    In eval mode the exporter folds each BatchNorm2d into the preceding Conv, so the ONNX graph
    is Conv, Relu, MaxPool, Flatten and Gemm nodes only.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.onnx")
    model.eval()
    try:
        with warnings.catch_warnings():  # dynamo=False is deliberate: hide its deprecation notice
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*legacy TorchScript")
            torch.onnx.export(
                model,
                (torch.zeros(1, 1, 28, 28),),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=["image"],
                output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="folder with the MNIST IDX .gz files")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT, help="output .onnx file")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3, help="initial Adam learning rate")
    parser.add_argument("--opset", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data or default_data_dir())
    model = build_model()
    print(f"mnist_torch_cnn: {sum(p.numel() for p in model.parameters())} parameters")
    start = time.perf_counter()
    train(model, x_train, y_train, args.epochs, args.batch_size, args.lr, args.seed)
    seconds = time.perf_counter() - start
    test_accuracy = accuracy(model, x_test, y_test)
    export_atomic(model, args.output, args.opset)
    print(f"training time: {seconds:.1f} s")
    print(f"test accuracy: {100 * test_accuracy:.2f} %")
    print(f"saved {args.output} ({args.output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
