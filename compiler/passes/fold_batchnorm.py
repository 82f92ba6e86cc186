"""fold_batchnorm: batch norms (and per-channel affines) into the preceding dense/conv."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Graph, Node
from .registry import register_pass
from .rewrite import Rewriter, f64, single_user

_FOLDS_INTO = (ops.Dense, ops.Conv2d)


@register_pass("fold_batchnorm")
def fold_batchnorm(graph: Graph) -> Graph:
    """Fold each ``batch_norm`` into the ``dense``/``conv2d`` before it, per output channel
    (Rueckauer et al. 2017; SNN Toolbox's ``absorb_bn_parameters``)::

        s = gamma / sqrt(var + eps);  W' = W * s;  b' = beta + (b - mean) * s

    An ``affine`` right after a dense/conv folds the same way (``s = scale``, ``b' = b*s +
    shift``). A batch norm that cannot fold (its input is not a dense/conv, or that layer
    has other users) becomes the equal ``affine`` and a note says why. Exact: outputs agree
    with the input graph to float32 rounding. After this pass no ``batch_norm`` remains.
    """
    rw = Rewriter(graph, "fold_batchnorm")
    folded: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # layer -> (scale, shift) to absorb
    for node in graph.nodes:
        scale_shift = _as_affine(node)
        if scale_shift is None:
            continue
        producer = graph.node(node.inputs[0])
        if isinstance(producer.op, _FOLDS_INTO) and single_user(graph, producer) is node:
            folded[producer.name] = scale_shift
        elif isinstance(node.op, ops.BatchNorm):
            why = "its input is not a dense/conv2d" if not isinstance(producer.op, _FOLDS_INTO) else (
                f"%{producer.name} has other users"
            )
            rw.note(node, f"kept as an affine: {why}")

    for node in graph.nodes:
        if node.name in folded:
            rw.keep(node, params=_absorb(node, *folded[node.name]))
        elif _as_affine(node) is not None and graph.node(node.inputs[0]).name in folded:
            rw.forward(node, rw.value(node.inputs[0]))
        elif isinstance(node.op, ops.BatchNorm):
            scale, shift = _as_affine(node)
            rw.keep(node, op=ops.Affine(), params={"scale": scale, "shift": shift})
        else:
            rw.keep(node)
    return rw.finish()


def _as_affine(node: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """``(scale, shift)`` with ``y = x * scale + shift`` per channel, for batch norms and affines."""
    if isinstance(node.op, ops.BatchNorm):
        scale = f64(node, "gamma") / np.sqrt(f64(node, "var") + node.op.epsilon)
        return scale, f64(node, "beta") - f64(node, "mean") * scale
    if isinstance(node.op, ops.Affine):
        return f64(node, "scale"), f64(node, "shift")
    return None


def _absorb(layer: Node, scale: np.ndarray, shift: np.ndarray) -> dict[str, np.ndarray]:
    """The layer's parameters with ``y * scale + shift`` folded in (per output channel)."""
    weight = f64(layer, "weight")
    per_out = scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    return {
        "weight": (weight * per_out).astype(np.float32),
        "bias": (f64(layer, "bias") * scale + shift).astype(np.float32),
    }
