"""The ``snnc`` command line. Each command is a small function over the public API.

Exit status: 0 success, 1 a check failed, 2 bad input or usage (one line on stderr,
``--verbose`` adds the traceback). This module imports only the standard library at start-up
so ``snnc --help`` is instant; commands import what they need.
"""

from __future__ import annotations

import argparse
import sys
import traceback

#: 3: an unexpected exception inside snnc (a bug); never 1 or 2, which users' scripts read as
#: "the check failed" and "my input is bad"
EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
#: compile options' defaults, filled in after parsing so that evaluate can tell a flag given
#: for an already compiled artifact (refused) from one left out
COMPILE_DEFAULTS = {"target": "nengo", "calib_examples": 1000}
MODEL_HELP = "model: .keras, .h5, SavedModel dir, .onnx, .ir, or example:NAME (e.g. example:digits_cnn)"


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors follow our one-line rule."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


class UsageError(Exception):
    pass


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("snnc")
    except PackageNotFoundError:  # running from a source tree without an install
        return "unknown"


# ----------------------------------------------------------------------------- commands


def cmd_dump(args) -> int:
    """Import a model and print its IR."""
    from .api import load_model
    from .dump import dump_dot, dump_json
    from .text import print_graph, save

    graph = load_model(args.model, weights=args.weights)
    if args.format == "text":
        if args.output:
            save(graph, args.output)  # text plus the .npz beside it: parses back exactly
            return EXIT_OK
        text = print_graph(graph)
    else:
        text = dump_json(graph) if args.format == "json" else dump_dot(graph)
    if args.output:
        from .fileio import write_text

        write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_run(args) -> int:
    """Run a model on inputs in the model's own layout: a float model through the
    interpreter (inputs as given, times --input-scale if given), a compiled network
    (snnc compile -o OUT) for --timesteps steps on inputs prepared as it was calibrated
    (8-bit data scaled as compile scaled them)."""
    from .api import load_model, run_model
    from .artifact import is_artifact
    from .datasets import load_inputs, save_outputs

    if is_artifact(args.model) and args.weights is None:  # (with weights: refused by load_model)
        outputs = _run_artifact(args)
    else:
        graph = load_model(args.model, weights=args.weights)
        inputs = load_inputs(args.input, [n.name for n in graph.inputs])
        if args.input_scale is not None:
            inputs = {name: x * args.input_scale for name, x in inputs.items()}
        graph = _framed_for_run(graph, inputs, args)
        if graph.stage == "float":
            if args.timesteps is not None:
                raise UsageError(f"--timesteps applies to compiled spiking networks; {args.model} is a float model")
            outputs = run_model(graph, inputs, batch_size=args.batch_size, progress=None)
        else:  # a spiking .ir file: no record of how its inputs were prepared, taken as given
            from .api import run_spiking
            from .driver import default_timesteps

            timesteps = args.timesteps or default_timesteps(graph)[-1]
            outputs = run_spiking(graph, inputs, timesteps, batch_size=args.batch_size, progress=None)
    save_outputs(args.output, outputs)
    return EXIT_OK


def _framed_for_run(graph, inputs, args):
    """A float model run on frame sequences (:func:`snnc.compiler.driver.frames_for`, said on
    stderr) gives its output at every frame; so does a spiking graph compiled for frames."""
    from .datasets import Dataset
    from .driver import frames_for
    from .errors import DataError
    from .frames import as_frames, is_frames

    if graph.stage != "float" or len(inputs) != 1:
        if args.frames is not None:
            raise UsageError(f"--frames/--no-frames apply to float models with one input; {args.model} is compiled (frames: as compiled)")
        return as_frames(graph, every_step=True) if is_frames(graph) else graph
    (x,) = inputs.values()
    try:
        use, note = frames_for(graph, Dataset(x, None, args.input), args.frames)
    except DataError:  # fitting neither way: refused below with the shape the model takes
        return graph
    _print_input_notes([note] if note else [])
    return as_frames(graph, every_step=True) if use else graph


def _run_artifact(args) -> dict:
    from .datasets import Dataset, load_inputs
    from .driver import default_timesteps, load_compiled, run_compiled

    if args.frames is not None:
        raise UsageError(f"--frames/--no-frames apply when compiling; {args.model} is already compiled (frames: as compiled)")
    compiled = load_compiled(args.model)
    names = [n.name for n in compiled.ann.inputs]
    if len(names) != 1:
        raise UsageError(f"{args.model}: snnc run feeds compiled networks with one input; this one has {len(names)}")
    (x,) = load_inputs(args.input, names).values()
    timesteps = args.timesteps or default_timesteps(compiled.ann)[-1]
    outputs, notes = run_compiled(compiled, Dataset(x, None, args.input), timesteps,
                                  input_scale=args.input_scale, batch_size=args.batch_size)
    _print_input_notes(notes)
    return outputs


