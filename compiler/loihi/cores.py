"""Core blocks: how NengoLoihi splits a chip population into blocks, one per neuron core, and
what each block uses of its core, counted exactly as NengoLoihi 1.1.0 counts it.

Partition (``builder/split_blocks.py: split_block``). A population of shape ``S`` (``CHW`` or
``(C,)``, flattened in C order, as a NengoLoihi ensemble with ``channels_last=False``) split by
``BlockShape(B, S)`` gives one block per tile: tile origins ``o`` run over
``itertools.product(range(0, S[0], B[0]), range(0, S[1], B[1]), ...)`` (first axis slowest),
the tile is ``[o, min(o + B, S))`` and holds its compartments in C order. NengoLoihi
discretizes each block separately, so this partition is also the quantization's.

Per block (``block.py: LoihiBlock.utilization``, checked by ``builder/validate.py``)::

    compartments = number of compartments                          <= 1024
    input_axons  = sum over incoming synapses of Synapse.n_axons    <= 4096
    output_axons = sum over outgoing axons of Axon.axon_slots()     <= 4096
    synapse_bits = sum over incoming synapses of Synapse.bits()     <= 16384 * 64

``Synapse.bits() = sum over its weight arrays w of bits_per_axon(w.size)`` (see
:func:`bits_per_axon`). What a block's synapses hold depends on whether its population was
split (``split_synapse``): an unsplit population keeps the synapse the connection built; a
split one gets, per block, only the presynaptic axons that reach it and one weight array per
distinct ``(weights, indices)`` pair among them, so equal weight rows share memory. The
functions here rebuild those arrays from the connection's float weights, computed with the
same floating-point operations as NengoLoihi's connection builder, so the counts are equal
to NengoLoihi's, not estimates.

Connections (``builder/connection.py``): a ``dense`` one (``nengo.Dense`` between
``ensemble.neurons``) is one discrete axon per presynaptic neuron, each carrying a weight to
every postsynaptic compartment (zeros included, compression 3: no index bits); a ``conv`` one
(``nengo.Convolution``, ``channels_last=False``) is one population axon per input pixel
(``pop_type=32``, NengoLoihi's default: two output axon slots each, the input channel chosen
by the spike's atom), with shared weights and compartment bases (compression 0: index bits).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .hardware import CORES_PER_CHIP, MAX_COMPARTMENTS, MAX_IN_AXONS, MAX_OUT_AXONS, MAX_SYNAPSE_BITS, REAL_WEIGHT_BITS, SYNAPSES_PER_GROUP  # noqa: F401 (CORES_PER_CHIP: for users)
from .hardware import MAX_COMPARTMENT_BASE as BASE_LIMIT

#: synapse memory layout (``SynapseConfig.bits_per_axon``): each group of 64 weights has a
#: header of synapse_idx_bits (4) + n_synapses_bits (6) and fills whole 64-bit words
GROUP_HEADER_BITS = 4 + 6
MEMORY_UNIT_BITS = 64
#: ``SynapseConfig.INDEX_BITS_MAP``: the index widths a compressed (compression 0) synapse can use
INDEX_BITS_MAP = (0, 6, 7, 8, 9, 10, 11, 12)
#: axon slots per axon: discrete (dense) axons take one, ``pop_type=32`` (conv) axons two
DENSE_AXON_SLOTS = 1
CONV_AXON_SLOTS = 2

#: the limits in the order NengoLoihi's ``validate_block`` reports them, with their maxima
LIMITS = {
    "compartments": MAX_COMPARTMENTS,
    "output_axons": MAX_OUT_AXONS,
    "input_axons": MAX_IN_AXONS,
    "synapse_bits": MAX_SYNAPSE_BITS,
}
LIMIT_WORDS = {
    "compartments": "compartments",
    "input_axons": "input axons",
    "output_axons": "output axons",
    "synapse_bits": "synapse bits",
}


# ----------------------------------------------------------------------------- partition


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_shapes(shape: Sequence[int], block_shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape, block_shape = tuple(int(s) for s in shape), tuple(int(b) for b in block_shape)
    if len(shape) != len(block_shape) or any(b < 1 for b in block_shape) or any(s < 1 for s in shape):
        raise ValueError(f"block shape {list(block_shape)} does not tile a population of shape {list(shape)}")
    return shape, block_shape


def blocks_per_axis(shape: Sequence[int], block_shape: Sequence[int]) -> tuple[int, ...]:
    """``ceil(S[d] / B[d])`` for each axis ``d``."""
    shape, block_shape = _check_shapes(shape, block_shape)
    return tuple(_ceil_div(s, b) for s, b in zip(shape, block_shape))


def n_blocks(shape: Sequence[int], block_shape: Sequence[int]) -> int:
    """The number of blocks (cores): ``prod(ceil(S / B))``."""
    return math.prod(blocks_per_axis(shape, block_shape))


def block_tiles(shape: Sequence[int], block_shape: Sequence[int]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """``(origin, tile_shape)`` of each block, in the order NengoLoihi creates them: origins
    ``itertools.product(range(0, S[d], B[d]) for d)``, tile ``min(o + B, S) - o``."""
    shape, block_shape = _check_shapes(shape, block_shape)
    ranges = [range(0, s, b) for s, b in zip(shape, block_shape)]
    return [
        (origin, tuple(min(o + b, s) - o for o, b, s in zip(origin, block_shape, shape)))
        for origin in itertools.product(*ranges)
    ]


def block_index(shape: Sequence[int], block_shape: Sequence[int]) -> np.ndarray:
    """For each compartment (flattened in C order) the index of its block in
    :func:`block_tiles` order: ``ravel_multi_index(index // B, ceil(S / B))``."""
    shape, block_shape = _check_shapes(shape, block_shape)
    coords = np.indices(shape).reshape(len(shape), -1)
    per_axis = blocks_per_axis(shape, block_shape)
    block_coords = coords // np.array(block_shape).reshape(-1, 1)
    return np.ravel_multi_index(tuple(block_coords), per_axis).astype(np.int64)


def block_members(shape: Sequence[int], block_shape: Sequence[int]) -> list[np.ndarray]:
    """The flat compartment indices of each block, in the block's own (C) order: what
    NengoLoihi's ``model.block_comp_map`` holds for each new block."""
    shape, _ = _check_shapes(shape, block_shape)
    full = np.arange(math.prod(shape)).reshape(shape)
    return [full[tuple(slice(o, o + t) for o, t in zip(origin, tile))].ravel() for origin, tile in block_tiles(shape, block_shape)]


# ----------------------------------------------------------------------------- synapse memory


def bits_per_axon(n_weights: int, index_bits: int = 0) -> int:
    """Synapse memory for one weight array of ``n_weights`` (``SynapseConfig.bits_per_axon``):
    groups of 64 weights, each ``n * (8 + index_bits) + 10`` bits rounded up to 64::

        sum over groups g of 64 * ceil((n_g * (8 + index_bits) + 10) / 64)
    """
    per_weight = REAL_WEIGHT_BITS + index_bits
    full, rest = divmod(int(n_weights), SYNAPSES_PER_GROUP)
    group = lambda n: MEMORY_UNIT_BITS * _ceil_div(n * per_weight + GROUP_HEADER_BITS, MEMORY_UNIT_BITS)  # noqa: E731
    return full * group(SYNAPSES_PER_GROUP) + (group(rest) if rest else 0)


def index_bits(max_index: int) -> int:
    """The index width a compressed synapse uses for its largest compartment index
    (``Synapse.idx_bits`` then ``SynapseConfig.real_idx_bits``): the smallest width in the map
    that holds ``ceil(log2(max_index + 1))`` bits. Over 12 bits NengoLoihi's ``idx_bits`` is
    ``-1``, which reads ``INDEX_BITS_MAP[-1]`` = 12 (validation then fails; only a
    population of over 4096 compartments, far over a core's 1024, gets there)."""
    need = int(np.ceil(np.log2(max_index + 1))) if max_index >= 0 else 0
    return next((width for width in INDEX_BITS_MAP if width >= need), INDEX_BITS_MAP[-1])


# ----------------------------------------------------------------------------- connections


@dataclass(frozen=True, eq=False)
class Connection:
    """The synapses from one presynaptic population onto one chip population, as NengoLoihi
    builds them. ``weight`` holds NengoLoihi's float32 chip weights before discretization
    (:func:`.chip.synapse_weights`, float32): ``dense``: ``(n_pre, n_post)`` (``Synapse``
    orientation); ``conv``: ``(filters, channels, kh, kw)`` (the IR's cross-correlation
    kernel). ``pads`` are ``(top, left, bottom, right)``; NengoLoihi only has ``valid`` and
    ``same`` padding, whose top/left pads are ``0`` and ``total // 2``."""

    kind: str
    pre_shape: tuple[int, ...]
    post_shape: tuple[int, ...]
    weight: np.ndarray = field(repr=False)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self):
        if self.kind not in ("dense", "conv"):
            raise ValueError(f"connection kind {self.kind!r} is not dense or conv")
        if self.kind == "dense" and self.weight.shape != (self.n_pre, self.n_post):
            raise ValueError(f"dense weights {self.weight.shape} are not (n_pre, n_post) = {(self.n_pre, self.n_post)}")
        if self.kind == "conv" and (len(self.pre_shape) != 3 or len(self.post_shape) != 3):
            raise ValueError("a conv connection joins two CHW populations")

    @property
    def n_pre(self) -> int:
        return math.prod(self.pre_shape)

    @property
    def n_post(self) -> int:
        return math.prod(self.post_shape)

    @property
    def axon_slots(self) -> int:
        return DENSE_AXON_SLOTS if self.kind == "dense" else CONV_AXON_SLOTS

    @cached_property
    def conv_layout(self) -> "ConvLayout":
        """NengoLoihi's conv synapse (weights, indices, bases) for this connection."""
        return ConvLayout.build(self)

    @cached_property
    def reach(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`reach_matrix` of rows and of columns (conv)."""
        return reach_matrix(self, 0), reach_matrix(self, 1)

    @cached_property
    def distinct_per_column(self) -> np.ndarray:
        """Dense: per postsynaptic compartment ``j``, the number of byte-wise distinct
        weights in ``w[:, j]``."""
        bits = np.sort(self.weight.view(np.int32), axis=0)
        return 1 + (np.diff(bits, axis=0) != 0).sum(axis=0)


# ----------------------------------------------------------------------------- conv layout


def _axis_taps(n_in: int, n_out: int, kernel: int, stride: int, pad: int) -> list[tuple[np.ndarray, int] | None]:
    """For each input row (or column) ``i``, NengoLoihi's tap mask over the flipped kernel
    and the first output row it reaches (``conv2d_loihi_weights``)::

        r_a = i + pad + 1 - kernel + a;   mask[a] = 0 <= r_a < (n_out - 1) * stride + 1  and  r_a % stride == 0

    ``None`` where no tap reaches an output (the axon is unused: compartment base -1)."""
    r_max = (n_out - 1) * stride + 1
    out = []
    for i in range(n_in):
        r = np.arange(kernel) + i + pad + 1 - kernel
        mask = (r >= 0) & (r < r_max) & (r % stride == 0)
        out.append((mask, int(r[mask][0]) // stride) if mask.any() else None)
    return out


@dataclass(frozen=True, eq=False)
class ConvLayout:
    """A conv connection's synapse as ``conv2d_loihi_weights`` builds it: per input pixel
    ``p = i * W + j``, the compartment ``offset[p]`` (``-1``: unused) and the weight array
    ``weight_of[p]``; per weight array ``w[k]`` (``(C, F * ni * nj)``: input channel by
    filter, tap row, tap column) the target's filter, row and column offsets (``f``, ``r``,
    ``c``) and ``index_offset[k]`` (the multiple of 256 kept in the indices so that bases
    stay below 256)."""

    offset: np.ndarray
    first_row: np.ndarray
    first_col: np.ndarray
    weight_of: np.ndarray
    weights: list
    f: list
    r: list
    c: list
    index_offset: list

    @classmethod
    def build(cls, conn: Connection) -> "ConvLayout":
        c_in, h_in, w_in = conn.pre_shape
        n_f, h_out, w_out = conn.post_shape
        _, _, kh, kw = conn.weight.shape
        rows = _axis_taps(h_in, h_out, kh, conn.stride[0], conn.pads[0])
        cols = _axis_taps(w_in, w_out, kw, conn.stride[1], conn.pads[1])
        # NengoLoihi's kernel (kh, kw, C, F), transposed to (C, kh, kw, F) and flipped
        flipped = np.transpose(conn.weight, (1, 2, 3, 0))[:, ::-1, ::-1, :]
        n_pix = h_in * w_in
        offset = np.full(n_pix, -1, dtype=np.int64)
        first_row = np.zeros(n_pix, dtype=np.int64)
        first_col = np.zeros(n_pix, dtype=np.int64)
        weight_of = np.full(n_pix, -1, dtype=np.int64)
        keys: dict = {}
        weights, fs, rs, cs, index_offsets = [], [], [], [], []
        for i, j in itertools.product(range(h_in), range(w_in)):
            if rows[i] is None or cols[j] is None:
                continue
            (mask_i, y0), (mask_j, x0) = rows[i], cols[j]
            p = i * w_in + j
            full_offset = y0 * w_out + x0
            index_offset = full_offset - full_offset % BASE_LIMIT
            key = (mask_i.tobytes(), mask_j.tobytes(), index_offset)
            if key not in keys:
                keys[key] = len(weights)
                w = flipped[:, mask_i[:, None] & mask_j[None, :], :]  # (C, taps, F)
                weights.append(np.ascontiguousarray(np.transpose(w, (0, 2, 1)).reshape(c_in, -1)))
                ni, nj = int(mask_i.sum()), int(mask_j.sum())
                f, r, c = np.meshgrid(np.arange(n_f), np.arange(ni), np.arange(nj), indexing="ij")
                fs.append(f.ravel())
                rs.append(r.ravel())
                cs.append(c.ravel())
                index_offsets.append(index_offset)
            offset[p], first_row[p], first_col[p], weight_of[p] = full_offset, y0, x0, keys[key]
        return cls(offset, first_row, first_col, weight_of, weights, fs, rs, cs, index_offsets)

    def unsplit_indices_max(self, post_shape) -> int:
        """The largest index of the unsplit synapse: ``index_offset + f * H * W + r * W + c``."""
        _, h_out, w_out = post_shape
        return max(
            off + int(f[-1]) * h_out * w_out + int(r[-1]) * w_out + int(c[-1])
            for off, f, r, c in zip(self.index_offset, self.f, self.r, self.c)
        )


def reach_matrix(conn: Connection, axis: int) -> np.ndarray:
    """``reach[i, y]``: input row ``i`` (``axis=0``; columns: ``axis=1``) feeds output row
    ``y`` through some kernel tap: ``0 <= i + pad - y * stride < kernel``."""
    n_in, n_out = conn.pre_shape[1 + axis], conn.post_shape[1 + axis]
    kernel, stride, pad = conn.weight.shape[2 + axis], conn.stride[axis], conn.pads[axis]
    u = np.arange(n_in)[:, None] + pad - np.arange(n_out)[None, :] * stride
    return (u >= 0) & (u < kernel)


def _axis_ranges(n: int, b: int) -> list[tuple[int, int]]:
    """The ``[start, stop)`` of each tile along an axis of ``n`` split by ``b``."""
    return [(o, min(o + b, n)) for o in range(0, n, b)]


def _reach_per_tile(reach: np.ndarray, ranges) -> np.ndarray:
    """``hits[t, i]``: input row ``i`` feeds some output row of tile ``t``."""
    return np.array([reach[:, lo:hi].any(axis=1) for lo, hi in ranges])


# ----------------------------------------------------------------------------- per-block usage


@dataclass(frozen=True)
class SynapseUsage:
    """What one incoming connection's synapse uses of one postsynaptic block."""

    input_axons: int
    synapse_bits: int
    weights: int  # weights stored in synapse memory (each distinct array once)


