"""The integers NengoLoihi computed for each core block, read from a built simulator's model
so that snnc's own quantization can be compared with them block by block.

NengoLoihi splits each population into blocks (``split_model``) before it discretizes them
(``discretize_model``), so every block has its own scales. After the build each block's
``compartment`` holds the chip's integers and each of its ``synapses`` the integers the chip
adds to the input accumulator per spike (``discretize_weights``: mantissa shifted by
``6 + weight_exp``); axons map presynaptic compartments to synapse rows (and, for
convolutions, to population weights and compartment offsets).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .builder import BuiltLoihi


@dataclass
class DiscretizedSynapse:
    """One synapse node's connection into one block: ``weights[i, j]`` is the integer
    added to compartment ``i``'s input accumulator (in block order) per spike of
    presynaptic neuron ``j`` (population order, CHW); ``weight_exp`` is its weight
    exponent."""

    weight_exp: int
    weights: np.ndarray


@dataclass
class DiscretizedBlock:
    """A core block of a chip population as NengoLoihi discretized it.

    ``compartments``: the population indices (CHW order) of the block's compartments, in
    the block's order. Per compartment (int32): ``vth`` (mantissa << 6), ``bias`` (mantissa
    << exponent, split in ``bias_mantissa`` and ``bias_exponent`` as the chip's registers
    take it), ``decay_u``, ``decay_v`` (12-bit) and ``refract_delay``. ``vmin``, ``vmax``:
    the voltage limits. ``scales``: NengoLoihi's ``discretize_info`` (``w_max``, ``w_exp``,
    ``v_scale``, ``b_scale``, ``w_scale``). ``synapses``: by synapse node name."""

    compartments: np.ndarray
    vth: np.ndarray
    bias: np.ndarray
    bias_mantissa: np.ndarray
    bias_exponent: np.ndarray
    decay_u: np.ndarray
    decay_v: np.ndarray
    refract_delay: np.ndarray
    vmin: int
    vmax: int
    scales: dict
    synapses: dict[str, DiscretizedSynapse] = field(default_factory=dict)


def discretized(built: BuiltLoihi, sim=None) -> dict[str, list[DiscretizedBlock]]:
    """Each chip population's blocks, in NengoLoihi's order, with their integers.

    ``sim``: a ``nengo_loihi.Simulator`` of ``built`` (target ``"sim"``); without one, a
    simulator is built for the purpose and closed."""
    if sim is None:
        from .runner import simulator

        with simulator(built) as sim:
            return discretized(built, sim)
    model = sim.model
    owners = _block_owners(built, model)
    inputs = _presynaptic_compartments(built, model, owners)
    result: dict[str, list[DiscretizedBlock]] = {name: [] for name in built.chip}
    for block, (name, compartments) in owners.items():
        result[name].append(_discretized_block(built, block, name, compartments, inputs))
    return result


def _block_owners(built: BuiltLoihi, model) -> dict:
    """Each block's population name and population indices of its compartments."""
    owners = {}
    for name, population in built.chip.items():
        blocks = model.objs[population.ensemble]["in"]
        for block in blocks if isinstance(blocks, list) else [blocks]:
            owners[block] = (name, np.asarray(model.block_comp_map[block].list, dtype=np.int64))
    return owners


def _presynaptic_compartments(built: BuiltLoihi, model, owners: dict) -> dict:
    """For each synapse object: ``[(pre population, axon, population indices of the axon
    owner's compartments)]``, over the chip blocks' axons and the host's spike inputs."""
    senders = []
    for block, (name, compartments) in owners.items():
        senders.append((name, block.axons, compartments))
    for spike_input, name in _spike_input_owners(built, model).items():
        senders.append((name, spike_input.axons, np.arange(spike_input.n_neurons)))
    inputs: dict = {}
    for name, axons, compartments in senders:
        for axon in axons:
            inputs.setdefault(axon.target, []).append((name, axon, compartments))
    return inputs


def _spike_input_owners(built: BuiltLoihi, model) -> dict:
    """The host population whose spikes each ``SpikeInput`` carries: NengoLoihi connects the
    host ensemble's neurons to a ``HostSendNode`` whose receiver feeds the ``SpikeInput``."""
    by_ensemble = {id(p.ensemble): name for name, p in built.host.items()}
    sender_of = {}
    for host_model in (model.host_pre, model.host):
        for obj in host_model.params:
            post = getattr(obj, "post_obj", None)
            if post is not None and post in model.host2chip_senders:
                sender_of[post] = by_ensemble[id(obj.pre_obj.ensemble)]
    senders = model.host2chip_senders.items()
    return {model.spike_targets[receive]: sender_of[send] for send, receive in senders}


def _discretized_block(
    built: BuiltLoihi, block, name: str, compartments: np.ndarray, inputs: dict
) -> DiscretizedBlock:
    from nengo_loihi.builder.discretize import bias_to_manexp

    comp = block.compartment
    bias = np.asarray(comp.bias, dtype=np.int32)
    mantissa, exponent = bias_to_manexp(bias)
    result = DiscretizedBlock(
        compartments=compartments,
        vth=np.asarray(comp.vth, dtype=np.int32),
        bias=bias,
        bias_mantissa=mantissa,
        bias_exponent=exponent,
        decay_u=np.asarray(comp.decay_u, dtype=np.int32),
        decay_v=np.asarray(comp.decay_v, dtype=np.int32),
        refract_delay=np.asarray(comp.refract_delay, dtype=np.int32),
        vmin=int(comp.vmin),
        vmax=int(comp.vmax),
        scales=dict(comp.discretize_info),
    )
    post = built.graph.node(name)
    synapse_by_pre = {built.synapse_pre[name]: name for name in post.inputs}
    for synapse in block.synapses:
        senders = inputs.get(synapse, [])
        pre_names = {name for name, _, _ in senders}
        assert len(pre_names) == 1, f"synapse {synapse} of {post.name} has senders {pre_names}"
        pre = pre_names.pop()
        n_pre = (built.chip.get(pre) or built.host[pre]).ensemble.n_neurons
        result.synapses[synapse_by_pre[pre]] = DiscretizedSynapse(
            weight_exp=int(synapse.synapse_cfg.weight_exp),
            weights=synapse_matrix(synapse, senders, block.n_neurons, n_pre),
        )
    return result


def synapse_matrix(synapse, senders, n_post: int, n_pre: int) -> np.ndarray:
    """``W[i, j]``: what one spike of presynaptic neuron ``j`` adds to block compartment
    ``i``'s input, following the emulator's ``inject_current`` / ``update_input``: the
    sender's axon maps ``j`` to an axon index and atom, the synapse gives that axon's weights,
    target indices and compartment base."""
    matrix = np.zeros((n_post, n_pre), dtype=np.int64)
    for _, axon, compartments in senders:
        for local, spike in enumerate(axon.map_spikes(np.arange(len(compartments)))):
            if spike is None:
                continue
            base = synapse.axon_compartment_base(spike.axon_idx)
            if base is None:
                continue
            weights, indices = synapse.axon_weights_indices(spike.axon_idx, atom=spike.atom)
            np.add.at(matrix[:, compartments[local]], base + indices, weights)
    return matrix.astype(np.int32)
