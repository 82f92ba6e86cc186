"""Reading datasets users hand to the CLI: ``.npz`` (keys ``x``, ``y``), ``.npy``, IDX (MNIST).

Loaded without pickle; bad files raise :class:`DataError` naming the file.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from .errors import DataError

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_maybe_gzip(path: Path) -> bytes:
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc})") from None
    return data


def load_idx(path) -> np.ndarray:
    """An IDX file (optionally gzipped) as an array: magic ``0 0 type ndim``, big-endian dims."""
    data = _read_maybe_gzip(path)
    if len(data) < 4 or data[0] or data[1] or data[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    body = data[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)) * dtype.itemsize:
        raise DataError(f"{path}: IDX header says {list(dims)} but the file holds {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _load_array_file(path: Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        if path.suffix == ".npy":
            return {"": np.load(path, allow_pickle=False)}
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as store:
                return {k: store[k] for k in store.files}
    except ValueError as exc:  # object arrays need pickle: refused
        raise DataError(f"{path}: {exc}") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable NumPy file ({exc})") from None
    raise DataError(f"{path}: unsupported data file type {path.suffix or '(none)'}; use .npy or .npz")


def load_inputs(path, input_names: list[str]) -> dict[str, np.ndarray]:
    """Model inputs from ``.npy`` (models with one input) or ``.npz`` (a key per input name;
    a single-input model also takes the key ``x`` or a file holding one array)."""
    arrays = _load_array_file(path)
    if set(input_names) <= set(arrays):
        return {k: arrays[k] for k in input_names}
    if len(input_names) == 1:
        for key in ("", "x", "arr_0"):
            if key in arrays:
                return {input_names[0]: arrays[key]}
        if len(arrays) == 1:
            return {input_names[0]: next(iter(arrays.values()))}
    raise DataError(
        f"{path}: holds {sorted(arrays) or 'one unnamed array'}, but the model's inputs are "
        f"{input_names}; use an .npz with one key per input"
    )


def save_outputs(path, outputs: dict[str, np.ndarray]) -> None:
    """Write outputs: ``.npy`` for a single output, ``.npz`` (a key per output) otherwise."""
    from .fileio import save_npy, save_npz

    path = Path(path)
    if path.suffix == ".npz":
        save_npz(path, outputs)
    elif path.suffix == ".npy":
        if len(outputs) != 1:
            raise DataError(f"{path}: the model has {len(outputs)} outputs ({', '.join(outputs)}); write an .npz")
        save_npy(path, next(iter(outputs.values())))
    else:
        raise DataError(f"{path}: unsupported output file type {path.suffix or '(none)'}; use .npy or .npz")
