"""Synaptic input currents: the weighted sum of the previous step's spikes, batched.

The integer weights and the sums are int64 (a spike adds at most ``127 << 7`` per synapse, so
no sum comes near int64's range); the emulator adds the same integers spike by spike, and an
integer sum does not depend on its order, so these are its currents exactly. Float mode sums
NengoLoihi's float weights in float64 (the emulator adds them one by one in float32: see
:mod:`snnc.backends.refsim`).

Conv weights are stored per core block (NengoLoihi discretizes each block separately): each
output compartment takes its block's kernel.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from snnc.compiler.graph import Node


class DenseSynapses:
    """``q[b, i] = sum_j W[i, j] * s[b, j]`` for spikes ``s`` (any nonzero value is a spike),
    in the weights' type (int64 for integers)."""

    def __init__(self, weight: np.ndarray, dtype=np.int64):
        self.weight = np.asarray(weight, dtype=dtype)  # n_out, n_in

    def current(self, spikes: np.ndarray) -> np.ndarray:
        s = (spikes.reshape(spikes.shape[0], -1) != 0).astype(self.weight.dtype)
        return s @ self.weight.T


class ConvSynapses:
    """``q[b, f, y, x] = sum_{c,u,v} K[block(f,y,x), f, c, u, v] * s_pad[b, c, y*sh + u, x*sw + v]``
    for spikes ``s`` padded with zeros by ``pads`` (top, left, bottom, right); ``K: (blocks,
    F, C, kh, kw)``, ``block``: each output compartment's core block (CHW order)."""

    def __init__(self, kernels: np.ndarray, block: np.ndarray, out_shape, kernel, stride, pads, dtype=np.int64):
        self.kernels = np.asarray(kernels, dtype=dtype)
        self.out_shape = tuple(out_shape)
        self.block = np.asarray(block).reshape(self.out_shape)
        self.kernel, self.stride, self.pads = tuple(kernel), tuple(stride), tuple(pads)

    def windows(self, spikes: np.ndarray) -> np.ndarray:
        """Each output position's input window, ``(B, C, H_out, W_out, kh, kw)`` (a view)."""
        top, left, bottom, right = self.pads
        s = (spikes != 0).astype(self.kernels.dtype)
        padded = np.pad(s, ((0, 0), (0, 0), (top, bottom), (left, right)))
        (sh, sw), (_, ho, wo) = self.stride, self.out_shape
        windows = sliding_window_view(padded, self.kernel, axis=(2, 3))[:, :, ::sh, ::sw]
        return windows[:, :, :ho, :wo]

    def current(self, spikes: np.ndarray) -> np.ndarray:
        windows = self.windows(spikes)
        out = np.zeros((spikes.shape[0], *self.out_shape), dtype=self.kernels.dtype)
        for b in np.unique(self.block):  # each block's kernel over the whole output, kept where it is the block's
            full = np.tensordot(windows, self.kernels[b], axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
            mine = self.block == b
            out[:, mine] = full[:, mine]
        return out.reshape(spikes.shape[0], -1)


Synapses = DenseSynapses | ConvSynapses


def int_synapses(node: Node) -> Synapses:
    """The integer synapses of a ``loihi_synapses`` node (``format="int"``)."""
    op = node.op
    weight = node.params["weight"]
    if op.kind == "dense":
        return DenseSynapses(weight)
    return ConvSynapses(weight, node.params["block"], node.type.shape, op.kernel, op.stride, op.pads)


def float_synapses(node: Node, weight: np.ndarray) -> Synapses:
    """Float synapses (``format="float"``) with the per-spike ``weight`` the chip applies
    (dense ``(units, n_in)`` or conv ``(F, C, kh, kw)``), summed in float64."""
    op = node.op
    if op.kind == "dense":
        return DenseSynapses(weight, np.float64)
    block = np.zeros(node.type.size, dtype=np.int32)
    return ConvSynapses(weight[None], block, node.type.shape, op.kernel, op.stride, op.pads, np.float64)
