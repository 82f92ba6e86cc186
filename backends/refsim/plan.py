"""What refsim needs of a graph before running it, shared by its two engines: the checks,
the nodes that run each step, the prepared parameters (:func:`plan`); the values that do not
change over time (:func:`static_values`); and what one batch gives (:class:`BatchResult`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from snnc.compiler import ops
from snnc.compiler.errors import BuildError, PassError
from snnc.compiler.graph import Graph, Node
from snnc.compiler.loihi import chip
from snnc.compiler.simulate import STEPPERS, evaluator, static_nodes

from .compartments import FloatParams, Overflow
from .synapses import Synapses, float_synapses, int_synapses


@dataclass
class Plan:
    """What a graph needs, batch-independent: its mode, the nodes that run each step, the
    prepared synapse weights and the float compartment parameters (float mode)."""

    graph: Graph
    mode: str
    static: set
    dynamic: list
    float_params: dict

    @cached_property
    def synapses(self) -> dict[str, Synapses]:
        """The NumPy engine's synapses, prepared on first use (the compiled engine prepares
        its own tables)."""
        return {
            node.name: _synapses(self.graph, node, self.mode)
            for node in self.graph.nodes
            if isinstance(node.op, ops.LoihiSynapses)
        }


def plan(graph: Graph) -> Plan:
    """Check that refsim can run ``graph`` and prepare its weights."""
    chip_nodes = [n for n in graph.nodes if isinstance(n.op, ops.CHIP_OPS)]
    if not any(isinstance(n.op, ops.LoihiCompartments) for n in chip_nodes):
        raise BuildError(
            f"graph {graph.name} has no loihi_compartments; refsim runs Loihi graphs "
            "(lower_loihi, quantize_loihi); the spiking interpreter runs the others"
        )
    if graph.stage == ops.INTEGER:
        mode = "int"
    elif graph.stage == ops.SPIKING:
        mode = "float"
    else:
        raise BuildError(f"graph {graph.name} is a {graph.stage} graph; refsim runs spiking and integer Loihi graphs")
    static = static_nodes(graph)
    dynamic = [n for n in graph.nodes if not isinstance(n.op, ops.Input) and n.name not in static]
    float_params = {}
    for node in chip_nodes:
        if (mode == "int") != (node.op.format == "int"):
            raise BuildError(f"%{node.name}: a {graph.stage} graph with a format={node.op.format} Loihi op")
        if isinstance(node.op, ops.LoihiSynapses):
            if mode == "int":
                _check_blocks(node)
            try:
                chip.presynaptic(graph, node)  # a recurrent synapse reads a delay, the others do not
            except PassError as exc:
                raise BuildError(str(exc)) from None
        elif mode == "float":
            float_params[node.name] = _float_compartment_params(graph, node)
    for node in dynamic:
        if not isinstance(node.op, (*ops.CHIP_OPS, *STEPPERS, ops.Delay)):
            evaluator(node)  # an op the host cannot run fails here, before any work
    return Plan(graph, mode, static, dynamic, float_params)


def _check_blocks(node: Node) -> None:
    block = node.params["block"]
    if block.size and (block.min() < 0 or block.max() >= node.op.blocks):
        raise BuildError(f"%{node.name}: block indices must be in 0..{node.op.blocks - 1}")


def _synapses(graph: Graph, node: Node, mode: str) -> Synapses:
    if mode == "int":
        return int_synapses(node)
    return float_synapses(node, chip.synapse_weights(graph, node))


def _float_compartment_params(graph: Graph, node: Node) -> FloatParams:
    p = chip.compartment_params(graph, node)
    return FloatParams(
        vth=p.vth,
        bias=p.bias,
        decay_u=p.decay_u,
        decay_v=p.decay_v,
        scale_u=np.where(p.scale_u, p.decay_u, 1.0),
        scale_v=np.where(p.scale_v, p.decay_v, 1.0),
        vmin=p.vmin,
        vmax=p.vmax,
        refract_delay=p.refract_delay,
    )


@dataclass
class BatchResult:
    outputs: dict[int, dict[str, np.ndarray]]
    counts: dict[str, np.ndarray]
    rasters: dict[str, np.ndarray]
    voltages: dict[str, np.ndarray]
    currents: dict[str, np.ndarray]
    overflow: dict[str, Overflow]
    host_counts: dict[str, np.ndarray]


def static_values(p: Plan, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs (float64) and the values computed from them that do not change over time."""
    values = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    for node in p.graph.nodes:
        if node.name in p.static and not isinstance(node.op, ops.Input):
            values[node.name] = evaluator(node)(node, [values[i] for i in node.inputs])
    return values


