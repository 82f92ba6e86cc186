"""How the LIF populations' synapse (``convert_to_spiking{synapse}``) changes a SoftLIF
network's accuracy: the soft-LIF MNIST network of ``trained_neurons.py``, compiled by snnc's
default pipeline at dt = 2 ms with each synapse time constant, run on the spiking interpreter.

LIF neurons reset to zero: fed each presynaptic spike as a one-step current pulse
(``synapse=0``) they fire below the rate their mean current gives, a bias that does not
shrink with T; a lowpass synapse (``nengo.Lowpass``; Loihi's current decay) spreads the pulses
and gives most of that rate back, at the cost of a lag of about ``tau_s`` per layer. This is
the measurement behind the default ``synapse``. Writes the table into ``docs/results.md``
(between the ``softlif-synapse`` markers). Run from the repository root::

    python benchmarks/softlif_synapse.py          # about 10 minutes on 2 cores (trains the network if absent)
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from doc_sections import command_lines, write_section
from trained_neurons import REPO, SHARED, SOFTLIF_DT, trained_model, with_dt

TAU_S = (0.0, 0.005, 0.01, 0.02)
TIMESTEPS = (16, 32, 64, 128)
EXAMPLES = 1000


def main() -> None:
    from snnc.compiler import load_model
    from snnc.compiler.datasets import load_dataset
    from snnc.compiler.driver import compile_model, evaluate
    from snnc.compiler.passes import PASSES, PIPELINES

    start = time.perf_counter()
    path = trained_model("mnist", "softlif", 3, retrain=False)
    ann = load_model(path)
    calibration = load_dataset(SHARED / "mnist", split="train").head(1000)
    test = load_dataset(SHARED / "mnist", split="test").head(EXAMPLES)
    default = PASSES["convert_to_spiking"].options["synapse"][1]
    rows, ann_accuracy = [], None
    for tau_s in TAU_S:
        pipeline = with_dt(PIPELINES["default"]).replace(f"dt={SOFTLIF_DT}", f"dt={SOFTLIF_DT},synapse={tau_s}", 1)
        compiled = compile_model(ann, calibration, pipeline=pipeline, source=path)
        ev = evaluate(compiled, test, list(TIMESTEPS), progress=None)
        ann_accuracy = ev.ann_accuracy
        label = f"{1000 * tau_s:g} ms" + (" (default)" if tau_s == default else " (none)" if tau_s == 0 else "")
        rows.append(f"| {label} | " + " | ".join(f"{100 * ev.snn_accuracy[t]:.2f}" for t in TIMESTEPS) + " |")
        print(rows[-1], file=sys.stderr)
    text = "\n".join([
        f"The SoftLIF MNIST network of `trained_neurons.py` (ANN {100 * ann_accuracy:.2f} % on these {EXAMPLES} test images), "
        f"compiled by snnc's default pipeline with `convert_to_spiking{{dt={SOFTLIF_DT},synapse=tau_s}}` and run on the spiking "
        "interpreter: test accuracy in % by the LIF inputs' synapse time constant.",
        "",
        "| synapse tau_s | " + " | ".join(f"T={t}" for t in TIMESTEPS) + " |",
        "|---|" + "---|" * len(TIMESTEPS),
        *rows,
        *command_lines("python benchmarks/softlif_synapse.py", time.perf_counter() - start),
    ])
    write_section(REPO / "docs" / "results.md", "softlif-synapse", text, "SoftLIF on LIF neurons: the synapse")
    print("wrote docs/results.md", file=sys.stderr)


if __name__ == "__main__":
    main()
