"""NengoLoihi's float parameters of a chip population, from a ``format="float"`` Loihi graph.

NengoLoihi's builder turns each ensemble into a ``Compartment`` of float32 arrays and each
neuron-to-neuron connection into a ``Synapse`` of float32 weights, and only then discretizes
them (papers.md B2). The functions here compute those same float values with the same
float operations, in the same order and at the same precision, so that
:mod:`.discretize` gives NengoLoihi's integers bit for bit. Values NengoLoihi stores in
float32 arrays are returned as float64 arrays holding the float32-rounded values.

References are to nengo-loihi 1.1.0: ``block.py`` (``Compartment``), ``builder/ensemble.py``
(``build_relu``, ``build_lif``), ``builder/connection.py`` (``build_full_chip_connection``,
``build_conv2d_connection``), ``builder/split_blocks.py`` (``split_synapse``), ``conv.py``
(``conv2d_loihi_weights``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .. import ops
from ..errors import PassError
from ..graph import Graph, Node
from . import hardware


@dataclass(frozen=True)
class CompartmentParams:
    """A population's (or one core block's) compartment parameters before discretization,
    as NengoLoihi's ``Compartment`` holds them after ``configure_relu``/``configure_lif`` and
    ``configure_filter(tau_s, dt)``.

    ``vth`` and ``bias`` have one entry per compartment (float32 values, held in float64);
    ``decay_u``/``decay_v`` are the float32 decays (``1 - exp(-dt/tau)``), shared by all
    compartments; ``scale_u``/``scale_v`` say whether discretization compensates the decay's
    integral; ``vmin``/``vmax`` are the voltage limits in threshold units."""

    vth: np.ndarray
    bias: np.ndarray
    decay_u: float
    decay_v: float
    scale_u: bool
    scale_v: bool
    refract_delay: int
    vmin: float
    vmax: float

    @property
    def n_compartments(self) -> int:
        return int(self.vth.size)


def _f32(value) -> float:
    """``value`` rounded to float32, as NengoLoihi's float32 compartment arrays store it."""
    return float(np.float32(value))


def compartment_params(graph: Graph, node: Node) -> CompartmentParams:
    """The float compartment parameters NengoLoihi builds for a ``loihi_compartments`` node.

    - ``relu`` (nengo.SpikingRectifiedLinear): ``configure_relu(vth=1/dt, dt)``:
      ``vth = 1/dt``, ``decay_v = 0``, ``refract_delay = round(0/dt) + 1 = 1``, ``vmin = 0``,
      ``scale_v = False``.
    - ``lif`` (nengo.LIF(tau_rc, tau_ref), min_voltage 0): ``configure_lif``:
      ``decay_v = -expm1(-dt/tau_rc)``, ``refract_delay = round(tau_ref/dt) + 1``,
      ``vth = 1``, ``vmin = 0``, ``scale_v = decay_v > 0.5/2^12`` (required).
    - ``vmin = op.vmin * vth`` (0 unless the op lowers the floor: NengoLoihi's
      ``configure_relu`` sets 0, snnc's builder then sets the block's ``vmin``).
    - then ``configure_filter(tau_s, dt)``: ``decay_u = 1`` for ``tau_s = 0`` (synapse=None),
      else ``-expm1(-dt/tau_s)`` (``nengo.Lowpass(tau_s)``), ``scale_u = decay_u > 0.5/2^12``;
      ``vmax = inf``; ``bias`` is the ensemble bias.

    (The ensemble builder first sets the default ``decode_tau`` filter, which the
    connection's ``configure_filter(0.0)`` then overwrites: every chip population here has
    at least one synapse input.)
    """
    op = node.op
    if not isinstance(op, ops.LoihiCompartments) or op.format != "float":
        raise PassError(f"%{node.name}: expected a float-format loihi_compartments node, got {op.NAME}")
    n = node.type.size
    dt = op.dt
    bias = np.asarray(node.params["bias"], dtype=np.float32).astype(np.float64).reshape(-1)
    if op.neuron == "relu":
        vth, decay_v, tau_ref, scale_v = 1.0 / dt, 0.0, 0.0, False
    else:
        decay_v = _f32(-np.expm1(-dt / np.asarray(op.tau_rc)))
        vth, tau_ref = 1.0, op.tau_ref
        scale_v = decay_v > hardware.DECAY_SCALE_TH
        if not scale_v:
            raise PassError(
                f"%{node.name}: LIF tau_rc={op.tau_rc} s is too long for dt={dt} s: Loihi's voltage "
                f"decay 1-exp(-dt/tau_rc) must exceed 0.5/2^12 (NengoLoihi's configure_lif)"
            )
    # int32 array in NengoLoihi: round() then the float-to-int cast
    refract_delay = int(np.int32(np.round(tau_ref / dt) + 1))
    # _configure_filter: "decay_u = 1 if tau_s == 0 else -np.expm1(-dt / np.asarray(tau_s))"
    decay_u = 1.0 if op.tau_s == 0 else _f32(-np.expm1(-dt / np.asarray(op.tau_s)))
    if not decay_u > hardware.DECAY_SCALE_TH:
        raise PassError(
            f"%{node.name}: synapse tau_s={op.tau_s} s is too long for dt={dt} s: Loihi's current decay "
            f"1-exp(-dt/tau_s) must exceed 0.5/2^12 (NengoLoihi's configure_filter)"
        )
    return CompartmentParams(
        vth=np.full(n, _f32(vth)),
        bias=bias,
        decay_u=decay_u,
        decay_v=decay_v,
        scale_u=True,
        scale_v=bool(scale_v),
        refract_delay=refract_delay,
        vmin=_f32(op.vmin * vth),
        vmax=np.inf,
    )


