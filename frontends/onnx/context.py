"""What an op converter sees: the model being converted and one of its nodes.

Each ONNX value is, during conversion, one of: a NumPy array (a constant: an initializer or
a folded node), a :class:`~.fold.BatchDependent` shape computation, or the name of an IR
value (a computed tensor). IR values hold ONNX tensors without their batch axis: ONNX axis
``k`` is IR axis ``k - 1``, and ONNX and the IR share the channels-first layout, so no
transposes are needed; a channels-last graph input that the model itself transposes to
channels first (as tf2onnx exports Keras models) is read in the IR's layout instead, its
Transpose absorbed (see ``convert._add_inputs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnc.compiler import ops
from snnc.compiler.errors import ModelFormatError, UnsupportedError, VerificationError
from snnc.compiler.graph import GraphBuilder, sanitize_name
from snnc.compiler.types import TensorType

from .fold import BatchDependent
from .structure import node_label


@dataclass
class ModelContext:
    """The model being converted: its file, the builder, and every ONNX value so far."""

    path: Path
    opset: int
    builder: GraphBuilder
    #: ONNX value name -> array, BatchDependent, or IR value name
    values: dict = field(default_factory=dict)
    #: ONNX value name -> the nodes that read it
    readers: dict = field(default_factory=dict)
    graph_outputs: frozenset = frozenset()
    #: every graph input has a fixed leading dimension of 1 (so a 1 there means "the batch")
    batch_is_one: bool = False

    def transpose(self, value: str, perm: tuple[int, ...], name: str) -> str:
        """IR value ``value`` with its axes permuted (``perm`` in IR axes), named ``name``.
        ONNX axes are positional: the result gets its rank's default layout letters back
        (a same-shape reshape), so that e.g. a Conv may read it as an image."""
        moved = self.builder.add(ops.Transpose(perm), [value], name=f"{name}_transpose")
        return self.builder.add(ops.Reshape(self.builder.type_of(moved).shape), [moved], name=name)


class NodeCall:
    """One ONNX node being converted: its attributes and inputs, and the builder its IR
    nodes go to (named after the node). Errors name the file, the node and its op."""

    def __init__(self, model: ModelContext, node, index: int):
        self.model = model
        self.node = node
        self.op_type = node.op_type
        self.name = sanitize_name(node.name.strip("/") or node.op_type.lower())
        self.where = f"{model.path}: node {node_label(node, index)} ({node.op_type})"

    @property
    def opset(self) -> int:
        return self.model.opset

    def unsupported(self, detail: str) -> UnsupportedError:
        return UnsupportedError(f"{self.where}: {detail}")

    def malformed(self, detail: str) -> ModelFormatError:
        return ModelFormatError(f"{self.where}: {detail}")

    # ------------------------------------------------------------------ attributes

    def attr(self, name: str, default=None):
        from onnx.helper import get_attribute_value

        for attribute in self.node.attribute:
            if attribute.name == name:
                value = get_attribute_value(attribute)
                try:
                    return value.decode() if isinstance(value, bytes) else value
                except UnicodeDecodeError:
                    raise self.malformed(f"attribute {name} is not valid UTF-8 text") from None
        return default

    # ------------------------------------------------------------------ inputs

    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and bool(self.node.input[i])

    def input(self, i: int):
        """Input ``i``: an array, a BatchDependent value, an IR value name, or None if absent."""
        return self.model.values[self.node.input[i]] if self.has_input(i) else None

    def tensor(self, i: int = 0) -> str:
        """Input ``i`` as an IR value: it must be computed from the model's inputs."""
        value = self.input(i)
        if not isinstance(value, str):
            raise self.unsupported(
                f"input {i} ({self.node.input[i]!r}) is a constant; snnc converts this op on "
                "tensors computed from the model's inputs"
            )
        return value

    def constant(self, i: int, what: str) -> np.ndarray:
        """Input ``i`` as an array: it must be a constant (an initializer or folded)."""
        value = self.input(i)
        if value is None:
            raise self.malformed(f"has no {what} (input {i})")
        if isinstance(value, BatchDependent):
            raise self.unsupported(f"its {what} depends on the batch size; snnc needs a constant")
        if isinstance(value, str):
            raise self.unsupported(
                f"its {what} ({self.node.input[i]!r}) is computed from the model's inputs; "
                "snnc needs a constant (an initializer or values computed from initializers)"
            )
        return value

    def optional_constant(self, i: int, what: str) -> np.ndarray | None:
        return self.constant(i, what) if self.has_input(i) else None

    def type(self, value: str) -> TensorType:
        return self.model.builder.type_of(value)

    def shape(self, value: str) -> tuple[int, ...]:
        """The IR shape of a value: its ONNX shape without the batch axis."""
        return self.type(value).shape

    def readers(self, k: int = 0) -> list:
        """The nodes that read output ``k``."""
        return self.model.readers.get(self.node.output[k], [])

    # ------------------------------------------------------------------ building

    def add(self, op: ops.Op, inputs, params: dict | None = None, suffix: str = "") -> str:
        """Append an IR node named after this node (plus ``_suffix``); returns its value."""
        name = f"{self.name}_{suffix}" if suffix else self.name
        for key, value in (params or {}).items():
            bad = np.size(value) - np.count_nonzero(np.isfinite(value))
            if bad:
                raise self.malformed(f"its {key} has {bad} NaN or infinite values (a damaged file?)")
        try:
            return self.model.builder.add(op, inputs, params, name=name)
        except VerificationError as exc:  # e.g. an Add of tensors whose shapes differ
            raise self.unsupported(str(exc)) from None