@dataclass(frozen=True)
class BlockUsage:
    """What one core block uses of its core."""

    compartments: int
    input_axons: int
    output_axons: int
    synapse_bits: int
    weights: int = 0

    def excess(self, max_compartments: int = MAX_COMPARTMENTS) -> list[tuple[str, int, int]]:
        """``(limit, amount, maximum)`` for each limit this block exceeds, in NengoLoihi's
        validation order."""
        limits = {**LIMITS, "compartments": max_compartments}
        return [(k, getattr(self, k), m) for k, m in limits.items() if getattr(self, k) > m]

    def fits(self, max_compartments: int = MAX_COMPARTMENTS) -> bool:
        return not self.excess(max_compartments)


def input_axons(conn: Connection, post_block_shape: Sequence[int]) -> np.ndarray:
    """Per postsynaptic block, the input axons ``conn`` brings there (``Synapse.n_axons``)::

        dense:              n_pre                     (every axon targets every compartment)
        conv, unsplit:      H_in * W_in               (unused pixels too)
        conv, split:        |rows feeding the tile| * |columns feeding the tile|
    """
    per_axis = blocks_per_axis(conn.post_shape, post_block_shape)
    count = math.prod(per_axis)
    if conn.kind == "dense":
        return np.full(count, conn.n_pre, dtype=np.int64)
    if count == 1:
        return np.array([conn.pre_shape[1] * conn.pre_shape[2]], dtype=np.int64)
    rows = _reach_per_tile(conn.reach[0], _axis_ranges(conn.post_shape[1], post_block_shape[1])).sum(axis=1)
    cols = _reach_per_tile(conn.reach[1], _axis_ranges(conn.post_shape[2], post_block_shape[2])).sum(axis=1)
    per_tile = rows[:, None] * cols[None, :]
    return np.broadcast_to(per_tile, (per_axis[0], *per_tile.shape)).ravel().astype(np.int64)


