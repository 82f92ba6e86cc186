"""The graph's structure, checked before onnx.checker (whose message for a dangling input
and for a cycle is the same "not topologically sorted"): every value defined once, every
node input and graph output defined, no cycle. Nodes listed out of order but acyclic are
put in order, as onnx.checker requires."""

from __future__ import annotations

import copy
from pathlib import Path

from snnc.compiler.errors import ModelFormatError


def node_label(node, index: int) -> str:
    """How messages name a node: its name, or its position and op when it has none."""
    return repr(node.name) if node.name else f"#{index} ({node.op_type})"


def check_structure(graph, path: Path) -> None:
    """Raise ModelFormatError for a value defined twice, a dangling input or output, or a
    cycle; sort ``graph.node`` topologically (in place) if it is out of order."""
    producer = _producers(graph, path)
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name and name not in producer:
                raise ModelFormatError(
                    f"{path}: node {node_label(node, index)} ({node.op_type}) reads {name!r}, "
                    "which no node, initializer or graph input defines"
                )
    for output in graph.output:
        if output.name not in producer:
            raise ModelFormatError(f"{path}: graph output {output.name!r} is never computed")
    order = _topological_order(graph, producer, path)
    if order != list(range(len(graph.node))):
        nodes = [copy.deepcopy(graph.node[i]) for i in order]  # copies: the field is cleared next
        del graph.node[:]
        graph.node.extend(nodes)


#: ops whose output has their first input's rank (for :func:`check_conv_ranks`)
_RANK_KEEPING = {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "Identity", "Dropout", "BatchNormalization",
    "Conv", "AveragePool", "MaxPool", "GlobalAveragePool", "GlobalMaxPool", "Pad", "Add", "Mul", "Sub", "Div",
}  # fmt: skip
_CONVS = ("Conv", "ConvTranspose")


def check_conv_ranks(graph, path: Path) -> None:
    """A convolution whose weight's rank differs from its input's is refused here: onnx's
    shape inference crashes the process on it (onnx 1.14-1.16). Ranks are followed from the
    graph inputs, initializers and value_info through ops that keep their input's rank."""
    rank = {t.name: len(t.dims) for t in graph.initializer}
    for info in (*graph.input, *graph.value_info):
        if info.type.tensor_type.HasField("shape"):
            rank[info.name] = len(info.type.tensor_type.shape.dim)
    for index, node in enumerate(graph.node):
        x = rank.get(node.input[0]) if node.input else None
        if node.op_type in _CONVS and len(node.input) > 1:
            w = rank.get(node.input[1])
            if x is not None and w is not None and x != w:
                raise ModelFormatError(
                    f"{path}: {node.op_type} node {node_label(node, index)}: input {node.input[0]!r} has rank {x} "
                    f"but weight {node.input[1]!r} has rank {w} (they must match: N, C, spatial...)"
                )
        if node.op_type in _RANK_KEEPING and x is not None and node.output:
            rank.setdefault(node.output[0], x)


def _producers(graph, path: Path) -> dict[str, int | None]:
    """Value name -> index of the node computing it (None: graph input or initializer;
    older files list initializers among the inputs too)."""
    sources = [v.name for v in graph.input] + [t.name for t in graph.initializer]
    producer: dict[str, int | None] = dict.fromkeys(sources + [t.values.name for t in graph.sparse_initializer])
    for index, node in enumerate(graph.node):
        for name in node.output:
            if not name:
                continue  # an optional output left out
            if name in producer:
                raise ModelFormatError(
                    f"{path}: value {name!r} is defined twice (again by node {node_label(node, index)})"
                )
            producer[name] = index
    return producer


def _topological_order(graph, producer: dict, path: Path) -> list[int]:
    """Node indices in an order where each node follows the nodes it reads (Kahn's
    algorithm, keeping the file's order among ready nodes)."""
    import heapq

    waiting_on = []
    readers: dict[int, list[int]] = {}
    for index, node in enumerate(graph.node):
        sources = {producer[n] for n in node.input if n and producer[n] is not None}
        waiting_on.append(len(sources))
        for source in sources:
            readers.setdefault(source, []).append(index)
    ready = [i for i, count in enumerate(waiting_on) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for reader in readers.get(index, ()):
            waiting_on[reader] -= 1
            if waiting_on[reader] == 0:
                heapq.heappush(ready, reader)
    if len(order) < len(graph.node):
        cycle = _a_cycle(graph, producer, {i for i, count in enumerate(waiting_on) if count > 0})
        names = ", ".join(node_label(graph.node[i], i) for i in cycle)
        raise ModelFormatError(f"{path}: the graph has a cycle through nodes {names}")
    return order


def _a_cycle(graph, producer: dict, stuck: set[int]) -> list[int]:
    """One cycle among the nodes Kahn's algorithm could not order: each of them reads a
    value of another, so walking backwards from any of them must come round."""
    path, seen = [], {}
    index = min(stuck)
    while index not in seen:
        seen[index] = len(path)
        path.append(index)
        index = next(producer[n] for n in graph.node[index].input if n and producer[n] in stuck)
    return list(reversed(path[seen[index] :]))
