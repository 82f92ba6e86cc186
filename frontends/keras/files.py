"""Open Keras model files as data (config JSON + weight arrays), never as code.

- HDF5 (``.h5``; also what tf 2.12 writes for ``model.save("m.keras")`` by default): the
  ``model_config`` attribute, the ``keras_version``/``backend`` attributes, and the
  ``model_weights`` group.
- Zip archive (``.keras`` from ``save_format="keras_v3"`` in tf 2.12, and Keras 3):
  ``config.json``, ``metadata.json`` and ``model.weights.h5``.
- A model config ``NAME.json`` (``model.to_json()``) with a separate weights file (the
  convention of hls4ml and SNN Toolbox): the weights file is any of the three HDF5 layouts
  above (``save_weights`` in Keras 2 or 3, or a whole model saved as ``.h5``); unless given,
  it is looked for beside the config under the names in :data:`WEIGHTS_BESIDE_JSON`.

The kind of file is told by its first bytes, not its name. Every error of the libraries
reading them (zipfile, zlib, h5py, json) is caught here and reported as a
:class:`~snnc.compiler.errors.ModelFormatError` naming the file.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from snnc.compiler.errors import ModelFormatError, UnsupportedError

from .context import Source
from .weights import KerasArchiveWeights, LegacyH5Weights, WeightStore, text

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
ARCHIVE_WEIGHTS = "model.weights.h5"
#: Weights files looked for beside a model config ``NAME.json``, in this order: Keras 3's
#: ``save_weights`` name, hls4ml's (``model.json`` + ``model_weights.h5``), SNN Toolbox's
#: (``NAME.json`` + ``NAME.h5``), and that with the other HDF5 suffix.
WEIGHTS_BESIDE_JSON = ("{}.weights.h5", "{}_weights.h5", "{}.h5", "{}.hdf5")

#: what reading a damaged archive can raise (CRC and structure errors, bad deflate data,
#: truncation, unsupported compression or encryption, undecodable JSON)
ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError)
#: what h5py raises for damaged or truncated HDF5 data (OverflowError: absurd sizes in a
#: damaged superblock)
HDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, OverflowError)


@dataclass(frozen=True)
class KerasFile:
    """An open model file: the raw model config, where the weights are, who wrote it."""

    source: Source
    config: dict
    weights: WeightStore


@contextmanager
def open_keras_file(path: Path) -> Iterator[KerasFile]:
    """Open a ``.h5``/``.keras`` model file; its weights are readable inside the ``with``."""
    head = _file_head(path)
    with ExitStack() as stack:
        if head.startswith(ZIP_SIGNATURE):
            yield _open_archive(path, stack)
        elif head == HDF5_SIGNATURE:
            yield _open_h5(path, _h5_file(path, path, stack))
        else:
            raise ModelFormatError(f"{path}: neither a Keras zip archive (.keras) nor an HDF5 file (.h5)")


def _file_head(path: Path) -> bytes:
    """The first bytes of a file, which tell its kind."""
    try:
        with open(path, "rb") as f:
            return f.read(8)
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _h5_file(path: Path, data, stack: ExitStack):
    import h5py

    try:
        return stack.enter_context(h5py.File(data, "r"))
    except HDF5_ERRORS as exc:
        raise ModelFormatError(f"{path}: corrupt or truncated HDF5 file ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _json(path: Path, what: str, data) -> dict:
    try:
        value = json.loads(text(data))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: {what} is not valid JSON ({_first_line(exc)})") from None
    if not isinstance(value, dict):
        raise ModelFormatError(f"{path}: {what} is not a JSON object")
    return value


def _open_h5(path: Path, h5) -> KerasFile:
    try:
        if "model_config" not in h5.attrs:
            raise ModelFormatError(f"{path}: no model config in this HDF5 file (a weights-only file?)")
        config = _json(path, "the model_config attribute", h5.attrs["model_config"])
        if "model_weights" not in h5:
            raise ModelFormatError(f"{path}: no model_weights group in this HDF5 file")
        weights = h5["model_weights"]
        version = h5.attrs.get("keras_version", weights.attrs.get("keras_version"))
        backend = h5.attrs.get("backend", weights.attrs.get("backend"))
    except HDF5_ERRORS as exc:
        raise ModelFormatError(f"{path}: corrupt HDF5 file ({_first_line(exc)})") from None
    version = _keras_version(path, version)
    source = Source(path, "h5", version, None if backend is None else text(backend))
    return KerasFile(source, config, LegacyH5Weights(weights))


def _keras_version(path: Path, version) -> str | None:
    """The writer's Keras version as text; Keras 1 files are refused."""
    version = None if version is None else text(version)
    if version and version.startswith("1."):
        raise UnsupportedError(f"{path}: a Keras {version} file; snnc reads files from Keras 2 and later")
    return version


