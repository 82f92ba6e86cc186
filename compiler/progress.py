"""Progress bars for long work: shown on a terminal, quiet otherwise (or when asked)."""

from __future__ import annotations

import sys


_default: bool | None = None


def set_default(enabled: bool | None) -> None:
    """Whether bars asked for with ``enabled=None`` show (``None``: when stderr is a tty).
    The CLI turns them off under ``--json``."""
    global _default
    _default = enabled


def progress(iterable, total: int | None = None, desc: str = "", enabled: bool | None = None):
    """Wrap ``iterable`` in a progress bar on stderr when ``enabled`` (``None``: the default
    set by :func:`set_default`, else whether stderr is a terminal)."""
    if enabled is None:
        enabled = _default if _default is not None else sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch", leave=False, file=sys.stderr)
