"""Atomic file writes: a reader never sees a half-written file, even if snnc is killed.

Files and directories are created with the permissions the user's umask gives (the
temporary names ``tempfile`` uses are private, 0600 / 0700, until renamed into place), and
a failure names the user's path, never the hidden temporary one.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: put it straight back
    os.umask(mask)
    return mask


def user_permissions(path, directory: bool = False) -> None:
    """Give ``path`` the permissions a plain ``open`` / ``mkdir`` would under the umask."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextmanager
def naming(path):
    """Report an ``OSError`` about a hidden temporary file or directory made for ``path``
    (``.NAME.xxxx``) under ``path`` itself: the user never heard of the temporary name."""
    try:
        yield
    except OSError as exc:
        hidden = f".{Path(path).name}."
        if exc.filename is None or not any(part.startswith(hidden) for part in Path(str(exc.filename)).parts):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def make_parent(path: Path) -> None:
    """Create ``path``'s directory; where a file stands in the way, say which."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
        if blocking is None:
            raise
        raise NotADirectoryError(errno.ENOTDIR, "a file, not a directory", str(blocking)) from None


def make_staging_dir(out: Path) -> Path:
    """A hidden directory beside ``out`` to fill and then rename into place, with the
    permissions a plain ``mkdir`` of ``out`` would get."""
    make_parent(out)
    with naming(out):
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        user_permissions(staging, directory=True)
    return staging


@contextmanager
def _atomic(path: Path, mode: str):
    path = Path(path)
    make_parent(path)
    with naming(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, mode) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            user_permissions(tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_text(path, text: str) -> None:
    with _atomic(path, "w") as f:
        f.write(text)


def write_bytes(path, data: bytes) -> None:
    with _atomic(path, "wb") as f:
        f.write(data)


def save_npz(path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to ``path`` atomically (no pickled objects: plain arrays only)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    write_bytes(path, buffer.getvalue())


def save_npy(path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    write_bytes(path, buffer.getvalue())
