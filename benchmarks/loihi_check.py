"""refsim against NengoLoihi's emulator, spike for spike, on trained MNIST networks.

Compiles each network for Loihi (calibration: the first 1000 MNIST training images), then runs
``snnc verify``'s check: the first 20 MNIST test images for 100 steps each, through NengoLoihi's
emulator (which discretizes the float Loihi graph itself) and through refsim (snnc's own
integers), comparing every chip layer's spikes at every step and the final voltages. Writes the
table into ``docs/results.md`` (between the ``loihi-verify`` markers); exits 1 on any mismatch.
Run from the repository root (a few minutes: the emulator runs one image at a time)::

    python benchmarks/loihi_check.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from doc_sections import command_lines, publish

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SNNC_SHARED_DATA", REPO.parent / "shared" / "data"))
LIF_PIPELINE = (
    "canonicalize,fold_batchnorm,threshold_balance,convert_to_spiking{neuron=lif,max_rate=0.2},"
    "lower_loihi,map_to_cores,quantize_loihi"
)
NETWORKS = [  # (label, model file, pipeline)
    ("LeNet-5 `99.14.h5` (max pool → avg pool)", SHARED / "models/snn_toolbox/lenet5/keras/99.14.h5", "loihi"),
    ("MLP, LIF neurons with biases (`mnist_mlp.h5`)", REPO / "benchmarks/models/mnist_mlp.h5", LIF_PIPELINE),
    ("`mnist_cnn_avgpool.h5` (layers split over cores)", SHARED / "models/mnist_cnn_avgpool.h5", "loihi"),
    ("residual + BN (`mnist_resnet_bn.h5`)", REPO / "benchmarks/models/mnist_resnet_bn.h5", "loihi"),
    ("PyTorch CNN, ONNX (`mnist_torch_cnn.onnx`, max pool → avg pool)", REPO / "benchmarks/models/mnist_torch_cnn.onnx", "loihi"),
]


def check(label: str, path: Path, pipeline: str, calibration, test, timesteps: int) -> dict:
    from snnc.compiler import load_model
    from snnc.compiler.driver import compile_model
    from snnc.compiler.loihi_crosscheck import verify_loihi

    compiled = compile_model(load_model(path), calibration, pipeline=pipeline, target="loihi", source=path)
    result = verify_loihi(compiled, test, timesteps, progress=None)
    cores = compiled.chip.meta["core_map"]["cores"]
    split = [n.name for n in compiled.chip.nodes if len(n.meta.get("cores", {}).get("blocks", [])) > 1]
    row = {
        "network": label,
        "cores": cores,
        "split": split,
        "layers": len(result.layers),
        "spikes": sum(layer.emulator_spikes for layer in result.layers),
        "mismatches": sum(layer.mismatches for layer in result.layers),
        "voltage_mismatches": sum(layer.voltage_mismatches for layer in result.layers),
        "prediction_agreement": result.prediction_agreement,
        "emulator_seconds": result.emulator_seconds,
        "refsim_seconds": result.refsim_seconds,
        "ok": result.ok,
    }
    status = "OK" if result.ok else "MISMATCH"
    print(f"{label}: {row['spikes']} spikes, {row['mismatches']} mismatches, {row['voltage_mismatches']} voltage mismatches: {status}", file=sys.stderr)
    return row


def markdown(rows, examples: int, timesteps: int, seconds: float) -> str:
    lines = [
        f"The first {examples} MNIST test images × {timesteps} steps, NengoLoihi {_nengo_loihi_version()} emulator "
        "(`target=\"sim\"`) against refsim. Spikes: chip spikes the emulator fired, summed over layers, "
        "images and steps; mismatches: (image, step, neuron) where refsim differs; final v: neurons whose "
        "final voltage differs.",
        "",
        "| network | chip layers | cores | split over cores | spikes | mismatches | final v differ | predictions agree | emulator | refsim |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        split = ", ".join(f"`{s}`" for s in r["split"]) or "none"
        lines.append(
            f"| {r['network']} | {r['layers']} | {r['cores']} | {split} | {r['spikes']:,} | {r['mismatches']} | {r['voltage_mismatches']} | "
            f"{100 * r['prediction_agreement']:.0f} % | {r['emulator_seconds']:.1f} s | {r['refsim_seconds']:.2f} s |"
        )
    lines += command_lines("python benchmarks/loihi_check.py", seconds)
    return "\n".join(lines)


def _nengo_loihi_version() -> str:
    from importlib.metadata import version

    return version("nengo-loihi")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20, help="test images (default 20)")
    parser.add_argument("--timesteps", type=int, default=100, help="steps per image (default 100)")
    parser.add_argument("--no-write", action="store_true", help="print the table instead of writing docs/results.md")
    args = parser.parse_args(argv)
    from snnc.compiler.datasets import load_dataset

    calibration = load_dataset(SHARED / "mnist", split="train").head(1000)
    test = load_dataset(SHARED / "mnist", split="test").head(args.n)
    start = time.perf_counter()
    rows = [check(label, path, pipeline, calibration, test, args.timesteps) for label, path, pipeline in NETWORKS]
    text = markdown(rows, args.n, args.timesteps, time.perf_counter() - start)
    publish(text, args.no_write, REPO / "docs" / "results.md", "loihi-verify", "Loihi: refsim against NengoLoihi's emulator")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
