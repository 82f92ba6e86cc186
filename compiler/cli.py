"""The ``snnc`` command line. Each command is a small function over the public API.

Exit status: 0 success, 1 a check failed, 2 bad input or usage (one line on stderr,
``--verbose`` adds the traceback). This module imports only the standard library at start-up
so ``snnc --help`` is instant; commands import what they need.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2
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

    graph = load_model(args.model)
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
    """Run a model through the interpreter on inputs in the model's own layout."""
    from .api import load_model, run_model
    from .datasets import load_inputs, save_outputs

    graph = load_model(args.model)
    inputs = load_inputs(args.input, [n.name for n in graph.inputs])
    outputs = run_model(graph, inputs, batch_size=args.batch_size, progress=None)
    save_outputs(args.output, outputs)
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="snnc",
        description="Compile trained deep networks (Keras, ONNX) into spiking neural networks "
        "for Loihi and Nengo.",
    )
    parser.add_argument("--version", action="version", version=f"snnc {_version()}")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("dump", help="import a model and print its IR", description=cmd_dump.__doc__)
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--format", choices=("text", "json", "dot"), default="text", help="output format (default: text)")
    p.add_argument("-o", "--output", help="write to FILE (text: FILE plus its parameters in FILE's .npz)")
    p.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("run", help="run a model on inputs through the interpreter", description=cmd_run.__doc__)
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--input", required=True, metavar="X", help="inputs: .npy (one input) or .npz (one key per input name, or 'x')")
    p.add_argument("-o", "--output", required=True, metavar="Y", help="outputs: .npy (one output) or .npz (one key per output)")
    p.add_argument("--batch-size", type=int, default=256, help="examples evaluated at once (default: 256)")
    p.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_run)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``snnc`` console script; returns the exit status."""
    from .errors import SnncError

    argv = sys.argv[1:] if argv is None else list(argv)
    verbose = "--verbose" in argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
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


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return " ".join(str(exc).split())


def console_main() -> None:  # pragma: no cover - thin wrapper for the console script
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
