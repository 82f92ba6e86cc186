"""The driver: compile a model into an artifact, evaluate ANN vs SNN accuracy per T.

These functions are what ``snnc compile`` / ``evaluate`` / ``demo`` and Python users call;
the CLI only parses arguments and prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import ops
from .api import source_shape, to_ir_layout
from .datasets import Dataset, fit_inputs
from .errors import DataError, SnncError
from .graph import Graph
from .passes import PIPELINES, PassManager, PassRecord

#: compilation targets and the pipeline each uses unless one is given
TARGETS = {"nengo": "default", "loihi": "loihi"}
#: ``refsim`` runs the chip's integers, ``refsim-float`` the same chip network with NengoLoihi's
#: float parameters (quantization error apart from the chip's spiking dynamics), ``loihi`` the
#: NengoLoihi emulator
BACKENDS = ("interp", "nengo", "nengo-dl", "refsim", "refsim-float", "loihi")
LOIHI_BACKENDS = ("refsim", "refsim-float", "loihi")
DEFAULT_TIMESTEPS = (8, 16, 32, 64)


@dataclass
class Compiled:
    """A compiled network: the spiking graph, the float graphs around it, how it was made."""

    model: Graph
    ann: Graph
    float: Graph
    records: list[PassRecord]
    manifest: dict = field(default_factory=dict)
    #: Loihi target: the spiking graph before lowering, and the float Loihi graph (core map)
    snn: Graph | None = None
    chip: Graph | None = None

    @property
    def spiking(self) -> Graph:
        """The spiking graph the interpreter and the Nengo backends run."""
        return self.snn if self.snn is not None else self.model


def model_inputs(graph: Graph, data: Dataset, input_scale: float | None = None) -> dict[str, np.ndarray]:
    """A dataset's inputs fitted to a one-input model and moved into the IR layout."""
    if len(graph.inputs) != 1:
        raise DataError(f"model {graph.name} has {len(graph.inputs)} inputs; datasets feed one-input models")
    name = graph.inputs[0].name
    x = fit_inputs(data.x, source_shape(graph, name), input_scale, data.source)
    return to_ir_layout(graph, {name: x})


def compile_model(
    ann: Graph,
    calibration: Dataset | None,
    pipeline: str | None = None,
    target: str = "nengo",
    calibration_examples: int | None = 1000,
    input_scale: float | None = None,
    source: Path | str | None = None,
    **instruments,
) -> Compiled:
    """Run the pipeline (the target's unless given) on the imported float graph ``ann``.

    ``calibration`` feeds the passes that need data (its first ``calibration_examples``);
    ``instruments`` go to the :class:`PassManager` (``dump_after``, ``dump_dir``,
    ``time_passes``, ``on_note``).
    """
    if target not in TARGETS:
        raise SnncError(f"unknown target {target!r}; targets: {', '.join(TARGETS)}")
    pipeline = pipeline or PIPELINES[TARGETS[target]]
    manager = PassManager(pipeline, keep_graphs=True, **instruments)
    calib_inputs = None
    if calibration is not None:
        calibration = calibration.head(calibration_examples)
        calib_inputs = model_inputs(ann, calibration, input_scale)
    graph, records = manager.run(ann, calib_inputs)
    float_graph = next((r.graph for r in reversed(records) if r.graph.stage == ops.FLOAT), ann)
    snn, chip = _loihi_stages(graph, records)
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": _source_record(ann, source),
        "target": target,
        "pipeline": ",".join(str(r.spec) for r in records),
        "stage": graph.stage,
        "passes": [r.to_dict() for r in records],
        "calibration": _calibration_record(graph, calibration, input_scale),
        "notes": list(graph.meta.get("notes", [])),
    }
    if chip is not None:
        manifest["core_map"] = dict(chip.meta.get("core_map", {}))
    return Compiled(graph, ann, float_graph, records, manifest, snn, chip)


def _is_chip_graph(graph: Graph) -> bool:
    return any(isinstance(n.op, ops.CHIP_OPS) for n in graph.nodes)


def _loihi_stages(graph: Graph, records) -> tuple[Graph | None, Graph | None]:
    """For a graph that reached the chip: the spiking graph before lowering and the last
    float Loihi graph (after the core map); (None, None) otherwise."""
    if graph.stage != ops.INTEGER:
        return None, None
    spiking = [r.graph for r in records if r.graph.stage == ops.SPIKING]
    snn = next((g for g in reversed(spiking) if not _is_chip_graph(g)), None)
    chip = next((g for g in reversed(spiking) if _is_chip_graph(g)), None)
    return snn, chip


