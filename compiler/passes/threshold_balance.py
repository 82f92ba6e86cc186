"""threshold_balance: data-based normalization of every ReLU layer (Diehl et al. 2015,
Rueckauer et al. 2017), generalized to any graph of the IR (residual adds, concats, pooling).

Each value ``v`` gets a scale ``s_v`` (one number per channel, or per feature for vectors):
the balanced graph computes ``v / s_v`` where the original computed ``v``. A ReLU's scale is
``lambda``, a statistic of its activations on calibration data, so after balancing its
activations mostly lie in ``[0, 1]`` and an integrate-and-fire neuron with threshold 1 can
represent them as a firing rate. Dense and conv layers absorb the scales into their weights,
``W'[f, c] = W[f, c] * s_in[c] / s_out[f]`` and ``b' = b / s_out[f]``; pooling, padding,
reshapes and concatenation carry scales through; where two scales must agree but differ (a
residual add whose shortcut comes from another ReLU, an output), an ``affine`` rescale is
inserted. Outputs keep scale 1, so the balanced graph computes the same outputs.

Recurrences: a ``delay`` carries its input's scale. For ``h_t = relu(W x_t + U h_{t-1} + b)``
with ``s_x`` the scale of ``x`` and ``lambda`` that of ``h``, the balanced layer computes
``h_t / lambda = relu(W' x_t + U' (h_{t-1} / lambda) + b')`` with ``W'[f, c] = W[f, c] s_x[c] /
lambda[f]``, ``U'[f, c] = U[f, c] lambda[c] / lambda[f]`` (unchanged for one scale per layer)
and ``b' = b / lambda``: the same rule as any dense layer, the delay's scale being ``lambda``.
A delay comes before the value it reads, so its scale is taken as the one that value will
get (a ReLU's ``lambda``, else the scale its users want); should the value end up at another
scale, the delay reads an ``affine`` rescale of it. Statistics of sequence graphs count
every input step of every example.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import ops
from ..errors import DataError, PassError
from ..graph import Graph, Node
from ..interpreter import bind_inputs, run_batch, step_samples
from ..progress import progress
from .leaky import split_leaky_relus
from .registry import check_choice, register_pass
from .rewrite import Rewriter, f64, input_channel_map

METHODS = ("max", "percentile")
PER_CHANNEL = ("false", "true", "auto")
#: trained activations kept at scale 1 in and out (a LIF curve is not linear; a spiking relu's
#: trained dt fixes its events per step)
UNSCALED_TRAINED_OPS = (ops.SoftLif, ops.SpikingRelu)


class PerLayerOnly(PassError):
    """Per-channel scales cannot pass node ``node``: ``reason``, which only one scale per layer avoids."""

    def __init__(self, node: Node, reason: str):
        super().__init__(f"%{node.name} = {node.op.NAME}: {reason}; use per_channel=false (or auto)")
        self.node, self.reason = node.name, reason
_CARRY = (ops.AvgPool2d, ops.MaxPool2d, ops.GlobalAvgPool, ops.Pad2d, ops.Affine)


@register_pass("threshold_balance")
def threshold_balance(
    graph: Graph,
    *,
    calibration,
    method: str = "percentile",
    p: float = 99.9,
    per_channel: str = "false",
    batch_size: int = 256,
) -> Graph:
    """Scale each ReLU layer so its ``method`` statistic of calibration activations is 1.

    ``method=max``: the largest activation (Diehl et al. 2015); ``method=percentile``: the
    ``p``-th percentile of the non-zero activations (Rueckauer et al. 2017, SNN Toolbox's
    default p = 99.9), robust to outliers. ``per_channel=true`` takes one scale per channel
    (more spikes for channels whose activations are small: a finer rate code at low T);
    ``per_channel=auto`` does so where the graph can carry per-channel scales and otherwise
    takes one scale per layer, with a note naming the node that prevented it.
    Each ReLU's metadata records its scale and statistics; the graph's records the method
    and the number of calibration examples. Outputs equal the input graph's (to float32
    rounding).

    Activations other than a plain ReLU:

    - a clipped ReLU ``min(relu(x), m)`` never gets a scale above ``m``; where the statistic
      reaches the clip (``lambda >= m`` to 0.1 %, e.g. a ReLU6 that saturates on more than
      ``100 - p`` % of the calibration activations) the scale is exactly ``m``, so the clip
      becomes ``max_value=1``: the neuron's saturation at one spike per step. Below that the
      scale is the statistic and the clip lies above the neuron's range, as for a plain ReLU.
      The metadata's ``clip`` says which.
    - a leaky ReLU is first split into ``relu(x) - a * relu(-x)`` (:mod:`.leaky`), and each
      part is balanced by its own statistic.
    - sigmoid, tanh and softmax are read at scale 1 (they are not linear).

    Activations trained for spiking neurons (``ops.TRAINED_OPS``) keep what was trained; their
    metadata says so (``"trained": op name``), and the graph's record lists them
    (``kept_as_trained``):

    - ``qcfs{levels=L, threshold=lambda}``: its scale is the trained ``lambda`` exactly, one
      per layer (also with ``per_channel=true``), not a statistic: it becomes
      ``qcfs{threshold=1}``, whose outputs are the trained ones divided by ``lambda``, so the
      IF neurons it converts to saturate where the trained activation does.
    - ``soft_lif`` is never rescaled: a LIF rate curve is not linear, so its input stays at
      scale 1 (the layer before it absorbs only its own input's scale) and so does its
      output (the trained ``amplitude`` is kept).
    - ``spiking_relu`` is never rescaled either: its trained ``dt`` sets how many events per
      step a value makes, so its input and output stay at scale 1 too.
    """
    check_choice("method", method, METHODS)
    per_channel = {"1": "true", "0": "false"}.get(str(per_channel).lower(), str(per_channel).lower())  # bools too
    check_choice("per_channel", per_channel, PER_CHANNEL)
    if per_channel == "auto":
        options = dict(calibration=calibration, method=method, p=p, batch_size=batch_size)
        try:
            return threshold_balance(graph, per_channel="true", **options)
        except PerLayerOnly as exc:
            balanced = threshold_balance(graph, per_channel="false", **options)
            note = {"pass": "threshold_balance", "node": exc.node, "message": f"one scale per layer: {exc.reason}"}
            return balanced.replace(meta={**balanced.meta, "notes": list(balanced.meta.get("notes", [])) + [note]})
    if not 0 < p <= 100:
        raise PassError(f"option p={p} must be in (0, 100]")
    if graph.stage != ops.FLOAT:
        raise PassError(f"runs on float graphs; this one is {graph.stage}")
    for node in graph.nodes:
        if isinstance(node.op, ops.BatchNorm):
            raise PassError(f"%{node.name} = batch_norm: run fold_batchnorm before threshold_balance")
    graph = split_leaky_relus(graph, "threshold_balance")
    stats, examples = _relu_statistics(graph, calibration, method, p, per_channel == "true", batch_size)
    wanted = _wanted_scales(graph, {k: v["lambda"] for k, v in stats.items()})
    rw = Rewriter(graph, "threshold_balance")
    _rescale(graph, rw, stats, wanted)
    for name, s in stats.items():
        if s["silent"]:
            rw.note(name, f"{s['silent']} channel(s) never active on the calibration data; scale 1 kept for them")
    record = {"method": method, "per_channel": per_channel == "true", "examples": examples}
    if method == "percentile":
        record["p"] = p
    trained = [node.name for node in graph.nodes if isinstance(node.op, ops.TRAINED_OPS)]
    if trained:
        record["kept_as_trained"] = trained
    return rw.finish(meta={**graph.meta, "threshold_balance": record})


# ----------------------------------------------------------------------------- statistics


def _relu_statistics(graph, calibration, method, p, per_channel, batch_size):
    """Per ReLU: ``lambda`` (a vector over axis 0) and the statistics shown in dumps."""
    arrays = bind_inputs(graph, calibration)
    n = next(iter(arrays.values())).shape[0]
    if n == 0:
        raise DataError("the calibration data is empty")
    relus = [node for node in graph.nodes if isinstance(node.op, ops.ReLU)]
    collected = {node.name: [] for node in relus}
    starts = range(0, n, batch_size)
    for start in progress(starts, len(starts), f"calibrating on {n} examples"):
        values = run_batch(graph, {k: v[start : start + batch_size] for k, v in arrays.items()})
        for name in collected:
            collected[name].append(step_samples(graph, values[name]).astype(np.float32))
    return {
        node.name: _layer_statistics(np.concatenate(collected[node.name]), method, p, per_channel, node.op.max_value)
        for node in relus
    }, n


#: relative distance below a clip at which a statistic counts as having reached it
CLIP_REACHED = 1e-3


def _layer_statistics(acts: np.ndarray, method: str, p: float, per_channel: bool, clip: float | None = None) -> dict:
    channels = acts.shape[1]
    groups = [acts[:, c] for c in range(channels)] if per_channel else [acts]
    lambdas, silent = [], 0
    for values in groups:
        positive = values[values > 0]
        if positive.size == 0:
            lambdas.append(1.0)
            silent += channels if not per_channel else 1
            continue
        lam = float(positive.max()) if method == "max" else float(np.percentile(positive, p))
        lambdas.append(lam)
    lam = np.array(lambdas) if per_channel else np.full(channels, lambdas[0])
    meta = {}
    if clip is not None and clip > 0:
        at_clip = lam >= clip * (1 - CLIP_REACHED)
        lam = np.where(at_clip, clip, lam)
        meta["clip"] = "at saturation" if at_clip.all() else f"max_value {clip:g} above the scale"
    positive = acts[acts > 0]
    clipped = float((acts > _per_channel(lam, acts.ndim - 1)).mean()) if acts.size else 0.0
    return {
        "lambda": lam,
        "silent": silent,
        "meta": {
            "scale": lam.tolist() if per_channel else float(lam[0]),
            **meta,
            "calibration": {
                "max": float(positive.max()) if positive.size else 0.0,
                "above_scale": clipped,
            },
        },
    }


def _per_channel(vector: np.ndarray, rank: int) -> np.ndarray:
    return vector.reshape((1, -1) + (1,) * (rank - 1))


# ----------------------------------------------------------------------------- scale mapping


def _uniform(s: np.ndarray) -> bool:
    return bool(np.all(s == s[0]))


def _forward_scale(node: Node, scales: list[np.ndarray], in_types) -> np.ndarray | None:
    """The output scale of a scale-carrying op given its inputs' scales; None if the op
    cannot carry them (a non-uniform scale through a general reshape or transpose)."""
    op, s, out = node.op, scales[0], node.type
    if isinstance(op, ops.Concat):
        if op.axis == 0:
            return np.concatenate(scales)
        return s if all(np.array_equal(s, t) for t in scales) else None
    if isinstance(op, _CARRY):
        return s
    if _uniform(s):
        return np.full(out.shape[0], s[0])
    if isinstance(op, ops.Reshape):
        if in_types[0].shape[0] == out.shape[0]:
            return s
        if out.rank == 1:  # a flatten: each channel's block of elements
            return np.repeat(s, in_types[0].size // in_types[0].shape[0])
    return None


def _backward_scale(node: Node, want: np.ndarray, in_types) -> list[np.ndarray | None]:
    """The scales a scale-carrying op's inputs should have for its output to have ``want``."""
    op = node.op
    if isinstance(op, ops.Concat):
        if op.axis == 0:
            bounds = np.cumsum([t.shape[0] for t in in_types])[:-1]
            return list(np.split(want, bounds))
        return [want for _ in in_types]
    if isinstance(op, (*_CARRY, ops.Add, ops.ReLU, ops.Qcfs, ops.Delay)):
        return [want for _ in in_types]
    src = in_types[0]
    if _uniform(want):
        return [np.full(src.shape[0], want[0])]
    if isinstance(op, ops.Reshape):
        if src.shape[0] == node.type.shape[0]:
            return [want]
        if node.type.rank == 1:
            blocks = want.reshape(src.shape[0], -1)
            if all(_uniform(b) for b in blocks):
                return [blocks[:, 0]]
    return [None]


def _wanted_scales(graph: Graph, lambdas: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """For each value, the scale its users would like it to have (so no rescale is needed):
    a ReLU's input wants the ReLU's lambda (a qcfs's its trained lambda), an output's input
    and a soft_lif's or spiking_relu's want 1; carried back through
    scale-carrying ops. Dense/conv layers take any input scale, so they start no demand."""
    wanted: dict[str, np.ndarray] = {}
    for node in reversed(graph.nodes):
        if isinstance(node.op, ops.ReLU):
            wanted[node.name] = lambdas[node.name]
        elif isinstance(node.op, ops.Qcfs):
            wanted[node.name] = _qcfs_scale(node)
        if isinstance(node.op, (ops.Output, *UNSCALED_TRAINED_OPS, *ops.DECODED_OPS)):
            demands = [np.ones(graph.node(node.inputs[0]).type.shape[0])]
        elif isinstance(node.op, (*_CARRY, ops.Add, ops.ReLU, ops.Qcfs, ops.Concat, ops.Reshape, ops.Transpose, ops.Delay)):
            if node.name not in wanted:
                continue
            demands = _backward_scale(node, wanted[node.name], [graph.node(i).type for i in node.inputs])
        else:
            continue
        for src, demand in zip(node.inputs, demands):
            if demand is not None:
                wanted.setdefault(src, demand)
    return wanted


# ----------------------------------------------------------------------------- rewriting


def _rescale(graph: Graph, rw: Rewriter, stats: dict, wanted: dict) -> None:
    scales: dict[str, np.ndarray] = {}
    recurrent: dict[str, tuple[str, np.ndarray]] = {}  # delay -> (the later value it reads, scale taken)

    def matched(src: str, target: np.ndarray) -> str:
        """``src``'s new value at scale ``target``, through an inserted affine if needed."""
        value, have = rw.value(src), scales[src]
        if np.allclose(have, target, rtol=1e-12, atol=0):
            return value
        ratio = (have / target).astype(np.float32)
        rw.note(src, "rescaled where scales meet (an add, concat or output)")
        return rw.insert(ops.Affine(), [value], {"scale": ratio, "shift": np.zeros_like(ratio)}, name=f"{src}_rescale")

    for node in graph.nodes:
        op = node.op
        ones = np.ones(node.type.shape[0]) if node.type.rank else np.ones(1)
        if isinstance(op, ops.Input):
            rw.keep(node)
            scales[node.name] = ones
        elif isinstance(op, (ops.Dense, ops.Conv2d)):
            s_out = wanted.get(node.name, ones)
            rw.keep(node, params=_scaled_layer(node, scales[node.inputs[0]], s_out))
            scales[node.name] = s_out
        elif isinstance(op, ops.ReLU):
            lam = stats[node.name]["lambda"]
            x = matched(node.inputs[0], lam)
            rw.keep(node, op=_scaled_relu(rw, node, lam), inputs=[x], meta={**node.meta, **stats[node.name]["meta"]})
            scales[node.name] = lam
        elif isinstance(op, ops.Qcfs):
            lam = _qcfs_scale(node)
            x = matched(node.inputs[0], lam)
            meta = {**node.meta, "scale": op.threshold, "trained": op.NAME}
            rw.keep(node, op=replace(op, threshold=1.0), inputs=[x], meta=meta)
            scales[node.name] = lam
        elif isinstance(op, UNSCALED_TRAINED_OPS):
            x = matched(node.inputs[0], ones)
            rw.keep(node, inputs=[x], meta={**node.meta, "scale": 1.0, "trained": op.NAME})
            scales[node.name] = ones
        elif isinstance(op, ops.Delay):
            src = node.inputs[0]
            s = scales.get(src)
            if s is None:  # a recurrence: the scale its input will have
                s = stats[src]["lambda"] if src in stats else wanted.get(src, ones)
                recurrent[node.name] = (src, s)
            rw.keep(node, op=_scaled_delay(rw, node, s))
            scales[node.name] = s
        elif isinstance(op, (ops.Add, ops.Output, *ops.DECODED_OPS)) or (isinstance(op, ops.Concat) and op.axis != 0):
            # every input at one scale: 1 for outputs, the wanted one for an add, the first
            # input's for a concat along H or W
            if isinstance(op, ops.Add):
                target = wanted.get(node.name, scales[node.inputs[0]])
            else:
                target = scales[node.inputs[0]] if isinstance(op, ops.Concat) else ones
            rw.keep(node, inputs=[matched(i, target) for i in node.inputs])
            scales[node.name] = target
        else:
            in_scales = [scales[i] for i in node.inputs]
            s = _forward_scale(node, in_scales, [graph.node(i).type for i in node.inputs])
            if s is None:
                raise PerLayerOnly(node, "cannot carry per-channel scales through this op")
            rw.keep(node, params=_scaled_params(node, in_scales[0]), op=_scaled_pad(rw, node, in_scales[0]))
            scales[node.name] = s
    for delay, (src, taken) in recurrent.items():
        rw.close_delay(delay, matched(src, taken))


def _qcfs_scale(node: Node) -> np.ndarray:
    """A qcfs layer's scale: its trained lambda, in every channel
    (``qcfs(x, L, lambda, shift) / lambda = qcfs(x / lambda, L, 1, shift)``)."""
    return np.full(node.type.shape[0] if node.type.rank else 1, float(node.op.threshold))


def _scaled_layer(node: Node, s_in: np.ndarray, s_out: np.ndarray) -> dict:
    weight = f64(node, "weight")
    if isinstance(node.op, ops.Conv2d):
        s_read = s_in[input_channel_map(node.op, weight.shape)]
        weight = weight * s_read[:, :, None, None]
    else:
        weight = weight * s_in[None, :]
    per_out = s_out.reshape((-1,) + (1,) * (weight.ndim - 1))
    return {"weight": (weight / per_out).astype(np.float32), "bias": (f64(node, "bias") / s_out).astype(np.float32)}


def _scaled_relu(rw: Rewriter, node: Node, lam: np.ndarray) -> ops.ReLU:
    op = node.op
    if op.max_value is None and op.threshold == 0:
        return op
    if not _uniform(lam):
        raise PerLayerOnly(node, "a clipped or thresholded relu needs one scale per layer")
    max_value = None if op.max_value is None else op.max_value / float(lam[0])
    return ops.ReLU(max_value, op.negative_slope, op.threshold / float(lam[0]))


def _scaled_params(node: Node, s_in: np.ndarray):
    """An affine's shift in the scaled units (``y/s = scale * x/s + shift/s``); a per-channel
    padding's values likewise (``values / s``)."""
    if isinstance(node.op, ops.Pad2d) and node.op.per_channel:
        return {"values": (f64(node, "values") / s_in).astype(np.float32)}
    if not isinstance(node.op, ops.Affine):
        return None
    return {"scale": node.params["scale"], "shift": (f64(node, "shift") / s_in).astype(np.float32)}


def _scaled_delay(rw: Rewriter, node: Node, s: np.ndarray):
    """A delay's initial value in the scaled units (``init / s``)."""
    op = node.op
    if op.init == 0:
        return None
    if not _uniform(s):
        raise PerLayerOnly(node, "a delay with a non-zero init needs one scale per layer")
    return ops.Delay(op.init / float(s[0]))


def _scaled_pad(rw: Rewriter, node: Node, s_in: np.ndarray):
    op = node.op
    if not isinstance(op, ops.Pad2d) or op.value == 0:
        return None
    if not _uniform(s_in):
        raise PerLayerOnly(node, "padding with a non-zero value needs one scale per layer")
    return ops.Pad2d(op.pads, op.value / float(s_in[0]))
