"""ANN vs SNN accuracy per time step count, per model and conversion method, on full test sets.

Compiles each model with each method (a pipeline string), simulates the spiking network with
snnc's batched interpreter on the whole MNIST test set, and writes the table into
``docs/results.md`` (between the ``conversion`` markers) and a plot to
``docs/conversion_accuracy.png``. Calibration: the first 1000 MNIST training images. Run from
the repository root (about 20 minutes on 2 cores)::

    python benchmarks/conversion_accuracy.py            # all runs
    python benchmarks/conversion_accuracy.py --quick    # 1000 test images, to try it out
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
TIMESTEPS = (8, 16, 32, 64, 128)

DEFAULT = "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking"
METHODS = {
    "snnc default (p99.9, v0=θ/2, max gate)": DEFAULT,
    "max-norm, v0=0 (Diehl 2015)": "canonicalize,fold_batchnorm,threshold_balance{method=max},convert_to_spiking{v_init=0.0}",
    "p99.9, v0=0 (Rueckauer 2017)": "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{v_init=0.0}",
    "max pool → avg pool (avgpool pipeline)": "avgpool",
}
RUNS = [  # (label, model file, methods)
    ("LeNet-5 `99.14.h5` (max pool)", MODELS / "snn_toolbox/lenet5/keras/99.14.h5", list(METHODS)),
    ("LeNet-5 `98.96.h5` (Theano, max pool)", MODELS / "snn_toolbox/lenet5/keras/98.96.h5", [next(iter(METHODS))]),
    ("`mnist_cnn_avgpool.h5`", MODELS / "mnist_cnn_avgpool.h5", list(METHODS)[:3]),
    ("residual + BN `benchmarks/models/mnist_resnet_bn.h5`", REPO / "benchmarks/models/mnist_resnet_bn.h5", [next(iter(METHODS))]),
]


def run_all(test_examples: int | None):
    from snnc.compiler import load_model
    from snnc.compiler.datasets import load_dataset
    from snnc.compiler.driver import compile_model, evaluate

    calibration = load_dataset(SHARED / "mnist", split="train")
    test = load_dataset(SHARED / "mnist", split="test").head(test_examples)
    rows = []
    for label, path, methods in RUNS:
        ann = load_model(path)
        for method in methods:
            start = time.perf_counter()
            compiled = compile_model(ann, calibration, pipeline=METHODS[method], source=path)
            ev = evaluate(compiled, test, TIMESTEPS, progress=None)
            rows.append({"model": label, "method": method, **ev.to_json(), "seconds": time.perf_counter() - start})
            best = max(ev.snn_accuracy.values())
            print(f"{label} | {method}: ANN {100 * ev.ann_accuracy:.2f} %, best SNN {100 * best:.2f} % ({rows[-1]['seconds']:.0f} s)", file=sys.stderr)
    return rows, len(test)


def markdown(rows, examples: int, command: str) -> str:
    head = "| model | method | ANN | " + " | ".join(f"T={t}" for t in TIMESTEPS) + " |"
    lines = [head, "|" + "---|" * (3 + len(TIMESTEPS))]
    for r in rows:
        ann = r["ann_accuracy"]
        float_note = "" if r["float_accuracy"] == ann else f" (float after passes {100 * r['float_accuracy']:.2f})"
        cells = [f"{100 * r['snn_accuracy'][str(t)]:.2f}" for t in TIMESTEPS]
        lines.append(f"| {r['model']} | {r['method']} | {100 * ann:.2f}{float_note} | " + " | ".join(cells) + " |")
    return "\n".join(
        [
            f"MNIST test set ({examples:,} images), accuracy in %, spiking interpreter (float32 currents). "
            "Calibration: the first 1000 training images. Integrate-and-fire neurons, reset by "
            "subtraction, readout of the output layer's accumulated membrane.",
            "",
            *lines,
            *command_lines(command, sum(r["seconds"] for r in rows)),
            "",
            "![accuracy vs time steps](conversion_accuracy.png)",
        ]
    )


def write_results(text: str) -> None:
    write_section(REPO / "docs" / "results.md", "conversion", text, "ANN to SNN conversion accuracy")


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    low = 96.0
    fig, ax = plt.subplots(figsize=(9, 6.5))
    off_scale = [r for r in rows if max(r["snn_accuracy"].values()) * 100 < low]
    for r in rows:
        if r in off_scale:
            continue
        ys = [100 * r["snn_accuracy"][str(t)] for t in TIMESTEPS]
        (line,) = ax.plot(TIMESTEPS, ys, marker="o", label=f"{r['model'].replace('`', '')}: {r['method']}")
        ax.axhline(100 * r["ann_accuracy"], color=line.get_color(), linestyle=":", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(TIMESTEPS, [str(t) for t in TIMESTEPS])
    ax.set_xlabel("time steps T")
    ax.set_ylabel("MNIST test accuracy (%)")
    ax.set_ylim(low, 99.6)
    ax.set_title("SNN accuracy vs time steps (dotted: the ANN)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1)
    for i, r in enumerate(off_scale):  # e.g. max pooling replaced: far below, said in words
        best = 100 * max(r["snn_accuracy"].values())
        ax.annotate(f"not shown: {r['model'].replace('`', '')}, {r['method']} (best {best:.1f} %)",
                    (0.01, 0.02 + 0.04 * i), xycoords="axes fraction", fontsize=7)
    fig.tight_layout()
    save_png(fig, path, dpi=120, bbox_inches="tight")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1000 test images; results not written to docs/")
    parser.add_argument("--json", metavar="FILE", help="also write the raw rows as JSON")
    parser.add_argument("--replot", metavar="FILE", help="only redraw the plot from rows written by --json")
    args = parser.parse_args()
    if args.replot:
        plot(json.loads(Path(args.replot).read_text()), REPO / "docs" / "conversion_accuracy.png")
        return
    rows, examples = run_all(1000 if args.quick else None)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if args.quick:
        print(markdown(rows, examples, "python benchmarks/conversion_accuracy.py --quick"))
        return
    write_results(markdown(rows, examples, "python benchmarks/conversion_accuracy.py"))
    plot(rows, REPO / "docs" / "conversion_accuracy.png")
    print("wrote docs/results.md and docs/conversion_accuracy.png", file=sys.stderr)


if __name__ == "__main__":
    main()
