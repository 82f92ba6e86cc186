"""The well-formedness check of the IR: one function, run after every frontend and every pass.

It checks structure (unique names, inputs defined before use — except a delay's, which may
come later: every cycle passes through a delay —, arity, at least one input and one output),
types (each stored type equals what the op infers, parameter names and shapes), stage legality
(e.g. no float-only op in a spiking graph) and parameter contents (finite).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import VerificationError
from .names import NAME_RE
from .ops import INTEGER, STAGES, Delay, Output, OpTypeError, Softmax
from .types import DTYPES

if TYPE_CHECKING:  # graph.py runs this check when a graph is built: no import back at run time
    from .graph import Graph, Node


def check_well_formed(graph: Graph) -> Graph:
    """Return ``graph`` unchanged if it is well formed, else raise :class:`VerificationError`."""
    if graph.stage not in STAGES:
        raise VerificationError(f"graph {graph.name}: unknown stage {graph.stage!r}; stages: {', '.join(STAGES)}")
    types = {}
    for node in graph.nodes:
        _check_node(graph, node, types)
        types[node.name] = node.type
    for node in graph.delays:  # their inputs may come later: check them now all are typed
        if node.type != types[node.inputs[0]]:
            raise _fail(node, f"type is {node.type} but its input %{node.inputs[0]} is {types[node.inputs[0]]}")
    if not graph.inputs:
        raise VerificationError(f"graph {graph.name} has no input")
    if not graph.outputs:
        raise VerificationError(f"graph {graph.name} has no output")
    for node in graph.nodes:
        users = graph.users(node.name)
        if isinstance(node.op, Output) and users:
            raise VerificationError(f"%{node.name}: an output is read by %{users[0].name}")
        if isinstance(node.op, Output) and node.op.sequence and not graph.sequence:
            raise VerificationError(f"%{node.name}: a sequence output needs a sequence input")
        if isinstance(node.op, Softmax) and not all(isinstance(u.op, Output) for u in users):
            raise VerificationError(f"%{node.name}: softmax is only supported just before an output")
    return graph


def _fail(node: Node, message: str) -> VerificationError:
    return VerificationError(f"%{node.name} = {node.op.NAME}: {message}")


def _check_node(graph: Graph, node: Node, types: dict) -> None:
    op = node.op
    if not NAME_RE.fullmatch(node.name):
        raise _fail(node, "value names are letters, digits and underscores")
    if graph.stage not in op.ALLOWED_STAGES:
        raise _fail(node, f"not allowed in {graph.stage} graphs (allowed in: {', '.join(op.ALLOWED_STAGES)})")
    arity_ok = len(node.inputs) >= op.MIN_ARITY if op.ARITY is None else len(node.inputs) == op.ARITY
    if not arity_ok:
        want = f"{op.MIN_ARITY} or more" if op.ARITY is None else str(op.ARITY)
        raise _fail(node, f"takes {want} inputs, got {len(node.inputs)}")
    for src in node.inputs:
        if src not in graph:
            raise _fail(node, f"input %{src} is not defined")
        if src not in types and not isinstance(op, Delay):
            raise _fail(node, f"input %{src} is defined after it (only a delay may read a later value)")
    if isinstance(op, Delay):
        return  # a delay has its input's type, checked once every node is typed
    in_types = [types[s] for s in node.inputs]
    try:
        inferred = op.infer_type(in_types)
        expected_params = op.param_shapes(in_types)
    except OpTypeError as exc:
        raise _fail(node, str(exc)) from None
    if inferred != node.type:
        raise _fail(node, f"type is {node.type} but the op gives {inferred}")
    if set(expected_params) != set(node.params):
        raise _fail(
            node, f"parameters are {sorted(node.params)}, expected {sorted(expected_params)}"
        )
    if graph.stage == INTEGER and getattr(op, "format", "int") != "int":
        raise _fail(node, "an integer graph holds the chip's integers (format=int); run quantize_loihi")
    dtypes = op.param_dtypes()
    for key, shape in expected_params.items():
        array = node.params[key]
        if key in dtypes and array.dtype != DTYPES[dtypes[key]]:
            raise _fail(node, f"parameter {key} is {array.dtype}, expected {dtypes[key]}")
        if array.shape != tuple(shape):
            raise _fail(node, f"parameter {key} has shape {list(array.shape)}, expected {list(shape)}")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise _fail(node, f"parameter {key} has {bad} NaN or infinite values")
