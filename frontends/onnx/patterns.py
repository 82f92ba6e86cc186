"""Pattern rewrites of the ONNX graph before conversion: chains of elementwise ONNX ops that
one IR op computes, fused into one node of snnc's own domain (:data:`FUSED_DOMAIN`) whose
converter is in :data:`FUSED_CONVERTERS`.

The QCFS activation (Bu et al. 2022), as PyTorch exports the authors' code::

    Div(x, λ) -> Mul(·, L) -> Add(·, shift) -> Floor -> Div(·, L) -> Clip(·, 0, 1) -> Mul(·, λ)

is ``qcfs{levels=L, threshold=λ, shift}(x)``. The chain is read algebraically, so its
variants match too: ``Mul`` by ``L / λ``, ``Clip(0, L)`` before the ``Div`` by ``L``,
``Max``/``Min``/``Relu`` for the clip, ``Sub`` for the shift. Before the Floor, Add/Sub/
Mul/Div by constants make ``a * x + b``; after it, Mul/Div by positive constants and clips
make ``s * clip(n, lo, hi)`` of the integer ``n``: QCFS where ``lo = 0``, ``hi = L`` is a
whole number, ``λ = s * L`` and ``a = L / λ``. The chain after the Floor is taken as long
as that holds, the one before it as short (so a scaling beside the chain stays out of it).
λ must be one number: a chain whose λ differs between channels is refused, saying so. A
Floor that is not in such a chain stays, and the unsupported-op message gives the reason
this module found (:func:`fuse_qcfs_chains`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from snnc.compiler import ops

from .context import NodeCall
from .fold import SHAPE_OPS, FoldError, fold_node, is_foldable

#: the ONNX domain of the nodes these rewrites make (never in a file: only here)
FUSED_DOMAIN = "snnc"
#: the chain, for messages
QCFS_CHAIN = "x / λ * L + shift -> Floor -> / L -> Clip(0, 1) -> * λ"
#: how closely the two uses of λ, the clip at L levels, and λ across channels must agree
#: (relatively): float32 constants composed in float64 agree far closer than this
RTOL = 1e-6
#: a Clip bound at least this large is absent (exporters write float32's extremes)
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True, eq=False)
class Step:
    """One elementwise node of a chain: its index in the graph and the constant it applies
    (float64; for a Clip its bounds, NaN where absent)."""

    index: int
    op: str
    constant: np.ndarray | None = None
    constant_first: bool = False


class Constants:
    """The values of constant ONNX tensors: initializers, and nodes computed from them
    (``Constant`` nodes, casts, ...) by :func:`.fold.fold_node`, on demand."""

    def __init__(self, graph, initializers: dict, opset: int):
        self.producer = {name: node for node in graph.node for name in node.output if name}
        self.values = dict(initializers)
        self.opset = opset

    def get(self, name: str) -> np.ndarray | None:
        """The value of ``name``, or None where it is computed from the model's inputs."""
        if name in self.values:
            return self.values[name]
        node = self.producer.get(name)
        if node is None or node.op_type in SHAPE_OPS:
            return None
        inputs = [self.get(n) if n else None for n in node.input]
        # (every input is constant here: is_foldable checks the op may be computed at all)
        if any(n and x is None for n, x in zip(node.input, inputs)) or not is_foldable(node, set(node.input)):
            return None
        try:
            outputs = fold_node(node, inputs, self.opset)
        except FoldError:
            return None
        self.values.update({n: x for n, x in zip(node.output, outputs) if n})
        return self.values.get(name)


class GraphView:
    """What matching reads of an ONNX graph: its nodes, who produces and who reads each value,
    and the constants."""

    def __init__(self, graph, initializers: dict, opset: int):
        self.nodes = graph.node
        self.opset = opset
        self.constants = Constants(graph, initializers, opset)
        self.producer = {name: i for i, node in enumerate(graph.node) for name in node.output if name}
        self.readers: dict[str, list[int]] = {}
        for index, node in enumerate(graph.node):
            for name in dict.fromkeys(n for n in node.input if n):
                self.readers.setdefault(name, []).append(index)
        self.outputs = {o.name for o in graph.output}

    def sole_reader(self, value: str) -> int | None:
        """The index of the one node reading ``value`` (not a graph output), else None."""
        found = self.readers.get(value, [])
        return found[0] if len(found) == 1 and value not in self.outputs else None


