"""Synaptic input currents: the weighted sum of the previous step's spikes, batched.

Integer weights are small integers (at most ``127 << 7`` per spike), so a matrix product in
floating point is exact as long as every partial sum is an integer the format holds exactly:
float32 when no output can exceed ``2**24`` in magnitude (the sum of its absolute weights),
float64 otherwise (``2**53``). The products then run on BLAS, and the result equals the
emulator's spike-by-spike integer accumulation exactly.

Conv weights are stored per core block (NengoLoihi discretizes each block separately): each
output compartment takes the kernel of its block. Blocks are boxes of the output (channels,
rows, columns) in practice (``BlockShape``); the compartments of blocks that share the same
rows and columns are computed with one im2col and one matrix product over their stacked
kernels. A block that is not a box falls back to a whole-output convolution with its kernel.
A kernel made of an average pool and a conv (what ``lower_loihi`` folds) runs as a sum pool of
the spikes and the smaller conv (:func:`pool_factor`), exactly and ``sh * sw`` times faster.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from numpy.lib.stride_tricks import sliding_window_view

from snnc.compiler.graph import Node

#: the largest magnitude below which every integer is exact in float32
FLOAT32_EXACT = 2**24


def exact_float_dtype(bound: float) -> np.dtype:
    """The float type in which integer sums up to ``bound`` in magnitude are exact:
    float32 below ``2**24``, float64 otherwise (exact below ``2**53``)."""
    return np.dtype(np.float32 if bound < FLOAT32_EXACT else np.float64)


class DenseSynapses:
    """``q[b, i] = sum_j W[i, j] s[b, j]`` for spikes ``s`` (any nonzero value is a spike).
    (Summing only the rows of the inputs that spiked is no faster than BLAS at the few
    percent of spiking inputs per step seen in practice.)"""

    def __init__(self, weight: np.ndarray, dtype=None):
        bound = float(np.abs(weight.astype(np.float64)).sum(axis=1).max(initial=0.0))
        self.dtype = np.dtype(dtype) if dtype is not None else exact_float_dtype(bound)
        self.weight_t = np.ascontiguousarray(weight.T, dtype=self.dtype)  # n_in, n_out

    def current(self, spikes: np.ndarray) -> np.ndarray:
        flat = spikes.reshape(spikes.shape[0], -1)
        s = flat if flat.dtype == bool else flat != 0
        return s.astype(self.dtype) @ self.weight_t


@dataclass
class _BoxGroup:
    """Blocks whose compartments fill the same rows and columns of the output, each a range
    of channels: one im2col over the rows/columns, one product with the stacked kernels."""

    rows: slice
    cols: slice
    channels: slice | np.ndarray
    kernel_t: np.ndarray  # C*kh*kw, channels


def pool_factor(kernels: np.ndarray, stride) -> tuple[int, int] | None:
    """``(sh, sw)`` when every kernel is constant on the ``sh x sw`` tiles of its taps (an
    average pool folded into the conv after it), else None. Then, exactly::

        conv(s_pad, K, stride (sh, sw)) = conv(sum_pool(s_pad, sh x sw), K[..., ::sh, ::sw], stride 1)

    since each output's window starts at a padded row and column that are multiples of the
    stride, its tiles are the pooling tiles."""
    sh, sw = stride
    kh, kw = kernels.shape[-2:]
    if (sh, sw) == (1, 1) or kh % sh or kw % sw:
        return None
    tiles = kernels.reshape(*kernels.shape[:-2], kh // sh, sh, kw // sw, sw)
    return (sh, sw) if bool((tiles == tiles[..., :1, :, :1]).all()) else None


class ConvSynapses:
    """``q[b, f, y, x] = sum_{c,u,v} K[block(f,y,x), f, c, u, v] s_pad[b, c, y*sh + u, x*sw + v]``
    for spikes ``s`` (``K: (blocks, F, C, kh, kw)``, ``block`` one per output compartment)."""

    def __init__(self, kernels: np.ndarray, block: np.ndarray, out_shape, kernel, stride, pads, dtype=None):
        self.kernel, self.stride, self.pads = tuple(kernel), tuple(stride), tuple(pads)
        self.out_shape = tuple(out_shape)
        self.pool = pool_factor(kernels, self.stride)
        if self.pool is None:
            self.patch_kernel, self.patch_stride, per_tap = self.kernel, self.stride, 1
        else:
            kernels = kernels[..., :: self.pool[0], :: self.pool[1]]
            self.patch_kernel, self.patch_stride = kernels.shape[-2:], (1, 1)
            per_tap = self.pool[0] * self.pool[1]  # a pooled tap counts up to sh * sw spikes
        l1 = np.abs(kernels.astype(np.float64)).reshape(*kernels.shape[:2], -1).sum(axis=2)
        bound = per_tap * float(l1.max(initial=0.0))
        self.dtype = np.dtype(dtype) if dtype is not None else exact_float_dtype(bound)
        self.groups, self.fallback = self._plan(kernels, np.asarray(block).reshape(self.out_shape))

    def _plan(self, kernels: np.ndarray, block: np.ndarray):
        by_extent: dict[tuple[int, int, int, int], list[tuple[int, int, int]]] = {}
        fallback = []
        for b in range(kernels.shape[0]):
            where = np.nonzero(block == b)
            if where[0].size == 0:
                continue
            lo = [int(i.min()) for i in where]
            hi = [int(i.max()) + 1 for i in where]
            if math.prod(h - l for l, h in zip(lo, hi)) == where[0].size:
                by_extent.setdefault((lo[1], hi[1], lo[2], hi[2]), []).append((b, lo[0], hi[0]))
            else:
                mask = block == b
                fallback.append((mask, self._matrix(kernels[b])))
        groups = []
        for (y0, y1, x0, x1), members in by_extent.items():
            members.sort(key=lambda m: m[1])
            channels = np.concatenate([np.arange(f0, f1) for _, f0, f1 in members])
            matrix = np.concatenate([self._matrix(kernels[b, f0:f1]) for b, f0, f1 in members], axis=1)
            contiguous = np.array_equal(channels, np.arange(channels[0], channels[0] + channels.size))
            picked = slice(int(channels[0]), int(channels[-1]) + 1) if contiguous else channels
            groups.append(_BoxGroup(slice(y0, y1), slice(x0, x1), picked, matrix))
        return groups, fallback

    def _matrix(self, kernel: np.ndarray) -> np.ndarray:
        """``(F, C, kh, kw)`` as the ``(kh*kw*C, F)`` matrix the channels-last patches multiply."""
        return np.ascontiguousarray(kernel.transpose(0, 2, 3, 1).reshape(kernel.shape[0], -1).T, dtype=self.dtype)

    def _padded(self, spikes: np.ndarray) -> np.ndarray:
        """The spikes, padded, as ``(B, H', W', C)`` uint8 (channels last: each patch row is
        then ``kw * C`` consecutive values, which makes im2col a fast copy); with a pool
        factor, summed over its tiles (as far as the outputs reach) before the transpose."""
        b, c, h, w = spikes.shape
        pt, pl, pb, pr = self.pads
        if any(self.pads):
            buf = np.zeros((b, c, h + pt + pb, w + pl + pr), dtype=np.uint8)
            np.not_equal(spikes, 0, out=buf[:, :, pt : pt + h, pl : pl + w], casting="unsafe")
        else:  # booleans are 0/1 bytes already
            buf = (spikes if spikes.dtype == bool else spikes != 0).view(np.uint8)
        if self.pool is not None:
            (sh, sw), (kh, kw), (_, ho, wo) = self.pool, self.kernel, self.out_shape
            reach = buf[:, :, : (ho - 1) * sh + kh, : (wo - 1) * sw + kw]
            buf = reach[:, :, ::sh, ::sw].copy()
            for i, j in itertools.product(range(sh), range(sw)):
                if i or j:
                    buf += reach[:, :, i::sh, j::sw]
        return np.ascontiguousarray(buf.transpose(0, 2, 3, 1))

    def _patches(self, padded: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        """im2col of the output rows/columns given, ``(B * ny * nx, kh*kw*C)`` in the
        product's float type (one copy that also converts)."""
        (kh, kw), (sh, sw) = self.patch_kernel, self.patch_stride
        region = padded[:, rows.start * sh : (rows.stop - 1) * sh + kh, cols.start * sw : (cols.stop - 1) * sw + kw]
        win = sliding_window_view(region, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # B, ny, nx, C, kh, kw
        patches = np.empty((*win.shape[:3], kh, kw, win.shape[3]), dtype=self.dtype)
        np.copyto(patches, win.transpose(0, 1, 2, 4, 5, 3), casting="unsafe")
        return patches.reshape(-1, kh * kw * win.shape[3])

    def current(self, spikes: np.ndarray) -> np.ndarray:
        padded = self._padded(spikes)
        batch = spikes.shape[0]
        out = np.empty((batch, *self.out_shape), dtype=self.dtype)
        for g in self.groups:
            ny, nx = g.rows.stop - g.rows.start, g.cols.stop - g.cols.start
            q = (self._patches(padded, g.rows, g.cols) @ g.kernel_t).reshape(batch, ny, nx, -1)
            out[:, g.channels, g.rows, g.cols] = q.transpose(0, 3, 1, 2)
        if self.fallback:
            _, ho, wo = self.out_shape
            everything = self._patches(padded, slice(0, ho), slice(0, wo))
            for mask, matrix in self.fallback:
                full = (everything @ matrix).reshape(batch, ho, wo, -1).transpose(0, 3, 1, 2)
                out[:, mask] = full[:, mask]
        return out.reshape(batch, -1)


def int_synapses(node: Node) -> DenseSynapses | ConvSynapses:
    """The integer synapses of a ``loihi_synapses`` node (``format="int"``)."""
    op = node.op
    weight = node.params["weight"]
    if op.kind == "dense":
        return DenseSynapses(weight)
    return ConvSynapses(weight, node.params["block"], node.type.shape, op.kernel, op.stride, op.pads)


def float_synapses(node: Node, weight: np.ndarray) -> DenseSynapses | ConvSynapses:
    """Float synapses (``format="float"``) with the per-spike ``weight`` the chip applies
    (dense ``(units, n_in)`` or conv ``(F, C, kh, kw)``), summed in float64."""
    op = node.op
    if op.kind == "dense":
        return DenseSynapses(weight, np.float64)
    block = np.zeros(node.type.size, dtype=np.int32)
    return ConvSynapses(weight[None], block, node.type.shape, op.kernel, op.stride, op.pads, np.float64)
