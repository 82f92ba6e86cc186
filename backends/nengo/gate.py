"""The spiking max-pool gate as a ``nengo.Process`` (Nengo has no built-in equivalent)."""

from __future__ import annotations

import numpy as np
from nengo import Process
from nengo.params import ShapeParam

from snnc.compiler.interpreter import window_offsets


class MaxGate(Process):
    """:class:`~snnc.compiler.ops.SpikeMaxPool2d` on a flattened ``(C, H, W)`` input: each
    window passes the value ``x_t`` of the element with the largest accumulated input
    ``acc = sum_{s<=t} x_s`` (the first in row-major window order on ties).

    The accumulated input is the process state (reset with the simulator); padded
    positions start at ``-inf`` so they never win."""

    in_shape = ShapeParam("in_shape", length=3, low=1)
    out_shape = ShapeParam("out_shape", length=3, low=1)
    kernel = ShapeParam("kernel", length=2, low=1)
    stride = ShapeParam("stride", length=2, low=1)
    pads = ShapeParam("pads", length=4, low=0)

    def __init__(self, in_shape, out_shape, kernel, stride, pads):
        super().__init__(default_size_in=int(np.prod(in_shape)), default_size_out=int(np.prod(out_shape)))
        self.in_shape = in_shape
        self.kernel = kernel
        self.stride = stride
        self.pads = pads
        self.out_shape = out_shape

    def padded_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        pt, pl, pb, pr = self.pads
        return c, h + pt + pb, w + pl + pr

    def make_state(self, shape_in, shape_out, dt, dtype=None):
        c, h, w = self.in_shape
        pt, pl, _, _ = self.pads
        accumulated = np.full(self.padded_shape(), -np.inf, dtype=dtype or np.float64)
        accumulated[:, pt : pt + h, pl : pl + w] = 0.0
        return {"accumulated": accumulated.ravel()}

    def make_step(self, shape_in, shape_out, dt, rng, state):
        accumulated = state["accumulated"].reshape(self.padded_shape())
        padded = np.zeros(self.padded_shape(), dtype=accumulated.dtype)
        c, h, w = self.in_shape
        pt, pl, _, _ = self.pads
        interior = (slice(None), slice(pt, pt + h), slice(pl, pl + w))
        offsets = window_offsets(self.kernel, self.stride, self.out_shape[1:])

        def step_max_gate(t, x):
            padded[interior] = x.reshape(self.in_shape)
            accumulated[interior] += padded[interior]
            acc = np.stack([accumulated[(slice(None), *o)] for o in offsets])  # k, C, Ho, Wo
            winner = acc.argmax(axis=0)[None]
            values = np.stack([padded[(slice(None), *o)] for o in offsets])
            return np.take_along_axis(values, winner, axis=0).ravel()

        return step_max_gate

