"""The graph: immutable nodes in topological order, each producing one typed value.

Helpers return new graphs and never mutate the caller's. Parameters are read-only NumPy
arrays on the node that uses them; metadata (calibration statistics, what a pass decided)
is JSON-like data on nodes and on the graph, shown in dumps and kept in artifacts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .errors import VerificationError
from .names import NAME_RE, sanitize_name
from .ops import FLOAT, Delay, Input, Op, OpTypeError, Output
from .types import DTYPES, TensorType
from .wellformed import check_well_formed

__all__ = ["NAME_RE", "Graph", "GraphBuilder", "Meta", "Node", "Params", "sanitize_name"]



class Params(Mapping):
    """Read-only mapping of parameter name -> read-only array; equal when all arrays are."""

    def __init__(self, arrays: Mapping[str, np.ndarray] | None = None):
        self._arrays = {}
        for key, value in (arrays or {}).items():
            array = np.array(value)  # a private copy: the caller's array stays theirs
            if array.dtype not in DTYPES.values():
                array = array.astype(np.float32)
            array.setflags(write=False)
            self._arrays[key] = array

    def __getitem__(self, key):
        return self._arrays[key]

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self):
        return len(self._arrays)

    def __eq__(self, other):
        if not isinstance(other, Params) or self.keys() != other.keys():
            return False
        return all(
            a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
            for a, b in ((self[k], other[k]) for k in self)
        )

    def __repr__(self):
        return "Params(" + ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in self.items()) + ")"


class Meta(Mapping):
    """Read-only JSON-like metadata (numbers, strings, lists, dicts); tuples become lists."""

    def __init__(self, data: Mapping | None = None):
        self._data = json.loads(json.dumps(dict(data or {}), default=_json_default))

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __eq__(self, other):
        return isinstance(other, Meta) and self.to_json() == other.to_json()

    def to_json(self) -> str:
        return json.dumps(self._data, sort_keys=True, separators=(", ", ": "))

    def __repr__(self):
        return f"Meta({self.to_json()})"


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"metadata value {value!r} is not JSON data")


@dataclass(frozen=True, eq=True)
class Node:
    """One op applied to named input values, producing the value called ``name``."""

    name: str
    op: Op
    inputs: tuple[str, ...]
    type: TensorType
    params: Params = field(default_factory=Params)
    meta: Meta = field(default_factory=Meta)

    __hash__ = None  # parameters are arrays: nodes compare by value but do not hash

    def replace(self, **changes) -> "Node":
        """A copy with some fields changed (``params``/``meta`` may be plain dicts)."""
        if "params" in changes and not isinstance(changes["params"], Params):
            changes["params"] = Params(changes["params"])
        if "meta" in changes and not isinstance(changes["meta"], Meta):
            changes["meta"] = Meta(changes["meta"])
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=True)
class Graph:
    """Nodes in topological order; ``stage`` is float, spiking or integer."""

    name: str
    nodes: tuple[Node, ...]
    stage: str = FLOAT
    meta: Meta = field(default_factory=Meta)
    _index: dict = field(init=False, repr=False, compare=False)

    __hash__ = None

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(self.nodes))
        if not isinstance(self.meta, Meta):
            object.__setattr__(self, "meta", Meta(self.meta))
        index = {}
        for node in self.nodes:
            if node.name in index:
                raise VerificationError(f"graph {self.name}: two nodes named %{node.name}")
            index[node.name] = node
        object.__setattr__(self, "_index", index)

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def node(self, name: str) -> Node:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"graph {self.name} has no node %{name}") from None

    @property
    def inputs(self) -> list[Node]:
        return [n for n in self.nodes if isinstance(n.op, Input)]

    @property
    def outputs(self) -> list[Node]:
        return [n for n in self.nodes if isinstance(n.op, Output)]

    @property
    def sequence(self) -> bool:
        """Whether an input is a sequence (the graph then runs once per input step)."""
        return any(n.op.sequence for n in self.inputs)

    @property
    def delays(self) -> list[Node]:
        return [n for n in self.nodes if isinstance(n.op, Delay)]

    def users(self, name: str) -> list[Node]:
        """Nodes that read the value ``name``, in graph order."""
        return [n for n in self.nodes if name in n.inputs]

    def replace(self, **changes) -> "Graph":
        if "nodes" in changes:
            changes["nodes"] = tuple(changes["nodes"])
        return dataclasses.replace(self, **changes)

    def to_networkx(self):
        """A ``networkx.DiGraph`` with an edge from each input value to its user (a
        recurrent graph's cycles pass through its delays)."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for node in self.nodes:
            g.add_node(node.name, op=node.op.NAME, type=str(node.type))
            for src in node.inputs:
                g.add_edge(src, node.name)
        return g


class GraphBuilder:
    """Builds a graph node by node, inferring each value's type; names are made unique."""

    def __init__(self, name: str, stage: str = FLOAT):
        self.name = sanitize_name(name)
        self.stage = stage
        self._nodes: list[Node] = []
        self._types: dict[str, TensorType] = {}
        self._open_delays: set[str] = set()

    def unique_name(self, wanted: str) -> str:
        base = sanitize_name(wanted)
        name, i = base, 1
        while name in self._types:
            name, i = f"{base}_{i}", i + 1
        return name

    def type_of(self, value: str) -> TensorType:
        return self._types[value]

    def add(
        self,
        op: Op,
        inputs: Iterable[str] = (),
        params: Mapping[str, np.ndarray] | None = None,
        name: str | None = None,
        meta: Mapping | None = None,
    ) -> str:
        """Append ``op(inputs)``; returns the new value's name."""
        inputs = tuple(inputs)
        name = self.unique_name(name or op.NAME)
        try:
            out_type = op.infer_type([self._types[i] for i in inputs])
        except OpTypeError as exc:
            raise VerificationError(f"%{name} = {op.NAME}: {exc}") from None
        self._nodes.append(Node(name, op, inputs, out_type, Params(params), Meta(meta)))
        self._types[name] = out_type
        return name

    def input(self, name: str, shape, source_layout: str = "", dtype: str = "f32", sequence: bool = False) -> str:
        return self.add(Input(tuple(shape), dtype, source_layout, sequence), name=name)

    def output(self, value: str, name: str = "output", source_layout: str = "", sequence: bool = False) -> str:
        return self.add(Output(source_layout, sequence), [value], name=name)

    def delay(self, value_type: TensorType, name: str = "delay", init: float = 0.0) -> str:
        """A delay of a value not built yet (a recurrence): it has ``value_type`` and its
        input is given later with :meth:`close_delay`."""
        name = self.unique_name(name)
        self._nodes.append(Node(name, Delay(init), (), value_type))
        self._types[name] = value_type
        self._open_delays.add(name)
        return name

    def close_delay(self, delay: str, source: str) -> None:
        """Make ``source`` the input of the open delay ``delay``."""
        if delay not in self._open_delays:
            raise VerificationError(f"%{delay} is not an open delay")
        at = next(i for i, n in enumerate(self._nodes) if n.name == delay)
        self._nodes[at] = self._nodes[at].replace(inputs=(source,))
        self._open_delays.discard(delay)

    def build(self, meta: Mapping | None = None) -> Graph:
        if self._open_delays:
            raise VerificationError(f"graph {self.name}: delay %{sorted(self._open_delays)[0]} has no input")
        return check_well_formed(Graph(self.name, tuple(self._nodes), self.stage, Meta(meta)))