def _print_input_notes(notes) -> None:
    for note in notes:
        print(f"snnc: note: {note}", file=sys.stderr)


def _print_notes(notes, stream) -> None:
    for note in notes:
        print(f"  note: {note['pass']}: %{note['node']}: {note['message']}", file=stream)


def _compile_from_args(args, model_path, calib, stream, data=None):
    """Import ``model_path`` and compile it with the options shared by compile/evaluate; for
    frame sequences (:func:`snnc.compiler.driver.frames_for`) where ``data`` (default: the
    calibration data) are, or ``--frames`` says. Returns the compiled network and the note
    saying an automatic choice of frames, for the caller to print once compiling succeeded."""
    from .api import load_model
    from .driver import compile_model, frames_for
    from .examples import resolve

    ann = load_model(model_path, weights=args.weights)
    frames, note = frames_for(ann, calib if data is None else data, args.frames)
    compiled = compile_model(
        ann,
        calib,
        pipeline=args.pipeline,
        method=args.method,
        target=args.target,
        calibration_examples=args.calib_examples,
        input_scale=args.input_scale,
        source=resolve(model_path),
        dump_after=tuple(args.dump_after or ()),
        dump_dir=args.dump_dir,
        time_passes=args.time_passes,
        stream=stream,
        frames=frames,
    )
    return compiled, note


def cmd_compile(args) -> int:
    """Compile a model into a spiking network: an artifact directory with the IR, parameters
    and a manifest of how it was made."""
    import json

    from .artifact import check_replaceable
    from .driver import write_artifact

    _fill_compile_defaults(args)
    check_replaceable(args.output, args.target, args.force)  # before minutes of compiling, not after
    compiled, note = _compile_from_args(args, args.model, _calibration_data(args.calib), sys.stderr)
    out = write_artifact(compiled, args.output, force=args.force)
    _print_input_notes([note] if note else [])
    if args.json:
        print(json.dumps({"artifact": str(out), **compiled.manifest}, indent=2))
        return EXIT_OK
    seconds = sum(r.seconds for r in compiled.records)
    print(f"compiled {args.model} -> {out}/ (target {compiled.manifest['target']}, {len(compiled.records)} passes, {seconds:.2f} s)")
    for r in compiled.records:
        print(f"  {r.spec.name:<20} {r.seconds:8.3f} s   {r.nodes_before:3d} -> {r.nodes_after:3d} nodes")
    _print_notes(compiled.manifest["notes"], sys.stdout)
    return EXIT_OK


def _fill_compile_defaults(args) -> None:
    for flag, default in COMPILE_DEFAULTS.items():
        if getattr(args, flag) is None:
            setattr(args, flag, default)


def _calibration_data(path):
    """Calibration inputs (labels not needed): an IDX folder's train split, or the file."""
    from .datasets import has_idx_split, load_dataset

    split = "train" if has_idx_split(path, "train") else "test"
    return load_dataset(path, split=split, need_labels=False)


def cmd_evaluate(args) -> int:
    """ANN vs SNN accuracy per number of time steps T, and per-layer firing rates."""
    import json

    from .artifact import is_artifact
    from .datasets import load_dataset
    from .driver import evaluate, format_evaluation, load_compiled, parse_timesteps, scored_labels

    timesteps = None if args.timesteps is None else parse_timesteps(args.timesteps)  # None: the model's default
    _check_plot_path(args.plot)
    data = load_dataset(args.data, split="test").head(args.n)
    if is_artifact(args.model):
        for flag in ("pipeline", "method", "calib", "dump_dir", "dump_after", "weights", *COMPILE_DEFAULTS, "time_passes"):
            if getattr(args, flag) not in (None, False):
                raise UsageError(f"--{flag.replace('_', '-')} applies when compiling; {args.model} is already compiled")
        if args.frames is not None:
            raise UsageError(f"--frames/--no-frames apply when compiling; {args.model} is already compiled (frames: as compiled)")
        compiled = load_compiled(args.model)
    else:
        _fill_compile_defaults(args)
        _check_backend_target(args.backend, args.target)  # said before compiling, not after
        calib, note = _evaluation_calibration(args)
        compiled, frames_note = _compile_from_args(args, args.model, calib, sys.stderr, data)
        scored_labels(compiled.ann, data)  # refused before the notes: a failure stays one line
        _print_input_notes([n for n in (frames_note, note) if n])
    ev = evaluate(compiled, data, timesteps, backend=args.backend, input_scale=args.input_scale,
                  batch_size=args.batch_size, progress=None)
    _print_input_notes(ev.notes)
    if args.plot:
        from .driver import plot_evaluation

        plot_evaluation(ev, args.plot, title=f"{args.model} on {data.source}")
    if args.json:
        print(json.dumps(ev.to_json(), indent=2))
    else:
        print(f"{args.model} on {data.source}")
        sys.stdout.write(format_evaluation(ev))
        _print_notes(compiled.manifest.get("notes", []), sys.stdout)
    return EXIT_OK


