"""An MNIST CNN trained with keras-spiking (``SpikingActivation`` + ``DtScheduler``), converted by
snnc to sigma-delta neurons: accuracy vs bits per event (1, 2, 4, 8) at T = 1, 2, 4, 8.

Trains :func:`snnc.training.sigma_delta_cnn` (3x3 convolutions of 16 and 32 channels, each
followed by keras-spiking's ``SpikingActivation("relu")`` with spiking-aware training and a 2x2
average pool, then Dense(128) with the same activation and the 10 logits) on the first
``--train`` MNIST training images (each image one Keras step), ``--epochs`` epochs, while a
``keras_spiking.callbacks.DtScheduler`` anneals ``dt`` (events per step per unit of activation)
from ``--dt-start`` down to ``--dt-end``: the schedule of its docstring,
``ExponentialDecay(1.0, decay_steps=5, decay_rate=0.9)``, which takes dt from 1.0 to 0.35 over its
50 minibatches, with ``decay_steps`` stretched so that dt goes the same way over ours. Saves
the model with the final dt as a number, compiles it with
``canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{bits=B}`` (each
SpikingActivation becomes sigma-delta neurons with the trained dt, amplitude 1/dt, at most
2^B - 1 events per step, v from 0.5; calibration: the first 1000 training images) and evaluates
the first ``-n`` test images on the interpreter, each image held T steps. Writes the section
into ``docs/results.md`` (markers ``hybrid-cnn``) and ``docs/hybrid_cnn.png``. Run from the
repository root (about 15 minutes on 2 cores with the defaults)::

    .venv/bin/python benchmarks/hybrid_cnn.py              # train, convert, evaluate, write
    .venv/bin/python benchmarks/hybrid_cnn.py -n 500 --print   # a quick look, no write
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from doc_sections import command_lines, publish, save_png

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SNNC_SHARED_DATA", REPO.parent / "shared" / "data"))
OUT = REPO / "benchmarks" / "out" / "hybrid_cnn"
MODEL = OUT / "hybrid_cnn.keras"
TIMESTEPS = (1, 2, 4, 8)
BITS = (1, 2, 4, 8)
#: DtScheduler's docstring schedule: ExponentialDecay by this factor (from 1.0 there)
DT_DECAY = 0.9
PIPELINE = "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{{bits={bits}}}"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def as_sequences(x):
    """Images ``(N, H, W, C)`` as one-step sequences ``(N, 1, H * W * C)``, the model's input."""
    return x.reshape(len(x), 1, -1)


def decay_steps(minibatches: int, dt_start: float, dt_end: float) -> float:
    """The ``decay_steps`` that take ``dt_start * DT_DECAY^(step / decay_steps)`` to ``dt_end``
    at the last minibatch."""
    return minibatches / (math.log(dt_end / dt_start) / math.log(DT_DECAY))