def _source_record(ann: Graph, source) -> dict:
    from .artifact import file_sha256

    record = {"model": ann.name, **dict(ann.meta.get("source", {}))}
    if source is not None and Path(source).exists():
        record["path"] = str(source)
        record["sha256"] = file_sha256(source)
    return record


def _calibration_record(graph: Graph, calibration: Dataset | None, input_scale) -> dict:
    if calibration is None:
        return {}
    layers = {
        n.name: {"scale": n.meta["scale"], **n.meta.get("calibration", {})}
        for n in graph.nodes
        if "scale" in n.meta
    }
    return {
        "data": calibration.source,
        "examples": len(calibration),
        "input_scale": input_scale,
        "method": dict(graph.meta.get("threshold_balance", {})),
        "layers": layers,
    }


def write_artifact(compiled: Compiled, out) -> Path:
    from .artifact import package_versions, save_artifact

    manifest = {"versions": package_versions(), **compiled.manifest}
    graphs = {"model": compiled.model, "ann": compiled.ann, "float": compiled.float, "snn": compiled.snn, "chip": compiled.chip}
    return save_artifact(out, manifest, graphs)


# ----------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """ANN and SNN accuracy on one dataset; accuracies are fractions."""

    examples: int
    backend: str
    timesteps: list[int]
    ann_accuracy: float
    float_accuracy: float
    snn_accuracy: dict[int, float]
    agreement: dict[int, float]  # fraction of examples where the SNN predicts what the ANN does
    layers: dict[str, dict]
    seconds: float

    def to_json(self) -> dict:
        return {
            "examples": self.examples,
            "backend": self.backend,
            "timesteps": self.timesteps,
            "ann_accuracy": self.ann_accuracy,
            "float_accuracy": self.float_accuracy,
            "snn_accuracy": {str(t): a for t, a in self.snn_accuracy.items()},
            "agreement_with_ann": {str(t): a for t, a in self.agreement.items()},
            "layers": self.layers,
            "seconds": round(self.seconds, 3),
        }


def _predictions(outputs: dict[str, np.ndarray]) -> np.ndarray:
    (y,) = outputs.values()
    return y.reshape(len(y), -1).argmax(axis=1)


def evaluate(
    compiled: Compiled,
    data: Dataset,
    timesteps=DEFAULT_TIMESTEPS,
    backend: str | None = None,
    input_scale: float | None = None,
    batch_size: int = 256,
    progress: bool | None = None,
    precision: str = "float32",
) -> Evaluation:
    """Accuracy of the imported ANN, of the float graph entering conversion, and of the SNN
    at each T (one simulation of ``max(T)`` steps), with per-layer firing statistics.
    ``backend`` defaults to the interpreter, or refsim for networks compiled for Loihi."""
    from . import interpreter

    if backend is None:
        backend = "refsim" if compiled.model.stage == ops.INTEGER else "interp"
    if backend not in BACKENDS:
        raise SnncError(f"unknown backend {backend!r}; backends: {', '.join(BACKENDS)}")
    if data.y is None:
        raise DataError(f"{data.source}: evaluation needs labels")
    if len(compiled.model.outputs) != 1:
        raise DataError(f"model {compiled.model.name} has {len(compiled.model.outputs)} outputs; evaluate takes one-output classifiers")
    if compiled.model.stage == ops.FLOAT:
        raise SnncError(f"model {compiled.model.name} is a float graph; evaluate runs compiled spiking networks")
    if backend in LOIHI_BACKENDS and compiled.model.stage != ops.INTEGER:
        raise SnncError(f"backend {backend} runs networks compiled for Loihi (snnc compile --target loihi)")
    start = time.perf_counter()
    x = model_inputs(compiled.ann, data, input_scale)
    ann_pred = _predictions(interpreter.run(compiled.ann, x, batch_size=batch_size, progress=progress))
    float_pred = _predictions(interpreter.run(compiled.float, x, batch_size=batch_size, progress=progress))
    result = _simulate(compiled, x, timesteps, backend, batch_size, progress, precision)
    snn_pred = {t: _predictions(outs) for t, outs in result.outputs.items()}
    return Evaluation(
        examples=len(data),
        backend=backend,
        timesteps=sorted(snn_pred),
        ann_accuracy=float(np.mean(ann_pred == data.y)),
        float_accuracy=float(np.mean(float_pred == data.y)),
        snn_accuracy={t: float(np.mean(p == data.y)) for t, p in snn_pred.items()},
        agreement={t: float(np.mean(p == ann_pred)) for t, p in snn_pred.items()},
        layers={name: a.to_dict() for name, a in result.activity.items()},
        seconds=time.perf_counter() - start,
    )