def cmd_verify(args) -> int:
    """Run NengoLoihi's emulator and refsim on the same inputs and compare every chip layer's
    spikes at every step and the final voltages; exit status 1 on any difference."""
    import json

    from .artifact import is_artifact
    from .datasets import load_dataset
    from .driver import load_compiled
    from .loihi_crosscheck import format_verification, verify_loihi

    if not is_artifact(args.artifact):
        raise UsageError(f"{args.artifact}: not a compiled artifact; compile first: snnc compile MODEL --calib DATA --target loihi -o OUT")
    compiled = load_compiled(args.artifact)
    data = load_dataset(args.data, split="test", need_labels=False).head(args.n)
    result = verify_loihi(compiled, data, args.timesteps, input_scale=args.input_scale, progress=None)
    _print_input_notes(result.notes)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"{args.artifact} on {data.source}")
        sys.stdout.write(format_verification(result))
    return EXIT_OK if result.ok else EXIT_CHECK_FAILED


def _evaluation_calibration(args):
    """Calibration data for evaluating an uncompiled model: --calib, else the training
    split of an IDX folder, else the evaluation data itself; and a note saying the last
    (printed once the model compiled: a failure stays one line)."""
    from .datasets import has_idx_split

    if args.calib:
        return _calibration_data(args.calib), None
    note = None
    if not has_idx_split(args.data, "train"):
        note = f"calibrating on the evaluation data {args.data} (give --calib to choose)"
    return _calibration_data(args.data), note


def _check_plot_path(path) -> None:
    from pathlib import Path

    if path is not None and Path(path).suffix.lower() != ".png":
        raise UsageError(f"--plot {path}: draws a PNG image; give a file name ending in .png")


def cmd_demo(args) -> int:
    """Train a small CNN on scikit-learn's digits, compile it, and print accuracy vs T."""
    import json

    from .demo import run_demo
    from .driver import format_evaluation, parse_timesteps

    result = run_demo(
        timesteps=parse_timesteps(args.timesteps), out=args.output, epochs=args.epochs,
        seed=args.seed, log=None if args.json else print, target=args.target, force=args.force,
    )
    if args.json:
        print(json.dumps({"train_seconds": result.train_seconds, **result.evaluation.to_json()}, indent=2))
    else:
        sys.stdout.write(format_evaluation(result.evaluation))
    return EXIT_OK


