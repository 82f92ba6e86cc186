"""The integer arithmetic of a Loihi neuron core, one small vectorized function per rule.

Each function states its formula; together they are the executable definition of the
compartment update that :mod:`.engine` applies (papers.md B3, NengoLoihi's
``emulator/interface.py`` and ``builder/discretize.py``). Everything works on NumPy integer
arrays of any shape and returns ``int64`` (products of a 32-bit value and a 13-bit factor
need more than 32 bits).
"""

from __future__ import annotations

import numpy as np

#: fractional bits of the decay multipliers (decays are 12-bit integers, 0..4095)
DECAY_BITS = 12
#: magnitude bits of the synaptic input accumulator ``q`` (plus a sign bit)
Q_BITS = 21
#: magnitude bits of the current ``u`` (plus a sign bit)
U_BITS = 23
#: NumPy's ``int32``: 31 magnitude bits plus a sign bit (the emulator's state type)
INT32_BITS = 31


def decay_int(x, decay, offset: int = 0) -> np.ndarray:
    """One step of integer exponential decay, rounding the magnitude down (toward zero)::

        decay_int(x, d, o) = sign(x) * ((|x| * (2**12 - o - d)) >> 12)

    with the product in ``int64``. The current uses ``offset=1`` (the chip adds one to
    ``decay_u``), the voltage ``offset=0``; ``decay`` is a 12-bit integer (0..4095), a scalar
    or an array that broadcasts against ``x``."""
    x = np.asarray(x, dtype=np.int64)
    factor = (1 << DECAY_BITS) - offset - np.asarray(decay, dtype=np.int64)
    return np.sign(x) * ((np.abs(x) * factor) >> DECAY_BITS)


def wrap_signed(x, bits: int) -> np.ndarray:
    """Two's-complement wrap to ``bits`` magnitude bits plus a sign bit (NengoLoihi's
    ``overflow_signed``)::

        wrap_signed(x, b) = (x & (2**b - 1)) - (x & 2**b)

    i.e. ``((x + 2**b) mod 2**(b+1)) - 2**b``: values in ``[-2**b, 2**b)`` are unchanged."""
    x = np.asarray(x, dtype=np.int64)
    sign_bit = np.int64(1) << bits
    return (x & (sign_bit - 1)) - (x & sign_bit)


def wrapped(x, bits: int) -> np.ndarray:
    """Where :func:`wrap_signed` changes a value: ``x < -2**b or x >= 2**b``."""
    x = np.asarray(x, dtype=np.int64)
    limit = np.int64(1) << bits
    return (x < -limit) | (x >= limit)


def count_wrapped(x, bits: int) -> int:
    """How many values :func:`wrap_signed` changes (overflows, which the chip does not report)."""
    return int(np.count_nonzero(wrapped(x, bits)))


def wrap_int32(x) -> np.ndarray:
    """``x`` as NumPy's ``int32`` arithmetic leaves it: ``wrap_signed(x, 31)``. The emulator
    adds the input to the voltage in ``int32`` without an overflow check; this reproduces it
    (the voltage limits keep it far from the edge in every configuration NengoLoihi makes)."""
    return wrap_signed(x, INT32_BITS)


def clip_voltage(v, vmin, vmax) -> np.ndarray:
    """The membrane limits: ``min(max(v, vmin), vmax)`` (``vmin <= 0 < vmax``, per compartment
    or scalar)."""
    return np.minimum(np.maximum(v, vmin), vmax)


def spiked(v, vth) -> np.ndarray:
    """The spike condition: strictly above threshold, ``v > vth``."""
    return v > vth


def refractory_countdown(count, spikes, refract_delay) -> np.ndarray:
    """The refractory counter after a step: ``max((refract_delay where spikes else count) - 1, 0)``.
    A compartment whose counter is above zero at a step has its voltage held at 0 then, so a
    spike at step ``t`` silences steps ``t+1 .. t+refract_delay-1``."""
    count = np.where(spikes, refract_delay, count)
    return np.maximum(count - 1, 0)


def decay_float(x, x_in, decay, scale):
    """The emulator's float mode (``target="simreal"``): ``(1 - decay) * x + scale * x_in``, in
    the precision of the arrays given (the emulator's is ``float32``)."""
    return (1 - decay) * x + scale * x_in
