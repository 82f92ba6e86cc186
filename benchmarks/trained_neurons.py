"""Networks trained for spiking neurons: ReLU vs soft-LIF vs QCFS CNNs of the same shape, on
MNIST and Fashion-MNIST, converted by snnc and run at T = 1 ... 64; the soft-LIF network also on
Loihi (refsim, the chip's integers).

Each dataset trains three copies of :func:`snnc.training.spiking_cnn` (conv 3x3 -> activation
-> avg pool, 16 then 32 channels, then dense 128 -> activation -> 10 logits) that differ only in the
activation: ``ReLU``, :class:`snnc.training.SoftLIF`, :class:`snnc.training.QCFS` (L levels).
The trained models are kept in ``benchmarks/out/trained/`` (``--retrain`` trains anew). Each
is compiled with snnc's default pipeline (the soft-LIF network with ``convert_to_spiking{dt}``,
seconds per step) and evaluated by the spiking interpreter on the first ``--examples`` test
images; the ReLU and soft-LIF networks are also compiled with ``--target loihi`` and run on
refsim. Calibration: the first 1000 training images. Writes the table into ``docs/results.md``
(between the ``trained-neurons`` markers), the plot ``docs/trained_neurons.png`` and the rows
``docs/trained_neurons.json``. Run from the repository root::

    python benchmarks/trained_neurons.py             # about 60 minutes on 2 cores
    python benchmarks/trained_neurons.py --quick     # 1 epoch, 300 test images, printed only
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
MODELS = REPO / "benchmarks" / "out" / "trained"
TIMESTEPS = (1, 2, 4, 8, 16, 32, 64)
#: LIF neurons (and Loihi) need more steps: their rate code is not exact at any T
LIF_TIMESTEPS = (16, 32, 64, 128)
COLUMNS = tuple(sorted(set(TIMESTEPS) | set(LIF_TIMESTEPS)))
ROWS_FILE = REPO / "docs" / "trained_neurons.json"
DATASETS = {"MNIST": "mnist", "Fashion-MNIST": "fashion-mnist"}
#: activation -> options of its layers beyond the recipe's defaults (``RECIPE_OPTIONS``)
ACTIVATIONS = {"relu": {}, "softlif": {}, "qcfs": {"levels": 8}}
#: the CNNs' convolution widths: (16, 32) keeps the last pooled map at 11 * 11 * 32 = 3872
#: neurons, within the 4096 input axons a Loihi core gives the dense layer that reads it
FILTERS = (16, 32)
#: seconds per simulation step of the LIF neurons (convert_to_spiking{dt}): tau_ref = 2 ms is
#: then one step, which Loihi's integer refractory period holds exactly
SOFTLIF_DT = 0.002
#: the ReLU network converted to LIF neurons, the baseline the soft-LIF network is trained to beat
RELU_TO_LIF = f"canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{{neuron=lif,max_rate=0.2,dt={SOFTLIF_DT}}}"


def with_dt(pipeline: str) -> str:
    """``pipeline`` with its LIF neurons stepping :data:`SOFTLIF_DT` seconds."""
    return pipeline.replace("convert_to_spiking", f"convert_to_spiking{{dt={SOFTLIF_DT}}}", 1)


def layer_options(activation: str) -> dict:
    """The options each ``activation`` layer of the benchmark's CNNs gets."""
    from snnc.training.recipes import RECIPE_OPTIONS

    return {**RECIPE_OPTIONS[activation], **ACTIVATIONS[activation]}