def _check_backend_target(backend: str | None, target: str) -> None:
    """Refuse a backend that cannot run what ``--target`` compiles."""
    from . import backends

    if backend is None:
        return
    spec, stage = backends.get(backend), backends.STAGE_OF_TARGET[target]
    if not spec.runs(stage):
        targets = spec.targets()
        names, flags = " or ".join(t.capitalize() for t in targets), " or ".join(f"--target {t}" for t in targets)
        raise UsageError(f"--backend {backend} runs networks compiled for {names}; give {flags}")


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from .datasets import DATA_HELP
    from . import backends, ops
    from .driver import DEFAULT_TIMESTEPS, SEQUENCE_TIMESTEPS, TARGETS

    timesteps = ",".join(map(str, DEFAULT_TIMESTEPS))
    per_input_step = "for a model with sequence inputs T is simulation steps per input step, the run lasting steps x T"

    parser = _Parser(
        prog="snnc",
        description="Compile trained deep networks (Keras, ONNX) into spiking neural networks "
        "for Loihi and Nengo.",
    )
    parser.add_argument("--version", action="version", version=f"snnc {_version()}")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("dump", help="import a model and print its IR", description=cmd_dump.__doc__)
    p.add_argument("model", type=_path, help=MODEL_HELP)
    _weights_option(p)
    p.add_argument("--format", choices=("text", "json", "dot"), default="text", help="output format (default: text)")
    p.add_argument("-o", "--output", type=_path, help="write to FILE (text: FILE plus its parameters in FILE's .npz)")
    p.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("run", help="run a model or a compiled network on inputs", description=cmd_run.__doc__)
    p.add_argument("model", type=_path, help=MODEL_HELP + ", or a compiled artifact directory")
    _weights_option(p)
    p.add_argument("--input", type=_path, required=True, metavar="X", help="inputs: .npy (one input) or .npz (one key per input name, or 'x')")
    p.add_argument("-o", "--output", type=_path, required=True, metavar="Y", help="outputs: .npy (one output) or .npz (one key per output)")
    p.add_argument("--timesteps", type=_timesteps, metavar="T",
                   help=f"time steps for a compiled network (default: {DEFAULT_TIMESTEPS[-1]}; {per_input_step}, default {SEQUENCE_TIMESTEPS[-1]})")
    p.add_argument("--input-scale", type=_scale, metavar="S",
                   help="multiply inputs by S (a compiled network: overrides the scale recorded at compile time, said on stderr)")
    _frames_option(p, "take X as frame sequences (N, steps, *input shape) for a float model with constant inputs: the "
                   "output at every frame, (N, steps, ...). Default: frames when only that shape fits (said on stderr); "
                   "a network compiled for frames gives every frame's output, read at the end of its window")
    _batch_size(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compile", help="compile a model into a spiking network", description=cmd_compile.__doc__)
    p.add_argument("model", type=_path, help=MODEL_HELP)
    _weights_option(p)
    p.add_argument("--calib", type=_path, required=True, metavar="DATA", help=f"calibration data: {DATA_HELP} (its train split)")
    p.add_argument("-o", "--output", type=_path, required=True, metavar="OUT", help="artifact directory to write")
    p.add_argument("--force", action="store_true", help="replace an artifact at OUT even if it was compiled for another target")
    _compile_options(p, TARGETS)
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("evaluate", help="ANN vs SNN accuracy per number of time steps", description=cmd_evaluate.__doc__)
    p.add_argument("model", type=_path, help="a compiled artifact directory, or a model to compile first (" + MODEL_HELP + ")")
    _weights_option(p)
    p.add_argument("--data", type=_path, required=True, metavar="DATA", help=f"labelled data: {DATA_HELP} (its test split)")
    p.add_argument("--calib", type=_path, metavar="DATA", help="calibration data when MODEL is not compiled (default: an IDX folder's train split, else DATA)")
    p.add_argument("--timesteps", metavar="T,T,...",
                   help=f"numbers of time steps (default: {timesteps}; {per_input_step}, default {','.join(map(str, SEQUENCE_TIMESTEPS))})")
    defaults = {stage: backends.default_for(stage) for stage in (ops.SPIKING, ops.INTEGER)}
    p.add_argument(
        "--backend",
        choices=backends.names(),
        help=f"simulator (default: {defaults[ops.SPIKING].name}, {defaults[ops.SPIKING].summary}; "
        f"{defaults[ops.INTEGER].name} for Loihi artifacts)",
    )
    p.add_argument("-n", type=_positive_int, metavar="N", help="evaluate the first N examples only")
    p.add_argument("--plot", type=_path, metavar="PNG", help="also draw accuracy vs T into PNG")
    _compile_options(p, TARGETS)
    p.add_argument("--json", action="store_true", help="print one JSON object (accuracies as fractions)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("verify", help="check refsim against NengoLoihi's emulator, spike for spike", description=cmd_verify.__doc__)
    p.add_argument("artifact", type=_path, metavar="OUT", help="an artifact compiled with --target loihi")
    p.add_argument("--data", type=_path, required=True, metavar="DATA", help=f"inputs: {DATA_HELP} (its test split; labels not needed)")
    p.add_argument("-n", type=_positive_int, default=20, metavar="N", help="inputs to run (default: 20; the emulator runs one at a time)")
    p.add_argument("--timesteps", type=_timesteps, default=100, metavar="T", help="time steps per input (default: 100)")
    _input_scale(p, compiling=False)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo", help="train a small CNN on scikit-learn digits, compile it, show accuracy vs T", description=cmd_demo.__doc__)
    p.add_argument("--timesteps", default=timesteps, metavar="T,T,...", help=f"numbers of time steps (default: {timesteps})")
    p.add_argument("--epochs", type=_positive_int, default=30, help="training epochs (default: 30)")
    p.add_argument("--target", choices=tuple(TARGETS), default="nengo", help="compile for nengo (evaluated on the interpreter) or loihi (on refsim, the chip's integers)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("-o", "--output", type=_path, metavar="OUT", help="also write the compiled artifact to OUT")
    p.add_argument("--force", action="store_true", help="replace an artifact at OUT even if it was compiled for another target")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)
    parser.commands = tuple(sub.choices)
    return parser


def _path(text: str) -> str:
    if not text.strip():  # Path("") is ".", and errors would name the current directory
        raise argparse.ArgumentTypeError("an empty path")
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _timesteps(text: str) -> int:
    from .driver import check_timesteps_bound  # (its DataError is a one-line error too)

    return check_timesteps_bound(_positive_int(text))


def _scale(text: str) -> float:
    from .inputs import valid_scale

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not valid_scale(value):
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite number")
    return value


def _input_scale(p, compiling: bool) -> None:
    default = ("1/255 for integer data unless the model rescales its input itself, else 1; "
               "recorded in the artifact")
    recorded = "compiled networks: the scale recorded at compile time; S overrides it, said on stderr"
    p.add_argument("--input-scale", type=_scale, metavar="S",
                   help=f"multiply inputs by S (default: {default}; {recorded})" if compiling else f"multiply inputs by S (default: {recorded})")


def _frames_option(p, help: str) -> None:
    p.add_argument("--frames", action=argparse.BooleanOptionalAction, help=help)


def _weights_option(p) -> None:
    p.add_argument(
        "--weights", type=_path, metavar="FILE",
        help="weights (.h5) of a Keras .json model config (model.to_json()); default: found beside it as "
        "NAME.weights.h5, NAME_weights.h5, NAME.h5 or NAME.hdf5",
    )


def _batch_size(p) -> None:
    p.add_argument("--batch-size", type=_positive_int, default=256, help="examples simulated at once (default: 256)")
    p.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)


def _compile_options(p, targets) -> None:
    from .driver import METHODS

    how = p.add_mutually_exclusive_group()
    how.add_argument("--method", choices=tuple(METHODS), metavar="M",
                     help="conversion method (default: default); " + "; ".join(f"{m}: {spec.summary}" for m, spec in METHODS.items()))
    how.add_argument("--pipeline", metavar="P", help="passes, e.g. 'canonicalize,fold_batchnorm,threshold_balance{method=max},convert_to_spiking', "
                     "or a named pipeline (default: the method's for the target)")
    p.add_argument("--target", choices=tuple(targets), help=f"what the network is compiled for (default: {COMPILE_DEFAULTS['target']})")
    p.add_argument("--calib-examples", type=_positive_int, metavar="N", help=f"calibration examples used (default: {COMPILE_DEFAULTS['calib_examples']})")
    _input_scale(p, compiling=True)
    _frames_option(p, "take the data as frame sequences (N, steps, *input shape) for a model with constant inputs: each "
                   "frame held for T steps (a run of steps x T), the state carried from frame to frame, the output read "
                   "over the last frame's window (every frame's for labels (N, steps)), not averaged over the whole run. "
                   "Default: frames when only that shape fits (said on stderr); recorded in the artifact")
    p.add_argument("--dump-after", action="append", metavar="PASS", help="print the IR after PASS to stderr (repeatable, or 'all')")
    p.add_argument("--dump-dir", type=_path, metavar="DIR", help="write the IR after each pass to DIR/NN_pass.ir")
    p.add_argument("--time-passes", action="store_true", help="print each pass's time to stderr")
    _batch_size(p)


def main(argv=None) -> int:
    """Entry point of the ``snnc`` console script; returns the exit status."""
    from .errors import InternalError, SnncError

    argv = sys.argv[1:] if argv is None else list(argv)
    verbose = "--verbose" in argv
    if not verbose:
        from .quiet import hide_library_warnings

        hide_library_warnings()
    parser = build_parser()
    command = "snnc"
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError(f"give a command: {', '.join(parser.commands)} (snnc --help says more)")
        from .progress import set_default

        # under --json: one JSON object on stdout, nothing on stderr but errors
        set_default(False if getattr(args, "json", False) else None)
        command = f"snnc {args.command}"
        return args.func(args)
    except SystemExit as exc:  # --help and --version exit through argparse
        return int(exc.code or 0)
    except UsageError as exc:
        print(f"snnc: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (SnncError, OSError) as exc:
        if verbose:
            traceback.print_exc()
        print(f"snnc: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("snnc: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in snnc: say where, keep the trace for --verbose
        internal = exc if isinstance(exc, InternalError) else InternalError(command, exc)
        if verbose:
            traceback.print_exc()
        print(f"snnc: internal error in {_one_line(internal)} (a bug in snnc, not in your input; --verbose shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return " ".join(str(exc).split())


def console_main() -> None:  # pragma: no cover - thin wrapper for the console script
    if "--verbose" in sys.argv[1:]:
        sys.exit(main())
    from .quiet import native_logs_filtered

    with native_logs_filtered():
        status = main()
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    console_main()