def restrict(params: CompartmentParams, compartments: np.ndarray) -> CompartmentParams:
    """The parameters of some compartments (indices or a boolean mask), as ``split_block``
    copies them into a core block."""
    return CompartmentParams(
        **{
            **params.__dict__,
            "vth": params.vth[compartments],
            "bias": params.bias[compartments],
        }
    )


def post_compartments(graph: Graph, synapse: Node) -> Node:
    """The ``loihi_compartments`` node a ``loihi_synapses`` node feeds."""
    users = [u for u in graph.users(synapse.name) if isinstance(u.op, ops.LoihiCompartments)]
    if len(users) != 1:
        raise PassError(f"%{synapse.name}: loihi_synapses must feed exactly one loihi_compartments node")
    return users[0]


def presynaptic(graph: Graph, synapse: Node) -> Node:
    """The population whose spikes a ``loihi_synapses`` node carries: its input, or for a
    recurrent synapse (``delay=1``) the population its input ``delay`` node delays."""
    pre = graph.node(synapse.inputs[0])
    if synapse.op.delay:
        if not isinstance(pre.op, ops.Delay):
            raise PassError(
                f"%{synapse.name}: a loihi_synapses with delay=1 reads a delay node, got {pre.op.NAME} %{pre.name}"
            )
        return graph.node(pre.inputs[0])
    if isinstance(pre.op, ops.Delay):
        raise PassError(f"%{synapse.name}: loihi_synapses reading the delay %{pre.name} must say delay=1")
    return pre


def pre_amplitude(graph: Graph, synapse: Node) -> float:
    """The spike amplitude of the presynaptic population (a host neuron population or a chip
    ``loihi_compartments``): NengoLoihi scales weights by ``neuron_type.amplitude``."""
    pre = presynaptic(graph, synapse)
    if not isinstance(pre.op, ops.NEURON_OPS):
        populations = ", ".join(t.NAME for t in ops.NEURON_OPS)
        raise PassError(
            f"%{synapse.name}: loihi_synapses take spikes from neuron populations ({populations}), "
            f"got {pre.op.NAME} %{pre.name}"
        )
    return pre.op.amplitude


def synapse_weights(graph: Graph, node: Node) -> np.ndarray:
    """The float chip weights of a float-format ``loihi_synapses`` node, in the node's own
    layout (dense ``(units, n_in)``, conv ``(F, C, kh, kw)``), as NengoLoihi stores them
    (float32 values, returned in float64).

    Dense (``build_full_chip_connection``): ``((T * (1/dt)) * amplitude) * gain``.
    Conv (``build_conv2d_connection``): ``((K / dt) * amplitude) * gain``.
    ``T``/``K`` is the transform (float32 in the IR, float64 in nengo's transform), every step
    in float64, and the result is rounded once to float32 by ``Synapse.set_weights`` /
    ``set_population_weights``. Note the dense path multiplies by ``1.0/dt`` and the conv path
    divides by ``dt``: the two can differ in the last bit, and NengoLoihi does each.
    """
    op = node.op
    if not isinstance(op, ops.LoihiSynapses) or op.format != "float":
        raise PassError(f"%{node.name}: expected a float-format loihi_synapses node, got {op.NAME}")
    post = post_compartments(graph, node)
    amplitude = pre_amplitude(graph, node)
    dt, gain = post.op.dt, np.float64(post.op.gain)
    transform = np.asarray(node.params["weight"], dtype=np.float32).astype(np.float64)
    if op.kind == "dense":
        weights = transform * (1.0 / dt)  # scale_matrix(weights, 1.0 / model.dt)
    else:
        weights = transform / dt  # kernel / model.dt
    weights = weights * amplitude
    weights = weights * gain  # dense: scale_matrix(loihi_weights, gain); conv: kernel * gain[0]
    return weights.astype(np.float32).astype(np.float64)


