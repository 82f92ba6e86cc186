"""Low-latency conversion: every post-training method at T = 4 ... 128, on CIFAR-10 and MNIST.

AlexNet-BN (SNN Toolbox's CIFAR-10 example, ``models/snn_toolbox/cifar10_alexnet_bn/81.45.h5``)
on ``cifar10-subset`` split 500 / 500 (the first 500 images calibrate, the last 500 test), and
the MNIST models on the first ``--mnist-examples`` test images (calibration: the first 1000
training images). Each method is a named pipeline of :data:`snnc.compiler.passes.PIPELINES`
(``snnc compile --method NAME``); the spiking interpreter runs every network (float32
currents). Writes the table into ``docs/results.md`` (between the ``low-latency`` markers) and
the plot ``docs/low_latency.png``. Run from the repository root::

    python benchmarks/low_latency.py                 # about 45 minutes on 2 cores
    python benchmarks/low_latency.py --quick         # 100 test images each, printed only
    python benchmarks/low_latency.py --only cifar    # one part (cifar, mnist), merged into the doc
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from doc_sections import command_lines, save_png, write_section

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SNNC_SHARED_DATA", REPO.parent / "shared" / "data"))
MODELS = SHARED / "models"
TIMESTEPS = (4, 8, 16, 32, 64, 128)
ROWS_FILE = REPO / "docs" / "low_latency.json"  # the measured rows, so one part can be rerun alone

#: (label, snnc method) per row; binary spikes unless the label says otherwise
METHODS = {
    "rate conversion (p99.9, v0=θ/2, max gate)": "rate",
    "rate, v0=0 (Rueckauer 2017)": "rate_v0",
    "calibrated (default)": "default",
    "BSNN, period 2": "bsnn",
    "burst spikes γ=2 (not binary)": "burst",
    "max pool → relus (maxpool_to_relu)": "maxpool_relu",
    "max pool → avg pool": "avgpool",
}
CIFAR = ("AlexNet-BN `81.45.h5` (CIFAR-10)", MODELS / "snn_toolbox/cifar10_alexnet_bn/81.45.h5", [m for m in METHODS if "relus" not in m])
MNIST = [
    ("LeNet-5 `99.14.h5` (max pool)", MODELS / "snn_toolbox/lenet5/keras/99.14.h5", list(METHODS)),
    ("`mnist_cnn_avgpool.h5`", MODELS / "mnist_cnn_avgpool.h5", [m for m in METHODS if "pool" not in m]),
    ("residual + BN `mnist_resnet_bn.h5`", REPO / "benchmarks/models/mnist_resnet_bn.h5", [m for m in METHODS if "pool" not in m]),
]


def cifar_split():
    """The issue's split of ``cifar10-subset``: calibration = the first 500 images, test = the last
    500, mapped from the stored ``2 x / 255 - 1`` to the model's ``x / 255``."""
    import numpy as np

    from snnc.compiler.datasets import Dataset

    folder = SHARED / "cifar10-subset"
    x = (np.load(folder / "x_test.npz")["arr_0"] + 1.0) / 2.0
    y = np.load(folder / "y_test.npz")["arr_0"].argmax(axis=1)
    return Dataset(x[:500], y[:500], "cifar10-subset[:500]"), Dataset(x[500:], y[500:], "cifar10-subset[500:]")


def measure(label, path, methods, calibration, test, input_scale=None) -> list[dict]:
    from snnc.compiler import load_model
    from snnc.compiler.driver import compile_model, evaluate
    from snnc.compiler.passes import PIPELINES

    ann, rows = load_model(path), []
    for method in methods:
        start = time.perf_counter()
        compiled = compile_model(ann, calibration, pipeline=PIPELINES[METHODS[method]], input_scale=input_scale, source=path)
        ev = evaluate(compiled, test, TIMESTEPS, input_scale=input_scale, progress=None)
        row = {"model": label, "method": method, "examples": len(test), **ev.to_json(), "seconds": time.perf_counter() - start}
        rows.append(row)
        accs = " / ".join(f"{100 * a:.1f}" for a in ev.snn_accuracy.values())
        print(f"{label} | {method}: ANN {100 * ev.ann_accuracy:.2f} %, SNN {accs} ({row['seconds']:.0f} s)", file=sys.stderr)
    return rows


def run(part: str, test_examples: int | None, mnist_examples: int) -> list[dict]:
    from snnc.compiler.datasets import load_dataset

    rows = []
    if part in ("all", "cifar"):
        calibration, test = cifar_split()
        label, path, methods = CIFAR
        rows += measure(label, path, methods, calibration, test.head(test_examples), input_scale=1.0)
    if part in ("all", "mnist"):
        calibration = load_dataset(SHARED / "mnist", split="train").head(1000)
        test = load_dataset(SHARED / "mnist", split="test").head(test_examples or mnist_examples)
        for label, path, methods in MNIST:
            rows += measure(label, path, methods, calibration, test)
    return rows