def _simulate(compiled: Compiled, x, timesteps, backend, batch_size, progress, precision):
    if backend == "interp":
        from .simulate import simulate

        return simulate(compiled.spiking, x, timesteps, batch_size=batch_size, progress=progress,
                        precision=precision, reference=compiled.float)
    if backend in ("nengo", "nengo-dl"):
        from snnc.backends import nengo as nengo_backend

        return nengo_backend.simulate(compiled.spiking, x, timesteps, simulator=backend, batch_size=batch_size, progress=progress)
    if backend in ("refsim", "refsim-float"):
        from snnc.backends import refsim

        graph = compiled.model if backend == "refsim" else compiled.chip
        return refsim.simulate(graph, x, timesteps, batch_size=batch_size, progress=progress, reference=compiled.float)
    if backend == "loihi":
        from snnc.backends import loihi

        return loihi.run(loihi.build(compiled.chip), x, timesteps, progress=progress).result
    raise SnncError(f"unknown backend {backend!r}; backends: {', '.join(BACKENDS)}")


def format_evaluation(ev: Evaluation) -> str:
    """The accuracy-vs-T table and the per-layer firing statistics, for people."""
    lines = [
        f"{ev.examples} examples, backend {ev.backend}, {ev.seconds:.1f} s",
        f"  ANN accuracy (imported model)          {100 * ev.ann_accuracy:6.2f} %",
    ]
    if ev.float_accuracy != ev.ann_accuracy:
        lines.append(f"  ANN accuracy (float graph, after passes) {100 * ev.float_accuracy:6.2f} %")
    lines += ["", "     T   SNN accuracy   vs ANN   agrees with ANN"]
    for t in ev.timesteps:
        acc, diff = 100 * ev.snn_accuracy[t], 100 * (ev.snn_accuracy[t] - ev.ann_accuracy)
        lines.append(f"  {t:4d}   {acc:9.2f} %   {diff:+6.2f}   {100 * ev.agreement[t]:10.2f} %")
    if ev.layers:
        t = ev.timesteps[-1]
        lines += [
            "",
            f"  firing (spikes per neuron per step, over T={t}); error: the layer's mean output vs the float network's",
            "  layer                 neurons   mean    max   silent  saturated    error",
        ]
        for name, a in ev.layers.items():
            error = "" if a.get("error_vs_ann") is None else f"{100 * a['error_vs_ann']:6.2f} %"
            lines.append(
                f"  {name:<20} {a['neurons']:8d}  {a['mean_rate']:5.3f}  {a['max_neuron_rate']:5.3f}"
                f"  {100 * a['silent_fraction']:5.1f} %  {100 * a['saturated_fraction']:6.2f} %  {error:>8}"
            )
    return "\n".join(lines) + "\n"


def parse_timesteps(text: str) -> list[int]:
    """``"8,16,32"`` -> ``[8, 16, 32]`` (sorted, distinct, positive)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise DataError(f"--timesteps {text!r}: give positive integers separated by commas, e.g. 8,16,32,64")
    return sorted(set(values))


def load_compiled(path) -> Compiled:
    """A compiled artifact directory (``snnc compile -o``) as a :class:`Compiled`."""
    from .artifact import load_artifact

    artifact = load_artifact(path)
    return Compiled(artifact.model, artifact.ann, artifact.float, [], artifact.manifest, artifact.snn, artifact.chip)


def plot_evaluation(ev: Evaluation, path, title: str = "") -> None:
    """Accuracy vs T (the ANN as a line; the float graph's too where the passes changed it),
    written as a PNG atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .fileio import write_bytes

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ev.timesteps, [100 * ev.snn_accuracy[t] for t in ev.timesteps], marker="o", label=f"SNN ({ev.backend})")
    ax.axhline(100 * ev.ann_accuracy, color="k", linestyle=":", label="ANN")
    if ev.float_accuracy != ev.ann_accuracy:
        ax.axhline(100 * ev.float_accuracy, color="tab:red", linestyle="--", label="float graph after passes")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ev.timesteps, [str(t) for t in ev.timesteps])
    ax.set_xlabel("time steps T")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or f"{ev.examples} examples")
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_bytes(path, buffer.getvalue())
