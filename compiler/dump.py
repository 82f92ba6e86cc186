"""Graph dumps other than IR text: JSON (for tools) and Graphviz DOT (for pictures)."""

from __future__ import annotations

import json

from .graph import Graph
from .text import param_hash


def graph_to_dict(graph: Graph) -> dict:
    """The graph as JSON-ready data; parameters are summarized by shape, dtype and hash."""
    return {
        "name": graph.name,
        "stage": graph.stage,
        "meta": dict(graph.meta),
        "nodes": [
            {
                "name": node.name,
                "op": node.op.NAME,
                "inputs": list(node.inputs),
                "attributes": node.op.attributes(),
                "params": {
                    key: {"shape": list(a.shape), "dtype": str(a.dtype), "hash": param_hash(a)}
                    for key, a in node.params.items()
                },
                "type": {"shape": list(node.type.shape), "dtype": node.type.dtype, "layout": node.type.layout},
                "meta": dict(node.meta),
            }
            for node in graph.nodes
        ],
    }


def dump_json(graph: Graph) -> str:
    return json.dumps(graph_to_dict(graph), indent=2) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dump_dot(graph: Graph) -> str:
    """Graphviz DOT: one box per node (name, op, output type), edges along the data flow."""
    nx_graph = graph.to_networkx()
    lines = [f"digraph {_dot_quote(graph.name)} {{", "  rankdir=TB;", "  node [shape=box, fontname=monospace];"]
    for name, data in nx_graph.nodes(data=True):
        label = f"%{name}\\n{data['op']}\\n{data['type']}"
        lines.append(f"  {_dot_quote(name)} [label=\"{label}\"];")
    for src, dst in nx_graph.edges():
        lines.append(f"  {_dot_quote(src)} -> {_dot_quote(dst)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