def fuse_qcfs_chains(model, initializers: dict, opset: int) -> dict[str, str]:
    """Replace each QCFS chain of ``model.graph`` (in place) by one ``Qcfs`` node of
    :data:`FUSED_DOMAIN` named after the chain; returns, for every Floor left (by its output
    name), why it is not part of one."""
    view = GraphView(model.graph, initializers, opset)
    fused, removed, reasons = {}, set(), {}
    for index, node in enumerate(view.nodes):
        if node.op_type != "Floor" or node.domain not in ("", "ai.onnx"):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):  # a Div by 0 before it: no match
            match = _match(view, index)
        if isinstance(match, str):
            reasons[node.output[0]] = match
            continue
        chain, x, y, qcfs = match
        fused[chain[-1]] = _fused_node(view, chain, index, x, y, qcfs)
        removed.update(chain[:-1])
    for index, node in fused.items():
        model.graph.node[index].CopyFrom(node)
    for index in sorted(removed, reverse=True):
        del model.graph.node[index]
    return reasons


def _match(view: GraphView, floor: int):
    """``(chain node indices, input name, output name, qcfs op)`` of the QCFS chain around
    the Floor node ``floor``, or a string saying why there is none."""
    before, after = _chain_before(view, floor), _chain_after(view, floor)
    tails = [(end, _clipped_levels(after[:end])) for end in range(len(after), 0, -1)]
    tails = [(end, tail) for end, tail in tails if not isinstance(tail, str)]
    if not tails:
        return _clipped_levels(after) if after else "nothing after it clips its result"
    for end, (levels, threshold) in tails:
        scale, shift = np.float64(1.0), np.float64(0.0)
        for start, step in enumerate(before):
            scale, shift = _compose_before(step, scale, shift)
            if np.allclose(scale, levels / threshold, rtol=RTOL, atol=0):
                break
        else:
            continue
        lam, shift = np.broadcast_arrays(threshold, shift)
        if not (_uniform(lam) and _uniform(shift)):
            return (
                f"its chain's λ (from {lam.min():g} to {lam.max():g}) or shift differs between channels; "
                "snnc's qcfs takes one λ and one shift per layer"
            )
        chain = [s.index for s in reversed(before[: start + 1])] + [floor] + [s.index for s in after[:end]]
        x, y = _chain_input(view.nodes[step.index], step), view.nodes[after[end - 1].index].output[0]
        return chain, x, y, ops.Qcfs(levels, float(lam.flat[0]), float(shift.flat[0]))
    levels, threshold = tails[0][1]
    return f"what precedes it does not multiply by L / λ = {np.mean(levels / threshold):g} (L and λ from what follows it)"


def _uniform(values: np.ndarray) -> bool:
    return bool(np.allclose(values, values.flat[0], rtol=RTOL, atol=0))


def _chain_before(view: GraphView, floor: int) -> list[Step]:
    """The Add/Sub/Mul/Div-by-a-constant nodes feeding the Floor, nearest first, each read
    by the next alone."""
    steps, value, reader = [], view.nodes[floor].input[0], floor
    while (index := view.producer.get(value)) is not None and view.sole_reader(value) == reader:
        node = view.nodes[index]
        step = _constant_step(view, node, index, ("Add", "Sub", "Mul", "Div"))
        if step is None or (step.op == "Div" and step.constant_first):
            break
        steps.append(step)
        value, reader = _chain_input(node, step), index
    return steps


def _chain_after(view: GraphView, floor: int) -> list[Step]:
    """The Mul/Div-by-a-constant and clipping nodes after the Floor, in order, each the sole
    reader of the one before."""
    steps, value = [], view.nodes[floor].output[0]
    while (index := view.sole_reader(value)) is not None:
        node = view.nodes[index]
        if node.domain not in ("", "ai.onnx"):
            break
        if node.op_type == "Relu":
            step = Step(index, "Relu")
        elif node.op_type == "Clip":
            step = _clip_step(view, node, index)
        else:
            step = _constant_step(view, node, index, ("Mul", "Div", "Max", "Min"))
        if step is None or (step.op == "Div" and step.constant_first):
            break
        steps.append(step)
        value = node.output[0]
    return steps


