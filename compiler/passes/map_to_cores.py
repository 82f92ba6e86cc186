"""map_to_cores: split each Loihi chip population into core blocks and place them on cores.

NengoLoihi splits every population into blocks of at most one core's resources before it
discretizes them (``builder/network.py``: ``split_model`` then ``discretize_model``), so the
partition chosen here is also the one ``quantize_loihi`` quantizes by, and the one the Loihi
backend gives NengoLoihi (``BlockShape(block_shape, population shape)``). The resources are
counted exactly as NengoLoihi counts them (:mod:`snnc.compiler.loihi.cores`).
"""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..errors import PassError
from ..graph import Graph, Node
from ..loihi import chip, cores
from ..loihi.hardware import MAX_SYNAPSE_FORMATS
from .registry import check_choice, register_pass
from .rewrite import Rewriter

SPLITS = ("auto", "none")

_WHY_NO_FIT = {
    "input_axons": "each of its compartments receives that many presynaptic axons; reduce the fan-in (fewer presynaptic neurons)",
    "synapse_bits": "the synapses of a single compartment need more weight memory than a core has",
    "output_axons": "its spikes must reach that many axons of the next layers' core blocks",
    "compartments": "",
}


@register_pass("map_to_cores")
def map_to_cores(graph: Graph, *, split: str = "auto", max_compartments: int = 1024, max_cores: int = 0) -> Graph:
    """Choose a core block shape for every ``loihi_compartments`` population and place the
    blocks on cores, one block per core in graph order, 128 cores per chip.

    Every block fits Loihi's per-core limits as NengoLoihi counts them: at most
    ``max_compartments`` (1..1024) compartments, 4096 input axons, 4096 output axons and
    16384 * 64 bits of synapse memory. ``split=auto`` picks, per population, the tile of its
    ``CHW`` (or ``(C,)``) shape with the fewest blocks that fits, and among those the one
    whose worst block has the fewest input axons (for convolutions: small spatial tiles keep
    the receptive-field halo small); populations are chosen from the last to the first,
    because a block's output axons depend on how the next populations are split.
    ``split=none`` keeps each population on one core and fails naming the first that does
    not fit. ``max_cores`` (0: unlimited) fails if the network needs more cores.

    Each population's metadata gets ``cores``: ``{"block_shape", "blocks": [{"origin",
    "shape", "core", "chip", "compartments", "input_axons", "output_axons",
    "synapse_bits"}]}`` (blocks in NengoLoihi's order); the graph's gets ``core_map``, the
    per-population summary and totals. Parameters are unchanged.

    A core also holds at most 15 synapse formats, 31 compartment profiles and 7 threshold
    profiles: a block of one population uses one compartment and one threshold profile (its
    neurons are alike) and at most one synapse format per presynaptic population, so a
    population fed by more than 15 populations is refused.
    """
    check_choice("split", split, SPLITS)
    if not 1 <= max_compartments <= cores.MAX_COMPARTMENTS:
        raise PassError(f"option max_compartments={max_compartments} must be 1..{cores.MAX_COMPARTMENTS} (a core's compartments)")
    if max_cores < 0:
        raise PassError(f"option max_cores={max_cores} must be 0 (unlimited) or a number of cores")
    populations = _populations(graph)
    inputs, outputs = _connections(graph, populations)

    block_shapes: dict[str, tuple[int, ...]] = {}
    usage: dict[str, list[cores.BlockUsage]] = {}
    order = {n.name: k for k, n in enumerate(populations)}
    for node in reversed(populations):  # a block's output axons depend on the next populations' blocks
        shape = node.type.shape
        # a recurrence feeds a population not split yet (itself or an earlier one): counted
        # as one block here, and recounted below once every population is split
        outs = [(conn, block_shapes.get(post, graph.node(post).type.shape)) for conn, post in outputs[node.name]]
        if split == "none":
            block_shapes[node.name] = shape
            usage[node.name] = _one_core(node, inputs[node.name], outs, max_compartments)
            continue
        try:
            block_shapes[node.name], usage[node.name] = cores.choose_block_shape(shape, inputs[node.name], outs, max_compartments)
        except cores.DoesNotFit as exc:
            raise PassError(f"%{node.name}: {exc}; {_WHY_NO_FIT[exc.limit]}") from None

    for node in populations:
        if any(order[post] <= order[node.name] for _, post in outputs[node.name]):
            usage[node.name] = _recount_recurrent(node, block_shapes, inputs, outputs, max_compartments)

    rw = Rewriter(graph, "map_to_cores")
    placement, core = {}, 0
    for node in populations:
        placement[node.name] = _placement(node, block_shapes[node.name], usage[node.name], core)
        core += len(usage[node.name])
    n_chips = math.ceil(core / cores.CORES_PER_CHIP)
    if max_cores and core > max_cores:
        largest = max(populations, key=lambda n: len(usage[n.name]))
        raise PassError(
            f"the network needs {core} cores ({n_chips} chip(s)), more than max_cores={max_cores}; "
            f"the most: %{largest.name} ({len(usage[largest.name])} cores)"
        )
    for node in graph.nodes:
        if node.name in placement:
            rw.keep(node, meta={**node.meta, "cores": placement[node.name]})
            _note_split(rw, node, block_shapes[node.name], inputs[node.name], outputs, block_shapes, max_compartments)
        else:
            rw.keep(node)
    core_map = _core_map(populations, block_shapes, usage, core, n_chips, max_compartments)
    rw.note(
        populations[0],
        f"{len(populations)} chip population(s) on {core} core(s), {n_chips} chip(s): "
        f"{core_map['compartments']} compartments, {core_map['synapses']} synapses",
    )
    return rw.finish(meta={**graph.meta, "core_map": core_map})