def markdown(rows, command: str) -> str:
    """The results table; ``command``: what measured rows that do not record their own."""
    lines = [
        "Accuracy in %, spiking interpreter (float32 currents), integrate-and-fire neurons (bistable for "
        "BSNN), reset by subtraction, readout of the output layer's accumulated membrane. CIFAR-10: "
        "`cifar10-subset` split 500 calibration / 500 test. MNIST: calibration on the first 1000 training "
        "images, test on the first images of the test set (count in the table). Methods: `snnc compile --method NAME`.",
        "",
        "| model | method (`--method`) | test images | ANN | " + " | ".join(f"T={t}" for t in TIMESTEPS) + " |",
        "|---|---|---|---|" + "---|" * len(TIMESTEPS),
    ]
    for r in rows:
        ann = f"{100 * r['ann_accuracy']:.2f}"
        if abs(r["float_accuracy"] - r["ann_accuracy"]) > 1e-12:
            ann += f" (float after passes {100 * r['float_accuracy']:.2f})"
        cells = " | ".join(f"{100 * r['snn_accuracy'][str(t)]:.2f}" for t in TIMESTEPS)
        lines.append(f"| {r['model']} | {r['method']} (`{METHODS[r['method']]}`) | {r['examples']:,} | {ann} | {cells} |")
    commands = list(dict.fromkeys(r.get("command", command) for r in rows))
    lines += command_lines("\n".join(commands), sum(r["seconds"] for r in rows))
    lines += ["", "![accuracy vs time steps per method](low_latency.png)"]
    return "\n".join(lines)


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 5), squeeze=False)
    for ax, model in zip(axes[0], models):
        mine = [r for r in rows if r["model"] == model]
        for r in mine:
            color = f"C{list(METHODS).index(r['method'])}"  # one colour per method in every panel
            ax.plot(TIMESTEPS, [100 * r["snn_accuracy"][str(t)] for t in TIMESTEPS], marker="o", color=color, label=r["method"])
        ann = 100 * mine[0]["ann_accuracy"]
        ax.axhline(ann, color="black", linestyle=":", linewidth=1, label="ANN")
        ax.set_ylim(max(0.0, ann - 25), min(100.0, ann + 3))
        ax.set_xscale("log", base=2)
        ax.set_xticks(TIMESTEPS, [str(t) for t in TIMESTEPS])
        ax.set_xlabel("time steps T")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(model.replace("`", ""), fontsize=9)
        ax.grid(alpha=0.3)
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_lines()}  # every method, each once
    fig.legend(list(handles.values()), list(handles), fontsize=8, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    save_png(fig, path, dpi=110)


def merged(previous: list[dict], new: list[dict]) -> list[dict]:
    """``previous`` rows with those of the models just measured replaced by ``new``, in run order."""
    remeasured = {r["model"] for r in new}
    return [r for r in previous if r["model"] not in remeasured] + new


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 test images per model; printed, not written")
    parser.add_argument("--only", choices=("cifar", "mnist"), help="measure one part; the other's rows are kept")
    parser.add_argument("--mnist-examples", type=int, default=2000, help="MNIST test images (default 2000)")
    parser.add_argument("--replot", action="store_true", help="only redraw the plot from docs/low_latency.json")
    args = parser.parse_args(argv)
    if args.replot:
        plot(json.loads(ROWS_FILE.read_text()), REPO / "docs" / "low_latency.png")
        return
    rows = run(args.only or "all", 100 if args.quick else None, args.mnist_examples)
    command = "python benchmarks/low_latency.py" + (f" --only {args.only}" if args.only else "")
    if args.quick:
        print(markdown(rows, command + " --quick"))
        return
    from snnc.compiler.fileio import write_text

    for r in rows:
        r["command"] = command
    if args.only and ROWS_FILE.exists():
        rows = merged(json.loads(ROWS_FILE.read_text()), rows)
    write_text(ROWS_FILE, json.dumps(rows, indent=1))
    write_section(REPO / "docs" / "results.md", "low-latency", markdown(rows, command), "Low-latency conversion: every method, T = 4 to 128")
    plot(rows, REPO / "docs" / "low_latency.png")
    print("wrote docs/results.md, docs/low_latency.png and docs/low_latency.json", file=sys.stderr)


if __name__ == "__main__":
    main()