def output_axons(conn: Connection, pre_block_shape: Sequence[int], post_block_shape: Sequence[int]) -> np.ndarray:
    """Per presynaptic block ``B``, the output axon slots ``conn`` takes there
    (``split_axon``): one axon per distinct target axon of ``B``'s compartments in each
    postsynaptic block's synapse, times :attr:`Connection.axon_slots`::

        dense:              |B| * (number of post blocks)          (every axon reaches every block)
        conv, post unsplit: 2 * |pixels of B|                      (used or not)
        conv, post split:   2 * sum_k |pixels of B feeding post block k|
                          = 2 * channel tiles * sum_{i in rows B} row_tiles_fed[i] * sum_{j in cols B} col_tiles_fed[j]
    """
    pre_tiles = block_tiles(conn.pre_shape, pre_block_shape)
    n_post = n_blocks(conn.post_shape, post_block_shape)
    if conn.kind == "dense":
        return np.array([math.prod(t) * n_post for _, t in pre_tiles], dtype=np.int64) * conn.axon_slots
    if n_post == 1:
        return np.array([t[1] * t[2] for _, t in pre_tiles], dtype=np.int64) * conn.axon_slots
    post_per_axis = blocks_per_axis(conn.post_shape, post_block_shape)
    row_hits = _reach_per_tile(conn.reach[0], _axis_ranges(conn.post_shape[1], post_block_shape[1])).sum(axis=0)
    col_hits = _reach_per_tile(conn.reach[1], _axis_ranges(conn.post_shape[2], post_block_shape[2])).sum(axis=0)
    row_cum, col_cum = np.concatenate([[0], np.cumsum(row_hits)]), np.concatenate([[0], np.cumsum(col_hits)])
    origins = np.array([o for o, _ in pre_tiles]).reshape(-1, 3)
    extents = np.array([t for _, t in pre_tiles]).reshape(-1, 3)
    y0, y1 = origins[:, 1], origins[:, 1] + extents[:, 1]
    x0, x1 = origins[:, 2], origins[:, 2] + extents[:, 2]
    counts = post_per_axis[0] * (row_cum[y1] - row_cum[y0]) * (col_cum[x1] - col_cum[x0])
    return counts.astype(np.int64) * conn.axon_slots


