"""The spiking max-pool gate as a ``nengo.Process`` (Nengo has no built-in equivalent)."""

from __future__ import annotations

import numpy as np
from nengo import Process
from nengo.params import ShapeParam

from snnc.compiler import ops
from snnc.compiler.simulate import max_gate_step


class MaxGate(Process):
    """:class:`~snnc.compiler.ops.SpikeMaxPool2d` on a flattened ``(C, H, W)`` input: each
    window outputs the growth ``m_t - m_{t-1}`` of its largest accumulated input ``m_t``
    (:func:`~snnc.compiler.simulate.max_gate_step`, as in the interpreter).

    The accumulated input and the last window maxima are the process state (reset with the
    simulator)."""

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

    def make_state(self, shape_in, shape_out, dt, dtype=None):
        dtype = dtype or np.float64
        return {"accumulated": np.zeros(shape_in, dtype=dtype), "previous": np.zeros(shape_out, dtype=dtype)}

    def make_step(self, shape_in, shape_out, dt, rng, state):
        op = ops.SpikeMaxPool2d(tuple(self.kernel), tuple(self.stride), tuple(self.pads))
        accumulated = state["accumulated"].reshape((1, *self.in_shape))
        previous = state["previous"].reshape((1, *self.out_shape))

        def step_max_gate(t, x):
            return max_gate_step(op, accumulated, previous, x.reshape(accumulated.shape)).ravel()

        return step_max_gate
