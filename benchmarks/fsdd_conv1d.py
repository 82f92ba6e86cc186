"""A Conv1D keyword spotter on the Free Spoken Digit Dataset, trained, converted, evaluated.

Features are MFCC-like frames computed with NumPy/SciPy (no audio library): each recording
(8 kHz) is cut or zero-padded to :data:`SAMPLES`, framed with a Hann window (``FRAME``
samples, hop ``HOP``), its power spectrum pooled by a triangular mel filter bank, and the
log mel energies turned into cepstral coefficients by a DCT-II::

    c = DCT(log(M |FFT(w * frame)|^2 + eps))[:COEFFS]

then normalised per coefficient with the training set's mean and standard deviation. The
model reads ``(frames, coefficients)`` as a 1-D signal (steps = frames, channels =
coefficients). Split (the dataset's own): test = recordings with index 0-4 (300), train = the
rest (2700). Training uses tf.keras; the model is saved as ``.keras`` and ``.h5`` with the
test set as ``test.npz`` (``x``, ``y``), then converted by snnc (IF neurons, default
pipeline, calibration on the first 1000 training examples) and the SNN evaluated on the
interpreter. Run from the repository root (about 2 minutes on 2 cores)::

    .venv/bin/python benchmarks/fsdd_conv1d.py                 # writes docs/results.md
    .venv/bin/python benchmarks/fsdd_conv1d.py --print-only    # prints the table instead
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SNNC_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_DATA = SHARED / "fsdd" / "recordings"
DEFAULT_OUT = REPO / "benchmarks" / "out" / "fsdd_conv1d"
DOC = REPO / "docs" / "results.md"
TIMESTEPS = (8, 16, 32, 64)

RATE = 8000  # Hz
FRAME, HOP = 256, 128  # 32 ms Hann frames every 16 ms
FRAMES = 64  # about 1.04 s of audio: longer recordings are cut, shorter ones padded
SAMPLES = FRAME + (FRAMES - 1) * HOP
MELS, COEFFS = 40, 20
TEST_INDICES = range(5)  # FSDD's test split: recordings 0-4 of every digit and speaker


# ----------------------------------------------------------------------------- data


def read_recordings(folder: Path, limit: int | None = None) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Signals (float, [-1, 1]), labels and recording indices of ``{digit}_{speaker}_{index}.wav``
    files, sorted by name; ``limit`` keeps every ``len // limit``-th file (a spread sample)."""
    from scipy.io import wavfile

    files = sorted(folder.glob("*.wav"))
    if not files:
        raise SystemExit(f"{folder}: no .wav recordings (is ../shared/data/fsdd there?)")
    if limit is not None and limit < len(files):
        files = files[:: len(files) // limit][:limit]
    signals, labels, indices = [], [], []
    for path in files:
        rate, data = wavfile.read(path)
        if rate != RATE:
            raise SystemExit(f"{path}: sampled at {rate} Hz, expected {RATE}")
        data = data.astype(np.float32)
        if data.ndim == 2:  # a stereo file: its first channel
            data = data[:, 0]
        signals.append(data / 32768.0)
        digit, _, index = path.stem.split("_")
        labels.append(int(digit))
        indices.append(int(index))
    return signals, np.array(labels), np.array(indices)


def mel_filters(mels: int = MELS, frame: int = FRAME, rate: int = RATE) -> np.ndarray:
    """Triangular filters ``(mels, frame // 2 + 1)`` equally spaced on the mel scale
    ``m = 2595 log10(1 + f / 700)`` from 0 Hz to ``rate / 2``."""
    to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    to_hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = to_hz(np.linspace(0.0, to_mel(rate / 2), mels + 2))
    freqs = np.linspace(0.0, rate / 2, frame // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def mfcc(signal: np.ndarray) -> np.ndarray:
    """``(FRAMES, COEFFS)`` cepstral coefficients of one recording (see the module doc)."""
    from scipy.fft import dct

    x = np.zeros(SAMPLES, np.float64)
    x[: min(len(signal), SAMPLES)] = signal[:SAMPLES]
    starts = np.arange(FRAMES) * HOP
    frames = x[starts[:, None] + np.arange(FRAME)] * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    log_mel = np.log(power @ mel_filters().T + 1e-6)
    return dct(log_mel, type=2, axis=1, norm="ortho")[:, :COEFFS].astype(np.float32)


def load_split(folder: Path, limit: int | None = None):
    """``(x_train, y_train), (x_test, y_test)``: normalised features (N, FRAMES, COEFFS) and labels."""
    signals, labels, indices = read_recordings(folder, limit)
    x = np.stack([mfcc(s) for s in signals])
    test = np.isin(indices, TEST_INDICES)
    mean, std = x[~test].mean(axis=(0, 1)), x[~test].std(axis=(0, 1))
    x = ((x - mean) / std).astype(np.float32)
    return (x[~test], labels[~test]), (x[test], labels[test])


# ----------------------------------------------------------------------------- model


def build_model(width: int = 32):
    """A small Conv1D classifier on ``(FRAMES, COEFFS)``: logits out."""
    import tensorflow as tf

    layers = tf.keras.layers
    x_in = layers.Input((FRAMES, COEFFS), name="mfcc")
    x = layers.Conv1D(width, 5, padding="same", activation="relu", name="conv1")(x_in)
    x = layers.MaxPooling1D(2, name="pool1")(x)
    x = layers.Conv1D(2 * width, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling1D(2, name="pool2")(x)
    x = layers.Conv1D(2 * width, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    x = layers.Dense(2 * width, activation="relu", name="dense")(x)
    logits = layers.Dense(10, name="logits")(x)
    return tf.keras.Model(x_in, logits, name="fsdd_conv1d")


def train(x, y, epochs: int, width: int = 32, seed: int = 0, verbose: int = 2):
    """A trained model (Adam, cross-entropy on logits, seeded)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = build_model(width)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(2e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=32, epochs=epochs, shuffle=True, verbose=verbose)
    return model


def keras_accuracy(model, x, y) -> float:
    return float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == y))


# ----------------------------------------------------------------------------- conversion


def convert_and_evaluate(model_path: Path, calibration: np.ndarray, x_test, y_test, timesteps=TIMESTEPS):
    """snnc's Evaluation of the saved model: default pipeline (IF neurons), interpreter."""
    from snnc.compiler.api import load_model
    from snnc.compiler.datasets import Dataset
    from snnc.compiler.driver import compile_model, evaluate

    ann = load_model(model_path)
    compiled = compile_model(ann, Dataset(calibration, None, "fsdd train"), source=model_path)
    return evaluate(compiled, Dataset(x_test, y_test, "fsdd test"), timesteps=list(timesteps))


def results_text(keras_acc: float, ev, command: str, seconds: dict) -> str:
    from doc_sections import command_lines

    head = "| | Keras | snnc ANN | " + " | ".join(f"SNN T={t}" for t in ev.timesteps) + " |"
    rule = "|---" * (3 + len(ev.timesteps)) + "|"
    row = f"| accuracy (%) | {100 * keras_acc:.2f} | {100 * ev.ann_accuracy:.2f} | " + " | ".join(
        f"{100 * ev.snn_accuracy[t]:.2f}" for t in ev.timesteps
    ) + " |"
    agree = "| agreement with ANN (%) | | | " + " | ".join(f"{100 * ev.agreement[t]:.1f}" for t in ev.timesteps) + " |"
    lines = [
        "`benchmarks/fsdd_conv1d.py`: a Conv1D classifier (Conv1D 32-64-64 with max pooling, global average",
        f"pooling, Dense 64, Dense 10) on {FRAMES} MFCC frames x {COEFFS} coefficients (NumPy/SciPy features),",
        f"trained with tf.keras on the FSDD training split (2700 recordings, indices 5-49) for the",
        f"epochs below; tested on the {ev.examples} recordings with indices 0-4. snnc reads the `.keras` file",
        "(Conv1D as a conv2d over a (C, 1, L) image), compiles with the default pipeline (IF neurons,",
        "calibration on 1000 training examples) and runs the SNN on the interpreter:",
        "",
        head,
        rule,
        row,
        agree,
        "",
        f"Training {seconds['train']:.0f} s, features {seconds['features']:.0f} s, conversion and SNN "
        f"evaluation {seconds['snn']:.0f} s.",
        *command_lines(command, sum(seconds.values())),
    ]
    return "\n".join(lines)


def plot(ev, keras_acc: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from doc_sections import save_png

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.semilogx(ev.timesteps, [100 * ev.snn_accuracy[t] for t in ev.timesteps], "o-", base=2, label="SNN (IF)")
    ax.axhline(100 * keras_acc, color="k", ls="--", label="ANN (Keras)")
    ax.set_xlabel("time steps T")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("FSDD Conv1D")
    ax.legend()
    fig.tight_layout()
    save_png(fig, path, dpi=100)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of FSDD .wav recordings")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder (model, test.npz)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--width", type=int, default=32, help="filters of the first convolution")
    parser.add_argument("--print-only", action="store_true", help="print the table instead of writing docs")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    seconds = {}
    start = time.perf_counter()
    print(f"[1/4] features from {args.data}", flush=True)
    (x_train, y_train), (x_test, y_test) = load_split(args.data)
    seconds["features"] = time.perf_counter() - start
    print(f"      train {x_train.shape}, test {x_test.shape} ({seconds['features']:.0f} s)", flush=True)

    print(f"[2/4] training {args.epochs} epochs", flush=True)
    start = time.perf_counter()
    model = train(x_train, y_train, args.epochs, args.width)
    seconds["train"] = time.perf_counter() - start
    keras_acc = keras_accuracy(model, x_test, y_test)
    print(f"      Keras test accuracy {100 * keras_acc:.2f} % ({seconds['train']:.0f} s)", flush=True)

    print(f"[3/4] saving to {args.out}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "fsdd_conv1d.keras"
    model.save(model_path)
    model.save(args.out / "fsdd_conv1d.h5")
    from snnc.compiler.fileio import save_npz

    save_npz(args.out / "test.npz", {"x": x_test, "y": y_test})

    print(f"[4/4] snnc: compile and evaluate at T = {', '.join(map(str, TIMESTEPS))}", flush=True)
    start = time.perf_counter()
    ev = convert_and_evaluate(model_path, x_train[:1000], x_test, y_test)
    seconds["snn"] = time.perf_counter() - start
    for t in ev.timesteps:
        print(f"      T={t:3d}: SNN {100 * ev.snn_accuracy[t]:.2f} %, agreement {100 * ev.agreement[t]:.1f} %", flush=True)

    command = f".venv/bin/python benchmarks/fsdd_conv1d.py --epochs {args.epochs}"
    text = results_text(keras_acc, ev, command, seconds)
    if args.print_only:
        print(text)
    else:
        from doc_sections import write_section

        plot(ev, keras_acc, REPO / "docs" / "fsdd_conv1d.png")
        write_section(DOC, "fsdd-conv1d", text + "\n\n![FSDD Conv1D accuracy](fsdd_conv1d.png)", "FSDD Conv1D")
        print(f"wrote {DOC} and docs/fsdd_conv1d.png")


if __name__ == "__main__":
    main()