def train(x, y, path: Path, epochs: int, dt_start: float, dt_end: float, batch_size: int = 64) -> tuple[float, float]:
    """Train on images ``x`` in [0, 1] with dt annealed from ``dt_start`` to ``dt_end``; save the
    model (dt fixed) to ``path``. Returns (seconds, final dt)."""
    import keras_spiking
    import tensorflow as tf

    from snnc.training import fit, fixed_dt, sigma_delta_cnn

    dt = tf.Variable(dt_start, trainable=False)
    minibatches = epochs * -(-len(x) // batch_size)
    schedule = tf.keras.optimizers.schedules.ExponentialDecay(dt_start, decay_steps(minibatches, dt_start, dt_end), DT_DECAY)
    model = sigma_delta_cnn(x.shape[1:], 10, dt)
    start = time.perf_counter()
    verbose = 1 if sys.stderr.isatty() else 2
    fit(model, as_sequences(x), y[:, None], epochs=epochs, batch_size=batch_size, verbose=verbose,
        callbacks=[keras_spiking.callbacks.DtScheduler(dt, schedule)])
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    fixed_dt(model).save(path, save_format="keras_v3")
    return seconds, float(dt.numpy())


def keras_accuracy(path: Path, x, y) -> float:
    """keras-spiking's own spiking inference (one step, its random initial voltages)."""
    import keras_spiking
    import numpy as np
    import tensorflow as tf

    model = tf.keras.models.load_model(path, compile=False, custom_objects={"SpikingActivation": keras_spiking.SpikingActivation})
    logits = model.predict(as_sequences(x), batch_size=256, verbose=0)[:, -1]
    return float(np.mean(logits.argmax(-1) == y))


def convert_and_evaluate(path: Path, calibration, test, bits: int):
    from snnc.compiler import load_model
    from snnc.compiler.driver import compile_model, evaluate

    compiled = compile_model(load_model(path), calibration, pipeline=PIPELINE.format(bits=bits), source=path)
    return evaluate(compiled, test, list(TIMESTEPS))


def markdown(results: dict, keras_acc: float, dt: float, args, train_seconds: float, command: str, seconds: float) -> str:
    first = next(iter(results.values()))
    rows = [
        "| bits per event | max events per step | " + " | ".join(f"T = {t}" for t in TIMESTEPS)
        + f" | bits per activity (T = {TIMESTEPS[-1]}) | significant bits per weight |",
        "|---|---|" + "---|" * len(TIMESTEPS) + "---|---|",
    ]
    for bits, ev in results.items():
        accs = " | ".join(f"{100 * ev.snn_accuracy[t]:.2f} %" for t in TIMESTEPS)
        rows.append(f"| {bits} | {2 ** bits - 1} | {accs} | {ev.bits_per_activity:.2f} | {ev.significant_bits_per_weight:.2f} |")
    subset = f"all {first.examples:,} MNIST test images" if first.examples >= 10_000 else f"the first {first.examples:,} MNIST test images (a subset)"
    return "\n".join([
        "`benchmarks/hybrid_cnn.py`: `snnc.training.sigma_delta_cnn`, a CNN (3x3 convolutions of 16 and 32 "
        "channels with 2x2 average pools, Dense(128), Dense(10)) whose activations are keras-spiking's "
        "`SpikingActivation(\"relu\")` with spiking-aware training, each image one Keras step, trained "
        f"{args.epochs} epoch(s) on the first {args.train:,} MNIST training images in {train_seconds:.0f} s (a reduced "
        f"budget for 2 cores) while `DtScheduler` annealed dt from {args.dt_start:g} to {dt:.3g} "
        f"(`ExponentialDecay({args.dt_start:g}, decay_rate={DT_DECAY:g})`, decay_steps stretched to end there). snnc "
        "imports each SpikingActivation as `spiking_relu{dt}` and converts it to sigma-delta neurons with the "
        f"trained dt and amplitude 1/dt (`{PIPELINE.format(bits='B')}`, calibration: the first 1000 training "
        f"images), v from 0.5; each image is held T steps, on the interpreter, scored on {subset}. "
        "B caps the events a neuron sends per step at 2^B - 1 (keras-spiking has no cap).",
        "",
        f"Float network (the rate network, relu): **{100 * first.float_accuracy:.2f} %**; keras-spiking's own "
        f"spiking inference (one step, random initial voltages): **{100 * keras_acc:.2f} %**.",
        "",
        *rows,
        "",
        "Bits per activity and significant bits per weight (docs/bits.md) are measured over all neurons on "
        f"the T = {TIMESTEPS[-1]} run.",
        "",
        "![hybrid CNN: accuracy vs bits per event](hybrid_cnn.png)",
        *command_lines(command, seconds),
    ])


def plot(results: dict, float_accuracy: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for bits, ev in results.items():
        ax.semilogx(TIMESTEPS, [100 * ev.snn_accuracy[t] for t in TIMESTEPS], "o-", base=2, label=f"{bits} bit(s) per event")
    ax.axhline(100 * float_accuracy, color="k", ls=":", label="float (rate network)")
    ax.set_xlabel("simulation steps per image T")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("MNIST CNN on sigma-delta neurons (keras-spiking)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=60_000, help="training images (default: all 60,000)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (default: 2)")
    parser.add_argument("--dt-start", type=float, default=1.0, help="dt at the first minibatch (default: 1.0)")
    parser.add_argument("--dt-end", type=float, default=0.35, help="dt after the last minibatch (default: 0.35)")
    parser.add_argument("-n", type=int, help="evaluate the first N test images (default: all 10,000)")
    parser.add_argument("--reuse", action="store_true", help="skip training when the model file exists")
    parser.add_argument("--print", action="store_true", help="print the section instead of writing docs/results.md")
    args = parser.parse_args(argv)

    from snnc.compiler.datasets import Dataset, load_dataset
    from snnc.training import load_images

    start = time.perf_counter()
    x, y = load_images(SHARED / "mnist", "train")
    train_set = load_dataset(SHARED / "mnist", split="train")
    test = load_dataset(SHARED / "mnist", split="test").head(args.n)
    calibration = Dataset(as_sequences(train_set.x[:1000]), None, "mnist train[:1000]")
    test = Dataset(as_sequences(test.x), test.y, test.source)
    train_seconds, dt = 0.0, None
    if not (args.reuse and MODEL.exists()):
        log(f"[1/3] training on {args.train:,} images, {args.epochs} epoch(s), dt annealed to {args.dt_end:g}")
        train_seconds, dt = train(x[: args.train], y[: args.train], MODEL, args.epochs, args.dt_start, args.dt_end)
        log(f"      trained in {train_seconds:.0f} s, final dt {dt:.4g}; saved {MODEL}")
    x_test, y_test = load_images(SHARED / "mnist", "test")
    keras_acc = keras_accuracy(MODEL, x_test[: len(test)], y_test[: len(test)])
    log(f"[2/3] keras-spiking's spiking inference: {100 * keras_acc:.2f} %")
    results = {}
    for bits in BITS:
        results[bits] = convert_and_evaluate(MODEL, calibration, test, bits)
        ev = results[bits]
        log(f"[3/3] bits={bits}: float {100 * ev.float_accuracy:.2f} %; "
            + ", ".join(f"T={t}: {100 * a:.2f} %" for t, a in ev.snn_accuracy.items())
            + f"; bits per activity {ev.bits_per_activity:.2f}")
    if dt is None:
        from snnc.compiler import load_model

        dt = next(n.op.dt for n in load_model(MODEL).nodes if n.op.NAME == "spiking_relu")
    seconds = time.perf_counter() - start
    command = ".venv/bin/python benchmarks/hybrid_cnn.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    text = markdown(results, keras_acc, dt, args, train_seconds, command, seconds)
    if not args.print:
        plot(results, results[BITS[0]].float_accuracy, REPO / "docs" / "hybrid_cnn.png")
    publish(text, args.print, REPO / "docs" / "results.md", "hybrid-cnn", "MNIST CNN on sigma-delta neurons (keras-spiking)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
