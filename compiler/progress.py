"""Progress bars for long work: shown on a terminal, quiet otherwise (or when asked)."""

from __future__ import annotations

import sys


def progress(iterable, total: int | None = None, desc: str = "", enabled: bool | None = None):
    """Wrap ``iterable`` in a progress bar on stderr when ``enabled`` (default: stderr is a tty)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch", leave=False, file=sys.stderr)
