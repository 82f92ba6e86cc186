"""The driver: compile a model into an artifact, evaluate ANN vs SNN accuracy per T.

These functions are what ``snnc compile`` / ``evaluate`` / ``demo`` and Python users call;
the CLI only parses arguments and prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import backends, ops
from .api import source_shape, to_ir_layout
from . import inputs
from .datasets import Dataset, fit_inputs
from .frames import as_frames, choose_frames, is_frames, one_frame
from .inputs import InputPreparation
from .errors import DataError, SnncError, reraise_internal
from .graph import Graph
from .passes import PIPELINES, PassManager, PassRecord, PipelineError

#: compilation targets and the pipeline each uses unless one is given
TARGETS = {"nengo": "default", "loihi": "loihi"}


@dataclass(frozen=True)
class Method:
    """A conversion method (``snnc compile --method NAME``): what it is, and the named pipeline
    (:data:`~snnc.compiler.passes.PIPELINES`) that runs it for each target it has."""

    summary: str
    pipelines: dict[str, str]


#: the conversion methods; measured side by side in docs/results.md (benchmarks/low_latency.py)
METHODS = {
    "default": Method("the best measured post-training method for T <= 32 (see the pipelines)", TARGETS),
    "rate": Method("plain rate conversion: p99.9 balancing per layer, membrane from half the threshold, max-pool gate",
                   {"nengo": "rate"}),
    "rate_v0": Method("rate conversion from a membrane at zero (Rueckauer et al. 2017)", {"nengo": "rate_v0"}),
    "bsnn": Method("BSNN: bistable neurons, synchronous residual branches (Li, Zeng & Zhao 2021; docs/bsnn.md)",
                   {"nengo": "bsnn"}),
    "burst": Method("the default with burst spikes, up to 2 events per step (log2(3) bits per event; not for Loihi)",
                    {"nengo": "burst"}),
    "maxpool_relu": Method("max pooling rewritten into relus (exact), no gate", {"nengo": "maxpool_relu", "loihi": "loihi"}),
    "avgpool": Method("max pooling replaced by average pooling (reported)", {"nengo": "avgpool", "loihi": "loihi_avgpool"}),
}


def method_pipeline(method: str, target: str) -> str:
    """The pipeline string of ``method`` for ``target``; an error naming the methods the target has."""
    if method not in METHODS:
        raise PipelineError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
    name = METHODS[method].pipelines.get(target)
    if name is None:
        have = ", ".join(m for m, spec in METHODS.items() if target in spec.pipelines)
        raise PipelineError(f"method {method} has no {target} form ({METHODS[method].summary}); methods for {target}: {have}")
    return PIPELINES[name]
DEFAULT_TIMESTEPS = (8, 16, 32, 64)
#: for models with sequence inputs T is simulation steps per input step, a run lasts T * steps
#: and each T is its own run: fewer and shorter
SEQUENCE_TIMESTEPS = (4, 8, 16)


def default_timesteps(graph: Graph) -> list[int]:
    """The T evaluated unless told: :data:`SEQUENCE_TIMESTEPS` (steps per input step) for a
    graph with sequence inputs, else :data:`DEFAULT_TIMESTEPS`, and the T a QCFS network was
    trained for (:func:`recommended_timesteps`); ``run`` takes the last."""
    base = SEQUENCE_TIMESTEPS if graph.sequence else DEFAULT_TIMESTEPS
    recommended = recommended_timesteps(graph)
    return sorted({*base, recommended}) if recommended else list(base)


def recommended_timesteps(graph: Graph) -> int | None:
    """The largest ``levels`` L of a graph's qcfs layers (a float graph's ops, or what
    ``convert_to_spiking`` recorded): its IF neurons compute them exactly at T = L; None
    without qcfs layers."""
    levels = [n.op.levels for n in graph.nodes if isinstance(n.op, ops.Qcfs)]
    if levels:
        return max(levels)
    return graph.meta.get("spiking", {}).get("recommended_timesteps")


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

    def graph_for(self, kind: str) -> Graph:
        """The graph a backend runs (:data:`snnc.compiler.backends.GRAPHS`): ``spiking``,
        ``chip`` (the float Loihi graph) or ``integer`` (the final graph)."""
        graphs = {"spiking": self.spiking, "chip": self.chip, "integer": self.model}
        graph = graphs[kind]
        if graph is None:
            raise SnncError(f"model {self.model.name} holds no {kind} graph (compiled for another target)")
        return graph

    def frame_outputs(self, every_step: bool) -> "Compiled":
        """A network compiled for frame sequences with its outputs read at every frame
        (``every_step``) or at the last one, in every graph it holds (:func:`.frames.as_frames`)."""
        def framed(graph):
            return None if graph is None else as_frames(graph, every_step)

        return replace(self, model=framed(self.model), ann=framed(self.ann), float=framed(self.float),
                       snn=framed(self.snn), chip=framed(self.chip))


def model_inputs(graph: Graph, data: Dataset, preparation: InputPreparation | None = None) -> dict[str, np.ndarray]:
    """A dataset's inputs prepared (scaled) for a one-input model and moved into the IR layout;
    ``preparation`` defaults to what ``compile`` would choose for ``graph``."""
    return _model_inputs(graph, data, preparation)[0]


def _model_inputs(graph: Graph, data: Dataset, preparation: InputPreparation | None = None):
    """:func:`model_inputs`, and a note where single inputs were taken as one-frame sequences
    (a network compiled for frames: :func:`.frames.one_frame`)."""
    if len(graph.inputs) != 1:
        raise DataError(f"model {graph.name} has {len(graph.inputs)} inputs; datasets feed one-input models")
    preparation = preparation or inputs.for_model(graph)
    node = graph.inputs[0]
    shape, x, note = source_shape(graph, node.name), data.x, None
    if is_frames(graph):
        x, note = one_frame(x, shape, data.source)
    x = fit_inputs(x, shape, preparation.scale_for(x), data.source, node.op.sequence)
    return to_ir_layout(graph, {node.name: x}), note


def frames_for(ann: Graph, data: Dataset | None, frames_option: bool | None = None) -> tuple[bool, str | None]:
    """Whether to compile ``ann`` for frame sequences given ``data`` (the calibration data, or
    the data an uncompiled model is evaluated on) and ``--frames``/``--no-frames``
    (``frames_option``, None: decided from the data's shape by :func:`.frames.choose_frames`), and
    the note saying an automatic choice. Models that take sequences themselves are never
    made frames (``--frames`` on them is refused)."""
    if ann.sequence and not is_frames(ann):
        if frames_option:
            raise SnncError(f"--frames: model {ann.name} takes sequences itself; frames are for models with constant inputs")
        return False, None
    if data is None or len(ann.inputs) != 1:
        return bool(frames_option) or is_frames(ann), None
    node = ann.inputs[0]
    return choose_frames(data.x.shape, source_shape(ann, node.name), frames_option, data.source)


def recorded_preparation(compiled: "Compiled") -> InputPreparation:
    """How ``compiled``'s inputs were prepared at compile time (its manifest's record)."""
    return InputPreparation.from_json(compiled.manifest.get("input"))


def compiled_inputs(compiled: "Compiled", data: Dataset, input_scale: float | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """``data`` prepared as ``compiled`` was calibrated (``input_scale``: an override, said
    in the notes), in the IR layout; and the notes for the user."""
    preparation, notes = inputs.resolve(recorded_preparation(compiled), input_scale)
    x, frame_note = _model_inputs(compiled.ann, data, preparation)
    note = inputs.range_note(preparation, next(iter(x.values())), data.source)
    return x, notes + [n for n in (frame_note, note) if n]


def compile_model(
    ann: Graph,
    calibration: Dataset | None,
    pipeline: str | None = None,
    target: str = "nengo",
    calibration_examples: int | None = 1000,
    input_scale: float | None = None,
    source: Path | str | None = None,
    frames: bool | None = None,
    method: str | None = None,
    **instruments,
) -> Compiled:
    """Run the pipeline (the target's unless given) on the imported float graph ``ann``.

    ``calibration`` feeds the passes that need data (its first ``calibration_examples``;
    every frame of frame sequences). ``frames``: compile a model with constant inputs for
    frame sequences (:mod:`.frames`); None decides from the calibration data's shape
    (:func:`frames_for`, which says its choice). ``instruments`` go to the
    :class:`PassManager` (``dump_after``, ``dump_dir``, ``time_passes``, ``on_note``).
    ``method`` names one of :data:`METHODS` instead of a ``pipeline``; the manifest records it
    (``default`` when neither is given, none for a pipeline given as passes).
    """
    if target not in TARGETS:
        raise SnncError(f"unknown target {target!r}; targets: {', '.join(TARGETS)}")
    if ann.stage != ops.FLOAT:
        raise SnncError(f"model {ann.name} is already compiled (a {ann.stage} graph); compile takes a float model")
    if frames_for(ann, calibration, frames)[0]:
        ann = as_frames(ann)
    if method is not None and pipeline is not None:
        raise PipelineError("give a method or a pipeline, not both")
    if pipeline is None:  # ("" is refused by the pass manager, not taken for the default)
        method = method or "default"
        pipeline = method_pipeline(method, target)
    manager = PassManager(pipeline, keep_graphs=True, **instruments)
    _check_pipeline_reaches(target, manager.pipeline)
    preparation, calib_inputs = inputs.for_model(ann, input_scale), None
    if calibration is not None:
        calibration = calibration.head(calibration_examples)
        calib_inputs = model_inputs(ann, calibration, preparation)
        x = next(iter(calib_inputs.values()))
        preparation = replace(preparation, calibration_range=(float(x.min()), float(x.max())))
    graph, records = manager.run(ann, calib_inputs)
    float_graph = next((r.graph for r in reversed(records) if r.graph.stage == ops.FLOAT), ann)
    lif_notes = _lif_error_notes(graph if graph.stage == ops.SPIKING else None, float_graph, calib_inputs)
    snn, chip = _loihi_stages(graph, records)
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": _source_record(ann, source),
        "target": target,
        "method": method,
        "pipeline": ",".join(str(r.spec) for r in records),
        "stage": graph.stage,
        "passes": [r.to_dict() for r in records],
        "input": _input_record(ann, preparation),
        "calibration": _calibration_record(graph, calibration),
        "notes": _input_notes(ann, preparation) + list(graph.meta.get("notes", [])) + _stage_notes(graph) + lif_notes,
    }
    if chip is not None:
        manifest["core_map"] = dict(chip.meta.get("core_map", {}))
    return Compiled(graph, ann, float_graph, records, manifest, snn, chip)


#: the passes that take a spiking graph down to the chip's integers, in order
LOIHI_PASSES = ("lower_loihi", "map_to_cores", "quantize_loihi")


def _check_pipeline_reaches(target: str, specs) -> None:
    """Refuse a pipeline that cannot give the target's network: an artifact "for Loihi" that
    never reached the chip's integers (or one for Nengo that did) would run, and mislead."""
    names = [spec.name for spec in specs]
    lowers = [name for name in names if name in LOIHI_PASSES]
    given = ",".join(str(spec) for spec in specs)
    if target == "loihi" and LOIHI_PASSES[-1] not in lowers:  # the passes check their own order
        raise PipelineError(
            f"--target loihi: the pipeline {given!r} does not reach the chip's integers; it must run "
            f"{', '.join(LOIHI_PASSES)} after convert_to_spiking (the 'loihi' pipeline does)"
        )
    if target != "loihi" and lowers:
        raise PipelineError(f"--target {target}: the pipeline {given!r} runs {lowers[0]}, a Loihi pass; compile with --target loihi")


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


def _input_record(ann: Graph, preparation: InputPreparation) -> dict:
    """The manifest's record of the model's input: its name, shape and layout as the source
    model takes it (per input step for a sequence: data are ``(N, steps, *shape)``), whether
    it is a sequence, whether that is frames of a model with constant inputs
    (:mod:`.frames`), and how data are prepared for it."""
    if len(ann.inputs) != 1:
        return preparation.to_json()
    node = ann.inputs[0]
    layout = node.op.source_layout or node.type.layout
    shape = list(source_shape(ann, node.name))
    return {"name": node.name, "shape": shape, "layout": layout, "sequence": node.op.sequence,
            "frames": is_frames(ann), **preparation.to_json()}


def _input_notes(ann: Graph, preparation: InputPreparation) -> list[dict]:
    """Say how inputs are scaled where the model scales its input itself (a Rescaling layer):
    the one case where snnc's default for 8-bit data depends on the model."""
    rescaling = inputs.input_rescaling(ann)
    if rescaling is None:
        return []
    node, factor = rescaling
    if preparation.integer_scale == 1.0:
        message = preparation.describe()
    else:
        message = f"the model scales its input by up to {factor:.3g}, so it expects inputs of about unit range: {preparation.describe()}"
    return [{"pass": "input", "node": node, "message": message + "; give --input-scale if your data differ"}]


#: how much of the calibration data measures LIF neurons' error at compile time, and for how long
LIF_CHECK_EXAMPLES, LIF_CHECK_STEPS = 64, 64


def _lif_error_notes(spiking: Graph | None, float_graph: Graph, calib_inputs) -> list[dict]:
    """Neurons whose rate curve is not ReLU's (LIF: ``Neuron.LINEAR_RATES`` false) stand in for
    ReLUs the network was trained with (not those converted from ``soft_lif``): measure each layer's error on a little calibration
    data and say it."""
    from . import neurons

    def bent(node) -> bool:
        # a population converted from a trained soft_lif has the rate curve it was trained with
        neuron = neurons.by_op(node.op)
        return neuron is not None and not neuron.LINEAR_RATES and "trained" not in node.meta

    lif = [] if spiking is None else [n for n in spiking.nodes if bent(n)]
    if not lif or calib_inputs is None:
        return []
    from .simulate import simulate

    x = {name: v[:LIF_CHECK_EXAMPLES] for name, v in calib_inputs.items()}
    activity = simulate(spiking, x, [LIF_CHECK_STEPS], reference=float_graph).activity
    measured = [(n.name, activity[n.name].error_vs_ann) for n in lif if n.name in activity]
    errors = ", ".join(f"%{name} {100 * error:.0f} %" for name, error in measured if error is not None)
    message = (
        f"LIF neurons in place of the ReLUs the network was trained with: each layer's mean output differs from "
        f"the float network's by {errors} (relative L1 on {len(next(iter(x.values())))} calibration examples, "
        f"T={LIF_CHECK_STEPS}). A LIF rate curve is zero below a threshold current and bends towards 1/tau_ref, so "
        "errors grow layer by layer; use neuron=if for ReLU-trained networks, or train with LIF-shaped activations"
    )
    return [{"pass": "convert_to_spiking", "node": lif[0].name, "message": message}]


def _stage_notes(graph: Graph) -> list[dict]:
    if graph.stage != ops.FLOAT:
        return []
    message = "the pipeline stops at the float stage: the artifact holds no spiking network (add convert_to_spiking)"
    return [{"pass": "compile", "node": graph.outputs[0].name, "message": message}]


def _calibration_record(graph: Graph, calibration: Dataset | None) -> dict:
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
        "method": dict(graph.meta.get("threshold_balance", {})),
        "layers": layers,
    }