def synapse_usage(conn: Connection, post_block_shape: Sequence[int]) -> list[SynapseUsage]:
    """Per postsynaptic block (:func:`block_tiles` order), the input axons, synapse memory and
    stored weights of ``conn``'s synapse there.

    - unsplit (one block): dense ``n_pre * bits_per_axon(n_post)`` bits; conv: each distinct
      weight array once, with the index bits of the largest index.
    - split: only the axons whose targets meet the block, and one array per distinct
      ``(weights restricted to the block, block-relative indices)`` (``split_synapse``).
    """
    if n_blocks(conn.post_shape, post_block_shape) == 1:
        return [_unsplit_synapse_usage(conn)]
    if conn.kind == "dense":
        return [_dense_block_usage(conn, members) for members in block_members(conn.post_shape, post_block_shape)]
    rows = _reach_per_tile(conn.reach[0], _axis_ranges(conn.post_shape[1], post_block_shape[1]))
    cols = _reach_per_tile(conn.reach[1], _axis_ranges(conn.post_shape[2], post_block_shape[2]))
    usage = []
    for origin, tile in block_tiles(conn.post_shape, post_block_shape):
        r, c = origin[1] // post_block_shape[1], origin[2] // post_block_shape[2]
        usage.append(_conv_block_usage(conn, origin, tile, np.flatnonzero(rows[r]), np.flatnonzero(cols[c])))
    return usage


