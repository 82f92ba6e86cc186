"""canonicalize: the simplest equivalent form of a float graph, before conversion."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Graph, Node
from .registry import register_pass
from .rewrite import Rewriter, single_user

_LAYOUT_OPS = (ops.Reshape, ops.Transpose)


@register_pass("canonicalize")
def canonicalize(graph: Graph, *, keep_softmax: bool = False) -> Graph:
    """Remove what does not compute and fold what a later pass should not see.

    Guarantees, all exact: identity ops are dropped (a reshape to the same shape and layout, an
    identity transpose, an affine with scale 1 and shift 0, zero padding); a chain of
    reshapes and transposes that only feeds a ``dense`` is folded into the dense weights (the
    Keras ``Flatten`` of channels-last models becomes a plain CHW flatten); a ``relu`` right
    after a ``max_pool2d`` moves before it (max and relu commute), so pooling gates spikes;
    an output ``softmax`` is removed (it does not change the arg-max; spiking inference reads
    out the layer before it) unless ``keep_softmax``.
    """
    graph = _move_relu_before_maxpool(graph)
    rw = Rewriter(graph, "canonicalize")
    chains = {n.name: _layout_chain(graph, n) for n in graph.nodes if isinstance(n.op, ops.Dense)}
    folded = {link.name for chain in chains.values() for link in chain}
    for node in graph.nodes:
        if node.name in folded:
            continue  # rewritten with the dense it feeds
        if _is_identity(rw, node):
            rw.forward(node, rw.value(node.inputs[0]))
        elif isinstance(node.op, ops.Softmax) and not keep_softmax:
            rw.forward(node, rw.value(node.inputs[0]))
            rw.note(node, "output softmax removed: spiking inference reads out the layer before it")
        elif chains.get(node.name):
            _fold_chain_into_dense(rw, chains[node.name], node)
        else:
            rw.keep(node)
    return _drop_dead(rw.finish())


def _is_identity(rw: Rewriter, node: Node) -> bool:
    op = node.op
    if isinstance(op, (ops.Reshape, ops.Transpose)):
        src = rw.type_of(rw.value(node.inputs[0]))
        return src.shape == node.type.shape and (
            src.layout == node.type.layout if isinstance(op, ops.Reshape) else op.perm == tuple(range(len(op.perm)))
        )
    if isinstance(op, ops.Pad2d):
        return not any(op.pads)
    if isinstance(op, ops.Affine):
        return bool(np.all(node.params["scale"] == 1) and np.all(node.params["shift"] == 0))
    return False


def _layout_chain(graph: Graph, dense: Node) -> list[Node]:
    """The reshapes/transposes directly above ``dense`` that nothing else reads (top first)."""
    chain = []
    node = graph.node(dense.inputs[0])
    while isinstance(node.op, _LAYOUT_OPS) and single_user(graph, node) is not None:
        chain.append(node)
        node = graph.node(node.inputs[0])
    return chain[::-1]


def _fold_chain_into_dense(rw: Rewriter, chain: list[Node], dense: Node) -> None:
    """``dense(chain(x))`` -> ``dense'(flatten(x))``: permute the weight's columns so the dense
    reads ``x`` flattened in its own (row-major, CHW) order."""
    source = rw.graph.node(chain[0].inputs[0])
    order = np.arange(source.type.size).reshape(source.type.shape)
    for node in chain:  # where each element the dense reads comes from
        order = order.reshape(node.op.shape) if isinstance(node.op, ops.Reshape) else order.transpose(node.op.perm)
    weight = dense.params["weight"]
    folded = np.empty_like(weight)
    folded[:, order.ravel()] = weight
    x = rw.value(source.name)
    if rw.type_of(x).rank != 1:
        x = rw.keep(chain[-1], op=ops.Reshape((source.type.size,)), inputs=[x])
    rw.keep(dense, params={"weight": folded, "bias": dense.params["bias"]}, inputs=[x])
    if any(isinstance(n.op, ops.Transpose) for n in chain):
        rw.note(dense, f"folded {' + '.join(n.op.NAME for n in chain)} into the weights: reads %{source.name} in CHW order")


def _drop_dead(graph: Graph) -> Graph:
    """Remove nodes no output depends on (inputs always stay)."""
    live = {n.name for n in graph.outputs}
    for node in reversed(graph.nodes):
        if node.name in live:
            live.update(node.inputs)
    kept = [n for n in graph.nodes if n.name in live or isinstance(n.op, ops.Input)]
    return graph if len(kept) == len(graph.nodes) else graph.replace(nodes=kept)


def _move_relu_before_maxpool(graph: Graph) -> Graph:
    """``relu(max_pool(x))`` -> ``max_pool(relu(x))`` where the pool feeds only the relu and
    the relu is non-decreasing (``negative_slope >= 0``, ``threshold >= 0``), so it commutes
    with the maximum."""
    rw = Rewriter(graph, "canonicalize")
    swapped: dict[str, Node] = {}  # pool name -> relu to put before it
    for node in graph.nodes:
        user = single_user(graph, node) if isinstance(node.op, ops.MaxPool2d) else None
        if user is not None and isinstance(user.op, ops.ReLU) and _non_decreasing(user.op):
            swapped[node.name] = user
    for node in graph.nodes:
        if node.name in swapped:
            relu = swapped[node.name]
            act = rw.keep(relu, inputs=[rw.value(node.inputs[0])])
            pooled = rw.keep(node, inputs=[act])
            rw.forward(relu, pooled)
            rw.note(relu, f"moved before %{node.name} (max pooling commutes with relu) so the pool gates spikes")
        elif not any(node is r for r in swapped.values()):
            rw.keep(node)
    return rw.finish()


def _non_decreasing(relu: ops.ReLU) -> bool:
    """Whether ``relu`` never decreases (a negative slope, or a jump down at a negative
    threshold, would not commute with max pooling)."""
    return relu.negative_slope >= 0 and relu.threshold >= 0
