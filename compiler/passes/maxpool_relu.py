"""maxpool_to_relu: max pooling as an exact network of ReLUs and linear ops, for targets that
cannot gate spikes (Loihi).

For ``b >= 0`` and any ``a``::

    max(a, b) = relu(a - b) + b

so the maximum of two non-negative values needs one ReLU (one neuron layer after conversion)
and a linear pass-through of ``b``; ``form=abs`` uses the symmetric
``max(a, b) = (a + b + relu(a - b) + relu(b - a)) / 2`` instead (two ReLUs per pair, each
weighted 1/2). A ``kh x kw`` window is reduced separably, first along each row (a depthwise
``1 x kw`` selection, stride ``(1, sw)``, with the left/right padding) and then along each
column of those row maxima (``kh x 1``, stride ``(sh, 1)``, top/bottom padding), so
overlapping windows and padding need nothing special. Each axis is a pairwise tree:
``ceil(log2 k)`` ReLU layers, so a 2x2 pool adds two neuron layers and a 3x3 pool four.
Zero padding equals the max pool's ``-inf`` padding because the input is non-negative and
every window holds at least one real element (each pad is smaller than the kernel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import ops
from ..graph import Graph, Node
from .registry import check_choice, register_pass
from .rewrite import Rewriter

FORMS = ("diff", "abs")
#: ops whose output is non-negative whenever all their inputs are
_KEEPS_SIGN = (ops.MaxPool2d, ops.AvgPool2d, ops.GlobalAvgPool, ops.Concat, ops.Reshape, ops.Transpose)


@register_pass("maxpool_to_relu")
def maxpool_to_relu(graph: Graph, *, form: str = "diff") -> Graph:
    """Rewrite each ``max_pool2d`` of a non-negative input into ReLUs and depthwise convolutions
    computing the same maximum (exact, to float rounding).

    ``form=diff``: ``max(a, b) = relu(a - b) + b`` (one ReLU per pair); ``form=abs``:
    ``(a + b + relu(a - b) + relu(b - a)) / 2`` (two). Windows reduce separably, rows then
    columns, each as a pairwise tree (``ceil(log2 k)`` ReLU layers per axis). A max pool whose
    input may be negative (not provably a ReLU's output) is kept, with a note.
    """
    check_choice("form", form, FORMS)
    rw = Rewriter(graph, "maxpool_to_relu")
    for node in graph.nodes:
        if not isinstance(node.op, ops.MaxPool2d):
            rw.keep(node)
            continue
        op = node.op
        reason = _why_not(graph, node)
        if reason:
            rw.keep(node)
            rw.note(node, f"max pooling kept: {reason}")
            continue
        builder = _Builder(rw, node, form)
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = op.kernel, op.stride, op.pads
        columns_needed = (kh, sh, pt, pb) != (1, 1, 0, 0)
        rows = builder.reduce(rw.value(node.inputs[0]), kw, sw, (pl, pr), axis=1, final=not columns_needed)
        if columns_needed:
            builder.reduce(rows, kh, sh, (pt, pb), axis=0, final=True)
        rw.note(
            node,
            f"max pooling {kh}x{kw} stride {sh}x{sw} rewritten exactly as {builder.relus} relu layer(s), "
            f"{builder.depth} in series ({_FORMULA[form]})",
        )
    return rw.finish()


_SUFFIX = {ops.Conv2d: "_select", ops.Affine: "_scaled", ops.Add: "_sum"}
_FORMULA = {"diff": "max(a, b) = relu(a - b) + b", "abs": "max(a, b) = (a + b + relu(a - b) + relu(b - a)) / 2"}


def _why_not(graph: Graph, node: Node) -> str:
    """Why the rewrite does not apply to this max pool ('' if it does)."""
    op = node.op
    if any(p >= k for p, k in zip(op.pads, op.kernel * 2)):
        return f"padding {list(op.pads)} leaves windows without a real element"
    if not _nonnegative(graph, node.inputs[0]):
        return (
            f"its input %{node.inputs[0]} may be negative (relu(a - b) + b = max(a, b) needs b >= 0; "
            "the rewrite applies to max pooling after a relu)"
        )
    return ""


def _nonnegative(graph: Graph, value: str) -> bool:
    """Whether ``value`` is non-negative for every input: a ReLU without negative slope and
    with a threshold >= 0, or a pooling, concat or reshape of such values."""
    op = graph.node(value).op
    if isinstance(op, ops.ReLU):
        return op.negative_slope == 0 and op.threshold >= 0 and (op.max_value is None or op.max_value >= 0)
    if isinstance(op, ops.Pad2d) and op.value < 0:
        return False
    if isinstance(op, (*_KEEPS_SIGN, ops.Pad2d)):
        return all(_nonnegative(graph, i) for i in graph.node(value).inputs)
    return False


@dataclass
class _Term:
    """A linear expression of one reduction stage: ``sum_i kernel[i] x_i + sum coeff * value``
    where ``x_i`` is the ``i``-th element of each window of the stage's input."""

    kernel: np.ndarray
    values: list[tuple[str, float]] = field(default_factory=list)

    def __sub__(self, other: "_Term") -> "_Term":
        return _Term(self.kernel - other.kernel, _merged(self.values + [(v, -c) for v, c in other.values]))


def _merged(values: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """One ``(value, coeff)`` per value, in first-seen order; zero coefficients dropped."""
    total: dict[str, float] = {}
    for value, coeff in values:
        total[value] = total.get(value, 0.0) + coeff
    return [(v, c) for v, c in total.items() if c != 0]


class _Builder:
    """Emits one max pool's reduction stages into the rewriter; counts the ReLUs it adds."""

    def __init__(self, rw: Rewriter, node: Node, form: str):
        self.rw, self.node, self.form = rw, node, form
        self.relus = 0
        self.depth = 0

    def reduce(self, x: str, k: int, stride: int, pads: tuple[int, int], axis: int, final: bool) -> str:
        """The maximum over windows of ``k`` elements along ``axis`` (0 = H, 1 = W) of ``x``."""
        if k == 1 and stride == 1 and not any(pads) and not final:
            return x
        self._stage = (x, k, stride, pads, axis)
        terms = [_Term(np.eye(k)[i]) for i in range(k)]
        if k > 1:
            self.depth += math.ceil(math.log2(k))
        while len(terms) > 1:
            pairs = [self._max(terms[i], terms[i + 1]) for i in range(0, len(terms) - 1, 2)]
            terms = pairs + terms[len(pairs) * 2 :]
        return self._emit(terms[0], final)

    def _max(self, a: _Term, b: _Term) -> _Term:
        if self.form == "diff":
            return _Term(b.kernel, b.values + [(self._relu(a - b), 1.0)])
        half = _merged([(v, c / 2) for v, c in a.values + b.values])
        return _Term((a.kernel + b.kernel) / 2, half + [(self._relu(a - b), 0.5), (self._relu(b - a), 0.5)])

    def _relu(self, term: _Term) -> str:
        self.relus += 1
        return self.rw.insert(ops.ReLU(), [self._emit(term, False)], name=f"{self.node.name}_max")

    def _emit(self, term: _Term, final: bool) -> str:
        """The term as graph values: a depthwise selection conv of the stage input, scaled
        values, and their sum; the last op takes the max pool's name when ``final``."""
        x, k, stride, pads, axis = self._stage
        rw, name = self.rw, self.node.name
        channels = rw.type_of(x).shape[0]
        steps = []  # (op, inputs, params): the last is emitted under the final name
        parts = []
        if np.any(term.kernel):
            kernel, strides = ((k, 1), (stride, 1)) if axis == 0 else ((1, k), (1, stride))
            pad4 = (pads[0], 0, pads[1], 0) if axis == 0 else (0, pads[0], 0, pads[1])
            weight = np.broadcast_to(term.kernel.reshape(kernel), (channels, 1, *kernel)).astype(np.float32)
            conv = ops.Conv2d(channels, kernel, strides, pad4, groups=channels)
            steps.append((conv, [x], {"weight": weight, "bias": np.zeros(channels, np.float32)}))
        for value, coeff in term.values:
            if coeff == 1:
                parts.append(value)
                continue
            c = rw.type_of(value).shape[0]
            steps.append((ops.Affine(), [value], {"scale": np.full(c, coeff, np.float32), "shift": np.zeros(c, np.float32)}))
        if len(steps) + len(parts) > 1:
            steps.append((ops.Add(), None, {}))
        out = None
        for i, (op, inputs, params) in enumerate(steps):
            if inputs is None:  # the sum of everything emitted so far
                inputs = parts
            last = final and i == len(steps) - 1
            out = rw.keep(self.node, op=op, params=params, inputs=inputs) if last else rw.insert(op, inputs, params, name=name + _SUFFIX[type(op)])
            if not isinstance(op, ops.Add):
                parts.append(out)
        if out is None:  # a single value: nothing to emit
            out = parts[0]
        return out