def write_artifact(compiled: Compiled, out, force: bool = False) -> Path:
    """Write ``compiled`` as an artifact directory (``force``: replace one of another target)."""
    from .artifact import package_versions, save_artifact

    manifest = {"versions": package_versions(), **compiled.manifest}
    graphs = {"model": compiled.model, "ann": compiled.ann, "float": compiled.float, "snn": compiled.snn, "chip": compiled.chip}
    return save_artifact(out, manifest, graphs, force=force)


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
    notes: list[str] = field(default_factory=list)  # for the user: how inputs were prepared
    #: sequence inputs: their number of input steps (T is then per input step); 0: constant inputs
    input_steps: int = 0
    #: the sequences are frames for a model with constant inputs (:mod:`.frames`)
    frames: bool = False
    #: over all neuron populations (:func:`~.simulate.overall_bits`); None: not measured
    bits_per_activity: float | None = None
    significant_bits_per_weight: float | None = None

    def to_json(self) -> dict:
        sequence = {}
        if self.input_steps:
            sequence = {"sequence": {
                "input_steps": self.input_steps,
                "frames": self.frames,
                "timesteps_are": "simulation steps per input step",
                "total_timesteps": {str(t): t * self.input_steps for t in self.timesteps},
            }}
        return {
            **sequence,
            "notes": self.notes,
            "examples": self.examples,
            "backend": self.backend,
            "timesteps": self.timesteps,
            "ann_accuracy": self.ann_accuracy,
            "float_accuracy": self.float_accuracy,
            "snn_accuracy": {str(t): a for t, a in self.snn_accuracy.items()},
            "agreement_with_ann": {str(t): a for t, a in self.agreement.items()},
            "bits_per_activity": self.bits_per_activity,
            "significant_bits_per_weight": self.significant_bits_per_weight,
            "layers": self.layers,
            "seconds": round(self.seconds, 3),
        }


