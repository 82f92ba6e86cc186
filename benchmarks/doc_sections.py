"""Write a benchmark's results into a Markdown document between its markers."""

from __future__ import annotations

import platform
from pathlib import Path


def machine() -> str:
    """One line describing where a measurement ran."""
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(path: Path, name: str, text: str, heading: str) -> None:
    """Replace the text between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``path``
    (appended under ``heading`` when the markers are not there yet); written atomically."""
    from snnc.compiler.fileio import write_text

    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    doc = path.read_text() if path.exists() else ""
    if begin in doc:
        doc = doc[: doc.index(begin)] + block + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip() + f"\n\n## {heading}\n\n{block}\n"
    write_text(path, doc.lstrip())


def command_lines(command: str, seconds: float) -> list[str]:
    """The Markdown lines saying which command measured a section, where and how long it took."""
    return ["", f"Command ({machine()}; {seconds / 60:.1f} min):", "", "```bash", command, "```"]


def publish(text: str, print_only: bool, path: Path, name: str, heading: str) -> None:
    """Print ``text``, or write it into ``path`` between the ``name`` markers."""
    if print_only:
        print(text)
    else:
        write_section(path, name, text, heading)


def save_png(fig, path: Path, **options) -> None:
    """Write matplotlib figure ``fig`` to ``path`` atomically (a temporary file, then a rename),
    so a plot is never left half-written; ``options`` go to ``savefig`` (``dpi``, ...)."""
    import os

    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, **options)
    os.replace(tmp, path)
