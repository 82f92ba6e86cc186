"""refsim's integer helpers against their formulas (Python's unbounded integers) and against
NengoLoihi's own ``decay_int`` / ``overflow_signed``, which the emulator applies."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from snnc.backends.refsim import arith

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: the voltage never reaches -2**31 (vmin >= -2**31 + 1): NengoLoihi's decay_int takes |x|
#: in int32 there, which wraps, so the emulator comparison stays above it
emulator_ints = st.integers(INT32_MIN + 1, INT32_MAX)
int32_arrays = hnp.arrays(np.int32, st.integers(1, 40), elements=emulator_ints)
decays = st.integers(0, 4095)
EXTREMES = np.array(
    [INT32_MIN + 1, INT32_MIN + 2, -4097, -4096, -4095, -1, 0, 1, 4095, 4096, 4097, INT32_MAX], np.int32
)


def emulator_decay_int(x: np.ndarray, decay: int, offset: int) -> np.ndarray:
    """NengoLoihi's decay_int called as its emulator calls it: with one int32 decay per
    compartment. (With a scalar decay NumPy 1.24's value-based casting keeps the product in
    int32, which wraps for |x| * factor >= 2**31; the emulator never does that.)"""
    from nengo_loihi.builder.discretize import decay_int

    return decay_int(x, np.full(x.shape, decay, np.int32), offset=offset)


def decay_formula(x: int, decay: int, offset: int) -> int:
    sign = (x > 0) - (x < 0)
    return sign * ((abs(x) * (4096 - offset - decay)) >> 12)


def wrap_formula(x: int, bits: int) -> int:
    return ((x + 2**bits) % 2 ** (bits + 1)) - 2**bits


@settings(max_examples=200, deadline=None)
@given(x=st.integers(-(2**40), 2**40), decay=decays, offset=st.sampled_from([0, 1]))
def test_decay_int_is_its_formula(x, decay, offset):
    assert arith.decay_int(np.array([x]), decay, offset)[0] == decay_formula(x, decay, offset)


@settings(max_examples=200, deadline=None)
@given(x=int32_arrays, decay=decays, offset=st.sampled_from([0, 1]))
def test_decay_int_matches_nengo_loihi(x, decay, offset):
    ours = arith.decay_int(x, decay, offset)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours, emulator_decay_int(x, decay, offset))


@pytest.mark.parametrize("decay", [0, 1, 2047, 4094, 4095])
@pytest.mark.parametrize("offset", [0, 1])
def test_decay_int_extremes(decay, offset):
    expected = [decay_formula(int(x), decay, offset) for x in EXTREMES]
    np.testing.assert_array_equal(arith.decay_int(EXTREMES, decay, offset), expected)
    np.testing.assert_array_equal(arith.decay_int(EXTREMES, decay, offset), emulator_decay_int(EXTREMES, decay, offset))
    # decay 0 keeps the voltage; the current's offset takes 1/4096 away, rounding toward 0
    if decay == 0 and offset == 0:
        np.testing.assert_array_equal(arith.decay_int(EXTREMES, decay), EXTREMES)
    # the magnitude never grows and the sign never flips
    out = arith.decay_int(EXTREMES, decay, offset)
    assert np.all(np.abs(out) <= np.abs(EXTREMES.astype(np.int64)))
    assert np.all(out * EXTREMES.astype(np.int64) >= 0)


def test_decay_int_at_int32_min_is_the_formula():
    # ours takes |x| in int64; the emulator never decays -2**31 (it clips v at vmin first)
    assert arith.decay_int(np.array([INT32_MIN], np.int32), 100)[0] == decay_formula(INT32_MIN, 100, 0)


def test_decay_int_per_compartment_decays():
    x = np.array([[5000, -5000], [1 << 20, -(1 << 20)]])
    decay = np.array([0, 4095])
    np.testing.assert_array_equal(
        arith.decay_int(x, decay), [[decay_formula(int(v), int(d), 0) for v, d in zip(row, decay)] for row in x]
    )


@settings(max_examples=200, deadline=None)
@given(x=st.integers(-(2**40), 2**40), bits=st.integers(1, 40))
def test_wrap_signed_is_its_formula(x, bits):
    assert arith.wrap_signed(np.array([x]), bits)[0] == wrap_formula(x, bits)
    assert arith.wrapped(np.array([x]), bits)[0] == (not -(2**bits) <= x < 2**bits)


@settings(max_examples=200, deadline=None)
@given(
    x=hnp.arrays(np.int32, st.integers(1, 40), elements=st.integers(INT32_MIN, INT32_MAX)),
    bits=st.sampled_from([arith.Q_BITS, arith.U_BITS, 7, 30]),
)
def test_wrap_signed_matches_nengo_loihi(x, bits):
    from nengo_loihi.builder.discretize import overflow_signed

    theirs, overflowed = overflow_signed(x, bits=bits)
    np.testing.assert_array_equal(arith.wrap_signed(x, bits), theirs)
    np.testing.assert_array_equal(arith.wrapped(x, bits), overflowed)
    assert arith.count_wrapped(x, bits) == int(overflowed.sum())


@pytest.mark.parametrize("bits", [arith.Q_BITS, arith.U_BITS])
def test_wrap_signed_extremes(bits):
    edge = 2**bits
    x = np.array([INT32_MIN, -edge - 1, -edge, -1, 0, edge - 1, edge, edge + 1, INT32_MAX], np.int64)
    np.testing.assert_array_equal(arith.wrap_signed(x, bits), [wrap_formula(int(v), bits) for v in x])
    np.testing.assert_array_equal(arith.wrap_signed(x, bits)[[2, 3, 4, 5]], x[[2, 3, 4, 5]])
    assert arith.wrap_signed(np.array([edge]), bits)[0] == -edge  # one past the top is the bottom
    assert arith.count_wrapped(x, bits) == 5


@settings(max_examples=100, deadline=None)
@given(x=st.integers(-(2**40), 2**40))
def test_wrap_int32_is_numpy_int32_arithmetic(x):
    as_int32 = np.array([x], np.int64).astype(np.int32)
    assert arith.wrap_int32(np.array([x]))[0] == as_int32[0]


def test_clip_spike_refractory():
    v = np.array([-10, 0, 5, 100, 600])
    np.testing.assert_array_equal(arith.clip_voltage(v, 0, 511), [0, 0, 5, 100, 511])
    np.testing.assert_array_equal(arith.spiked(v, np.array([5, 5, 5, 5, 5])), [False, False, False, True, True])
    count = np.array([0, 3, 1, 0, 2])
    spikes = np.array([True, False, False, False, True])
    np.testing.assert_array_equal(arith.refractory_countdown(count, spikes, 4), [3, 2, 0, 0, 3])


def test_decay_float_is_the_emulator_formula():
    x = np.array([1.5, -2.0], np.float32)
    q = np.array([0.25, 3.0], np.float32)
    d = np.array([0.1, 1.0], np.float32)
    out = arith.decay_float(x, q, d, d)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (np.float32(1) - d) * x + d * q)
