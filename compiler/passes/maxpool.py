"""maxpool_to_avgpool: for targets that cannot gate spikes by rate (Loihi)."""

from __future__ import annotations

from .. import ops
from ..graph import Graph
from .registry import register_pass
from .rewrite import Rewriter


@register_pass("maxpool_to_avgpool")
def maxpool_to_avgpool(graph: Graph) -> Graph:
    """Replace every ``max_pool2d`` by an ``avg_pool2d`` with the same window.

    This changes what the network computes (the network was trained with max pooling), so
    each replacement is reported in a note; ``snnc evaluate`` shows the accuracy it costs.
    Targets that can gate spikes (the interpreter, Nengo) keep max pooling instead:
    ``convert_to_spiking`` turns it into a ``spike_max_pool2d`` gate.
    """
    rw = Rewriter(graph, "maxpool_to_avgpool")
    for node in graph.nodes:
        if isinstance(node.op, ops.MaxPool2d):
            op = node.op
            rw.keep(node, op=ops.AvgPool2d(op.kernel, op.stride, op.pads))
            rw.note(node, f"max pooling {op.kernel[0]}x{op.kernel[1]} replaced by average pooling (the target cannot gate spikes); accuracy may drop")
        else:
            rw.keep(node)
    return rw.finish()
