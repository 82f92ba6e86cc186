"""What a layer converter sees: the model's source and one call of one layer."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from snnc.compiler.errors import ModelFormatError, UnsupportedError, VerificationError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.ops import Op

from .config import LayerSpec
from .weights import WeightStore

#: Backends whose conv2d is a true convolution (kernel flipped) rather than Keras's usual
#: cross-correlation; Keras 2 itself flipped such kernels when loading them elsewhere.
CONVOLVING_BACKENDS = ("theano", "mxnet")
#: what a weight store raises for absent weights (LookupError) and what h5py raises for
#: damaged ones (OSError, and RuntimeError/ValueError for corrupt HDF5 structures)
WEIGHT_ERRORS = (LookupError, OSError, RuntimeError, ValueError)


@dataclass(frozen=True)
class Source:
    """The file a model came from and what wrote it (for messages, kernels and metadata)."""

    path: Path
    format: str  # "h5", "keras" (zip archive), "savedmodel" or "json" (a config + a weights file)
    keras_version: str | None = None
    backend: str | None = None
    weights: Path | None = None  # the separate weights file of a "json" model
    weights_sha256: str | None = None

    @property
    def flips_kernels(self) -> bool:
        return self.backend in CONVOLVING_BACKENDS

    def meta(self) -> dict:
        info = {"frontend": "keras", "format": self.format, "file": self.path.name}
        if self.keras_version:
            info["keras_version"] = self.keras_version
        if self.backend:
            info["keras_backend"] = self.backend
        if self.weights:
            info["weights"] = self.weights.name
            info["weights_sha256"] = self.weights_sha256
        return {"source": info}


class LayerCall:
    """One call of one Keras layer being converted: its config, its weights, and the
    builder its IR nodes go to. Nodes are named after the layer (prefixed by the names of
    the models it is nested in); errors name the file, the layer and its type."""

    def __init__(
        self,
        builder: GraphBuilder,
        scope: Sequence[LayerSpec],
        source: Source,
        store: WeightStore,
    ):
        self.builder = builder
        self.scope = tuple(scope)
        self.spec = self.scope[-1]
        self.config = self.spec.config
        self.source = source
        self._store = store
        self.name = "/".join(s.name for s in self.scope)
        self.kind = self.spec.class_name

    def wrapping(self, kind: str, config: dict) -> "LayerCall":
        """The call of the layer a wrapper holds (``config``): the wrapper's name, scope and
        weights; ``kind`` (e.g. ``TimeDistributed(Dense)``) is what messages call it."""
        inner = copy.copy(self)
        inner.kind, inner.config = kind, config
        return inner

    @property
    def where(self) -> str:
        return f"{self.source.path}: layer {self.name!r} ({self.kind})"

    def unsupported(self, detail: str) -> UnsupportedError:
        return UnsupportedError(f"{self.where}: {detail}")

    def malformed(self, detail: str) -> ModelFormatError:
        return ModelFormatError(f"{self.where}: {detail}")

    def shape(self, value: str) -> tuple[int, ...]:
        return self.builder.type_of(value).shape

    def add(self, op: Op, inputs: Sequence[str], params: dict | None = None, suffix: str = "", meta: dict | None = None) -> str:
        """Append an IR node named after the layer (plus ``_suffix``), with node metadata
        ``meta`` if given; returns its value."""
        name = f"{self.name}_{suffix}" if suffix else self.name
        for key, value in (params or {}).items():  # e.g. computed from an infinite config value
            if non_finite(np.asarray(value)):
                raise self.malformed(f"its {key} has {non_finite(np.asarray(value))} NaN or infinite values")
        try:
            return self.builder.add(op, inputs, params, name=name, meta=meta)
        except VerificationError as exc:  # e.g. an Add of tensors whose shapes differ
            raise self.unsupported(str(exc)) from None

    def weights(self, *expected: tuple[str, tuple[int, ...] | None]) -> list[np.ndarray]:
        """The layer's weight arrays, checked against ``(label, shape)`` pairs in Keras's
        order (``shape=None``: any)."""
        # A config read apart from its weights names the weights file: the one at fault.
        weights_file = str(self.source.weights) if self.source.weights else "the file"
        in_file = f" in {self.source.weights}" if self.source.weights else ""
        try:
            arrays = self._store.get(self.scope)
        except WEIGHT_ERRORS as exc:
            raise self.malformed(f"cannot read its weights{in_file}: {_first_line(exc)}") from None
        labels = ", ".join(label for label, _ in expected)
        if len(arrays) != len(expected):
            raise self.malformed(f"expected {len(expected)} weight arrays ({labels}), {weights_file} has {len(arrays)}")
        for (label, shape), array in zip(expected, arrays):
            if shape is not None and array.shape != tuple(shape):
                raise self.malformed(f"weight {label} has shape {list(array.shape)}{in_file}, expected {list(shape)}")
            if array.dtype.kind not in "fiu":
                raise self.malformed(f"weight {label} holds {array.dtype} values, not numbers")
            if non_finite(array):
                raise self.malformed(f"weight {label} has {non_finite(array)} NaN or infinite values{in_file} (a damaged file?)")
        return arrays


def non_finite(array: np.ndarray) -> int:
    """How many NaN or infinite values a float array holds (0 for other arrays)."""
    return int(array.size - np.count_nonzero(np.isfinite(array))) if array.dtype.kind == "f" else 0


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
