"""Does post-training calibration (``calibrate``, Li et al. 2021) help QCFS-trained networks?

Trains a small MNIST MLP with ``snnc.training.QCFS`` activations (784-256-128-10, L levels),
builds its IR graph from the trained weights (dense layers and ``qcfs`` ops), balances and
converts it (the QCFS layers become IF neurons exact at T = L for constant input), then
compares, at T = L/2 .. 4L, the SNN accuracy on the MNIST test images without calibration
and with the QCFS populations calibrated (potential correction for T = 16, as the default
pipeline does, and for T = L; bias correction for T = L). Seeded; about a minute on 2 cores::

    .venv/bin/python benchmarks/qcfs_calibration.py --levels 4
"""

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"


def load_mnist():
    from snnc.compiler.datasets import load_idx

    def images(stem):
        return load_idx(MNIST / f"{stem}-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255.0

    def labels(stem):
        return load_idx(MNIST / f"{stem}-labels-idx1-ubyte.gz").astype(np.int64)

    return images("train"), labels("train"), images("t10k"), labels("t10k")


def train(x, y, levels: int, epochs: int, seed: int):
    import tensorflow as tf

    from snnc.training import QCFS

    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    inp = layers.Input((784,))
    h = QCFS(levels, name="q1")(layers.Dense(256, name="d1")(inp))
    h = QCFS(levels, name="q2")(layers.Dense(128, name="d2")(h))
    model = tf.keras.Model(inp, layers.Dense(10, name="logits")(h))
    model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=epochs, verbose=0)
    return model


def ir_graph(model, levels: int):
    """The trained model as an IR graph: dense layers (weights transposed to (units, in)) and
    qcfs ops with the trained lambda."""
    from snnc.compiler import ops
    from snnc.compiler.graph import GraphBuilder

    b = GraphBuilder("qcfs_mlp")
    x = b.input("x", (784,))
    for name in ("d1", "q1", "d2", "q2", "logits"):
        layer = model.get_layer(name)
        if name.startswith("q"):
            x = b.add(ops.Qcfs(levels, float(layer.threshold.numpy()), layer.shift), [x], name=name)
        else:
            kernel, bias = layer.get_weights()
            x = b.add(ops.Dense(kernel.shape[1]), [x], {"weight": kernel.T.copy(), "bias": bias}, name=name)
    b.output(x)
    return b.build()


def accuracy(graph, x, y, timesteps):
    from snnc.compiler.simulate import simulate

    outputs = simulate(graph, {"x": x}, timesteps).outputs
    return {t: float((outputs[t]["output"].argmax(axis=1) == y).mean()) for t in timesteps}


def main(argv=None):
    from snnc.compiler import interpreter
    from snnc.compiler.passes.calibrate import calibrate_layers, populations
    from snnc.compiler.passes.convert_to_spiking import convert_to_spiking
    from snnc.compiler.passes.threshold_balance import threshold_balance

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    x_train, y_train, x_test, y_test = load_mnist()
    model = train(x_train, y_train, args.levels, args.epochs, args.seed)
    graph = ir_graph(model, args.levels)
    calibration = x_train[:256]
    balanced = threshold_balance(graph, calibration=x_train[:1000])
    spiking = convert_to_spiking(balanced)
    x, y = x_test[: args.test], y_test[: args.test]
    ann = float((interpreter.run(graph, {"x": x})["output"].argmax(axis=1) == y).mean())
    L = args.levels
    timesteps = sorted({max(L // 2, 1), L, 2 * L, 4 * L, 16})
    # the calibrate pass keeps QCFS populations as trained: calibrate_layers is its core, given
    # the balanced qcfs activations as the reference
    values = interpreter.run_batch(balanced, {"x": calibration})
    reference = {n.name: values[n.name].astype(np.float64) for n in populations(spiking)}
    variants = {"not calibrated": spiking}
    for mode, t in (("potential", 16), ("potential", L), ("bias", L)):
        variants[f"{mode}, T={t}"] = calibrate_layers(spiking, reference, {"x": calibration}, mode=mode, timesteps=t)[0]
    print(f"MNIST MLP 784-256-128-10, QCFS L={L}, lambdas "
          f"{[round(n.op.threshold, 3) for n in graph.nodes if n.op.NAME == 'qcfs']}; ANN {100 * ann:.2f} % "
          f"on {len(y)} test images")
    print("| calibration | " + " | ".join(f"T={t}" for t in timesteps) + " |")
    print("|---|" + "---|" * len(timesteps))
    for name, g in variants.items():
        acc = accuracy(g, x, y, timesteps)
        print(f"| {name} | " + " | ".join(f"{100 * acc[t]:.2f}" for t in timesteps) + " |")


if __name__ == "__main__":
    main()
