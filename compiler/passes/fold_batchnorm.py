"""fold_batchnorm: batch norms (and per-channel affines) into the dense/conv before or after them."""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import ops
from ..graph import Graph, Node
from .registry import register_pass
from .rewrite import Rewriter, f64, input_channel_map, single_user

_FOLDS_INTO = (ops.Dense, ops.Conv2d)
_NO_PADS = (0, 0, 0, 0)


@dataclasses.dataclass
class _ForwardFold:
    """Where an affine read by later layers goes: the layers that absorb it (with the affine
    ``(scale, shift)`` on their input), and the paddings on the way with their new values."""

    layers: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)
    pads: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


class _Refused(Exception):
    """Why an affine cannot fold into the layers after it."""


@register_pass("fold_batchnorm")
def fold_batchnorm(graph: Graph) -> Graph:
    """Fold each ``batch_norm`` (and per-channel ``affine``) ``y = s * x + t`` into a dense/conv.

    Backward, into the ``dense``/``conv2d`` before it, per output channel (Rueckauer et al.
    2017; SNN Toolbox's ``absorb_bn_parameters``)::

        s = gamma / sqrt(var + eps);  W' = W * s;  b' = beta + (b - mean) * s

    (an affine: ``s = scale``, ``b' = b * s + shift``). This needs the layer to have no other
    user.

    Forward, otherwise (a batch norm after a ReLU, an input normalization), into every
    ``dense``/``conv2d`` that reads it, per input channel ``c``::

        W'[o, c, ...] = W[o, c, ...] * s[c];  b'[o] = b[o] + sum_{c, kh, kw} W[o, c, kh, kw] * t[c]

    through ops that commute with a per-channel affine: reshapes (a flatten repeats each
    channel's ``s, t`` over its ``H*W`` features, CHW order), transposes keeping the channel
    axis, average pooling (without padding counted in the divisor), global average pooling,
    max pooling (only for ``s > 0``) and padding (``pad_v(s x + t) = s pad_{(v-t)/s}(x) + t``,
    so its value becomes ``(v - t) / s`` per channel). A convolution with zero padding would
    see ``t`` missing at the padded positions: its padding moves into a ``pad2d`` with the
    per-channel values ``-t / s``, which ``s * (-t/s) + t = 0`` makes exact. Every path from
    the affine must end in such a layer (all readers fold, or none), and no op on the way may
    have other users; ``s = 0`` on a channel that meets padding is refused.

    A batch norm that folds neither way becomes the equal ``affine``; every fold and every
    refusal is noted. Exact: outputs agree with the input graph to float32 rounding. After
    this pass no ``batch_norm`` remains.
    """
    rw = Rewriter(graph, "fold_batchnorm")
    backward: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # layer -> (scale, shift) on its output
    forward: dict[str, _ForwardFold] = {}  # affine -> where it folds
    for node in graph.nodes:
        scale_shift = _as_affine(node)
        if scale_shift is None:
            continue
        producer = graph.node(node.inputs[0])
        if isinstance(producer.op, _FOLDS_INTO) and single_user(graph, producer) is node:
            backward[producer.name] = scale_shift
            continue
        try:
            forward[node.name] = fold = _forward_fold(graph, node, *scale_shift)
        except _Refused as why:
            before = "its input is not a dense/conv2d" if not isinstance(producer.op, _FOLDS_INTO) else (
                f"%{producer.name} has other users"
            )
            rw.note(node, f"kept as an affine: {before}, and it cannot fold into the layers after it: {why}")
            continue
        rw.note(node, "folded into the next layer(s): " + ", ".join(f"%{name}" for name in fold.layers))

    into = {layer: scale_shift for fold in forward.values() for layer, scale_shift in fold.layers.items()}
    pads = {pad: values for fold in forward.values() for pad, values in fold.pads.items()}
    for node in graph.nodes:
        if node.name in forward or (_as_affine(node) is not None and node.inputs[0] in backward):
            rw.forward(node, rw.value(node.inputs[0]))
        elif node.name in into or node.name in backward:
            _keep_layer(rw, node, into.get(node.name), backward.get(node.name))
        elif node.name in pads:
            rw.keep(node, **_pad_with(node.op.pads, pads[node.name]))
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


# ----------------------------------------------------------------------------- forward


def _forward_fold(graph: Graph, affine: Node, scale: np.ndarray, shift: np.ndarray) -> _ForwardFold:
    """Follow every reader of ``affine`` to the layers that absorb it; raise :class:`_Refused`."""
    fold = _ForwardFold()
    users = graph.users(affine.name)
    if not users:
        raise _Refused("nothing reads it")
    for user in users:
        _follow(graph, affine, user, scale, shift, fold)
    return fold


