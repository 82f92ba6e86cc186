"""``python -m snnc.compiler.neurons [--markdown | --write]``: print the generated reference
tables, or rewrite them in docs/neurons.md."""

from __future__ import annotations

import argparse

from ..fileio import write_text
from ._reference import DOCS, document, markdown


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m snnc.compiler.neurons", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"rewrite the generated part of {DOCS.name}")
    parser.add_argument("--markdown", action="store_true", help="print the tables (the default)")
    args = parser.parse_args(argv)
    if args.write:
        write_text(DOCS, document(DOCS.read_text()))
    else:
        print(markdown(), end="")


if __name__ == "__main__":
    main()