def block_compartments(shape: tuple[int, ...], block: Mapping) -> np.ndarray:
    """Flat (C-order) indices of the compartments of one core block: the tile at
    ``block["origin"]`` of ``block["shape"]`` (clipped at the population's edge), in the
    order ``split_block`` lists them (``full_inds[tile].flat``)."""
    slices = _tile_slices(shape, block)
    return np.arange(int(np.prod(shape))).reshape(shape)[slices].ravel()


def _tile_slices(shape, block) -> tuple[slice, ...]:
    origin, size = tuple(block["origin"]), tuple(block["shape"])
    if len(origin) != len(shape) or len(size) != len(shape):
        raise PassError(f"core block {dict(block)} does not match a population of shape {list(shape)}")
    return tuple(slice(o, min(o + s, n)) for o, s, n in zip(origin, size, shape))


def block_weight_mask(graph: Graph, synapse_node: Node, block: Mapping) -> np.ndarray:
    """Which entries of the synapse's ``weight`` NengoLoihi's split synapse for one core block
    holds (``split_synapse`` keeps, for each input axon, the weights onto the block's
    compartments), as a boolean array of the weight's shape.

    - dense: the rows of the block's compartments, every column (every presynaptic neuron
      is an axon of every row, zero weights included);
    - conv: the block's filters, every input channel (the atoms), and the kernel taps
      ``(u, v)`` that connect some output ``(y, x)`` of the block to a pixel inside the input:
      ``0 <= y*sh + u - pt < H`` and ``0 <= x*sw + v - pl < W`` (``conv2d_loihi_weights``
      gives no weight to taps that fall in the padding).
    """
    post_shape = synapse_node.type.shape
    mask = np.zeros(synapse_node.params["weight"].shape, dtype=bool)
    if synapse_node.op.kind == "dense":
        mask[block_compartments(post_shape, block)] = True
        return mask
    fs, ys, xs = _tile_slices(post_shape, block)
    _, h, w = graph.node(synapse_node.inputs[0]).type.shape
    (kh, kw), (sh, sw) = synapse_node.op.kernel, synapse_node.op.stride
    pt, pl = synapse_node.op.pads[:2]
    taps_u = _valid_taps(range(ys.start, ys.stop), kh, sh, pt, h)
    taps_v = _valid_taps(range(xs.start, xs.stop), kw, sw, pl, w)
    mask[fs] = (taps_u[:, None] & taps_v[None, :])[None, None]
    return mask


def _valid_taps(outputs: range, kernel: int, stride: int, pad: int, size: int) -> np.ndarray:
    """Kernel taps ``u`` with ``0 <= o*stride + u - pad < size`` for some output ``o``."""
    o = np.asarray(outputs)[:, None]
    pos = o * stride + np.arange(kernel)[None, :] - pad
    return ((pos >= 0) & (pos < size)).any(axis=0)


def block_weight_max(graph: Graph, synapse_node: Node, block: Mapping, weights: np.ndarray | None = None) -> float:
    """The largest ``|w|`` NengoLoihi's split synapse for one core block holds
    (``Synapse.max_abs_weight`` after ``split_model``): the maximum of
    :func:`synapse_weights` over :func:`block_weight_mask`, a float32 value. ``0.0`` where the
    block holds none of the synapse's weights. Pass ``weights`` to reuse computed weights."""
    if weights is None:
        weights = synapse_weights(graph, synapse_node)
    kept = np.abs(weights[block_weight_mask(graph, synapse_node, block)])
    return float(kept.max()) if kept.size else 0.0