def _unsplit_synapse_usage(conn: Connection) -> SynapseUsage:
    if conn.kind == "dense":
        return SynapseUsage(conn.n_pre, conn.n_pre * bits_per_axon(conn.n_post), conn.n_pre * conn.n_post)
    layout = conn.conv_layout
    n_axons = conn.pre_shape[1] * conn.pre_shape[2]
    if not layout.weights:
        return SynapseUsage(n_axons, 0, 0)
    idx = index_bits(layout.unsplit_indices_max(conn.post_shape))
    bits = sum(bits_per_axon(w.size, idx) for w in layout.weights)
    return SynapseUsage(n_axons, bits, sum(w.size for w in layout.weights))


def _distinct_rows(rows: np.ndarray) -> int:
    """The number of byte-wise distinct rows (NengoLoihi compares weight arrays by bytes)."""
    rows = np.ascontiguousarray(rows)
    if rows.shape[0] == 0:
        return 0
    as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    return len(np.unique(as_bytes))


def _dense_block_usage(conn: Connection, members: np.ndarray) -> SynapseUsage:
    """Every dense axon targets every compartment (zero weights included), so the block gets
    all ``n_pre`` axons; equal rows of ``w[:, block]`` share one array."""
    distinct = _distinct_rows(conn.weight[:, members])
    return SynapseUsage(conn.n_pre, distinct * bits_per_axon(len(members)), distinct * len(members))


