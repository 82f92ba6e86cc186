"""Phases and synchronous neurons for bistable networks (BSNN; docs/bsnn.md), the last step of
``convert_to_spiking{neuron=bistable}``.

A bistable population integrates during one cycle and fires during the next, so the layer
after it must integrate exactly then: its phase is one more. Phases therefore follow the
*level* of each value, the number of neuron populations on the longest path from an input to
it (itself included). Where a node joins values of different levels (a residual ``add``), the
shallower spike-carrying branch gets a chain of synchronous neurons, one per missing level, so
both branches deliver the same cycle's information in the same cycle. Values of level 0 (the
constant input and what is computed from it alone) are the same at every step and need none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import neurons, ops
from ..errors import PassError
from ..graph import Graph, Node
from .rewrite import Rewriter


def levels(graph: Graph) -> dict[str, int]:
    """Each value's level: the number of neuron populations on the longest path from an input
    to it, itself included (networkx's topological order; a population's phase is its input's
    level)."""
    import networkx as nx

    level: dict[str, int] = {}
    for name in nx.topological_sort(graph.to_networkx()):
        node = graph.node(name)
        below = max((level[i] for i in node.inputs), default=0)
        level[name] = below + (neurons.by_op(node.op) is not None)
    return level


@dataclass(frozen=True)
class Branch:
    """A join's input that arrives ``delay`` levels early: the spike value ``source`` it is
    computed from (through the stateless one-input nodes ``path``, source side first)."""

    source: str
    path: tuple[Node, ...]
    delay: int


def _branch(graph: Graph, join: Node, value: str, delay: int) -> Branch:
    """Walk back from ``value`` through stateless one-input nodes to the spikes it is made of."""
    path = []
    node = graph.node(value)
    while node.type.dtype != "spike":
        if len(node.inputs) != 1 or isinstance(node.op, ops.STATEFUL_OPS):
            raise PassError(
                f"%{join.name} = {join.op.NAME}: its input %{value} arrives {delay} bistable cycle(s) early but is not "
                f"computed from one spiking population by one-input layers (at %{node.name} = {node.op.NAME}), so no "
                "synchronous neurons can delay it"
            )
        path.append(node)
        node = graph.node(node.inputs[0])
    return Branch(node.name, tuple(reversed(path)), delay)


def _amplitude(graph: Graph, name: str) -> float:
    """The value of one spike of the spike value ``name`` (a population, or a max-pool gate
    passing a population's spikes)."""
    node = graph.node(name)
    while neurons.by_op(node.op) is None:
        node = graph.node(node.inputs[0])
    return float(node.op.amplitude)


def _plan(graph: Graph, level: dict[str, int]) -> dict[str, dict[int, Branch]]:
    """Per join node, the branches (by input position) that need synchronous neurons."""
    plan = {}
    for node in graph.nodes:
        if len(node.inputs) < 2:
            continue
        top = max(level[i] for i in node.inputs)
        late = {k: _branch(graph, node, i, top - level[i]) for k, i in enumerate(node.inputs) if 0 < level[i] < top}
        if late:
            plan[node.name] = late
    return plan


def _moved(graph: Graph, plan) -> set[str]:
    """Path nodes read only along their path: they move behind the synchronous neurons
    instead of being copied there."""
    moved = set()
    for join, branches in plan.items():
        for branch in branches.values():
            needed, after = False, join
            for node in reversed(branch.path):
                needed = needed or any(u.name != after for u in graph.users(node.name))
                if not needed:
                    moved.add(node.name)
                after = node.name
    return moved


def synchronize(graph: Graph, period: int) -> Graph:
    """Set each bistable population's phase to its input's level, insert synchronous neurons
    (``Bistable.relay``) where a join's spike-carrying inputs differ in level, and make each
    readout average over its integrate cycles from its input's level on (``Readout.phase``)."""
    level = levels(graph)
    plan = _plan(graph, level)
    moved = _moved(graph, plan)
    relay = neurons.by_name("bistable").relay
    rw = Rewriter(graph, "convert_to_spiking")
    inserted = 0
    for node in graph.nodes:
        below = max((level[i] for i in node.inputs), default=0)
        if node.name in moved:
            continue
        if isinstance(node.op, neurons.bistable.BistableNeuron):
            rw.keep(node, op=replace(node.op, phase=below))
        elif isinstance(node.op, ops.Readout):
            rw.keep(node, op=ops.Readout(period=period, phase=below))
        elif node.name in plan:
            inputs = [rw.value(i) for i in node.inputs]
            for k, branch in plan[node.name].items():
                value, amplitude = rw.value(branch.source), _amplitude(graph, branch.source)
                for j in range(branch.delay):
                    phase = level[branch.source] + j
                    value = rw.insert(relay(amplitude, period, phase), [value], name=f"{branch.source}_sync{j + 1}")
                for step in branch.path:
                    if step.name in moved:
                        value = rw.keep(step, inputs=[value])
                    else:
                        value = rw.insert(step.op, [value], step.params, name=f"{step.name}_sync", meta=step.meta)
                inputs[k] = value
                inserted += branch.delay
                rw.note(node, f"input %{node.inputs[k]} delayed by {branch.delay} synchronous neuron layer(s) (levels {level[node.inputs[k]]} -> {below})")
            rw.keep(node, inputs=inputs)
        else:
            rw.keep(node)
    depth = max(level.values())
    rw.note(graph.nodes[0], f"bistable neurons, period {period}: {depth} levels, the readouts start after {depth} cycles "
            f"({depth * period} steps); {inserted} synchronous neuron layer(s)")
    return rw.finish()
