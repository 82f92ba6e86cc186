"""refsim against NengoLoihi's emulator: time on one input, and throughput on a batch.

For each network of ``loihi_check.py`` (compiled for Loihi), in one run: the emulator and
refsim each simulate one MNIST test image (spike rasters recorded and compared), then the
emulator simulates a few images one after another (it has no batches) and refsim the first
1000 test images as one batch (spike counts, as ``snnc evaluate`` runs it); the rasters of the
shared images are checked equal, and the counts of the batch's first images against the
emulator's. Writes the times and ratios to ``docs/benchmarks.md`` (between the
``refsim-speed`` markers). Targets: ≥ 50× on one input, ≥ 500× in throughput. Run from the
repository root (about 3 minutes)::

    python benchmarks/refsim_speed.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from doc_sections import command_lines, publish

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SNNC_SHARED_DATA", REPO.parent / "shared" / "data"))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def measure(label: str, path: Path, pipeline: str, calibration, test, timesteps: int, emulator_images: int) -> dict:
    from snnc.backends import loihi, refsim
    from snnc.compiler import load_model
    from snnc.compiler.driver import compile_model, model_inputs

    batch = len(test)
    compiled = compile_model(load_model(path), calibration, pipeline=pipeline, target="loihi", source=path)
    name = compiled.ann.inputs[0].name
    x = model_inputs(compiled.ann, test)[name]

    built = loihi.build(compiled.chip)
    # refsim's compiled kernel is machine code built once per machine and then cached: load it
    # before timing (one step of one image; every call still prepares its network from scratch)
    refsim.simulate(compiled.model, {name: x[:1]}, [1], progress=False)
    emu_one, emu_one_s = timed(lambda: loihi.run(built, {name: x[:1]}, [timesteps], progress=False))
    ref_one, ref_one_s = timed(lambda: refsim.simulate(compiled.model, {name: x[:1]}, [timesteps], record="spikes", progress=False))
    emu_many, emu_many_s = timed(lambda: loihi.run(built, {name: x[:emulator_images]}, [timesteps], progress=False))
    ref_batch, ref_batch_s = timed(lambda: refsim.simulate(compiled.model, {name: x}, [timesteps], progress=False))
    rasters_equal = all(np.array_equal(emu_one.spikes[k], ref_one.spikes[k].astype(bool)) for k in emu_one.spikes)
    counts_equal = all(
        np.array_equal(emu_many.spikes[k].sum(axis=1), ref_batch.spike_counts[k][:emulator_images].reshape(emulator_images, -1))
        for k in emu_many.spikes
    )
    emu_per_image = emu_many_s / emulator_images
    row = {
        "network": label,
        "timesteps": timesteps,
        "emulator_one": emu_one_s,
        "refsim_one": ref_one_s,
        "emulator_images": emulator_images,
        "emulator_many": emu_many_s,
        "batch": batch,
        "refsim_batch": ref_batch_s,
        "single_ratio": emu_one_s / ref_one_s,
        "throughput_ratio": emu_per_image / (ref_batch_s / batch),
        "bit_exact": rasters_equal and counts_equal,
    }
    print(f"{label}: one image {row['single_ratio']:.0f}x, throughput {row['throughput_ratio']:.0f}x, exact {row['bit_exact']}", file=sys.stderr)
    return row


def markdown(rows: list[dict], seconds: float) -> str:
    r0 = rows[0]
    lines = [
        f"{r0['timesteps']} steps per MNIST image, networks compiled for Loihi (`benchmarks/loihi_check.py`'s). "
        "The emulator runs one image at a time, so its throughput is its time per image over "
        f"{r0['emulator_images']} images; refsim runs {r0['batch']} images as one batch, recording spike counts "
        "(as `snnc evaluate` does), on its compiled engine with one worker thread per core. Both times include "
        "preparing the network (the emulator builds its simulator; refsim its tables), not refsim's one-time "
        "compilation of its kernel (cached per machine). Bit-exact: the one-image spike rasters are identical, "
        "and so are the spike counts of the batch's first images and the emulator's.",
        "",
        "| network | emulator, one image | refsim, one image | faster by (target ≥ 50×) | emulator per image | refsim per image in a batch | throughput ratio (target ≥ 500×) | bit-exact |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['network']} | {r['emulator_one']:.2f} s | {r['refsim_one'] * 1000:.1f} ms | {r['single_ratio']:.0f}× | "
            f"{r['emulator_many'] / r['emulator_images']:.2f} s | {r['refsim_batch'] / r['batch'] * 1000:.2f} ms | "
            f"{r['throughput_ratio']:.0f}× | {'yes' if r['bit_exact'] else 'NO'} |"
        )
    lines += command_lines("python benchmarks/refsim_speed.py", seconds)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--emulator-images", type=int, default=5, help="images the emulator runs for its throughput")
    parser.add_argument("--batch", type=int, default=1000, help="images refsim runs as one batch")
    parser.add_argument("--no-write", action="store_true", help="print instead of writing docs/benchmarks.md")
    args = parser.parse_args(argv)
    from loihi_check import NETWORKS

    from snnc.compiler.datasets import load_dataset

    calibration = load_dataset(SHARED / "mnist", split="train").head(1000)
    test = load_dataset(SHARED / "mnist", split="test").head(args.batch)
    start = time.perf_counter()
    rows = [measure(label, path, pipeline, calibration, test, args.timesteps, args.emulator_images) for label, path, pipeline in NETWORKS]
    text = markdown(rows, time.perf_counter() - start)
    publish(text, args.no_write, REPO / "docs" / "benchmarks.md", "refsim-speed", "refsim against NengoLoihi's emulator")
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