def _conv_block_usage(conn: Connection, origin, tile, rows, cols) -> SynapseUsage:
    """``split_synapse`` for a conv synapse and the tile ``[f0, f0 + tf) x [y0, y0 + th) x
    [x0, x0 + tw)``, fed by the input pixels ``rows x cols``: each pixel keeps its targets
    inside the tile, at block positions ``(f - f0) * th * tw + (y - y0) * tw + (x - x0)``
    minus its base (its first position mod 256); equal (weights, indices) share an array."""
    layout = conn.conv_layout
    (f0, y0, x0), (tf, th, tw) = origin, tile
    w_in = conn.pre_shape[2]
    shapes_seen: set = set()  # (weight array, targets kept, indices): the same bytes for sure
    weights_of: dict = {}  # (weight array, targets kept) -> the kept weights' bytes
    seen: set = set()
    sizes, max_index = [], -1
    for i, j in itertools.product(rows, cols):
        p = i * w_in + j
        k = layout.weight_of[p]
        f, y, x = layout.f[k], layout.first_row[p] + layout.r[k], layout.first_col[p] + layout.c[k]
        valid = (f >= f0) & (f < f0 + tf) & (y >= y0) & (y < y0 + th) & (x >= x0) & (x < x0 + tw)
        positions = (f[valid] - f0) * th * tw + (y[valid] - y0) * tw + (x[valid] - x0)
        new_index = positions - positions[0] % BASE_LIMIT  # targets ascend: the first is the lowest
        kept = (k, valid.tobytes())
        shape_key = (*kept, new_index.tobytes())
        if shape_key in shapes_seen:
            continue
        shapes_seen.add(shape_key)
        if kept not in weights_of:
            weights_of[kept] = layout.weights[k][:, valid].tobytes()
        key = (weights_of[kept], shape_key[2])
        if key not in seen:
            seen.add(key)
            sizes.append(int(valid.sum()) * layout.weights[k].shape[0])
            max_index = max(max_index, int(new_index[-1]))
    if not sizes:
        return SynapseUsage(0, 0, 0)
    idx = index_bits(max_index)
    return SynapseUsage(len(rows) * len(cols), sum(bits_per_axon(n, idx) for n in sizes), sum(sizes))