def _check_labels(data: Dataset, ann: Graph) -> None:
    """Labels that no output could match (negative, or past the last class) would count as
    wrong answers and give a meaningless accuracy: refused."""
    classes = int(np.prod(ann.outputs[0].type.shape))
    low, high = int(data.y.min()), int(data.y.max())
    if low < 0 or high >= classes:
        raise DataError(
            f"{data.source}: labels range over {low}..{high}, but model {ann.name} has {classes} classes "
            f"(labels 0..{classes - 1})"
        )


def _predictions(outputs: dict[str, np.ndarray], per_step: bool = False) -> np.ndarray:
    """The class each example (each example's input step, ``per_step``) is given:
    ``(N,)`` or ``(N, steps)``."""
    (y,) = outputs.values()
    return y.reshape(*y.shape[: 2 if per_step else 1], -1).argmax(axis=-1)


def scored_labels(ann: Graph, data: Dataset) -> tuple[np.ndarray, int]:
    """``data``'s labels as the model ``ann``'s output gives classes (``(N, steps)`` for an
    output at every input step, ``(N,)`` for the last step's), and the number of input steps
    (0 for constant inputs); labels of the other form are refused. A network compiled for
    frames takes either form (its output read at every frame, or at the last)."""
    if is_frames(ann):
        ann = as_frames(ann, every_step=data.y.ndim == 2)
    output, y = ann.outputs[0], data.y
    if not ann.sequence or data.x.ndim < 2:  # (sequence data of the wrong rank: refused with x)
        if y.ndim != 1:
            raise DataError(f"{data.source}: labels of shape {list(y.shape)}; model {ann.name} takes one label per example, y of shape (N,)")
        return y, 0
    steps = data.x.shape[1]
    if not output.op.sequence:
        if y.ndim != 1:
            raise DataError(
                f"{data.source}: labels of shape {list(y.shape)}; the output %{output.name} of model {ann.name} "
                "is the last input step's: expected y of shape (N,)"
            )
        return y, steps
    if y.ndim == 1 and steps == 1:
        y = y[:, None]
    if y.shape[1:] != (steps,):
        raise DataError(
            f"{data.source}: labels of shape {list(y.shape)}; the output %{output.name} of model {ann.name} "
            f"gives a class at every input step: expected y of shape (N, steps) = (N, {steps})"
        )
    return y, steps