def _constant_step(view: GraphView, node, index: int, op_types) -> Step | None:
    """The node as a chain step applying a constant to a computed tensor, or None."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in op_types or len(node.input) != 2:
        return None
    values = [view.constants.get(name) for name in node.input]
    if (values[0] is None) == (values[1] is None):
        return None  # two computed tensors, or two constants
    constant_first = values[0] is not None
    constant = values[0] if constant_first else values[1]
    return Step(index, node.op_type, constant.astype(np.float64), constant_first)


def _clip_step(view: GraphView, node, index: int) -> Step | None:
    """A Clip's bounds (attributes before opset 11, inputs since), NaN where absent."""
    if view.opset < 11:
        from onnx.helper import get_attribute_value

        attrs = {a.name: get_attribute_value(a) for a in node.attribute}
        bounds = [attrs.get("min", math.nan), attrs.get("max", math.nan)]
    else:
        bounds = []
        for name in (list(node.input[1:]) + ["", ""])[:2]:
            value = view.constants.get(name) if name else np.asarray(math.nan)
            if value is None or value.size != 1:  # (ONNX's bounds are scalars)
                return None
            bounds.append(float(value.reshape(())))
    return Step(index, "Clip", np.asarray([b if abs(b) < FLOAT32_MAX else math.nan for b in bounds]))


def _chain_input(node, step: Step) -> str:
    """The computed input of a chain node."""
    return node.input[1] if step.constant_first else node.input[0]


def _compose_before(step: Step, scale, shift):
    """``scale * v + shift`` with ``v`` this step's output, as ``scale' * u + shift'`` of its
    input ``u``."""
    c = step.constant
    if step.op == "Add":
        return scale, scale * c + shift
    if step.op == "Sub":
        return (-scale, scale * c + shift) if step.constant_first else (scale, shift - scale * c)
    if step.op == "Mul":
        return scale * c, shift
    return scale / c, shift  # Div by the constant


def _clipped_levels(steps: list[Step]) -> tuple[int, np.ndarray] | str:
    """``(L, λ)`` where the steps compute ``(λ / L) * clip(n, 0, L)`` of an integer ``n``
    (λ may vary between elements), else why not. Tracks ``s * clip(n, lo, hi)``, ``s > 0``."""
    s, lo, hi = np.float64(1.0), np.float64(-math.inf), np.float64(math.inf)
    for step in steps:
        if step.op in ("Mul", "Div"):
            if np.any(step.constant <= 0):
                return f"after it, a {step.op} by {step.constant.min():g} (λ and L are positive)"
            s = s * step.constant if step.op == "Mul" else s / step.constant
        elif step.op == "Relu":
            lo = np.maximum(lo, 0.0)
        elif step.op in ("Clip", "Max"):
            low = step.constant[0] if step.op == "Clip" else step.constant
            lo = lo if np.isnan(low) else np.maximum(lo, low / s)
        if step.op in ("Clip", "Min"):
            high = step.constant[1] if step.op == "Clip" else step.constant
            hi = hi if np.isnan(high) else np.minimum(hi, high / s)
    levels = round(float(np.mean(hi))) if np.all(np.isfinite(hi)) else 0
    if np.any(lo != 0) or levels < 1 or not np.allclose(hi, levels, rtol=RTOL, atol=0):
        return (
            f"what follows it computes s * clip(floor, {np.min(lo):g}, {np.max(hi):g}), "
            "not λ / L * clip(floor, 0, L) with a whole L"
        )
    return levels, s * levels


def _fused_node(view: GraphView, chain: list[int], floor: int, x: str, y: str, qcfs: ops.Qcfs):
    from onnx import helper

    name = _scope([view.nodes[i].name for i in chain]) or view.nodes[floor].name or y
    return helper.make_node(
        "Qcfs", [x], [y], name=name, domain=FUSED_DOMAIN, levels=qcfs.levels, threshold=qcfs.threshold, shift=qcfs.shift
    )


def _scope(names: list[str]) -> str:
    """The scope the chain's node names share (``/layer1/act`` of ``/layer1/act/Div``, ...)."""
    parts = [name.strip("/").split("/")[:-1] for name in names]
    common = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return "/".join(common)


def qcfs(call: NodeCall) -> str:
    """A fused QCFS chain."""
    op = ops.Qcfs(int(call.attr("levels")), float(call.attr("threshold")), float(call.attr("shift")))
    return call.add(op, [call.tensor(0)])


#: op type -> converter, for the nodes of :data:`FUSED_DOMAIN`
FUSED_CONVERTERS = {"Qcfs": qcfs}
