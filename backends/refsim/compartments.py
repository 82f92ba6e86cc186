"""Compartment populations, batched: the state of one ``loihi_compartments`` node for ``B``
examples and its update at each step, exactly in the emulator's order (papers.md B3).

Integer mode computes in int64 and wraps each quantity where the emulator's fixed widths
(and its int32 state) wrap it, counting every wrap-around; float mode keeps the emulator's
float32 state and formulas (``target="simreal"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.compiler.graph import Node

from . import arith

#: the quantities whose wrap-arounds are counted: the input accumulator (21 bits + sign), the
#: current and the current plus bias (23 + sign), and the voltage's int32 arithmetic
OVERFLOW_KINDS = ("q", "u", "u2", "v")


@dataclass
class Overflow:
    """Wrap-arounds counted per quantity over (example, step, compartment)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OVERFLOW_KINDS, 0))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, other: "Overflow") -> None:
        for k, v in other.counts.items():
            self.counts[k] += v


class IntCompartments:
    """The integer compartments of a ``loihi_compartments`` node (``format="int"``), in the
    emulator's order (``CompartmentState.update``), with int64 arithmetic and the emulator's
    int32 wrap-arounds made explicit::

        q  = wrap(q, 21)                                       input accumulator
        u  = wrap(decay_int(u, decay_u, offset=1) + q, 23)     current
        u2 = wrap(u + bias, 23)
        v  = clip(wrap_int32(decay_int(v, decay_v) + u2), vmin, vmax)
        v  = 0 where ref > 0 ;  s = v > vth ;  v = 0 where s
        ref = max((refract_delay where s else ref) - 1, 0)

    Every wrap-around is counted (:class:`Overflow`; the chip does not report them).
    """

    def __init__(self, node: Node, batch: int):
        op, p = node.op, node.params
        n = node.type.size
        self.decay_u, self.decay_v, self.refract_delay = op.decay_u, op.decay_v, op.refract_delay
        self.vth, self.bias = p["vth"].astype(np.int64), p["bias"].astype(np.int64)
        self.vmin, self.vmax = p["vmin"].astype(np.int64), p["vmax"].astype(np.int64)
        self.u = np.zeros((batch, n), dtype=np.int64)
        self.v = np.zeros((batch, n), dtype=np.int64)
        self.ref = np.zeros((batch, n), dtype=np.int64)
        self.overflow = Overflow()

    def _wrap(self, x: np.ndarray, bits: int, kind: str) -> np.ndarray:
        """``wrap_signed(x, bits)``, counting the values that wrapped as ``kind``."""
        self.overflow.counts[kind] += arith.count_wrapped(x, bits)
        return arith.wrap_signed(x, bits)

    def step(self, q: np.ndarray) -> np.ndarray:
        """Advance one step with synaptic input ``q`` (B, n); returns the spikes (B, n) bool."""
        q = self._wrap(q, arith.Q_BITS, "q")
        self.u = self._wrap(arith.decay_int(self.u, self.decay_u, offset=1) + q, arith.U_BITS, "u")
        u2 = self._wrap(self.u + self.bias, arith.U_BITS, "u2")
        v = self._wrap(arith.decay_int(self.v, self.decay_v) + u2, arith.INT32_BITS, "v")
        v = arith.clip_voltage(v, self.vmin, self.vmax)
        v[self.ref > 0] = 0
        spikes = arith.spiked(v, self.vth)
        v[spikes] = 0
        self.ref = arith.refractory_countdown(self.ref, spikes, self.refract_delay)
        self.v = v
        return spikes

    @property
    def voltage(self) -> np.ndarray:
        """``v`` as the emulator keeps it (int32)."""
        return self.v.astype(np.int32)

    @property
    def current(self) -> np.ndarray:
        """``u`` as the emulator keeps it (int32)."""
        return self.u.astype(np.int32)


@dataclass(frozen=True)
class FloatParams:
    """NengoLoihi's float compartment parameters, one value per compartment (or scalars):
    the emulator's ``CompartmentState`` arrays in float mode."""

    vth: np.ndarray
    bias: np.ndarray
    decay_u: np.ndarray
    decay_v: np.ndarray
    scale_u: np.ndarray  # decay_u where the block scales u, else 1
    scale_v: np.ndarray  # decay_v where the block scales v, else 1
    vmin: np.ndarray
    vmax: np.ndarray
    refract_delay: np.ndarray


class FloatCompartments:
    """The emulator's float mode, in float32 as it runs it::

        u  = (1 - decay_u) * u + scale_u * q
        v  = clip((1 - decay_v) * v + scale_v * (u + bias), vmin, vmax)
        v  = 0 where refractory ;  s = v > vth ;  v = 0 where s   (no wrap-around in float)
    """

    def __init__(self, params: FloatParams, n: int, batch: int):
        f32 = np.float32
        self.p = FloatParams(*(np.broadcast_to(np.asarray(a, dtype=f32), (n,)) for a in vars(params).values()))
        self.u = np.zeros((batch, n), dtype=f32)
        self.v = np.zeros((batch, n), dtype=f32)
        self.refract_delay = np.broadcast_to(np.asarray(params.refract_delay, dtype=np.int32), (n,))
        self.ref = np.zeros((batch, n), dtype=np.int32)
        self.overflow = Overflow()

    def step(self, q: np.ndarray) -> np.ndarray:
        p = self.p
        q = q.astype(np.float32)
        self.u = arith.decay_float(self.u, q, p.decay_u, p.scale_u)
        u2 = self.u + p.bias
        v = np.clip(arith.decay_float(self.v, u2, p.decay_v, p.scale_v), p.vmin, p.vmax)
        v[self.ref > 0] = 0
        spikes = v > p.vth
        v[spikes] = 0
        self.ref = arith.refractory_countdown(self.ref, spikes, self.refract_delay)
        self.v = v
        return spikes

    @property
    def voltage(self) -> np.ndarray:
        return self.v

    @property
    def current(self) -> np.ndarray:
        return self.u