def evaluate(
    compiled: Compiled,
    data: Dataset,
    timesteps=None,
    backend: str | None = None,
    input_scale: float | None = None,
    batch_size: int = 256,
    progress: bool | None = None,
    precision: str = "float32",
) -> Evaluation:
    """Accuracy of the imported ANN, of the float graph entering conversion, and of the SNN
    at each T (``timesteps``, by default :func:`default_timesteps`: one simulation of
    ``max(T)`` steps; for sequence inputs T steps per input step, one run of ``T * steps``
    per T), with per-layer firing statistics. An output at every input step is scored at
    every step against labels ``(N, steps)``; a network compiled for frames (:mod:`.frames`)
    reads its output at every frame for such labels, else at the last frame (the readout's
    average over that frame's window). ``backend`` defaults to the interpreter, or
    refsim for networks compiled for Loihi."""
    from . import interpreter
    from .simulate import overall_bits

    if backend is not None:
        backends.get(backend)  # an unknown name first: it is a typo whatever else is wrong
    if data.y is None:
        raise DataError(f"{data.source}: evaluation needs labels")
    if len(compiled.model.outputs) != 1:
        raise DataError(f"model {compiled.model.name} has {len(compiled.model.outputs)} outputs; evaluate takes one-output classifiers")
    spec = _backend(compiled, backend)
    if is_frames(compiled.ann):  # labels (N, steps) are scored at every frame, (N,) at the last
        compiled = compiled.frame_outputs(every_step=data.y.ndim == 2)
    _check_labels(data, compiled.ann)
    y, input_steps = scored_labels(compiled.ann, data)
    start = time.perf_counter()
    x, notes = compiled_inputs(compiled, data, input_scale)
    per_step = y.ndim == 2
    timesteps = default_timesteps(compiled.ann) if timesteps is None else timesteps
    ann_pred = _predictions(interpreter.run(compiled.ann, x, batch_size=batch_size, progress=progress), per_step)
    float_pred = _predictions(interpreter.run(compiled.float, x, batch_size=batch_size, progress=progress), per_step)
    result = _simulate(compiled, spec, x, timesteps, batch_size=batch_size, progress=progress, precision=precision)
    snn_pred = {t: _predictions(outs, per_step) for t, outs in result.outputs.items()}
    unmeasured = [name for name, a in result.activity.items() if not a.bits_measured]
    if unmeasured:
        notes.append(
            f"backend {spec.name} gives each neuron's spike total, not its events per step: bits per activity "
            f"and significant bits per weight are not measured for {', '.join('%' + n for n in unmeasured)} "
            "(more than one spike per step; the interpreter measures them)"
        )
    return Evaluation(
        input_steps=input_steps,
        frames=is_frames(compiled.ann),
        examples=len(data),
        backend=spec.name,
        timesteps=sorted(snn_pred),
        ann_accuracy=float(np.mean(ann_pred == y)),
        float_accuracy=float(np.mean(float_pred == y)),
        snn_accuracy={t: float(np.mean(p == y)) for t, p in snn_pred.items()},
        agreement={t: float(np.mean(p == ann_pred)) for t, p in snn_pred.items()},
        layers={name: a.to_dict() for name, a in result.activity.items()},
        seconds=time.perf_counter() - start,
        notes=notes,
        **overall_bits(result.activity),
    )


