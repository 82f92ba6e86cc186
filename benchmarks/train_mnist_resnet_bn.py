"""Train a small MNIST CNN with BatchNormalization and residual Adds, saved as Keras HDF5.

It shows that snnc's conversion folds BatchNorm and handles residual connections. The
layers are conversion-friendly: every Conv2D is followed by BatchNormalization and a
separate ReLU layer, the residual blocks use identity shortcuts (x -> conv-BN-ReLU ->
conv-BN -> Add with x -> ReLU), downsampling is AveragePooling2D, and the output is a
Dense layer giving logits (no softmax). Input: (28, 28, 1) channels_last, pixels / 255.

Reads the MNIST IDX files from ``../shared/data/mnist`` (or ``$SNNC_SHARED_DATA/mnist``, or
``--data DIR``) and writes ``benchmarks/models/mnist_resnet_bn.h5``. Seeded and
reproducible; about 30 s of training on 2 CPU cores. Run from the repository root::

    /tmp/venv/bin/python benchmarks/train_mnist_resnet_bn.py
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "models" / "mnist_resnet_bn.h5"


def default_data_dir() -> Path:
    shared = os.environ.get("SNNC_SHARED_DATA")
    return (Path(shared) if shared else REPO.parent / "shared" / "data") / "mnist"


def load_mnist(data_dir: Path):
    """``(x_train, y_train), (x_test, y_test)``: images float32 (N, 28, 28, 1) in [0, 1]."""
    from snnc.compiler.datasets import load_idx

    def split(prefix):
        x = load_idx(data_dir / f"{prefix}-images-idx3-ubyte.gz")
        y = load_idx(data_dir / f"{prefix}-labels-idx1-ubyte.gz")
        return (x.astype("float32") / 255.0)[..., None], y.astype("int64")

    return split("train"), split("t10k")


def conv_bn(x, filters: int, name: str, relu: bool = True):
    """Conv2D 3x3 (no bias: the BatchNorm supplies it) -> BatchNormalization [-> ReLU]."""
    import tensorflow as tf

    layers = tf.keras.layers
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def residual_block(x, name: str):
    """x -> conv-BN-ReLU -> conv-BN -> Add([that, x]) -> ReLU (identity shortcut)."""
    import tensorflow as tf

    layers = tf.keras.layers
    y = conv_bn(x, x.shape[-1], f"{name}a")
    y = conv_bn(y, x.shape[-1], f"{name}b", relu=False)
    y = layers.Add(name=f"{name}_add")([y, x])
    return layers.ReLU(name=f"{name}_relu")(y)


def build_model():
    import tensorflow as tf

    layers = tf.keras.layers
    image = layers.Input((28, 28, 1), name="image")
    x = conv_bn(image, 16, "stem")  # 28x28x16
    x = layers.AveragePooling2D(2, name="pool1")(x)  # 14x14x16
    x = residual_block(x, "res1")
    x = layers.AveragePooling2D(2, name="pool2")(x)  # 7x7x16
    x = conv_bn(x, 32, "conv2")  # 7x7x32
    x = residual_block(x, "res2")
    x = layers.Flatten(name="flatten")(x)
    logits = layers.Dense(10, name="logits")(x)
    return tf.keras.Model(image, logits, name="mnist_resnet_bn")


def train(model, x_train, y_train, epochs: int, batch_size: int, lr: float):
    """Adam with a cosine learning-rate decay to zero over the whole run."""
    import tensorflow as tf

    steps = epochs * -(-len(x_train) // batch_size)
    schedule = tf.keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(schedule),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=2)


def save_atomic(model, path: Path):
    """``model.save`` as HDF5 to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.h5")  # ".h5": Keras picks HDF5
    try:
        model.save(tmp, include_optimizer=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_args(argv=None, default_out: Path = DEFAULT_OUT, epochs: int = 3, description: str = __doc__):
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="folder with the MNIST IDX .gz files")
    parser.add_argument("-o", "--output", type=Path, default=default_out, help="output .h5 file")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3, help="initial Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def train_and_save(build, args) -> None:
    """Seed, train ``build()`` on MNIST as ``args`` say, report the test accuracy, save."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data or default_data_dir())
    model = build()
    print(f"{model.name}: {model.count_params()} parameters")
    start = time.perf_counter()
    train(model, x_train, y_train, args.epochs, args.batch_size, args.lr)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    save_atomic(model, args.output)
    print(f"training time: {seconds:.1f} s")
    print(f"test accuracy: {100 * accuracy:.2f} %")
    print(f"saved {args.output} ({args.output.stat().st_size} bytes)")


def main(argv=None):
    train_and_save(build_model, parse_args(argv))


if __name__ == "__main__":
    main()