def _synapse_bits_lower_bound(conn: Connection, post_block_shape: Sequence[int]) -> np.ndarray:
    """Per postsynaptic block, a cheap lower bound of its synapse bits from ``conn`` (exact
    when unsplit): dense ``max_j distinct(w[:, j]) * bits_per_axon(|B|)`` over the block's
    compartments ``j``; conv the largest single array, ``C * tf * (most taps of one input row
    inside the tile) * (most of one column)`` weights."""
    per_axis = blocks_per_axis(conn.post_shape, post_block_shape)
    if math.prod(per_axis) == 1:
        return np.array([_unsplit_synapse_usage(conn).synapse_bits], dtype=np.int64)
    if conn.kind == "dense":
        members = block_members(conn.post_shape, post_block_shape)
        return np.array([conn.distinct_per_column[m].max() * bits_per_axon(len(m)) for m in members], dtype=np.int64)
    c_in = conn.pre_shape[0]
    tiles = []
    for axis in (0, 1):
        tiles.append([])
        for lo, hi in _axis_ranges(conn.post_shape[1 + axis], post_block_shape[1 + axis]):
            taps = conn.reach[axis][:, lo:hi].sum(axis=1)
            tiles[axis].append((sorted(set(taps[taps > 0].tolist())), hi - lo))
    bounds = []
    for lo, hi in _axis_ranges(conn.post_shape[0], post_block_shape[0]):
        for (rows, th), (cols, tw) in itertools.product(*tiles):
            sizes = {c_in * (hi - lo) * r * c for r in rows for c in cols}
            span = (hi - lo - 1) * th * tw + (max(rows) - 1) * tw + max(cols) - 1
            idx = index_bits(span)
            bounds.append(sum(bits_per_axon(n, idx) for n in sizes))
    return np.array(bounds, dtype=np.int64)


def _single_compartment_bits(conn: Connection) -> np.ndarray:
    """Per compartment, the synapse bits of ``conn`` in a block of that one compartment: one
    array per distinct weight its axons bring (``C`` weights for a conv axon, one for dense,
    each array ``bits_per_axon(n)`` with index 0)."""
    if conn.kind == "dense":
        return conn.distinct_per_column.astype(np.int64) * bits_per_axon(1)
    n_f, h_out, w_out = conn.post_shape
    c_in = conn.pre_shape[0]
    rows, cols = conn.reach[0], conn.reach[1]
    taps = lambda reach, axis, y: (np.flatnonzero(reach[:, y]) + conn.pads[axis] - y * conn.stride[axis])  # noqa: E731
    row_taps = [tuple(taps(rows, 0, y)) for y in range(h_out)]
    col_taps = [tuple(taps(cols, 1, x)) for x in range(w_out)]
    per_array = bits_per_axon(c_in)
    distinct = {}
    for ur in set(row_taps):
        for vc in set(col_taps):
            vectors = conn.weight[:, :, list(ur), :][:, :, :, list(vc)]  # (F, C, |ur|, |vc|)
            vectors = np.moveaxis(vectors, 1, -1).reshape(n_f, -1, c_in)
            distinct[ur, vc] = np.array([_distinct_rows(v) for v in vectors])
    bits = np.zeros((n_f, h_out, w_out), dtype=np.int64)
    for y, ur in enumerate(row_taps):
        for x, vc in enumerate(col_taps):
            bits[:, y, x] = distinct[ur, vc] * per_array
    return bits.ravel()


def population_usage(
    shape: Sequence[int],
    block_shape: Sequence[int],
    inputs: Sequence[Connection] = (),
    outputs: Sequence[tuple[Connection, Sequence[int]]] = (),
) -> list[BlockUsage]:
    """Every block's usage, exactly as NengoLoihi counts it: compartments of the tile, input
    axons and synapse bits summed over ``inputs`` (connections into this population), output
    axons summed over ``outputs`` (``(connection out of this population, the postsynaptic
    population's block shape)``)."""
    tiles = block_tiles(shape, block_shape)
    n = len(tiles)
    in_axons, bits, weights = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    for conn in inputs:
        for b, use in enumerate(synapse_usage(conn, block_shape)):
            in_axons[b] += use.input_axons
            bits[b] += use.synapse_bits
            weights[b] += use.weights
    out_axons = np.zeros(n, np.int64)
    for conn, post_block_shape in outputs:
        out_axons += output_axons(conn, block_shape, post_block_shape)
    return [
        BlockUsage(math.prod(tile), int(in_axons[b]), int(out_axons[b]), int(bits[b]), int(weights[b]))
        for b, (_, tile) in enumerate(tiles)
    ]


