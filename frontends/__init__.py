"""snnc.frontends: read model files into the IR. Nothing else in snnc reads model files.

:func:`load` picks the frontend from the path: ``.keras``/``.h5``/``.hdf5`` and SavedModel
directories go to the Keras frontend, and so do ``.json`` model configs (``model.to_json()``)
with their weights file, ``.onnx`` to the ONNX frontend, ``.ir`` (with its ``.npz``) is IR
text written by snnc.
"""

from __future__ import annotations

from pathlib import Path

from snnc.compiler.errors import ModelFormatError
from snnc.compiler.graph import Graph

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
SUPPORTED = (
    "Keras .keras/.h5/.hdf5 files, SavedModel directories, Keras .json model configs with a weights file, "
    "ONNX .onnx files, snnc .ir text"
)


def load(path: Path, weights=None) -> Graph:
    """Import the model at ``path`` into a verified float graph; ``weights`` is the weights
    file of a Keras ``.json`` model config (default: found beside it), refused for any other
    model, which holds its own weights."""
    path = Path(path)
    if weights is not None and path.suffix.lower() != ".json":
        raise ModelFormatError(
            f"{path}: a separate weights file ({weights}) goes with a Keras .json model config only; "
            "this model holds its own weights"
        )
    if not path.exists():
        raise ModelFormatError(f"{path}: no such file or directory")
    suffix = path.suffix.lower()
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            from .keras import load_savedmodel

            return load_savedmodel(path)
        raise ModelFormatError(f"{path}: a directory but not a SavedModel (no saved_model.pb); supported: {SUPPORTED}")
    if suffix in KERAS_SUFFIXES:
        from .keras import load_keras

        return load_keras(path)
    if suffix == ".json":
        from .keras import load_keras_json

        return load_keras_json(path, weights)
    if suffix == ".onnx":
        from .onnx import load_onnx

        return load_onnx(path)
    if suffix == ".ir":
        from snnc.compiler.text import load as load_ir

        return load_ir(path)
    raise ModelFormatError(f"{path}: unknown model file type {suffix or '(no suffix)'}; supported: {SUPPORTED}")
