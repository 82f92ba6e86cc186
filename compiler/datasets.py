"""Reading datasets users hand to the CLI: ``.npz`` (keys ``x``, ``y``), ``.npy``, IDX (MNIST)
files and folders.

Loaded without pickle; bad files raise :class:`DataError` naming the file.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
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


#: what NumPy's files begin with: ``.npy`` (a magic string) and ``.npz`` (a zip archive)
_NUMPY_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}


def _load_array_file(path: Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    magic = _NUMPY_MAGIC.get(path.suffix)
    if path.is_file() and magic is not None:
        with open(path, "rb") as stream:
            head = stream.read(len(magic))
        if head != magic:  # NumPy would call anything else "pickled data"
            what = "empty" if not head else f"not a NumPy {path.suffix} file"
            raise DataError(f"{path}: {what}; give a file written by numpy.save / numpy.savez")
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
    return {name: _checked_inputs(x, f"{path}: input {name}") for name, x in _match_inputs(path, arrays, input_names).items()}


def _match_inputs(path, arrays: dict[str, np.ndarray], input_names: list[str]) -> dict[str, np.ndarray]:
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


def _checked_inputs(x: np.ndarray, source: str) -> np.ndarray:
    """Refuse inputs that would give results without meaning: no examples, non-numbers, NaN."""
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{source}: no examples (shape {list(x.shape)}); give a batch, examples first")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{source}: inputs of type {x.dtype} are not numeric")
    if np.issubdtype(x.dtype, np.inexact) and not np.all(np.isfinite(x)):
        raise DataError(f"{source}: the inputs contain NaN or infinite values")
    return x


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


# ----------------------------------------------------------------------------- labelled datasets

IDX_SPLITS = {
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
}
DATA_HELP = (
    ".npz with keys x (inputs, in the model's layout; (N, steps, ...) for a sequence model) and y (integer labels "
    "or one-hot; (N, steps) for per-step outputs), or an IDX folder (MNIST layout)"
)


@dataclass(frozen=True)
class Dataset:
    """Inputs ``x`` (batch first) and integer labels ``y`` (or None), with where they came from.
    Labels are ``(N,)``, or ``(N, steps)`` for sequences labelled at every input step."""

    x: np.ndarray
    y: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.x)

    def head(self, n: int | None) -> "Dataset":
        if n is None or n >= len(self):
            return self
        return Dataset(self.x[:n], None if self.y is None else self.y[:n], f"{self.source}[:{n}]")


def load_dataset(path, split: str = "test", need_labels: bool = True) -> Dataset:
    """A labelled dataset from an ``.npz`` (keys ``x``, ``y``) or an IDX folder's ``split``."""
    path = Path(path)
    if path.is_dir():
        return _load_idx_folder(path, split)
    arrays = _load_array_file(path)
    if "" in arrays:  # an .npy file: inputs without labels
        arrays = {"x": arrays[""]}
    if "x" not in arrays:
        raise DataError(f"{path}: no array 'x' (holds {sorted(arrays) or 'no arrays'}); give {DATA_HELP}")
    x, y = arrays["x"], arrays.get("y")
    if y is None and need_labels:
        raise DataError(f"{path}: no labels 'y' (holds {sorted(arrays)}); give {DATA_HELP}")
    return _checked(Dataset(x, None if y is None else as_labels(y, path, steps=x.shape[1] if x.ndim > 1 else None), str(path)))


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def has_idx_split(folder: Path, split: str) -> bool:
    return Path(folder).is_dir() and all(_idx_file(Path(folder), s) for s in IDX_SPLITS[split])


def _load_idx_folder(folder: Path, split: str) -> Dataset:
    images, labels = (_idx_file(folder, stem) for stem in IDX_SPLITS[split])
    if images is None or labels is None:
        want = " and ".join(f"{s}[.gz]" for s in IDX_SPLITS[split])
        raise DataError(f"{folder}: not an IDX dataset folder (no {want}); give {DATA_HELP}")
    return _checked(Dataset(load_idx(images), as_labels(load_idx(labels), labels), f"{folder} ({split})"))


def as_labels(y: np.ndarray, path, steps: int | None = None) -> np.ndarray:
    """Integer class labels from integer labels or one-hot rows; with inputs of ``steps``
    input steps, integer labels ``(N, steps)`` that are not one-hot rows are per-step labels
    and kept as they are."""
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise DataError(f"{path}: labels must be integers (N,) or one-hot (N, classes), got {y.dtype} values")
    if np.issubdtype(y.dtype, np.inexact) and not np.all(np.isfinite(y)):
        raise DataError(f"{path}: the labels contain NaN or infinite values")
    if y.ndim == 2 and steps is not None and y.shape[1] == steps > 1 and _integral(y) and not _one_hot(y):
        return y.astype(np.int64)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1).astype(np.int64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or np.all(np.mod(y, 1) == 0)):
        raise DataError(f"{path}: labels must be integers (N,) or one-hot (N, classes), got {y.dtype} {list(y.shape)}")
    return y.astype(np.int64)


def _integral(y: np.ndarray) -> bool:
    return bool(np.issubdtype(y.dtype, np.integer) or np.all(np.mod(y, 1) == 0))


def _one_hot(y: np.ndarray) -> bool:
    """Whether every row of ``y`` is zeros and a single one."""
    return bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))


def _checked(data: Dataset) -> Dataset:
    if len(data.x) == 0:
        raise DataError(f"{data.source}: the dataset is empty")
    if data.y is not None and len(data.y) != len(data.x):
        raise DataError(f"{data.source}: {len(data.x)} inputs but {len(data.y)} labels")
    if not np.issubdtype(data.x.dtype, np.number):
        raise DataError(f"{data.source}: inputs of type {data.x.dtype} are not numeric")
    return data


def fit_inputs(x: np.ndarray, shape: tuple[int, ...], scale: float, source: str, sequence: bool = False) -> np.ndarray:
    """Inputs multiplied by ``scale`` (see :mod:`snnc.compiler.inputs` for who chooses it),
    as float32 of per-example ``shape`` (the model's own layout; for a ``sequence`` input,
    ``(N, steps, *shape)``: ``shape`` per input step). Only axes of size 1 may be added or
    dropped (MNIST's ``(N, 28, 28)`` fits a model taking ``(28, 28, 1)``); anything else is an
    error.
    """
    out = x.astype(np.float32) * np.float32(scale)
    lead = 2 if sequence else 1
    if out.shape[lead:] != tuple(shape):
        if out.ndim < lead or _non_unit(out.shape[lead:]) != _non_unit(shape):
            if sequence:
                dims = ", ".join(map(str, shape))
                raise DataError(
                    f"{source}: the model's input is a sequence: expected x of shape (N, steps, {dims}), "
                    f"got {list(x.shape)}"
                )
            if out.ndim >= 2 and _non_unit(out.shape[2:]) == _non_unit(shape):
                raise DataError(
                    f"{source}: x of shape {list(x.shape)} holds frame sequences, but the network was compiled for "
                    "single inputs; compile it with --frames (or with frames as calibration data)"
                )
            raise DataError(
                f"{source}: examples of shape {list(out.shape[1:])} do not fit the model's input {list(shape)}"
            )
        out = out.reshape((*out.shape[:lead], *shape))
    if not np.all(np.isfinite(out)):
        raise DataError(f"{source}: the inputs contain NaN or infinite values")
    return out


def _non_unit(shape) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)