# ----------------------------------------------------------------------------- reading the graph


def _populations(graph: Graph) -> list[Node]:
    if graph.stage != ops.SPIKING:
        raise PassError(f"runs on spiking Loihi graphs; this one is {graph.stage}")
    populations = [n for n in graph.nodes if isinstance(n.op, ops.LoihiCompartments)]
    if not populations:
        raise PassError("the graph has no loihi_compartments populations; run lower_loihi first")
    for node in graph.nodes:
        if isinstance(node.op, ops.CHIP_OPS) and node.op.format != "float":
            raise PassError(
                f"%{node.name} = {node.op.NAME}: already quantized; map_to_cores runs before quantize_loihi "
                "(NengoLoihi discretizes each core block separately)"
            )
    for node in populations:
        if len(node.inputs) > MAX_SYNAPSE_FORMATS:
            raise PassError(
                f"%{node.name}: {len(node.inputs)} presynaptic populations need as many synapse formats, "
                f"more than the {MAX_SYNAPSE_FORMATS} of one core; merge some of its inputs before it (e.g. fewer concatenated layers)"
            )
    return populations


def _connection(graph: Graph, synapse: Node, post: Node) -> cores.Connection:
    pre = chip.presynaptic(graph, synapse)
    weight = chip.synapse_weights(graph, synapse).astype(np.float32)  # the values NengoLoihi stores
    if synapse.op.kind == "dense":
        weight = np.ascontiguousarray(weight.T)  # Synapse.set_weights takes (n_pre, n_post)
    return cores.Connection(synapse.op.kind, pre.type.shape, post.type.shape, weight, synapse.op.stride, synapse.op.pads)


def _connections(graph: Graph, populations: list[Node]):
    """``inputs[population]``: its incoming connections; ``outputs[population]``:
    ``(connection, postsynaptic population)`` for each chip population its spikes feed."""
    inputs = {n.name: [] for n in populations}
    outputs = {n.name: [] for n in populations}
    for post in populations:
        for name in post.inputs:
            synapse = graph.node(name)
            if not isinstance(synapse.op, ops.LoihiSynapses):
                raise PassError(f"%{post.name} = loihi_compartments: input %{name} is a {synapse.op.NAME}, not loihi_synapses")
            users = graph.users(synapse.name)
            if len(users) != 1:
                raise PassError(f"%{synapse.name} = loihi_synapses: feeds {len(users)} nodes; synapses belong to one population")
            conn = _connection(graph, synapse, post)
            inputs[post.name].append(conn)
            pre = chip.presynaptic(graph, synapse).name
            if pre in outputs:
                outputs[pre].append((conn, post.name))
    return inputs, outputs


def core_usage(graph: Graph, block_shapes: dict[str, tuple[int, ...]]) -> dict[str, list[cores.BlockUsage]]:
    """Each population's per-block usage when split by ``block_shapes`` (population name ->
    block shape; missing: one block), exactly as NengoLoihi counts it."""
    populations = _populations(graph)
    inputs, outputs = _connections(graph, populations)
    shape_of = {n.name: tuple(block_shapes.get(n.name, n.type.shape)) for n in populations}
    return {
        n.name: cores.population_usage(
            n.type.shape, shape_of[n.name], inputs[n.name], [(conn, shape_of[post]) for conn, post in outputs[n.name]]
        )
        for n in populations
    }