def _follow(graph: Graph, src: Node, node: Node, scale, shift, fold: _ForwardFold) -> None:
    """Carry ``y = scale * x + shift`` (on the value ``src``, per its axis 0) through ``node``."""
    op = node.op
    if isinstance(op, ops.Conv2d):
        if any(op.pads) and np.any((scale == 0) & (shift != 0)):
            raise _Refused(f"%{node.name} pads with zeros, which no value makes exact where the scale is 0")
        fold.layers[node.name] = (scale, shift)
        return
    if isinstance(op, ops.Dense):
        fold.layers[node.name] = (scale, shift)
        return
    if isinstance(op, ops.MaxPool2d) and not np.all(scale > 0):
        raise _Refused(f"%{node.name} max pools, which commutes with the affine only where its scale is positive")
    if isinstance(op, ops.AvgPool2d) and op.count_include_pad and any(op.pads):
        raise _Refused(f"%{node.name} averages over zero padding, which would weigh the shift by position")
    if isinstance(op, ops.Pad2d):
        value = _pad_values(node)
        if np.any((scale == 0) & (value != shift)):
            raise _Refused(f"%{node.name} pads with a value that no value makes exact where the scale is 0")
        fold.pads[node.name] = _unscaled(value - shift, scale)
    elif isinstance(op, (ops.Reshape, ops.Transpose)):
        scale, shift = _through_layout(src, node, scale, shift)
    elif not isinstance(op, (ops.MaxPool2d, ops.AvgPool2d, ops.GlobalAvgPool)):
        raise _Refused(f"%{node.name} ({op.NAME}) reads it")
    users = graph.users(node.name)
    if len(users) != 1 and not all(_absorbs(u) for u in users):
        raise _Refused(f"%{node.name} is also read elsewhere")
    for user in users:
        _follow(graph, node, user, scale, shift, fold)


def _absorbs(node: Node) -> bool:
    return isinstance(node.op, _FOLDS_INTO)


def _through_layout(src: Node, node: Node, scale, shift):
    """The affine's ``(scale, shift)`` on the axis 0 of a reshape's or transpose's output."""
    before, after = src.type, node.type
    if isinstance(node.op, ops.Transpose) and node.op.perm[0] == 0:
        return scale, shift
    if isinstance(node.op, ops.Reshape) and after.shape[0] == before.shape[0]:
        return scale, shift  # row-major: each index of axis 0 keeps its own elements
    if isinstance(node.op, ops.Reshape) and after.rank == 1:  # a flatten: each channel's H*W block
        block = before.size // before.shape[0]
        return np.repeat(scale, block), np.repeat(shift, block)
    if np.all(scale == scale[0]) and np.all(shift == shift[0]):
        return np.full(after.shape[0], scale[0]), np.full(after.shape[0], shift[0])
    raise _Refused(f"%{node.name} ({node.op.NAME}) moves the channels of a per-channel affine")


def _pad_values(node: Node) -> np.ndarray:
    """A ``pad2d``'s value for each channel."""
    if node.op.per_channel:
        return f64(node, "values")
    return np.full(node.type.shape[0], node.op.value)


def _unscaled(value: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``value / scale``, 0 where the scale is 0 (any value does there: ``0 * v = 0``)."""
    return np.divide(value, scale, out=np.zeros_like(value), where=scale != 0)


def _pad_with(pads: tuple, values: np.ndarray) -> dict:
    """A ``pad2d`` filling each channel with ``values`` (one value where all agree)."""
    if np.all(values == values[0]):
        return {"op": ops.Pad2d(pads, float(values[0])), "params": {}}
    return {"op": ops.Pad2d(pads, per_channel=True), "params": {"values": values.astype(np.float32)}}


def _keep_layer(rw: Rewriter, layer: Node, before, after) -> None:
    """``layer`` with the affine ``before`` on its input and ``after`` on its output folded in;
    a convolution whose zero padding would miss the input affine's shift pads with ``-t/s``."""
    weight, bias = f64(layer, "weight"), f64(layer, "bias")
    op, inputs = layer.op, None
    if before is not None:
        scale, shift = before
        if isinstance(op, ops.Conv2d):
            channels = input_channel_map(op, weight.shape)
            bias = bias + np.einsum("fcuv,fc->f", weight, shift[channels])
            weight = weight * scale[channels][:, :, None, None]
            if any(op.pads) and np.any(shift):
                padding = _pad_with(op.pads, _unscaled(-shift, scale))
                inputs = [rw.insert(padding["op"], [rw.value(layer.inputs[0])], padding["params"], name=f"{layer.name}_pad")]
                op = dataclasses.replace(op, pads=_NO_PADS)
                rw.note(layer, f"zero padding moved into %{inputs[0]} with the values -shift/scale of the affine folded in")
        else:
            bias = bias + weight @ shift
            weight = weight * scale[None, :]
    if after is not None:
        scale, shift = after
        weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
        bias = bias * scale + shift
    params = {"weight": weight.astype(np.float32), "bias": bias.astype(np.float32)}
    rw.keep(layer, op=op, params=params, inputs=inputs)