def _quick_usage(shape, block_shape, inputs, outputs) -> dict[str, np.ndarray]:
    """Per block: exact input and output axons, and a lower bound of the synapse bits."""
    n = n_blocks(shape, block_shape)
    use = {"input_axons": np.zeros(n, np.int64), "output_axons": np.zeros(n, np.int64), "synapse_bits": np.zeros(n, np.int64)}
    for conn in inputs:
        use["input_axons"] += input_axons(conn, block_shape)
        use["synapse_bits"] += _synapse_bits_lower_bound(conn, block_shape)
    for conn, post_block_shape in outputs:
        use["output_axons"] += output_axons(conn, block_shape, post_block_shape)
    return use


# ----------------------------------------------------------------------------- choosing a shape


class DoesNotFit(ValueError):
    """No block shape fits a core: ``limit`` reaches ``amount`` (over ``maximum``) even with
    one compartment per block."""

    def __init__(self, limit: str, amount: int, maximum: int):
        self.limit, self.amount, self.maximum = limit, amount, maximum
        super().__init__(f"{amount} {LIMIT_WORDS[limit]} exceed the {maximum} of one core even with one compartment per core")


def smallest_block_usage(shape, inputs=(), outputs=()) -> dict[str, int]:
    """The most any one-compartment block uses of each limit: the least any block shape can
    need (a block inside another never uses more)."""
    ones = (1,) * len(shape)
    quick = _quick_usage(shape, ones, inputs, outputs)
    bits = np.zeros(math.prod(shape), np.int64)
    for conn in inputs:
        bits += _single_compartment_bits(conn)
    return {
        "compartments": 1,
        "input_axons": int(quick["input_axons"].max()),
        "output_axons": int(quick["output_axons"].max()),
        "synapse_bits": int(bits.max()),
    }


def _axis_sizes(n: int) -> list[int]:
    """The distinct tile sizes along an axis of ``n``: ``ceil(n / k)`` for ``k = 1..n``."""
    return sorted({_ceil_div(n, k) for k in range(1, n + 1)}, reverse=True)


def candidate_block_shapes(shape: Sequence[int], max_compartments: int = MAX_COMPARTMENTS) -> list[tuple[int, ...]]:
    """Tile shapes of at most ``max_compartments``, fewest blocks (cores) first; among equal
    counts, tiles whose extents are most alike across axes, then larger leading axes."""
    shape = tuple(int(s) for s in shape)
    sizes = [_axis_sizes(s) for s in shape]
    candidates = [bs for bs in itertools.product(*sizes) if math.prod(bs) <= max_compartments]
    return sorted(candidates, key=lambda bs: (n_blocks(shape, bs), max(bs) - min(bs), tuple(-b for b in bs)))


def choose_block_shape(
    shape: Sequence[int],
    inputs: Sequence[Connection] = (),
    outputs: Sequence[tuple[Connection, Sequence[int]]] = (),
    max_compartments: int = MAX_COMPARTMENTS,
) -> tuple[tuple[int, ...], list[BlockUsage]]:
    """The block shape with the fewest blocks whose every block fits a core, exactly as
    NengoLoihi counts (:func:`population_usage`), and its usage per block. Among shapes with
    equal numbers of blocks the one whose worst block has the fewest input axons wins (for
    conv inputs: the smallest receptive-field halo, which also keeps the presynaptic layer's
    output axons low). ``outputs`` give the block shapes already chosen for the
    postsynaptic populations. Raises :class:`DoesNotFit` naming the limit when even one
    compartment per block does not fit (a fan-in over 4096 axons, synapse rows over a
    core's memory, spikes for over 4096 output axons)."""
    shape = tuple(int(s) for s in shape)
    least = smallest_block_usage(shape, inputs, outputs)
    maxima = {**LIMITS, "compartments": max_compartments}
    for limit, maximum in maxima.items():
        if least[limit] > maximum:
            raise DoesNotFit(limit, least[limit], maximum)
    for _, group in itertools.groupby(candidate_block_shapes(shape, max_compartments), key=lambda bs: n_blocks(shape, bs)):
        plausible = []
        for block_shape in group:
            quick = _quick_usage(shape, block_shape, inputs, outputs)
            if all(int(quick[k].max()) <= maxima[k] for k in quick):
                plausible.append((int(quick["input_axons"].max()), block_shape))
        for _, block_shape in sorted(plausible, key=lambda item: item[0]):
            usage = population_usage(shape, block_shape, inputs, outputs)
            if all(b.fits(max_compartments) for b in usage):
                return block_shape, usage
    raise AssertionError("one compartment per block fits, so some block shape does")  # pragma: no cover