def _recount_recurrent(node: Node, block_shapes, inputs, outputs, max_compartments: int) -> list[cores.BlockUsage]:
    """The usage of a population whose spikes feed back (through a delay) into itself or an
    earlier population, with the block shapes finally chosen; an error if it no longer fits."""
    outs = [(conn, block_shapes[post]) for conn, post in outputs[node.name]]
    usage = cores.population_usage(node.type.shape, block_shapes[node.name], inputs[node.name], outs)
    for use in usage:
        excess = use.excess(max_compartments)
        if excess:
            limit, amount, maximum = excess[0]
            raise PassError(
                f"%{node.name}: with its recurrent connection, a core block needs {amount} "
                f"{cores.LIMIT_WORDS[limit]}, more than the {maximum} of one core; {_WHY_NO_FIT[limit]}"
            )
    return usage


# ----------------------------------------------------------------------------- one core, placement


def _one_core(node: Node, inputs, outputs, max_compartments: int) -> list[cores.BlockUsage]:
    """``split=none``: the whole population on one core, or an error naming the first limit
    it exceeds (as NengoLoihi's validation would)."""
    (usage,) = cores.population_usage(node.type.shape, node.type.shape, inputs, outputs)
    excess = usage.excess(max_compartments)
    if excess:
        limit, amount, maximum = excess[0]
        least = cores.smallest_block_usage(node.type.shape, inputs, outputs)
        if limit != "compartments" and least[limit] > maximum:
            raise PassError(f"%{node.name}: {cores.DoesNotFit(limit, least[limit], maximum)}; {_WHY_NO_FIT[limit]}")
        budget = "" if maximum == cores.LIMITS[limit] else f" (max_compartments={maximum})"
        raise PassError(
            f"%{node.name}: {amount} {cores.LIMIT_WORDS[limit]} exceed the {maximum} of one core{budget}; "
            "allow splitting (map_to_cores{split=auto})"
        )
    return [usage]


def _placement(node: Node, block_shape, usage: list[cores.BlockUsage], first_core: int) -> dict:
    blocks = []
    for k, ((origin, tile), use) in enumerate(zip(cores.block_tiles(node.type.shape, block_shape), usage)):
        core = first_core + k
        blocks.append(
            {
                "origin": list(origin),
                "shape": list(tile),
                "core": core,
                "chip": core // cores.CORES_PER_CHIP,
                "compartments": use.compartments,
                "input_axons": use.input_axons,
                "output_axons": use.output_axons,
                "synapse_bits": use.synapse_bits,
            }
        )
    return {"block_shape": list(block_shape), "blocks": blocks}


def _note_split(rw: Rewriter, node: Node, block_shape, inputs, outputs, block_shapes, max_compartments: int) -> None:
    """Say what was split and which limits the whole population exceeds on one core."""
    n = cores.n_blocks(node.type.shape, block_shape)
    if n == 1:
        return
    outs = [(conn, block_shapes[post]) for conn, post in outputs[node.name]]
    (whole,) = cores.population_usage(node.type.shape, node.type.shape, inputs, outs)
    reasons = [
        f"{amount} {cores.LIMIT_WORDS[limit]} exceed the {maximum} of one core"
        + ("" if maximum == cores.LIMITS[limit] else f" (max_compartments={maximum})")
        for limit, amount, maximum in whole.excess(max_compartments)
    ]
    shape = "x".join(map(str, block_shape))
    rw.note(node, f"split into {n} core blocks of {shape}: " + "; ".join(reasons))


def _core_map(populations, block_shapes, usage, n_cores: int, n_chips: int, max_compartments: int) -> dict:
    """The graph's summary: per population its block shape, cores, the largest use of each
    limit by one block and the limit closest to full; totals."""
    limits = {**cores.LIMITS, "compartments": max_compartments}
    summary = {}
    for node in populations:
        blocks = usage[node.name]
        largest = {k: max(getattr(b, k) for b in blocks) for k in limits}
        closest = max(limits, key=lambda k: largest[k] / limits[k])
        summary[node.name] = {
            "block_shape": list(block_shapes[node.name]),
            "cores": len(blocks),
            "largest": largest,
            "closest_limit": closest,
            "closest_use": round(largest[closest] / limits[closest], 4),
        }
    every = [b for node in populations for b in usage[node.name]]
    return {
        "populations": summary,
        "cores": n_cores,
        "chips": n_chips,
        "compartments": sum(b.compartments for b in every),
        "synapses": sum(b.weights for b in every),
        "synapse_bits": sum(b.synapse_bits for b in every),
        "limits": limits,
    }