def trained_model(dataset: str, activation: str, epochs: int, retrain: bool) -> Path:
    """The saved ``activation`` CNN for ``dataset`` (trained now unless kept from a run before
    with the same options)."""
    import hashlib

    options = layer_options(activation)
    key = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
    path = MODELS / f"{dataset}_{activation}_{epochs}ep_{'-'.join(map(str, FILTERS))}_{key}.h5"
    if path.exists() and not retrain:
        return path
    from snnc.training import fit, load_images, spiking_cnn

    x, y = load_images(SHARED / dataset, "train")
    model = spiking_cnn(x.shape[1:], 10, activation, filters=FILTERS, **options)
    fit(model, x, y, epochs=epochs, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.h5")
    model.save(tmp)
    os.replace(tmp, path)
    return path


def measure(label: str, dataset: str, activations, examples: int, epochs: int, retrain: bool) -> list[dict]:
    from snnc.compiler import load_model
    from snnc.compiler.datasets import load_dataset
    from snnc.compiler.driver import compile_model, evaluate
    from snnc.compiler.passes import PIPELINES

    calibration = load_dataset(SHARED / dataset, split="train").head(1000)
    test = load_dataset(SHARED / dataset, split="test").head(examples)
    rows = []
    for activation in activations:
        start = time.perf_counter()
        path = trained_model(dataset, activation, epochs, retrain)
        trained = time.perf_counter() - start
        ann = load_model(path)
        runs = {
            "relu": [
                ("IF neurons, snnc interpreter", PIPELINES["default"], "nengo", None, TIMESTEPS),
                ("LIF neurons (`neuron=lif`), snnc interpreter", RELU_TO_LIF, "nengo", None, LIF_TIMESTEPS),
                ("Loihi (refsim)", PIPELINES["loihi"], "loihi", "refsim", LIF_TIMESTEPS),
            ],
            "softlif": [
                ("LIF neurons, snnc interpreter", with_dt(PIPELINES["default"]), "nengo", None, LIF_TIMESTEPS),
                ("Loihi (refsim)", with_dt(PIPELINES["loihi"]), "loihi", "refsim", LIF_TIMESTEPS),
            ],
            "qcfs": [("IF neurons, snnc interpreter", PIPELINES["default"], "nengo", None, TIMESTEPS)],
        }[activation]
        for where, text, target, backend, timesteps in runs:
            start = time.perf_counter()
            compiled = compile_model(ann, calibration, pipeline=text, target=target, source=path)
            ev = evaluate(compiled, test, timesteps, backend=backend, progress=None)
            row = {
                "dataset": label, "activation": activation, "where": where, "examples": len(test), "epochs": epochs,
                **ev.to_json(), "seconds": time.perf_counter() - start + trained,
            }
            trained = 0.0
            rows.append(row)
            accs = " / ".join(f"{t}: {100 * a:.2f}" for t, a in ev.snn_accuracy.items())
            print(f"{label} | {activation} | {where}: ANN {100 * ev.ann_accuracy:.2f} %, SNN {accs} ({row['seconds']:.0f} s)",
                  file=sys.stderr)
    return rows


def options(activation: str) -> str:
    return ", ".join(f"{k}={v}" for k, v in layer_options(activation).items())


def markdown(rows, command: str) -> str:
    header = " | ".join(f"T={t}" for t in COLUMNS)
    lines = [
        "Test accuracy in % of three CNNs of the same shape (`snnc.training.spiking_cnn(filters=(16, 32))`: conv 3×3 "
        "16 → act → avg pool → conv 3×3 32 → act → avg pool → dense 128 → act → 10) trained only with a different "
        f"activation: ReLU, `SoftLIF({options('softlif')})` and `QCFS({options('qcfs')})` (`snnc.training`'s "
        "recipe, trained with `fit` for the epochs in the table). Each is converted by snnc's default pipeline "
        "(IF neurons for ReLU and QCFS, LIF neurons with the trained time constants for SoftLIF) and run on the "
        f"spiking interpreter; LIF neurons step dt = {SOFTLIF_DT} s, their inputs through the default synapse "
        f"(`convert_to_spiking{{synapse={synapse_default()}}}` s). The ReLU network is also converted to LIF "
        "neurons (`convert_to_spiking{neuron=lif}`: the conversion SoftLIF training is meant to beat), and the ReLU "
        "and SoftLIF networks are compiled with `--target loihi` and run on refsim (the chip's integers). "
        "Calibration: the first "
        "1000 training images; test: the first images of the test set (count in the table).",
        "",
        f"| dataset | trained with | run on | epochs | test images | ANN | {header} |",
        "|---|---|---|---|---|---|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        cells = " | ".join(f"{100 * r['snn_accuracy'][str(t)]:.2f}" if str(t) in r["snn_accuracy"] else "" for t in COLUMNS)
        lines.append(f"| {r['dataset']} | {r['activation']} | {r['where']} | {r['epochs']} | {r['examples']:,} | {100 * r['ann_accuracy']:.2f} | {cells} |")
    commands = list(dict.fromkeys(r.get("command", command) for r in rows))
    lines += command_lines("\n".join(commands), sum(r["seconds"] for r in rows))
    lines += ["", "![accuracy vs time steps, ReLU vs soft-LIF vs QCFS training](trained_neurons.png)"]
    return "\n".join(lines)


def synapse_default() -> float:
    from snnc.compiler.passes import PASSES

    return PASSES["convert_to_spiking"].options["synapse"][1]


def write_results(rows, command: str) -> None:
    """The results.md section and the plot, from ``rows``."""
    write_section(REPO / "docs" / "results.md", "trained-neurons", markdown(rows, command),
                  "Networks trained for spiking neurons: ReLU vs soft-LIF vs QCFS")
    plot(rows, REPO / "docs" / "trained_neurons.png")


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.5), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for r in (r for r in rows if r["dataset"] == dataset):
            steps = [int(t) for t in r["snn_accuracy"]]
            color = f"C{list(ACTIVATIONS).index(r['activation'])}"
            style = "--" if "Loihi" in r["where"] else (":" if "neuron=lif" in r["where"] else "-")
            ax.plot(steps, [100 * a for a in r["snn_accuracy"].values()], style, marker="o", color=color,
                    label=f"{r['activation']}, {r['where']}")
            ax.axhline(100 * r["ann_accuracy"], color=color, linestyle=(0, (1, 4)), linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xticks(COLUMNS, [str(t) for t in COLUMNS])
        ax.set_ylim(30, 100)
        ax.set_xlabel("time steps T")
        ax.set_ylabel("test accuracy (%)  (dotted: each ANN)")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_lines() if not h.get_label().startswith("_")}
    fig.legend(list(handles.values()), list(handles), fontsize=8, loc="lower center", ncol=3)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    save_png(fig, path, dpi=110)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch, 300 test images, MNIST only; printed, not written")
    parser.add_argument("--examples", type=int, default=2000, help="test images per dataset (default 2000)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per network (default 3)")
    parser.add_argument("--retrain", action="store_true", help="train anew even where a trained model is kept")
    parser.add_argument("--activations", default=",".join(ACTIVATIONS),
                        help="which networks (default: relu,softlif,qcfs); rows of the others are kept")
    parser.add_argument("--replot", action="store_true",
                        help="only rewrite the results.md section and redraw the plot from docs/trained_neurons.json")
    args = parser.parse_args(argv)
    if args.replot:
        write_results(json.loads(ROWS_FILE.read_text()), "python benchmarks/trained_neurons.py")
        return
    datasets = {"MNIST": "mnist"} if args.quick else DATASETS
    epochs, examples = (1, 300) if args.quick else (args.epochs, args.examples)
    activations = args.activations.split(",")
    for a in activations:
        if a not in ACTIVATIONS:
            parser.error(f"--activations: {a!r} is not one of {', '.join(ACTIVATIONS)}")
    rows = [row for label, folder in datasets.items() for row in measure(label, folder, activations, examples, epochs, args.retrain)]
    command = "python benchmarks/trained_neurons.py" + (" --quick" if args.quick else "")
    if args.activations != parser.get_default("activations"):
        command += f" --activations {args.activations}"
    if args.quick:
        print(markdown(rows, command))
        return
    from snnc.compiler.fileio import write_text

    for r in rows:
        r["command"] = command
    if ROWS_FILE.exists():
        measured = {(r["dataset"], r["activation"]) for r in rows}
        kept = [r for r in json.loads(ROWS_FILE.read_text()) if (r["dataset"], r["activation"]) not in measured]
        rows = sorted(kept + rows, key=lambda r: (list(DATASETS).index(r["dataset"]), list(ACTIVATIONS).index(r["activation"])))
    write_text(ROWS_FILE, json.dumps(rows, indent=1))
    write_results(rows, command)
    print("wrote docs/results.md, docs/trained_neurons.png and docs/trained_neurons.json", file=sys.stderr)


if __name__ == "__main__":
    main()
