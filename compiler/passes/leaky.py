"""Leaky ReLUs as two rectifiers, so each part can be a population of integrate-and-fire
neurons (which only represent non-negative values as firing rates)."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Graph
from .rewrite import Rewriter


def is_leaky(op: ops.Op) -> bool:
    """A relu with a negative slope and no threshold: what :func:`split_leaky_relus` splits."""
    return isinstance(op, ops.ReLU) and op.negative_slope != 0 and op.threshold == 0


def split_leaky_relus(graph: Graph, pass_name: str) -> Graph:
    """Rewrite each leaky relu (slope ``a``, optional ``max_value`` m) as its positive and
    negative parts, exactly::

        y = min(relu(x), m) - a * relu(-x)
          = add(relu{max_value=m}(x), affine{scale=-a}(relu(affine{scale=-1}(x))))

    The sum keeps the leaky relu's name, so its users and outputs are unchanged. Threshold
    balancing then scales each part by its own statistic and conversion gives each part its
    own neurons. A graph without leaky relus is returned as is."""
    if not any(is_leaky(n.op) for n in graph.nodes):
        return graph
    rw = Rewriter(graph, pass_name)
    for node in graph.nodes:
        if not is_leaky(node.op):
            rw.keep(node)
            continue
        x, channels = rw.value(node.inputs[0]), node.type.shape[0]
        ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
        positive = rw.insert(ops.ReLU(max_value=node.op.max_value), [x], name=f"{node.name}_pos")
        negated = rw.insert(ops.Affine(), [x], {"scale": -ones, "shift": zeros}, name=f"{node.name}_negated")
        negative = rw.insert(ops.ReLU(), [negated], name=f"{node.name}_neg")
        slope = np.full(channels, -node.op.negative_slope, np.float32)
        leak = rw.insert(ops.Affine(), [negative], {"scale": slope, "shift": zeros}, name=f"{node.name}_leak")
        rw.keep(node, op=ops.Add(), inputs=[positive, leak])
        rw.note(node, f"leaky relu (slope {node.op.negative_slope:g}) split into relu(x) - a*relu(-x): two neuron layers")
    return rw.finish()
