"""refsim against NengoLoihi's emulator: time on one input, and throughput on a batch.

One network (``mnist_cnn_avgpool.h5`` compiled for Loihi), one run of this script: the
emulator and refsim each simulate one MNIST test image, then the emulator simulates a few
images one after another (it has no batches) and refsim the first 1000 test images as one
batch; every spike of the shared images is checked equal. Writes the times and ratios to
``docs/benchmarks.md`` (between the ``refsim-speed`` markers). Targets: ≥ 50× on one input,
≥ 500× in throughput. Run from the repository root (about 2 minutes)::

    python benchmarks/refsim_speed.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from doc_sections import machine, write_section

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SNNC_SHARED_DATA", REPO.parent / "shared" / "data"))
MODEL = SHARED / "models" / "mnist_cnn_avgpool.h5"


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def measure(timesteps: int, emulator_images: int, batch: int) -> dict:
    from snnc.backends import loihi, refsim
    from snnc.compiler import load_model
    from snnc.compiler.datasets import load_dataset
    from snnc.compiler.driver import compile_model, model_inputs

    calibration = load_dataset(SHARED / "mnist", split="train").head(1000)
    test = load_dataset(SHARED / "mnist", split="test").head(batch)
    compiled = compile_model(load_model(MODEL), calibration, target="loihi", source=MODEL)
    x = model_inputs(compiled.ann, test)[compiled.ann.inputs[0].name]
    name = compiled.ann.inputs[0].name

    built = loihi.build(compiled.chip)
    emu_one, emu_one_s = timed(lambda: loihi.run(built, {name: x[:1]}, [timesteps], progress=False))
    ref_one, ref_one_s = timed(lambda: refsim.simulate(compiled.model, {name: x[:1]}, [timesteps], record="spikes", progress=False))
    emu_many, emu_many_s = timed(lambda: loihi.run(built, {name: x[:emulator_images]}, [timesteps], progress=False))
    ref_batch, ref_batch_s = timed(lambda: refsim.simulate(compiled.model, {name: x}, [timesteps], record="spikes", progress=False))
    exact = all(
        np.array_equal(emu.spikes[layer].astype(bool), ref.spikes[layer][: len(emu.spikes[layer])].astype(bool))
        for emu, ref in ((emu_one, ref_one), (emu_many, ref_batch))
        for layer in emu.spikes
    )
    emu_per_image = emu_many_s / emulator_images
    return {
        "timesteps": timesteps,
        "emulator_one": emu_one_s,
        "refsim_one": ref_one_s,
        "emulator_images": emulator_images,
        "emulator_many": emu_many_s,
        "batch": batch,
        "refsim_batch": ref_batch_s,
        "single_ratio": emu_one_s / ref_one_s,
        "throughput_ratio": emu_per_image / (ref_batch_s / batch),
        "bit_exact": exact,
        "cores": compiled.chip.meta.get("core_map", {}),
    }


def markdown(r: dict, seconds: float) -> str:
    return "\n".join(
        [
            f"`mnist_cnn_avgpool.h5` compiled for Loihi, {r['timesteps']} steps per image. The emulator runs "
            "one image at a time, so its throughput is its time per image over "
            f"{r['emulator_images']} images; refsim runs the {r['batch']} images as one batch. Spikes of "
            f"every chip layer at every step: {'identical' if r['bit_exact'] else 'DIFFERENT'}.",
            "",
            "| | NengoLoihi emulator | refsim | refsim faster by | target |",
            "|---|---|---|---|---|",
            f"| one image | {r['emulator_one']:.2f} s | {r['refsim_one'] * 1000:.1f} ms | {r['single_ratio']:.0f}× | ≥ 50× |",
            f"| throughput | {r['emulator_many'] / r['emulator_images']:.2f} s per image | "
            f"{r['refsim_batch'] / r['batch'] * 1000:.2f} ms per image ({r['batch']} in {r['refsim_batch']:.1f} s) | "
            f"{r['throughput_ratio']:.0f}× | ≥ 500× |",
            "",
            f"Command ({machine()}; {seconds / 60:.1f} min):",
            "",
            "```bash",
            "python benchmarks/refsim_speed.py",
            "```",
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--emulator-images", type=int, default=5, help="images the emulator runs for its throughput")
    parser.add_argument("--batch", type=int, default=1000, help="images refsim runs as one batch")
    parser.add_argument("--no-write", action="store_true", help="print instead of writing docs/benchmarks.md")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = measure(args.timesteps, args.emulator_images, args.batch)
    text = markdown(result, time.perf_counter() - start)
    if args.no_write:
        print(text)
    else:
        write_section(REPO / "docs" / "benchmarks.md", "refsim-speed", text, "refsim against NengoLoihi's emulator")
    print(text if not args.no_write else "", file=sys.stderr)
    return 0 if result["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