def _open_archive(path: Path, stack: ExitStack) -> KerasFile:
    try:
        archive = stack.enter_context(zipfile.ZipFile(path))
        names = archive.namelist()
        if "config.json" not in names:
            raise ModelFormatError(
                f"{path}: not a Keras model archive: no config.json (it holds: {', '.join(names[:5]) or 'nothing'})"
            )
        config = _json(path, "config.json", archive.read("config.json"))
        metadata = _json(path, "metadata.json", archive.read("metadata.json")) if "metadata.json" in names else {}
        if ARCHIVE_WEIGHTS not in names:
            raise ModelFormatError(f"{path}: the archive has no {ARCHIVE_WEIGHTS}")
        weights_data = io.BytesIO(archive.read(ARCHIVE_WEIGHTS))
    except ARCHIVE_ERRORS as exc:
        raise ModelFormatError(f"{path}: corrupt or truncated zip archive ({_first_line(exc)})") from None
    h5 = _h5_file(Path(f"{path}!{ARCHIVE_WEIGHTS}"), weights_data, stack)
    source = Source(path, "keras", metadata.get("keras_version"))
    return KerasFile(source, config, KerasArchiveWeights(h5))


@contextmanager
def open_json_model(path: Path, weights: Path | None = None) -> Iterator[KerasFile]:
    """Open a model config ``path`` (``model.to_json()``, Keras 2 or 3) with its weights file:
    ``weights``, else the first of :data:`WEIGHTS_BESIDE_JSON` beside the config."""
    from snnc.compiler.artifact import file_sha256

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    config = _json(path, "the model config", data)
    if "class_name" not in config or "config" not in config:
        raise ModelFormatError(
            f"{path}: not a Keras model config (what model.to_json() writes: a JSON object with "
            "class_name and config)"
        )
    weights = find_weights(path) if weights is None else weights
    with ExitStack() as stack:
        _check_hdf5(weights)
        h5 = _h5_file(weights, weights, stack)
        store, attrs = _weights_store(weights, h5)
        version = _keras_version(path, config.get("keras_version", attrs.get("keras_version")))
        backend = config.get("backend", attrs.get("backend"))
        source = Source(
            path, "json", version, None if backend is None else text(backend), weights, file_sha256(weights)
        )
        yield KerasFile(source, config, store)


def find_weights(config_path: Path) -> Path:
    """The weights file beside a model config: the first of :data:`WEIGHTS_BESIDE_JSON`."""
    names = [pattern.format(config_path.stem) for pattern in WEIGHTS_BESIDE_JSON]
    for name in names:
        if (config_path.parent / name).is_file():
            return config_path.parent / name
    raise ModelFormatError(
        f"{config_path}: no weights file beside this model config (looked for {', '.join(names)}); "
        "give one with --weights FILE"
    )


def _check_hdf5(path: Path) -> None:
    if _file_head(path) != HDF5_SIGNATURE:
        raise ModelFormatError(f"{path}: not a Keras weights file (an HDF5 .h5 file from save_weights or save)")


def _weights_store(path: Path, h5) -> tuple[WeightStore, dict]:
    """The store of a weights file, told by its layout, and the attributes that say who wrote
    it: a whole model (``model_weights``), Keras 2's ``save_weights`` (groups named after the
    layers, listed in ``layer_names``), or the ``.weights.h5`` layout (Keras 3, and tf 2.12
    for that suffix)."""
    try:
        if "model_weights" in h5:
            return LegacyH5Weights(h5["model_weights"]), dict(h5.attrs)
        if "layer_names" in h5.attrs or "layer_names0" in h5.attrs:  # (long lists are chunked)
            return LegacyH5Weights(h5), dict(h5.attrs)
        if any(container in h5 for container in KerasArchiveWeights.CONTAINERS):
            return KerasArchiveWeights(h5), {}
    except HDF5_ERRORS as exc:
        raise ModelFormatError(f"{path}: corrupt HDF5 file ({_first_line(exc)})") from None
    raise ModelFormatError(
        f"{path}: an HDF5 file but not Keras weights (no layer_names attribute, layers group or "
        "model_weights group)"
    )