def _backend(compiled: Compiled, name: str | None) -> backends.Backend:
    """The backend called ``name`` (default: the one for ``compiled``'s final stage), checked
    to run ``compiled``."""
    stage = compiled.model.stage
    if stage == ops.FLOAT:
        raise SnncError(f"model {compiled.model.name} is a float graph; evaluate runs compiled spiking networks")
    spec = backends.default_for(stage) if name is None else backends.get(name)
    if not spec.runs(stage):
        raise SnncError(spec.refusal(stage))
    return spec


def _simulate(compiled: Compiled, spec: backends.Backend, x, timesteps, **options):
    """Run ``compiled`` on ``spec``; ``options``: the driver's run options (``batch_size``,
    ``progress``, ``precision``), of which the backend takes those it accepts."""
    graph = compiled.graph_for(spec.graph)
    try:
        return spec.run(graph, x, timesteps, reference=compiled.float, **options)
    except BaseException as exc:
        reraise_internal(f"backend {spec.name}", exc)


def run_compiled(compiled: Compiled, data: Dataset, timesteps: int, input_scale: float | None = None,
                 batch_size: int = 256) -> tuple[dict[str, np.ndarray], list[str]]:
    """Run a compiled network for ``timesteps`` steps (per input step, for sequence inputs) on
    ``data``'s inputs, prepared as it was calibrated (``input_scale``: an override); returns
    each output after the last step (a sequence output, and any output of a network compiled
    for frames: at the end of every input step), in the source model's output layout (on
    refsim for a network compiled for Loihi), and the notes."""
    from .api import from_ir_layout

    if is_frames(compiled.ann):
        compiled = compiled.frame_outputs(every_step=True)
    x, notes = compiled_inputs(compiled, data, input_scale)
    spec = _backend(compiled, None)
    result = _simulate(compiled, spec, x, [timesteps], batch_size=batch_size, progress=None, precision="float64")
    return from_ir_layout(compiled.graph_for(spec.graph), result.outputs[timesteps]), notes


