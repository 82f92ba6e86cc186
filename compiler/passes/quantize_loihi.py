"""quantize_loihi: NengoLoihi's float chip parameters become the chip's integers."""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import ops
from ..errors import PassError
from ..graph import Graph, Node
from .registry import register_pass
from .rewrite import Rewriter


@register_pass("quantize_loihi")
def quantize_loihi(graph: Graph) -> Graph:
    """Discretize every chip population and its synapses exactly as NengoLoihi does
    (``builder/discretize.py``; papers.md B2), one core block at a time, because NengoLoihi
    splits populations into core blocks before it discretizes them (run ``map_to_cores``
    first).

    Per block: the largest weight into it sets the weight scale (``255 / w_max``) and the
    first weight exponent 0, -1, ..., -7 at which threshold and biases fit; thresholds become
    17-bit mantissas times 2^6, biases 12-bit mantissas times 2^0..7, decays 12-bit
    integers; each synapse's weights become 8-bit mixed-sign mantissas shifted by its weight
    exponent. Nothing saturates silently: each layer's note says how many weights were
    clipped or rounded to zero and the bits its weights effectively use; node metadata keeps
    the per-block scales.
    """
    from ..loihi import chip, discretize

    if graph.stage != ops.SPIKING or not any(isinstance(n.op, ops.LoihiCompartments) for n in graph.nodes):
        raise PassError("runs on Loihi graphs (spiking stage with loihi ops); run lower_loihi and map_to_cores first")
    rw = Rewriter(graph, "quantize_loihi")
    for node in graph.nodes:
        if isinstance(node.op, ops.LoihiSynapses):
            continue  # emitted with their population, which decides their integers
        if not isinstance(node.op, ops.LoihiCompartments):
            rw.keep(node)
            continue
        if "cores" not in node.meta:
            raise rw.fail(node, "has no core blocks; run map_to_cores before quantize_loihi")
        synapses = [graph.node(s) for s in node.inputs]
        blocks = node.meta["cores"]["blocks"]
        params = chip.compartment_params(graph, node)
        weights = [chip.synapse_weights(graph, s) for s in synapses]
        block_of = np.zeros(node.type.size, dtype=np.int32)
        per_block = []
        for b, block in enumerate(blocks):
            members = chip.block_compartments(node.type.shape, block)
            block_of[members] = b
            masks = [chip.block_weight_mask(graph, s, block) for s in synapses]
            syn_wmax = [chip.block_weight_max(graph, s, block, weights=w) for s, w in zip(synapses, weights)]
            try:
                block_max = max(syn_wmax)
                ints, info = discretize.discretize_compartment(chip.restrict(params, members), block_max)
                syn_ints = [
                    discretize.discretize_synapse_weights(w, block_max, info.w_scale, info.w_exp, keep=m)
                    for w, m in zip(weights, masks)
                ]
            except PassError as exc:
                raise rw.fail(node, f"core block {b}: {exc}") from None
            per_block.append((members, ints, info, syn_ints))
        values = _synapse_nodes(rw, synapses, per_block, block_of, len(blocks))
        _emit_population(rw, node, per_block, values, len(blocks))
        _report(rw, node, synapses, per_block)
    return rw.finish(stage=ops.INTEGER)


def _synapse_nodes(rw: Rewriter, synapses, per_block, block_of, n_blocks) -> list[str]:
    names = []
    for k, syn in enumerate(synapses):
        weight_exp = np.array([syn_ints[k][1] for _, _, _, syn_ints in per_block], dtype=np.int32)
        if syn.op.kind == "dense":
            weight = np.zeros(syn.params["weight"].shape, dtype=np.int32)
            for members, _, _, syn_ints in per_block:
                weight[members] = syn_ints[k][0][members]
        else:
            weight = np.stack([syn_ints[k][0] for _, _, _, syn_ints in per_block]).astype(np.int32)
        op = dataclasses.replace(syn.op, format="int", blocks=n_blocks)
        params = {"weight": weight, "block": block_of.astype(np.int32), "weight_exp": weight_exp}
        names.append(rw.keep(syn, op=op, params=params))
    return names


def _emit_population(rw: Rewriter, node: Node, per_block, synapse_values, n_blocks) -> None:
    n = node.type.size
    arrays = {key: np.zeros(n, dtype=np.int32) for key in ("vth", "bias", "vmin", "vmax")}
    shared = {}
    for members, ints, _, _ in per_block:
        for key in arrays:
            arrays[key][members] = getattr(ints, key)
        for key in ("decay_u", "decay_v", "refract_delay"):
            value = int(getattr(ints, key))
            if shared.setdefault(key, value) != value:
                raise rw.fail(node, f"core blocks disagree on {key} ({shared[key]} vs {value})")
    op = dataclasses.replace(node.op, format="int", **shared)
    meta = {**node.meta, "quantization": [_info_record(info) for _, _, info, _ in per_block]}
    rw.keep(node, op=op, params=arrays, meta=meta, inputs=synapse_values)


def _info_record(info) -> dict:
    """A block's scales for the node metadata (plain numbers)."""
    record = dataclasses.asdict(info)
    return {k: float(np.ravel(v)[0]) if k != "w_exp" else int(v) for k, v in record.items()}


def _report(rw: Rewriter, node: Node, synapses, per_block) -> None:
    clipped = sum(r.clipped for _, _, _, syn_ints in per_block for _, _, r in syn_ints)
    zeroed = sum(r.rounded_to_zero for _, _, _, syn_ints in per_block for _, _, r in syn_ints)
    total = sum(r.weights for _, _, _, syn_ints in per_block for _, _, r in syn_ints)
    bits = min(r.effective_bits for _, _, _, syn_ints in per_block for _, _, r in syn_ints)
    w_exps = sorted({info.w_exp for _, _, info, _ in per_block})
    too_strong = max(r.scale_error for _, _, _, syn_ints in per_block for _, _, r in syn_ints)
    message = (
        f"{len(per_block)} block(s), weight exponent {', '.join(map(str, w_exps))}: "
        f"{clipped} of {total} weights clipped, {zeroed} rounded to zero, at least {bits:.1f} effective bits"
    )
    if too_strong > 1:
        message += (
            f"; some synapses come out up to {too_strong:g}x too strong (their weights are far below the block's "
            "largest and the chip's synapse exponent stops at -6; NengoLoihi does the same)"
        )
    rw.note(node, message)
