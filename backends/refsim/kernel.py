"""refsim's compiled kernel: the whole time loop of a batch of examples in machine code
(numba), event-driven.

Per example and step, in the emulator's order (the same rules as :mod:`.compartments` and
:mod:`.arith`, which remain the readable definition; tests hold the two equal):

1. every synapse adds, for each neuron of its source that spiked at the previous step, that
   neuron's weights to its target's input accumulator ``q`` (the emulator's spike-by-spike
   accumulation, so the cost follows the spikes, not the weights);
2. every population, in graph order, emits this step's spikes: host neurons from a raster
   computed beforehand (their input is constant, so their spikes do not depend on the chip:
   :func:`.compiled.host_rasters` steps them with their neuron type's NumPy step), chip
   compartments from ``q`` with the integer update.

Neuron order inside the kernel: a population shaped ``(C, H, W)`` is stored channels last
(``H, W, C``), so that a conv synapse's weights for one output position are one contiguous run
over its filters; :mod:`.compiled` permutes parameters in and results out.

Everything is passed as flat arrays (the tables' columns are named below), so one compiled
function serves every network; it is compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np

# population kinds
HOST_RASTER, CHIP = 0, 1
# columns of the population table
KIND, SIZE, COUNT_AT, STATE_AT, RECORD_AT = range(5)
# columns of the chip table (int64)
FACTOR_U, FACTOR_V, REFRACT_DELAY = range(3)
# rows of the compartment table (int32)
VTH, BIAS, VMIN, VMAX = range(4)
# synapse kinds and the columns of the synapse table
DENSE, CONV = 0, 1
SYN_KIND, SRC, DST, WEIGHTS_AT, PATTERNS_AT, REACH_AT = range(6)
# conv geometry columns
C_IN, H_IN, W_IN, FILTERS, H_OUT, W_OUT, KH, KW, SH, SW, PAD_TOP, PAD_LEFT = range(12)
# overflow columns (as OVERFLOW_KINDS)
OVER_Q, OVER_U, OVER_U2, OVER_V = range(4)

Q_LIMIT, U_LIMIT, V_LIMIT = 1 << 21, 1 << 23, 1 << 31


@numba.njit(cache=True, nogil=True, error_model="numpy")
def wrap_signed(x, bits):
    """``(x & (2**b - 1)) - (x & 2**b)``: :func:`.arith.wrap_signed` of an int64."""
    return (x & ((np.int64(1) << bits) - 1)) - (x & (np.int64(1) << bits))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def decay(x, factor):
    """``sign(x) * ((|x| * factor) >> 12)`` for an int64 ``x``: :func:`.arith.decay_int` with
    ``factor = 4096 - offset - decay`` (``factor = 4096`` gives ``x`` back)."""
    return (x * factor + ((x >> 63) & 4095)) >> 12


@numba.njit(cache=True, nogil=True, error_model="numpy")
def outside(x, limit):
    """1 where ``x`` leaves ``[-limit, limit)`` (a wrap-around), else 0."""
    return (x < -limit) | (x >= limit)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def compact(flags, spiked, k):
    """Appends the indices where ``flags`` is set to ``spiked`` from ``k``; returns the new ``k``.
    (Deciding who spikes in one loop and listing them in a second keeps the first free of
    branches, so it runs on vector instructions.)"""
    for i in range(flags.size):
        spiked[k] = i
        k += flags[i]
    return k


@numba.njit(cache=True, nogil=True, error_model="numpy")
def add_dense(q, at, spiked, first, last, weights, offset, n):
    """``q[at:at+n] += W[j]`` for each spiking source ``j`` (``W``: rows of ``n`` at ``offset``)."""
    target = q[at : at + n]  # slices: LLVM vectorizes loops over them, not over offsets
    for e in range(first, last):
        row = offset + spiked[e] * n
        source = weights[row : row + n]
        for i in range(n):
            target[i] += source[i]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def add_conv(q, at, spiked, first, last, weights, offset, g, pattern, pattern_end, reach):
    """Each spike at source ``(y, x, c)`` adds its weights to every output ``(oy, ox)`` whose
    window holds it (``oy * sh + u = y + pad_top``, ``ox * sw + v = x + pad_left``).

    The weights are laid out (:func:`.compiled.conv_rows`) so that the outputs a spike reaches
    and the weights it adds are the same rectangle in both: outputs are channels last, and the
    kernel taps one input position meets are stored in the order the outputs take them (rows
    and columns of one phase ``u mod sh``, ``v mod sw``, last to first). ``reach[y * W + x]``
    holds, per source position, that rectangle and where its weights start
    (:func:`.compiled.conv_reach`), so the loop needs no division. Where the rectangle's
    outputs take the kernels of more than one core block (``pattern[oy, ox]``), each output row
    is cut into runs of one pattern (``pattern_end``: the last column of the same pattern)."""
    c_in, f_out, w_out = g[C_IN], g[FILTERS], g[W_OUT]
    sh, sw = g[SH], g[SW]
    per_row = (g[KW] + sw - 1) // sw  # taps of one column phase
    per_column = (g[KH] + sh - 1) // sh
    q_row, w_row = w_out * f_out, per_row * f_out
    for e in range(first, last):
        j = spiked[e]
        source_position = j // c_in
        c = j - source_position * c_in
        r = reach[source_position]
        oy_first, oy_last, ox_first, ox_last = r[0], r[1], r[2], r[3]
        if oy_first > oy_last or ox_first > ox_last:
            continue
        taps = ((c * sh + r[4]) * sw + r[5]) * per_column  # rows of this channel and phase
        position = oy_first * w_out + ox_first
        if r[8]:  # one pattern over the whole rectangle
            rows, width = np.uint64(oy_last - oy_first + 1), np.uint64((ox_last - ox_first + 1) * f_out)
            row = offset + (((pattern[position] * c_in * sh * sw * per_column + taps + r[6]) * per_row) + r[7]) * f_out
            target = q[at + position * f_out :]
            source = weights[row:]
            for i in range(rows):
                t0, s0 = i * np.uint64(q_row), i * np.uint64(w_row)
                for f in range(width):
                    target[t0 + f] += source[s0 + f]
            continue
        my = r[6]
        for oy in range(oy_first, oy_last + 1):
            ox, mx = ox_first, r[7]
            while ox <= ox_last:
                position = oy * w_out + ox
                stop = min(pattern_end[position], ox_last)
                row = offset + (((pattern[position] * c_in * sh * sw * per_column + taps + my) * per_row) + mx) * f_out
                base = at + position * f_out
                length = (stop - ox + 1) * f_out
                target, source = q[base : base + length], weights[row : row + length]
                for i in range(length):
                    target[i] += source[i]
                mx += stop - ox + 1
                ox = stop + 1
            my += 1


# The compartment update runs in four passes over the population, each touching at most four
# arrays: LLVM vectorizes each (it gives up on one loop over eight arrays that might overlap).


@numba.njit(cache=True, nogil=True, error_model="numpy")
def update_current(q, u, factor_u):
    """``u = wrap_23(decay(u) + wrap_21(q))``; returns the wrap-arounds of ``q`` and ``u``."""
    over_q = over_u = 0
    for i in range(q.size):
        qq = np.int64(q[i])
        over_q += outside(qq, Q_LIMIT)
        uu = decay(np.int64(u[i]), factor_u) + wrap_signed(qq, 21)
        over_u += outside(uu, U_LIMIT)
        u[i] = wrap_signed(uu, 23)
    return over_q, over_u


@numba.njit(cache=True, nogil=True, error_model="numpy")
def add_bias(u, bias, u2):
    """``u2 = wrap_23(u + bias)``; returns its wrap-arounds."""
    over = 0
    for i in range(u.size):
        x = np.int64(u[i]) + bias[i]
        over += outside(x, U_LIMIT)
        u2[i] = wrap_signed(x, 23)
    return over


@numba.njit(cache=True, nogil=True, error_model="numpy")
def update_voltage(v, u2, vmin, vmax, factor_v):
    """``v = clip(wrap_int32(decay(v) + u2), vmin, vmax)``; returns its wrap-arounds."""
    over = 0
    for i in range(v.size):
        x = decay(np.int64(v[i]), factor_v) + u2[i]
        over += outside(x, V_LIMIT)
        v[i] = min(max(wrap_signed(x, 31), np.int64(vmin[i])), np.int64(vmax[i]))
    return over


@numba.njit(cache=True, nogil=True, error_model="numpy")
def fire(v, ref, vth, refract_delay, fired):
    """``v = 0`` where refractory; spike where ``v > vth``, then ``v = 0`` and the refractory
    count starts; ``fired`` says who spiked."""
    for i in range(v.size):
        count = ref[i]
        x = 0 if count > 0 else v[i]
        spike = x > vth[i]
        v[i] = 0 if spike else x
        ref[i] = max((refract_delay if spike else count) - 1, 0)
        fired[i] = spike


@numba.njit(cache=True, nogil=True, error_model="numpy")
def step_compartments(q, u, v, ref, vth, bias, vmin, vmax, factor_u, factor_v, refract_delay, overflow, fired):
    """One step of integer compartments (:class:`.compartments.IntCompartments`' rule; every
    argument is the population's slice; ``q`` is overwritten); sets ``fired`` where they spike
    and adds the wrap-arounds to ``overflow``."""
    over_q, over_u = update_current(q, u, factor_u)
    overflow[OVER_Q] += over_q
    overflow[OVER_U] += over_u
    overflow[OVER_U2] += add_bias(u, bias, q)
    overflow[OVER_V] += update_voltage(v, q, vmin, vmax, factor_v)
    fire(v, ref, vth, refract_delay, fired)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def run(
    steps, pops, chip_table, comp, syns, geometry, weights, patterns, pattern_ends, reach,
    host_raster, counts, raster, u_out, v_out, overflow,
):  # fmt: skip
    """Simulate ``counts.shape[0]`` examples for ``steps`` steps. Writes per example the spike
    counts of every population (``counts``), the recorded populations' rasters (``raster``),
    the chip's final currents and voltages (``u_out``, ``v_out``) and adds the wrap-arounds
    per population to ``overflow``."""
    n_pops, n_syns = pops.shape[0], syns.shape[0]
    n_chip = comp.shape[1]
    total = counts.shape[1]
    u = np.zeros(n_chip, np.int32)
    v = np.zeros(n_chip, np.int32)
    ref = np.zeros(n_chip, np.int32)
    q = np.zeros(n_chip, np.int32)
    flags = np.zeros(pops[:, SIZE].max(), np.uint8)
    previous = np.zeros(total, np.int64)
    current = np.zeros(total, np.int64)
    previous_ptr = np.zeros(n_pops + 1, np.int64)
    current_ptr = np.zeros(n_pops + 1, np.int64)
    for b in range(counts.shape[0]):
        u[:] = 0
        v[:] = 0
        ref[:] = 0
        previous_ptr[:] = 0  # nothing spiked before the first step
        for t in range(steps):
            q[:] = 0
            for s in range(n_syns):
                src, dst = syns[s, SRC], syns[s, DST]
                first, last = previous_ptr[src], previous_ptr[src + 1]
                if first == last:
                    continue
                at = pops[dst, STATE_AT]
                if syns[s, SYN_KIND] == DENSE:
                    add_dense(q, at, previous, first, last, weights, syns[s, WEIGHTS_AT], pops[dst, SIZE])
                else:
                    add_conv(q, at, previous, first, last, weights, syns[s, WEIGHTS_AT], geometry[s],
                             patterns[syns[s, PATTERNS_AT]:], pattern_ends[syns[s, PATTERNS_AT]:], reach[syns[s, REACH_AT]:])  # fmt: skip
            k = 0
            for p in range(n_pops):
                current_ptr[p] = k
                kind, n, at = pops[p, KIND], pops[p, SIZE], pops[p, STATE_AT]
                fired = flags[:n]
                if kind == HOST_RASTER:
                    fired = host_raster[t, b, at : at + n]
                else:
                    c, end = chip_table[p], at + n
                    step_compartments(q[at:end], u[at:end], v[at:end], ref[at:end], comp[VTH, at:end], comp[BIAS, at:end],
                                      comp[VMIN, at:end], comp[VMAX, at:end], c[FACTOR_U], c[FACTOR_V], c[REFRACT_DELAY],
                                      overflow[p], fired)  # fmt: skip
                k = compact(fired, current, k)
            current_ptr[n_pops] = k
            for p in range(n_pops):
                count_at, record_at = pops[p, COUNT_AT], pops[p, RECORD_AT]
                for e in range(current_ptr[p], current_ptr[p + 1]):
                    counts[b, count_at + current[e]] += 1
                    if record_at >= 0:
                        raster[b, t, record_at + current[e]] = 1
            previous, current = current, previous
            previous_ptr, current_ptr = current_ptr, previous_ptr
        u_out[b] = u
        v_out[b] = v