def format_evaluation(ev: Evaluation) -> str:
    """The accuracy-vs-T table and the per-layer firing statistics, for people."""
    lines = [f"{ev.examples} examples, backend {ev.backend}, {ev.seconds:.1f} s"]
    if ev.input_steps:
        what = "frames" if ev.frames else "input steps"
        lines.append(f"  sequences of {ev.input_steps} {what}: T is simulation steps per input step, {ev.input_steps} x T in all")
    lines += [
        f"  ANN accuracy (imported model)          {100 * ev.ann_accuracy:6.2f} %",
    ]
    if ev.float_accuracy != ev.ann_accuracy:
        lines.append(f"  ANN accuracy (float graph, after passes) {100 * ev.float_accuracy:6.2f} %")
    total = "   total steps" if ev.input_steps else ""
    lines += ["", "     T   SNN accuracy   vs ANN   agrees with ANN" + total]
    for t in ev.timesteps:
        acc, diff = 100 * ev.snn_accuracy[t], 100 * (ev.snn_accuracy[t] - ev.ann_accuracy)
        steps = f"   {t * ev.input_steps:11d}" if ev.input_steps else ""
        lines.append(f"  {t:4d}   {acc:9.2f} %   {diff:+6.2f}   {100 * ev.agreement[t]:10.2f} %{steps}")
    if ev.layers:
        t = ev.timesteps[-1]
        over = f"T={t}" + (f", {t * ev.input_steps} steps" if ev.input_steps else "")
        lines += [
            "",
            f"  firing (spikes per neuron per step, over {over}); error: the layer's mean output vs the float network's;",
            "  SIN: spikes of neurons whose float activation is 0 (Li et al. 2021), as a share of the layer's spikes;",
            "  bits: bits per activity; sig: significant bits multiplying each weight (Voelker et al. 2020)",
            "  layer                 neurons   mean    max   silent  saturated    error      SIN   bits    sig",
        ]
        for name, a in ev.layers.items():
            error = "" if a.get("error_vs_ann") is None else f"{100 * a['error_vs_ann']:6.2f} %"
            sin = "" if a.get("sin_fraction") is None else f"{100 * a['sin_fraction']:6.2f} %"
            bits = f"  {a['bits_per_event']:.2f} bits per event" if "bits_per_event" in a else ""
            lines.append(
                f"  {name:<20} {a['neurons']:8d}  {a['mean_rate']:5.3f}  {a['max_neuron_rate']:5.3f}"
                f"  {100 * a['silent_fraction']:5.1f} %  {100 * a['saturated_fraction']:6.2f} %  {error:>8} {sin:>8}"
                f" {_bits(a['bits_per_activity'])} {_bits(a['significant_bits_per_weight'])}{bits}"
            )
        if ev.bits_per_activity is None:
            lines.append(f"  all layers: bits not measured on backend {ev.backend} (it gives spike totals only)")
        else:
            lines.append(
                f"  all layers: {ev.bits_per_activity:.2f} bits per activity, "
                f"{ev.significant_bits_per_weight:.2f} significant bits multiplying each weight"
            )
    return "\n".join(lines) + "\n"


def _bits(value: float | None) -> str:
    """A bits measure in the evaluation table (``-``: not measured on this backend)."""
    return "     -" if value is None else f"{value:6.2f}"


def parse_timesteps(text: str) -> list[int]:
    """``"8,16,32"`` -> ``[8, 16, 32]`` (sorted, distinct, positive)."""
    try:
        values = [int(v) for v in text.split(",")]  # an empty item is a typo, refused
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise DataError(f"--timesteps {text!r}: give positive integers separated by commas, e.g. 8,16,32,64")
    return sorted(set(check_timesteps_bound(t) for t in values))


#: more steps than any rate code needs; a larger T is a typo that would run for days
MAX_TIMESTEPS = 1_000_000


def check_timesteps_bound(t: int) -> int:
    if t > MAX_TIMESTEPS:
        raise DataError(f"--timesteps {t}: at most {MAX_TIMESTEPS:,} steps")
    return t


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
