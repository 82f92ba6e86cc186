"""``snnc verify``: NengoLoihi's emulator and refsim, spike for spike, on the same inputs.

The emulator runs the float Loihi graph (``chip.ir``) through NengoLoihi, which discretizes it
itself; refsim runs snnc's own integers (``model.ir``). Every chip population's spikes at every
step and its final membrane voltages must be identical: that checks snnc's quantization
against NengoLoihi's and refsim's arithmetic against the emulator's at once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import ops
from .datasets import Dataset
from .errors import SnncError


@dataclass
class LayerCheck:
    """One chip population: spike counts of both simulators and where they first differ."""

    name: str
    neurons: int
    emulator_spikes: int
    refsim_spikes: int
    mismatches: int  # (example, step, neuron) triples where one spiked and the other did not
    first_mismatch: dict | None  # {"example", "step" (1-based), "neuron"}
    voltage_mismatches: int  # neurons whose final voltage differs, over all examples

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.voltage_mismatches == 0


@dataclass
class Verification:
    examples: int
    timesteps: int
    layers: list[LayerCheck]
    prediction_agreement: float  # refsim vs emulator
    emulator_agreement_with_ann: float
    refsim_agreement_with_ann: float
    emulator_seconds: float
    refsim_seconds: float
    notes: list[str] = field(default_factory=list)  # for the user: how inputs were prepared

    @property
    def ok(self) -> bool:
        return all(layer.ok for layer in self.layers)

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "examples": self.examples,
            "timesteps": self.timesteps,
            "layers": [asdict(layer) for layer in self.layers],
            "prediction_agreement": self.prediction_agreement,
            "emulator_agreement_with_ann": self.emulator_agreement_with_ann,
            "refsim_agreement_with_ann": self.refsim_agreement_with_ann,
            "emulator_seconds": round(self.emulator_seconds, 3),
            "refsim_seconds": round(self.refsim_seconds, 3),
            "notes": self.notes,
        }


def compare_layer(name: str, emulator: np.ndarray, refsim: np.ndarray, v_emulator: np.ndarray, v_refsim: np.ndarray) -> LayerCheck:
    """Compare spike rasters ``(N, T, n)`` and final voltages ``(N, n)`` of one population."""
    if emulator.shape != refsim.shape:
        raise SnncError(f"%{name}: the emulator recorded spikes of shape {emulator.shape}, refsim {refsim.shape}")
    differ = emulator.astype(bool) != refsim.astype(bool)
    first = None
    if differ.any():
        where = np.argwhere(differ)  # (example, step, neuron); the earliest step first
        example, step, neuron = (int(i) for i in where[np.lexsort((where[:, 2], where[:, 0], where[:, 1]))][0])
        first = {"example": example, "step": step + 1, "neuron": neuron}
    return LayerCheck(
        name=name,
        neurons=int(emulator.shape[-1]),
        emulator_spikes=int(emulator.astype(bool).sum()),
        refsim_spikes=int(refsim.astype(bool).sum()),
        mismatches=int(differ.sum()),
        first_mismatch=first,
        voltage_mismatches=int(np.sum(np.asarray(v_emulator) != np.asarray(v_refsim))),
    )


def verify_loihi(compiled, data: Dataset, timesteps: int, input_scale=None, progress=None) -> Verification:
    """Run the emulator and refsim on ``data`` for ``timesteps`` steps and compare them."""
    from snnc.backends import loihi, refsim

    from . import interpreter
    from .driver import compiled_inputs

    if compiled.model.stage != ops.INTEGER or compiled.chip is None:
        raise SnncError(f"{compiled.model.name}: verify checks networks compiled for Loihi (snnc compile --target loihi)")
    x, notes = compiled_inputs(compiled, data, input_scale)
    start = time.perf_counter()
    emulated = loihi.run(loihi.build(compiled.chip), x, [timesteps], progress=progress)
    emulator_seconds = time.perf_counter() - start
    start = time.perf_counter()
    reference = refsim.simulate(compiled.model, x, [timesteps], record="spikes", progress=progress)
    refsim_seconds = time.perf_counter() - start
    layers = [
        compare_layer(name, emulated.spikes[name], reference.spikes[name], emulated.voltages[name], reference.voltages[name])
        for name in (n.name for n in compiled.model.nodes if isinstance(n.op, ops.LoihiCompartments))
    ]
    ann = _predictions(interpreter.run(compiled.ann, x))
    emu_pred = _predictions(emulated.outputs[timesteps])
    ref_pred = _predictions(reference.outputs[timesteps])
    return Verification(
        examples=len(data),
        timesteps=timesteps,
        layers=layers,
        prediction_agreement=float(np.mean(emu_pred == ref_pred)),
        emulator_agreement_with_ann=float(np.mean(emu_pred == ann)),
        refsim_agreement_with_ann=float(np.mean(ref_pred == ann)),
        emulator_seconds=emulator_seconds,
        refsim_seconds=refsim_seconds,
        notes=notes,
    )


def _predictions(outputs: dict[str, np.ndarray]) -> np.ndarray:
    (y,) = outputs.values()
    return np.asarray(y).reshape(len(y), -1).argmax(axis=1)


def format_verification(v: Verification) -> str:
    """The per-layer table for people."""
    lines = [
        f"{v.examples} examples x {v.timesteps} steps: NengoLoihi emulator {v.emulator_seconds:.1f} s, refsim {v.refsim_seconds:.2f} s",
        "",
        "  layer                 neurons   emulator spikes   refsim spikes   mismatches   first mismatch (example, step, neuron)   final v differ",
    ]
    for layer in v.layers:
        first = "-" if layer.first_mismatch is None else "{example}, {step}, {neuron}".format(**layer.first_mismatch)
        lines.append(
            f"  {layer.name:<20} {layer.neurons:8d}   {layer.emulator_spikes:15d}   {layer.refsim_spikes:13d}"
            f"   {layer.mismatches:10d}   {first:>38}   {layer.voltage_mismatches:14d}"
        )
    lines += [
        "",
        f"  predictions: refsim agrees with the emulator on {100 * v.prediction_agreement:.2f} %; "
        f"with the ANN: emulator {100 * v.emulator_agreement_with_ann:.2f} %, refsim {100 * v.refsim_agreement_with_ann:.2f} %",
        "  every spike matches" if v.ok else "  MISMATCH: refsim and the emulator differ",
    ]
    return "\n".join(lines) + "\n"
