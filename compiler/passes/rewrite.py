"""Building a pass's output graph: keep, replace, insert or drop nodes; types are re-inferred.

Passes read the input graph and describe the output with a :class:`Rewriter`; the input
graph is never changed. Dropped values are forwarded to a replacement, so users of a removed
node read the replacement instead. A kept delay may read a value the pass has not written
yet (a recurrence): its input is resolved, and the types of the nodes after it re-inferred,
when the rewrite finishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ..errors import PassError, VerificationError
from ..graph import Graph, Meta, Node, Params, sanitize_name
from ..ops import Delay, Op, OpTypeError


class Rewriter:
    """Collects the nodes of the rewritten graph in order."""

    def __init__(self, graph: Graph, pass_name: str):
        self.graph, self.pass_name = graph, pass_name
        self.nodes: list[Node] = []
        self.types = {}
        self._alias: dict[str, str] = {}
        self._taken = {n.name for n in graph.nodes}
        self.notes: list[dict] = []
        self._late: dict[str, str] = {}  # delay (new graph) -> the old-graph value it reads

    def value(self, name: str) -> str:
        """The new graph's value for the old graph's value ``name``."""
        while name in self._alias:
            name = self._alias[name]
        return name

    def keep(self, node: Node, op: Op | None = None, params=None, meta=None, inputs=None) -> str:
        """Copy ``node`` (optionally with a new op, parameters, metadata or input values)."""
        if isinstance(node.op, Delay) and inputs is None and self.value(node.inputs[0]) not in self.types:
            self._late[node.name] = node.inputs[0]
            self.nodes.append(node.replace(op=op or node.op))
            self.types[node.name] = node.type
            return node.name
        ins = [self.value(i) for i in node.inputs] if inputs is None else list(inputs)
        return self._append(
            node.name,
            op or node.op,
            ins,
            node.params if params is None else params,
            node.meta if meta is None else meta,
        )

    def insert(self, op: Op, inputs: Iterable[str], params=None, name: str = "", meta=None) -> str:
        """Add a new node (inputs are new-graph values); returns its unique name."""
        base = sanitize_name(name or op.NAME)
        unique, i = base, 1
        while unique in self._taken:
            unique, i = f"{base}_{i}", i + 1
        self._taken.add(unique)
        return self._append(unique, op, list(inputs), params or {}, meta or {})

    def forward(self, node: Node, to_value: str) -> None:
        """Drop ``node``: its users read ``to_value`` (a new-graph value) instead."""
        self._alias[node.name] = to_value

    def close_delay(self, delay: str, value: str) -> None:
        """Make the kept delay ``delay``, whose input is written later, read the new graph's
        ``value`` instead (e.g. a rescale of what it read)."""
        if delay not in self._late:
            raise PassError(f"%{delay} is not a delay waiting for its input")
        self._late[delay] = value

    def note(self, node: Node | str, message: str) -> None:
        """Record what the pass did (or why a rule did not fire) at ``node``."""
        name = node if isinstance(node, str) else node.name
        self.notes.append({"pass": self.pass_name, "node": name, "message": message})

    def fail(self, node: Node, message: str) -> PassError:
        return PassError(f"%{node.name} = {node.op.NAME}: {message}")

    def type_of(self, value: str):
        return self.types[value]

    def _append(self, name, op, inputs, params, meta) -> str:
        try:
            out_type = op.infer_type([self.types[i] for i in inputs])
        except OpTypeError as exc:
            raise PassError(f"%{name} = {op.NAME}: {exc}") from None
        params = params if isinstance(params, Params) else Params(params)
        meta = meta if isinstance(meta, Meta) else Meta(meta)
        self.nodes.append(Node(name, op, tuple(inputs), out_type, params, meta))
        self.types[name] = out_type
        return name

    def _close_delays(self) -> None:
        """Point each late delay at the new value of what it read, and re-infer types until
        every delay has its input's type (a pass may turn a recurrent float value into
        spikes)."""
        if not self._late:
            return
        nodes = [n.replace(inputs=(self.value(self._late[n.name]),)) if n.name in self._late else n for n in self.nodes]
        for _ in range(3):
            types = {n.name: n.type for n in nodes if isinstance(n.op, Delay)}
            retyped = []
            for node in nodes:
                if not isinstance(node.op, Delay):
                    try:
                        types[node.name] = node.op.infer_type([types[i] for i in node.inputs])
                    except OpTypeError as exc:
                        raise PassError(f"%{node.name} = {node.op.NAME}: {exc}") from None
                retyped.append(node.replace(type=types[node.name]))
            nodes = [n.replace(type=types[n.inputs[0]]) if isinstance(n.op, Delay) else n for n in retyped]
            if all(n.type == retyped[i].type for i, n in enumerate(nodes)):
                break
        self.nodes = nodes
        self.types = {n.name: n.type for n in nodes}

    def finish(self, stage: str | None = None, meta: Mapping | None = None) -> Graph:
        """The new graph (verified), with this pass's notes appended to the graph's."""
        from ..wellformed import check_well_formed

        self._close_delays()
        graph_meta = dict(self.graph.meta if meta is None else meta)
        if self.notes:
            graph_meta["notes"] = list(graph_meta.get("notes", [])) + self.notes
        graph = Graph(self.graph.name, tuple(self.nodes), stage or self.graph.stage, Meta(graph_meta))
        try:
            return check_well_formed(graph)
        except VerificationError as exc:
            raise PassError(f"produced an invalid graph: {exc}") from None


def single_user(graph: Graph, node: Node) -> Node | None:
    """The only node reading ``node``'s value, or None if there are zero or several."""
    users = graph.users(node.name)
    return users[0] if len(users) == 1 else None


def f64(node: Node, key: str) -> np.ndarray:
    return node.params[key].astype(np.float64)


def input_channel_map(conv, weight_shape) -> np.ndarray:
    """``(F, C/G)`` indices: the input channel that ``weight[f, c]`` of a (grouped) conv2d reads,
    ``group(f) * C/G + c``."""
    filters, per_group = weight_shape[:2]
    group_of = np.arange(filters) // (filters // conv.groups)
    return group_of[:, None] * per_group + np.arange(per_group)[None, :]
