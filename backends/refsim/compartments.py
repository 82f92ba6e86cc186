"""Compartment populations, batched: the state of one ``loihi_compartments`` node for ``B``
examples and its update at each step, exactly in the emulator's order (papers.md B3).

Integer mode keeps ``u`` and ``v`` in int32 as the emulator does (the decays' products are
taken in int64 where they need it) and counts every wrap-around; float mode keeps the
emulator's float32 state and formulas (``target="simreal"``).
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
    """The integer compartments of a ``loihi_compartments`` node (``format="int"``)::

        q  = wrap_21(q)
        u  = wrap_23(decay_int(u, decay_u, offset=1) + q)
        u2 = wrap_23(u + bias)
        v  = clip(wrap_int32(decay_int(v, decay_v) + u2), vmin, vmax)
        v  = 0 where refractory ;  s = v > vth ;  v = 0 where s
        refractory counter: refract_delay where s, then minus one (not below 0)
    """

    def __init__(self, node: Node, batch: int):
        op, p = node.op, node.params
        n = node.type.size
        self.decay_u, self.decay_v, self.refract_delay = op.decay_u, op.decay_v, op.refract_delay
        self.vth, self.bias = p["vth"].astype(np.int32), p["bias"].astype(np.int32)
        self.vmin, self.vmax = p["vmin"].astype(np.int32), p["vmax"].astype(np.int32)
        # int32 state, as the emulator keeps it
        self.u = np.zeros((batch, n), dtype=np.int32)
        self.v = np.zeros((batch, n), dtype=np.int32)
        # a delay of 1 ends the refractory period in the step of the spike: no state needed
        self.ref = np.zeros((batch, n), dtype=np.int32) if op.refract_delay > 1 else None
        # |u2| <= 2**23: v + u2 can leave int32 only with limits that close to its edges
        edge = 2**31 - 2**23
        self.v_may_wrap = n > 0 and (int(self.vmin.min()) < -edge or int(self.vmax.max()) >= edge)
        self.overflow = Overflow()

    def _wrap(self, x: np.ndarray, bits: int, kind: str) -> np.ndarray:
        """``x`` wrapped to ``bits`` + sign, as int32, counting the values that wrapped."""
        limit = 1 << bits
        if x.size and (x.min() < -limit or x.max() >= limit):
            self.overflow.counts[kind] += arith.count_wrapped(x, bits)
            return arith.wrap_signed(x, bits).astype(np.int32)
        return x.astype(np.int32, copy=False)

    def step(self, q: np.ndarray) -> np.ndarray:
        """Advance one step with input ``q`` (B, n) int32 or int64; returns the spikes (B, n)
        bool."""
        q = self._wrap(q, arith.Q_BITS, "q")
        u = arith.decay_int32(self.u, self.decay_u, offset=1)
        u += q  # |u| < 2**23 + 2**21: no int32 overflow before the wrap
        u = self._wrap(u, arith.U_BITS, "u")
        u2 = self._wrap(u + self.bias, arith.U_BITS, "u2")
        v = arith.decay_int32(self.v, self.decay_v)
        if self.v_may_wrap:
            v = self._wrap(v.astype(np.int64) + u2, arith.INT32_BITS, "v")
        else:
            v += u2
        np.maximum(v, self.vmin, out=v)  # clip_voltage, in place
        np.minimum(v, self.vmax, out=v)
        if self.ref is not None:
            v[self.ref > 0] = 0
        spikes = arith.spiked(v, self.vth)
        v[spikes] = 0
        if self.ref is not None:
            self.ref = arith.refractory_countdown(self.ref, spikes, self.refract_delay)
        self.u, self.v = u, v
        return spikes

    @property
    def voltage(self) -> np.ndarray:
        return self.v.copy()

    @property
    def current(self) -> np.ndarray:
        return self.u.copy()


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
