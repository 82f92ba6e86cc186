"""MNIST accuracy of networks compiled for Loihi, on the full test set, step by step from the ANN
to the chip's integers.

For each network compiled with ``--target loihi``: the ANN; the spiking graph on snnc's
interpreter (integrate-and-fire as the IR defines it); refsim in float mode (the chip's
dynamics: one step of delay per layer, firing above the threshold, reset to zero, NengoLoihi's
float parameters); refsim on the chip's integers. The differences between the rows are the
conversion error, the chip's spiking dynamics and the quantization. Writes the table into
``docs/results.md`` (between the ``loihi-accuracy`` markers). Run from the repository root::

    python benchmarks/loihi_accuracy.py            # full test set
    python benchmarks/loihi_accuracy.py --quick    # 1000 images, printed only
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from doc_sections import command_lines, write_section
from loihi_check import LIF_PIPELINE, REPO, SHARED

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TIMESTEPS = (16, 32, 64)
NETWORKS = [
    ("LeNet-5 `99.14.h5` (max pools as relus)", SHARED / "models/snn_toolbox/lenet5/keras/99.14.h5", "loihi"),
    ("`mnist_cnn_avgpool.h5`", SHARED / "models/mnist_cnn_avgpool.h5", "loihi"),
    ("residual + BN (`mnist_resnet_bn.h5`)", REPO / "benchmarks/models/mnist_resnet_bn.h5", "loihi"),
    ("MLP, LIF (`mnist_mlp.h5`)", REPO / "benchmarks/models/mnist_mlp.h5", LIF_PIPELINE),
]
BACKENDS = {  # row label -> evaluate backend
    "spiking graph, snnc interpreter": "interp",
    "chip dynamics, float (refsim-float)": "refsim-float",
    "chip integers (refsim)": "refsim",
}


def run(test_examples: int | None) -> tuple[list[dict], int]:
    from snnc.compiler import load_model
    from snnc.compiler.datasets import load_dataset
    from snnc.compiler.driver import compile_model, evaluate

    calibration = load_dataset(SHARED / "mnist", split="train").head(1000)
    test = load_dataset(SHARED / "mnist", split="test").head(test_examples)
    rows = []
    for label, path, pipeline in NETWORKS:
        compiled = compile_model(load_model(path), calibration, pipeline=pipeline, target="loihi", source=path)
        for what, backend in BACKENDS.items():
            start = time.perf_counter()
            ev = evaluate(compiled, test, TIMESTEPS, backend=backend, progress=None)
            rows.append({"network": label, "what": what, **ev.to_json(), "seconds": time.perf_counter() - start})
            accs = ", ".join(f"{100 * a:.2f}" for a in ev.snn_accuracy.values())
            print(f"{label} | {what}: ANN {100 * ev.ann_accuracy:.2f} %, SNN {accs} ({rows[-1]['seconds']:.0f} s)", file=sys.stderr)
    return rows, len(test)


def markdown(rows, examples: int, command: str) -> str:
    lines = [
        f"MNIST test set ({examples:,} images), accuracy in %. Calibration: the first 1000 training images.",
        "",
        "| network | ANN | simulated as | " + " | ".join(f"T={t}" for t in TIMESTEPS) + " |",
        "|---|---|---|" + "---|" * len(TIMESTEPS),
    ]
    for r in rows:
        ann = f"{100 * r['ann_accuracy']:.2f}"
        if r["float_accuracy"] != r["ann_accuracy"]:
            ann += f" (float after passes {100 * r['float_accuracy']:.2f})"
        cells = " | ".join(f"{100 * r['snn_accuracy'][str(t)]:.2f}" for t in TIMESTEPS)
        lines.append(f"| {r['network']} | {ann} | {r['what']} | {cells} |")
    lines += command_lines(command, sum(r["seconds"] for r in rows))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1000 test images; printed, not written")
    args = parser.parse_args(argv)
    rows, examples = run(1000 if args.quick else None)
    if args.quick:
        print(markdown(rows, examples, "python benchmarks/loihi_accuracy.py --quick"))
        return
    text = markdown(rows, examples, "python benchmarks/loihi_accuracy.py")
    write_section(REPO / "docs" / "results.md", "loihi-accuracy", text, "Loihi: accuracy from the ANN to the chip's integers")


if __name__ == "__main__":
    main()
