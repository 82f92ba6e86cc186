"""IR value names: letters, digits and underscores, not starting with a digit."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def sanitize_name(name: str) -> str:
    """A source model's layer name as an IR value name (letters, digits, underscores)."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return clean if NAME_RE.fullmatch(clean) else f"v_{clean}"
