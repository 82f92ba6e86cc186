"""Diagnostic for the next step of SoftLIF conversion: the soft-LIF MNIST network of
``trained_neurons.py`` with a lowpass synapse on its LIF neurons' inputs.

snnc's LIF populations take each presynaptic spike as a one-step current pulse; a LIF neuron
driven so (reset to zero, voltage floored at 0) fires below the rate its mean current gives,
and that bias does not shrink with T. Nengo (and Hunsberger & Eliasmith's networks) filter
spikes by a synapse ``u_t = a u_{t-1} + (1 - a) x_t``, ``a = exp(-dt / tau_s)``; Loihi has the
same filter as its compartments' current decay. The IR has no synapse on neurons yet, so this
script steps the network itself: the layers by Keras, the neurons by snnc's LIF definition
(:meth:`snnc.compiler.neurons.lif.LIF.step`) on the filtered input, dt = 2 ms, the readout the
mean of the logits over T (as snnc's membrane readout). ``tau_s = 0`` is what snnc runs today
(it reproduces the interpreter's numbers). Writes the table into ``docs/results.md`` (between
the ``softlif-synapse`` markers). Run from the repository root::

    python benchmarks/softlif_synapse.py          # about 10 minutes on 2 cores (trains the network if absent)
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from doc_sections import command_lines, write_section
from trained_neurons import REPO, SHARED, SOFTLIF_DT, trained_model

TAU_S = (0.0, 0.004, 0.01)
TIMESTEPS = (32, 64, 128)
EXAMPLES = 1000


def accuracy(model, x, y, steps: int, dt: float, tau_s: float) -> float:
    """Test accuracy of ``model`` with LIF neurons in place of its SoftLIF layers."""
    import numpy as np
    import tensorflow as tf

    from snnc.compiler.neurons import NEURONS, tensorflow_math
    from snnc.compiler.neurons.lif import LifNeuron
    from snnc.training import SoftLIF

    lif, xp = NEURONS["lif"], tensorflow_math()
    decay = float(np.exp(-dt / tau_s)) if tau_s else 0.0
    filtered, states, logits = {}, {}, 0.0
    for _ in range(steps):
        h = tf.constant(x)
        for layer in model.layers:
            if not isinstance(layer, SoftLIF):
                h = layer(h)
                continue
            p = LifNeuron(tau_rc=layer.tau_rc, tau_ref=layer.tau_ref, dt=dt, gain=1.0, bias=1.0, amplitude=layer.amplitude / dt)
            current = tf.cast(h, tf.float64)
            current = decay * filtered.get(layer.name, current) + (1 - decay) * current  # starts at the first input
            filtered[layer.name] = current
            state = states.get(layer.name) or lif.initial_state(p, tuple(current.shape))
            states[layer.name], spikes = lif.step(p, state, current, xp)
            h = tf.cast(spikes, tf.float32) * p.amplitude
        logits = logits + h
    return float(np.mean(np.argmax(logits.numpy(), axis=1) == y))


def main() -> None:
    import tensorflow as tf

    from snnc.training import load_images

    start = time.perf_counter()
    model = tf.keras.models.load_model(trained_model("mnist", "softlif", 3, retrain=False), compile=False)
    x, y = load_images(SHARED / "mnist", "test")
    x, y = x[:EXAMPLES], y[:EXAMPLES]
    ann = float((model.predict(x, verbose=0).argmax(axis=1) == y).mean())
    rows = []
    for tau_s in TAU_S:
        accs = [accuracy(model, x, y, t, SOFTLIF_DT, tau_s) for t in TIMESTEPS]
        rows.append(f"| {1000 * tau_s:g} ms{' (snnc today)' if tau_s == 0 else ''} | " + " | ".join(f"{100 * a:.2f}" for a in accs) + " |")
        print(rows[-1], file=sys.stderr)
    text = "\n".join([
        f"The SoftLIF MNIST network of `trained_neurons.py` (its table above; ANN {100 * ann:.2f} % on these {EXAMPLES} test images), its LIF "
        f"neurons (snnc's definition, dt = {SOFTLIF_DT} s) fed through a lowpass synapse of time constant tau_s; "
        "stepped by this script, not yet by snnc (the IR has no synapse on neurons).",
        "",
        "| synapse tau_s | " + " | ".join(f"T={t}" for t in TIMESTEPS) + " |",
        "|---|" + "---|" * len(TIMESTEPS),
        *rows,
        *command_lines("python benchmarks/softlif_synapse.py", time.perf_counter() - start),
    ])
    write_section(REPO / "docs" / "results.md", "softlif-synapse", text, "SoftLIF on LIF neurons with a synapse (diagnostic)")
    print("wrote docs/results.md", file=sys.stderr)


if __name__ == "__main__":
    main()
