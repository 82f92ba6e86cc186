"""The Keras frontend: Sequential and functional Keras models into the IR.

Model files, and model configs from ``model.to_json()`` with their weights files, are read
as data, with ``json``, ``zipfile`` and ``h5py`` (:mod:`.files`), never by building the
model: that reads every Keras generation the pinned TensorFlow cannot load
(Keras 3 ``.keras`` archives, Keras 2.0 files from the Theano backend) and runs no code
from the file. SavedModel directories are the exception: they are loaded by tf.keras, and
the live model's config and weights go through the same converters.

Modules: :mod:`.files` opens files, :mod:`.config` normalizes configs across Keras
generations, :mod:`.weights` finds each layer's arrays, :mod:`.layout` tracks channels-last
vs the IR's channels-first, :mod:`.layers` holds one converter per layer type, :mod:`.recurrent` the recurrent
models' (sequence inputs, SimpleRNN, layers applied per step), :mod:`.spiking` keras-spiking's
layers, :mod:`.lmu` keras-lmu's LMU, :mod:`.trained` the layers
trained for spiking neurons (``snnc.training``'s SoftLIF and QCFS, nengo-extras' SoftLIF), and
:mod:`.convert` builds the graph.
"""

from __future__ import annotations

import json
from pathlib import Path

from snnc.compiler.errors import ModelFormatError, UnsupportedError
from snnc.compiler.graph import Graph

from .config import parse_model
from .context import Source
from .convert import SUPPORTED_LAYERS, convert_model
from .files import WEIGHTS_BESIDE_JSON, open_json_model, open_keras_file
from .weights import LiveModelWeights

__all__ = ["SUPPORTED_LAYERS", "WEIGHTS_BESIDE_JSON", "load_keras", "load_keras_json", "load_savedmodel"]

#: what a damaged model config can raise while it is being parsed
CONFIG_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)


def load_keras(path) -> Graph:
    """Import a Keras ``.h5``/``.hdf5``/``.keras`` model file into a verified float graph.

    Raises
    ------
    ModelFormatError
        The file is not a Keras model file, or is damaged (names the file and the problem).
    UnsupportedError
        The model uses a layer, activation or option outside snnc's op set (names the layer,
        its type and what is supported).
    """
    path = Path(path)
    with open_keras_file(path) as model_file:
        return _convert(model_file.config, model_file.weights, model_file.source)


def load_keras_json(path, weights=None) -> Graph:
    """Import a Keras model config ``NAME.json`` (``model.to_json()``, Keras 2 or 3) with its
    weights file: ``weights`` if given, else the first of :data:`WEIGHTS_BESIDE_JSON` found
    beside it (``NAME.weights.h5``, ``NAME_weights.h5``, ``NAME.h5``, ``NAME.hdf5``). The graph's
    ``source`` metadata names the weights file used and its SHA-256.

    Raises
    ------
    ModelFormatError
        The JSON is not a Keras model config, no weights file is found, or the weights file
        is not Keras weights or lacks a layer's arrays or has them in another shape (names
        the files, the layer and both shapes).
    UnsupportedError
        As :func:`load_keras`.
    """
    path = Path(path)
    with open_json_model(path, None if weights is None else Path(weights)) as model_file:
        return _convert(model_file.config, model_file.weights, model_file.source)


def load_savedmodel(path) -> Graph:
    """Import a TensorFlow SavedModel directory written by Keras (loaded by tf.keras, which
    TensorFlow must be able to do: SavedModels hold TensorFlow graphs, not a Keras config
    alone)."""
    path = Path(path)
    import tensorflow as tf

    try:
        model = tf.keras.models.load_model(str(path), compile=False)
    except Exception as exc:  # TensorFlow raises many types here; all mean "cannot load"
        message = " ".join(str(exc).split())[:300]
        raise ModelFormatError(
            f"{path}: TensorFlow cannot load this SavedModel ({type(exc).__name__}: {message})"
        ) from None
    try:
        config = json.loads(model.to_json())
    except NotImplementedError:
        raise UnsupportedError(
            f"{path}: a subclassed Keras model ({type(model).__name__}) has no config; snnc reads "
            "Sequential and functional models"
        ) from None
    source = Source(path, "savedmodel", backend="tensorflow")  # (writer's Keras version: not read)
    return _convert(config, LiveModelWeights(model), source)


def _convert(config: dict, weights, source: Source) -> Graph:
    try:
        model = parse_model(config, str(source.path))
    except CONFIG_ERRORS as exc:
        raise ModelFormatError(f"{source.path}: malformed model config ({type(exc).__name__}: {exc})") from None
    return convert_model(model, weights, source)
