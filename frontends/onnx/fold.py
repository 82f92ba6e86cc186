"""Constant folding at import: a node whose inputs are all constants is computed once, by
onnx's reference implementation of its op at the model's opset (so every op and version
folds with ONNX's exact semantics). This removes the weight arithmetic older exporters
write into graphs (a Reshape or Transpose of an initializer feeding a Conv) and the shape
arithmetic of ``x.view(x.size(0), -1)``.

Shapes of computed tensors fold too, although the batch size (and a sequence's number of
steps) is unknown: ``Shape`` and ``Size`` are evaluated at two probe sizes, and whatever is
computed from them is a :class:`BatchDependent` value until it equals at both probes
(``Gather(Shape(x), 1)`` is the constant channel count; ``Gather(Shape(x), 0)`` stays the
batch size; PyTorch's zero initial state ``ConstantOfShape([layers, batch, hidden])`` is
batch dependent).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.compiler.types import TensorType

#: batch sizes the shape of a computed tensor is probed at; neither is 1, so a batch-sized
#: entry cannot be mistaken for a constant 1
PROBE_BATCHES = (2, 3)
#: numbers of steps a sequence's shape is probed at (alongside :data:`PROBE_BATCHES`)
PROBE_STEPS = (5, 7)
#: ops that read only the shape of their input, so they fold even on computed tensors
SHAPE_OPS = ("Shape", "Size")
#: ops whose result differs from run to run: never folded
NONDETERMINISTIC_OPS = (
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
)


@dataclass(frozen=True, eq=False)
class BatchDependent:
    """A small tensor computed from shapes that depends on the batch size (or a sequence's
    number of steps): its values at each probe of :data:`PROBE_BATCHES` (and
    :data:`PROBE_STEPS`)."""

    values: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class SequenceShape:
    """The shape of a computed sequence (or of a value whose batch axis is not first):
    ``shape`` holds the other axes; the batch is ONNX axis ``batch`` and the time ONNX
    axis ``time`` (None: no time axis)."""

    shape: tuple[int, ...]
    batch: int
    time: int | None = None

    def at(self, probe: int) -> tuple[int, ...]:
        """The full ONNX shape at probe number ``probe``."""
        sizes = {self.batch: PROBE_BATCHES[probe], self.time: PROBE_STEPS[probe]}
        rest = iter(self.shape)
        rank = len(self.shape) + 1 + (self.time is not None)
        return tuple(sizes[a] if a in (self.batch, self.time) else next(rest) for a in range(rank))


class FoldError(Exception):
    """onnx's reference implementation could not compute a node (the message says why)."""


def is_foldable(node, constant: set[str]) -> bool:
    """Whether ``node`` computes constants, given the names of the constant values so far."""
    from onnx import AttributeProto

    if node.domain not in ("", "ai.onnx") or node.op_type in NONDETERMINISTIC_OPS:
        return False
    if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute):
        return False  # If/Loop/Scan bodies may read computed values from the outer graph
    return node.op_type in SHAPE_OPS or all(name in constant for name in node.input if name)


def fold_node(node, inputs: list, opset: int) -> list:
    """The outputs of ``node`` (arrays, or :class:`BatchDependent` values) from its inputs:
    arrays, BatchDependent values, ``None`` for an absent optional input, and, for
    :data:`SHAPE_OPS`, the IR type (or :class:`SequenceShape`) of a computed tensor."""
    probes = range(len(PROBE_BATCHES)) if any(_varies(x) for x in inputs) else (0,)
    runs = [_evaluate(node, [_at(x, k) for x in inputs], opset) for k in probes]
    return [_join([run[i] for run in runs]) if name else None for i, name in enumerate(node.output)]


def _varies(x) -> bool:
    return isinstance(x, (BatchDependent, TensorType, SequenceShape))


def _at(x, probe: int):
    """Input ``x`` at the probe batch size number ``probe``."""
    if isinstance(x, BatchDependent):
        return x.values[probe]
    if isinstance(x, TensorType):  # only its shape is read
        return np.zeros((PROBE_BATCHES[probe], *x.shape), np.float32)
    if isinstance(x, SequenceShape):
        return np.zeros(x.at(probe), np.float32)
    return x


def _join(values: list[np.ndarray]):
    first = values[0]
    if all(v.shape == first.shape and np.array_equal(v, first) for v in values[1:]):
        return first
    return BatchDependent(tuple(values))


def _evaluate(node, inputs: list, opset: int) -> list[np.ndarray]:
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    feeds = {name: x for name, x in zip(node.input, inputs) if name}
    graph = helper.make_graph(
        [node],
        "fold",
        [helper.make_tensor_value_info(name, TensorProto.UNDEFINED, None) for name in feeds],
        [helper.make_tensor_value_info(name, TensorProto.UNDEFINED, None) for name in node.output if name],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        results = ReferenceEvaluator(model).run(None, feeds)
    except Exception as exc:  # the reference ops raise anything (TypeError, ValueError, ...)
        raise FoldError(" ".join(f"{type(exc).__name__}: {exc}".split())[:300]) from None
    results = iter(results)
    return [np.asarray(next(results)) if name else None for name in node.output]
