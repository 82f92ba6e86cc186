"""MNIST read row by row by a Keras ``SimpleRNN(relu)``, converted by snnc: ANN vs SNN accuracy.

Trains ``Input((28, 28)) -> SimpleRNN(UNITS, relu) -> Dense(10)`` on the MNIST training set
(28 input steps of 28 pixels; identity recurrent initialization, as in Le et al. 2015's IRNN,
and gradient clipping keep a ReLU recurrence stable) for ``--epochs`` epochs, saves it as
``.keras``, compiles it with snnc's default pipeline (calibration: the first 1000 training
images) and evaluates the spiking network on the interpreter at T = 4, 8, 16, 32 simulation
steps per row (28·T steps per image). Writes the table into ``docs/results.md`` (between the
``mnist_rnn`` markers). Run from the repository root (about 10 minutes on 2 cores)::

    python benchmarks/mnist_rnn.py                 # train, convert, evaluate on the test set
    python benchmarks/mnist_rnn.py -n 1000 --print # a quick look: 1000 test images, no write
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from doc_sections import command_lines, publish

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SNNC_SHARED_DATA", REPO.parent / "shared" / "data"))
MODEL = REPO / "benchmarks" / "models" / "mnist_rnn.keras"
TIMESTEPS = (4, 8, 16, 32)
UNITS = 64


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train(x, y, path: Path, epochs: float, units: int = UNITS, seed: int = 0) -> float:
    """Train the row-by-row RNN on ``x`` (N, 28, 28) in [0, 1] and save it to ``path``;
    ``epochs`` may be fractional (a prefix of the data for the last one). Returns seconds."""
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([
        tf.keras.Input((x.shape[1], x.shape[2])),
        tf.keras.layers.SimpleRNN(units, activation="relu", recurrent_initializer=tf.keras.initializers.Identity(0.5)),
        tf.keras.layers.Dense(10),
    ])
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-3, clipnorm=1.0),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    whole, part = int(epochs), epochs - int(epochs)
    verbose = 1 if sys.stderr.isatty() else 2  # a bar on a terminal, a line per epoch in a log
    if whole:
        model.fit(x, y, batch_size=128, epochs=whole, verbose=verbose)
    if part:
        n = max(128, int(part * len(x)))
        order = np.random.default_rng(seed).permutation(len(x))[:n]
        model.fit(x[order], y[order], batch_size=128, epochs=1, verbose=verbose)
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return seconds


def convert_and_evaluate(path: Path, calibration, test, timesteps=TIMESTEPS, progress=None):
    """snnc's default pipeline on the saved model; the driver's Evaluation."""
    from snnc.compiler import load_model
    from snnc.compiler.driver import compile_model, evaluate

    compiled = compile_model(load_model(path), calibration, source=path)
    return evaluate(compiled, test, list(timesteps), progress=progress)


def markdown(ev, train_seconds: float, epochs: float, command: str, seconds: float) -> str:
    steps = ev.input_steps
    rows = ["| T (steps per row) | total steps (28·T) | SNN accuracy | vs ANN | agrees with ANN |", "|---|---|---|---|---|"]
    for t in ev.timesteps:
        acc = ev.snn_accuracy[t]
        rows.append(f"| {t} | {steps * t} | {100 * acc:.2f} % | {100 * (acc - ev.ann_accuracy):+.2f} | {100 * ev.agreement[t]:.2f} % |")
    return "\n".join([
        f"`benchmarks/mnist_rnn.py`: Keras `SimpleRNN({UNITS}, relu)` + `Dense(10)` reading each MNIST image as "
        f"{steps} input steps of 28 pixels, trained {epochs:g} epoch(s) on the training set"
        + (f" in {train_seconds / 60:.1f} min" if train_seconds else "") + ", saved as `.keras`, converted by snnc's default pipeline (calibration: the first 1000 training "
        f"images) and run on the spiking interpreter. Each row is held for T simulation steps; the recurrent "
        f"spikes reach the next row through the delay (one row later). "
        + (f"MNIST test set, all {ev.examples:,} images." if ev.examples >= 10_000 else f"The first {ev.examples:,} MNIST test images (a subset)."),
        "",
        f"ANN (the imported Keras model on the float interpreter): **{100 * ev.ann_accuracy:.2f} %**.",
        "",
        *rows,
        *command_lines(command, seconds),
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=float, default=2.0, help="training epochs (default: 2)")
    parser.add_argument("-n", type=int, help="evaluate the first N test images (default: all 10,000)")
    parser.add_argument("--model", type=Path, default=MODEL, help=f"where to save the Keras model (default: {MODEL.relative_to(REPO)})")
    parser.add_argument("--reuse", action="store_true", help="skip training when the model file exists")
    parser.add_argument("--print", action="store_true", help="print the section instead of writing docs/results.md")
    args = parser.parse_args(argv)

    from snnc.compiler.datasets import load_dataset

    start = time.perf_counter()
    train_set = load_dataset(SHARED / "mnist", split="train")
    test = load_dataset(SHARED / "mnist", split="test").head(args.n)
    train_seconds = 0.0
    if not (args.reuse and args.model.exists()):
        log(f"training SimpleRNN({UNITS}, relu) on {len(train_set):,} images, {args.epochs:g} epoch(s)")
        train_seconds = train(train_set.x / 255.0, train_set.y, args.model, args.epochs)
        log(f"trained in {train_seconds:.0f} s; saved {args.model}")
    log(f"converting and evaluating on {len(test):,} test images at T = {', '.join(map(str, TIMESTEPS))} per row")
    ev = convert_and_evaluate(args.model, train_set.head(1000), test, progress=True)
    seconds = time.perf_counter() - start
    log(f"ANN {100 * ev.ann_accuracy:.2f} %; SNN " + ", ".join(f"T={t}: {100 * a:.2f} %" for t, a in ev.snn_accuracy.items()))
    command = "python benchmarks/mnist_rnn.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    publish(markdown(ev, train_seconds, args.epochs, command, seconds), args.print, REPO / "docs" / "results.md",
            "mnist_rnn", "MNIST row by row (SimpleRNN)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
