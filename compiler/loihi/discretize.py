"""NengoLoihi's discretization (``builder/discretize.py``, papers.md B2) as pure functions.

``discretize_compartment`` turns one core block's float compartment parameters
(:class:`.chip.CompartmentParams`) and the largest weight among the block's synapses into the
chip's integers and the block's scales; ``discretize_synapse_weights`` turns one synapse's
float weights in that block into the integers the chip adds to the input accumulator.
Every operation runs on the same dtypes as NengoLoihi 1.1.0 under NumPy 1.24 (its
compartment arrays and synapse weights are float32; its scales float64), so the integers
are identical. ``np.round`` rounds half to even, as NengoLoihi does.

Where NengoLoihi raises ``BuildError`` (or fails an assertion) these raise
:class:`~snnc.compiler.errors.PassError` with the limit that was missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import PassError
from . import hardware as hw
from .chip import CompartmentParams


@dataclass(frozen=True)
class CompartmentInts:
    """A core block's discretized compartments (the values NengoLoihi's emulator reads).

    ``vth`` is the stored threshold ``vth_mantissa << 6``; ``bias`` the stored bias
    ``bias_mantissa << bias_exponent`` (both int32, one per compartment). ``decay_u``,
    ``decay_v`` are 12-bit (``decay_u`` already less the 1 the chip adds back); ``vmin``,
    ``vmax`` the core-wide voltage limits ``-2^vmine + 1`` and ``2^(9 + 2 vmaxe) - 1``."""

    decay_u: int
    decay_v: int
    refract_delay: int
    vth: np.ndarray
    vth_mantissa: np.ndarray
    vth_exponent: int
    bias: np.ndarray
    bias_mantissa: np.ndarray
    bias_exponent: np.ndarray
    vmin: int
    vmax: int


@dataclass(frozen=True)
class DiscretizeInfo:
    """NengoLoihi's ``discretize_info`` of a block: ``w_max`` (largest float weight),
    ``w_exp`` (block weight exponent, 0..-7), ``v_scale`` (integer voltage per float
    voltage), ``b_scale`` (integer bias per float bias), ``w_scale`` (weight mantissa per
    float weight: ``255 / w_max``). ``w_scale`` is a float, except where NengoLoihi holds it
    as a per-compartment array (blocks whose weights are all below 1e-8): then a 1-element
    float64 array, which makes :func:`discretize_synapse_weights` scale in float64 as
    NengoLoihi does. ``u_infactor``/``v_infactor`` are the decay-integral compensations."""

    w_max: float
    w_exp: int
    v_scale: float
    b_scale: float
    w_scale: float | np.ndarray
    u_infactor: float
    v_infactor: float


@dataclass(frozen=True)
class WeightReport:
    """What discretizing one synapse's weights lost, so saturation is never silent.

    ``weights``: weights the block's synapse holds; ``nonzero``: of those, nonzero floats;
    ``clipped``: weights whose integer the ±127 mantissa clips changed (the block's largest
    weight maps to 255/2 = 127.5, which rounds half to even to 128 and is clipped to 127: one
    weight per block usually counts here, off by one step); ``rounded_to_zero``: nonzero weights that became
    0; ``lost_bits``: low mantissa bits dropped by the chip's two-part shift (``weight_exp <
    -1``); ``effective_bits``: ``log2(1 + largest |integer| / step)``, the magnitude bits the
    synapse's largest weight uses (7.0 at most); ``scale_error``: the factor by which the chip
    weights exceed what the block's scales intend. It is 1 except where the synapse's
    weights are below ``2^-(6 + w_exp)`` of the block's largest: NengoLoihi then clamps the
    weight exponent at -6 but keeps the ``2^dw_exp`` mantissa scaling (``discretize_synapse``),
    so those weights come out ``2^(-6 - (w_exp - dw_exp))`` times too strong."""

    weights: int
    nonzero: int
    clipped: int
    rounded_to_zero: int
    lost_bits: int
    effective_bits: float
    weight_exp: int
    dw_exp: int
    scale_error: float


# ----------------------------------------------------------------------------- helpers


def decay_magnitude(decay, x0=hw.DECAY_MAGNITUDE_X0, bits=hw.DECAY_BITS, offset=0):
    """Estimated sum of the integer decay series ``x_i = floor(r x_{i-1})`` from ``x0``,
    divided by ``x0`` (NengoLoihi's ``decay_magnitude``)::

        q = 0.494 ;  r = (2^bits - offset - decay) / 2^bits
        n = -log1p(x0 (1 - r) / q) / log(r)
        (1 - r^(n+1)) / (1 - r)  -  q / ((1 - r) x0) * (n + 1 - (1 - r^(n+1)) / (1 - r))
    """
    q = 0.494  # expected loss per step of the floor (NengoLoihi's empirical value)
    r = (2**bits - offset - np.asarray(decay)) / 2**bits
    n = -(np.log1p(x0 * (1 - r) / q)) / np.log(r)
    principal_sum = (1 - r ** (n + 1)) / (1 - r)
    loss_sum = q / ((1 - r) * x0) * (n + 1 - (1 - r ** (n + 1)) / (1 - r))
    return principal_sum - loss_sum


def vth_to_manexp(vth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Threshold mantissa and exponent: ``exp = 6``, ``man = round(vth / 2^6)``, with
    ``0 < man <= 2^17 - 1`` (the chip stores ``man``; the threshold is ``man << 6``)."""
    vth = np.asarray(vth)
    exp = hw.VTH_EXP * np.ones(vth.shape, dtype=np.int32)
    man = np.round(vth / 2**exp).astype(np.int32)
    if not (man > 0).all():
        raise PassError(
            f"threshold rounds to zero (vth = {float(np.min(vth)):g} < 32 in integer units): the "
            f"weights are too large relative to the threshold for Loihi's 17-bit threshold mantissa x 2^6"
        )
    if not (man <= hw.VTH_MAN_MAX).all():
        raise PassError(f"threshold mantissa {int(man.max())} exceeds Loihi's maximum 2^17 - 1")
    return man, exp


def bias_to_manexp(bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bias mantissa and exponent: ``exp = ceil(log2(max(|b| / 4095, 1)))``,
    ``man = round(b / 2^exp)``, with ``0 <= exp <= 7`` and ``|man| <= 4095``."""
    bias = np.asarray(bias)
    r = np.maximum(np.abs(bias) / hw.BIAS_MAN_MAX, 1)
    exp = np.ceil(np.log2(r)).astype(np.int32)
    man = np.round(bias / 2**exp).astype(np.int32)
    if not ((exp >= 0).all() and (exp <= hw.BIAS_EXP_MAX).all() and (np.abs(man) <= hw.BIAS_MAN_MAX).all()):
        raise PassError(
            f"bias {float(np.max(np.abs(bias))):g} (integer units) does not fit Loihi's 12-bit "
            f"mantissa x 2^(0..7) (at most {hw.BIAS_MAX})"
        )
    return man, exp


def weight_scale(weight_exp: int) -> float:
    """``2^(6 + weight_exp)``: the accumulator units of one stored weight unit
    (NengoLoihi's ``SynapseConfig.get_scale``; an int for ``weight_exp >= -6``)."""
    return 2 ** (hw.WEIGHT_SCALE_EXP + weight_exp)


def _uniform(values: np.ndarray, what: str):
    values = np.asarray(values).reshape(-1)
    if not (values == values[0]).all():
        raise PassError(f"{what} differs between compartments of one core block")
    return values[0]


# ----------------------------------------------------------------------------- compartments


def discretize_compartment(params: CompartmentParams, w_max: float) -> tuple[CompartmentInts, DiscretizeInfo]:
    """NengoLoihi's ``discretize_compartment`` for one core block; ``w_max`` is the largest
    ``|w|`` over the block's synapses (float32, e.g. :func:`.chip.block_weight_max`).

    1. ``decay_u = round(clip(decay_u * 4095 - 1, 0, 4095))``, ``decay_v = round(decay_v *
       4095)`` (float32); ``u_infactor = 1 / decay_magnitude(decay_u, 2^21, offset=1)`` if
       ``scale_u``, ``v_infactor = 1 / decay_magnitude(decay_v, 2^21)`` if ``scale_v``, else 1.
    2. If ``w_max > 1e-8``: ``w_scale = 255 / w_max``; for ``w_exp = 0, -1, ..., -7``:
       ``v_scale = w_scale * 2^(6 + w_exp) / (u_infactor * v_infactor)``,
       ``b_scale = v_scale * v_infactor``, and the first ``w_exp`` where every
       ``round(vth * v_scale) <= (2^17 - 1) 2^6`` and ``|round(bias * b_scale)| <= 4095 * 2^7``
       wins. Else, with a bias: ``b_scale = 4095 * 2^7 / max|bias|``, halved until the
       threshold fits. Else: ``v_scale = (2^21 - 1) / (max vth + 1)``.
    3. Threshold and bias to mantissa/exponent (:func:`vth_to_manexp`, :func:`bias_to_manexp`).
    4. ``vmin = -2^clip(round(log2(-vmin v_scale + 1)), 0, 31) + 1``,
       ``vmax = 2^(9 + 2 clip(round((log2(vmax v_scale + 1) - 9) / 2), 0, 7)) - 1``.
    """
    n = params.n_compartments
    # NengoLoihi's Compartment arrays are float32 (it discretizes them in place to int32)
    vth = np.asarray(params.vth, dtype=np.float32).reshape(-1)
    bias = np.asarray(params.bias, dtype=np.float32).reshape(-1)
    if vth.shape != (n,) or bias.shape != (n,):
        raise PassError(f"vth and bias need one value per compartment, got {vth.shape} and {bias.shape}")
    if not 1 <= params.refract_delay <= hw.REFRACT_DELAY_MAX:
        raise PassError(
            f"refractory delay of {params.refract_delay} steps is outside Loihi's 1..{hw.REFRACT_DELAY_MAX}"
        )
    decay_u_f = np.full(n, params.decay_u, dtype=np.float32)
    decay_v_f = np.full(n, params.decay_v, dtype=np.float32)

    # "subtract 1 from decay_u here because it gets added back by the chip"
    decay_u = np.round(np.clip(decay_u_f * hw.MAX_DECAY - 1, 0, hw.MAX_DECAY)).astype(np.int32)
    decay_v = np.round(decay_v_f * hw.MAX_DECAY).astype(np.int32)
    u_infactor = 1.0 / decay_magnitude(decay_u, x0=2097152, offset=1) if params.scale_u else np.ones(n)
    v_infactor = 1.0 / decay_magnitude(decay_v, x0=2097152) if params.scale_v else np.ones(n)

    vth_max = hw.VTH_MAX
    b_max = np.abs(bias).max()
    w_max = np.float32(w_max)  # the max of NengoLoihi's float32 synapse weights
    w_exp = 0
    if w_max > 1e-8:
        w_scale = 255.0 / w_max
        s_scale = 1.0 / (u_infactor * v_infactor)
        for w_exp in hw.BLOCK_WEIGHT_EXPS:
            v_scale = s_scale * w_scale * weight_scale(w_exp)
            b_scale = v_scale * v_infactor
            vth_i = np.round(vth * v_scale)
            bias_i = np.round(bias * b_scale)
            if (vth_i <= vth_max).all() and (np.abs(bias_i) <= hw.BIAS_MAX).all():
                break
        else:
            raise PassError(
                f"no weight exponent 0..-7 fits the threshold ({float(vth.max()):g}) and bias "
                f"({float(b_max):g}) with the largest weight {float(w_max):g}: the weights are too small "
                f"relative to the threshold or bias for Loihi (threshold <= (2^17-1)*2^6, |bias| <= "
                f"{hw.BIAS_MAX} after scaling the largest weight to 255)"
            )
    elif b_max > 1e-8:
        b_scale = hw.BIAS_MAX / b_max
        while b_scale * b_max > 1:
            v_scale = b_scale / v_infactor
            w_scale = b_scale * u_infactor / weight_scale(w_exp)
            vth_i = np.round(vth * v_scale)
            bias_i = np.round(bias * b_scale)
            if np.all(vth_i <= vth_max):
                break
            b_scale /= 2.0
        else:
            raise PassError(f"no bias scaling fits the threshold ({float(vth.max()):g}) in Loihi's range")
    else:
        # no weights and no bias: NengoLoihi lowers vth_max so the input cannot overflow
        vth_max = min(vth_max, 2**hw.Q_BITS - 1)
        v_scale = np.array([vth_max / (vth.max() + 1)])
        vth_i = np.round(vth * v_scale)
        b_scale = v_scale * v_infactor
        bias_i = np.round(bias * b_scale)
        w_scale = v_scale * v_infactor * u_infactor / weight_scale(w_exp)

    vth_man, vth_exp = vth_to_manexp(vth_i)
    bias_man, bias_exp = bias_to_manexp(bias_i)
    v_scale = _uniform(v_scale, "v_scale")

    vmin = v_scale * params.vmin
    vmax = v_scale * params.vmax
    vmine = np.clip(np.round(np.log2(-vmin + 1)), 0, hw.VMIN_EXP_MAX)
    vmaxe = np.clip(np.round((np.log2(vmax + 1) - hw.VMAX_EXP_OFFSET) * 0.5), 0, hw.VMAX_EXP_MAX)

    ints = CompartmentInts(
        decay_u=int(_uniform(decay_u, "decay_u")),
        decay_v=int(_uniform(decay_v, "decay_v")),
        refract_delay=int(params.refract_delay),
        vth=(vth_man * 2**vth_exp).astype(np.int32),
        vth_mantissa=vth_man,
        vth_exponent=hw.VTH_EXP,
        bias=(bias_man * 2**bias_exp).astype(np.int32),
        bias_mantissa=bias_man,
        bias_exponent=bias_exp,
        vmin=int(-(2**vmine) + 1),
        vmax=int(2 ** (hw.VMAX_EXP_OFFSET + 2 * vmaxe) - 1),
    )
    w_scale_value = np.asarray([_uniform(w_scale, "w_scale")]) if np.ndim(w_scale) else float(w_scale)
    info = DiscretizeInfo(
        w_max=float(w_max),
        w_exp=int(w_exp),
        v_scale=float(v_scale),
        b_scale=float(_uniform(b_scale, "b_scale")),
        w_scale=w_scale_value,
        u_infactor=float(_uniform(u_infactor, "u_infactor")),
        v_infactor=float(_uniform(v_infactor, "v_infactor")),
    )
    return ints, info


# ----------------------------------------------------------------------------- synapses


def synapse_weight_exp(w_max: float, synapse_max: float, w_exp: int) -> tuple[int, int]:
    """A synapse's weight exponent and mantissa shift in its block (``discretize_synapse``)::

        dw_exp = floor(log2(w_max / synapse_max))      (float32; >= 0)
        weight_exp = max(w_exp - dw_exp, -6)
        (synapse_max <= 1e-16: weight_exp = -6, dw_exp = w_exp + 6)
    """
    synapse_max = np.float32(synapse_max)
    if synapse_max > 1e-16:
        dw_exp = int(np.floor(np.log2(np.float32(w_max) / synapse_max)))
        if dw_exp < 0:
            raise PassError(
                f"a synapse's largest weight {float(synapse_max):g} exceeds its block's {float(w_max):g}: "
                f"give only the weights the block holds (keep=chip.block_weight_mask(...))"
            )
        return max(w_exp - dw_exp, hw.SYNAPSE_WEIGHT_EXP_MIN), dw_exp
    return hw.SYNAPSE_WEIGHT_EXP_MIN, w_exp - hw.SYNAPSE_WEIGHT_EXP_MIN


def discretize_weights(w: np.ndarray, weight_exp: int) -> np.ndarray:
    """NengoLoihi's ``discretize_weights`` (lossy shift, 8-bit mixed-sign weights, shift
    ``s = 1``, ``m = 127``) on weights already scaled to about [-255, 255]::

        w  = clip(round(w / 2^s), -m, m)
        s2 = s + weight_exp
        if s2 < 0:  w = clip(round(w * 2^s2) / 2^s2, -m, m)       (the chip's two-part shift)
        w  = (w << s2  or  w >> -s2) << 6

    The result is what the chip adds to the input accumulator per spike (int32)."""
    s = hw.WEIGHT_SHIFT_BITS
    m = hw.WEIGHT_MANTISSA_MAX
    w = np.round(w / 2.0**s).clip(-m, m).astype(np.int32)
    s2 = s + weight_exp
    if s2 < 0:
        # round before the right shift: a bare shift would floor every weight
        w = (np.round(w * 2.0**s2) / 2**s2).clip(-m, m).astype(np.int32)
    w = np.right_shift(w, -s2) if s2 < 0 else np.left_shift(w, s2)
    return np.left_shift(w, hw.WEIGHT_SCALE_EXP)


def _discretize_unclipped(w: np.ndarray, weight_exp: int) -> np.ndarray:
    """:func:`discretize_weights` without the ±127 clips (int64): what clipping changed."""
    s = hw.WEIGHT_SHIFT_BITS
    w = np.round(w / 2.0**s).astype(np.int64)
    s2 = s + weight_exp
    if s2 < 0:
        w = (np.round(w * 2.0**s2) / 2**s2).astype(np.int64)
    w = np.right_shift(w, -s2) if s2 < 0 else np.left_shift(w, s2)
    return np.left_shift(w, hw.WEIGHT_SCALE_EXP)


def discretize_synapse_weights(
    w: np.ndarray,
    w_max: float,
    w_scale: float | np.ndarray,
    w_exp: int,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, int, WeightReport]:
    """One synapse's weights in one core block as the chip's accumulator integers
    (``discretize_synapse`` then ``discretize_weights``)::

        weight_exp, dw_exp = synapse_weight_exp(w_max, max|w|, w_exp)
        ints = discretize_weights(w * w_scale * 2^dw_exp, weight_exp)

    ``w`` are the float chip weights (:func:`.chip.synapse_weights`; float32 values),
    ``w_max``, ``w_scale``, ``w_exp`` the block's (:func:`discretize_compartment`). ``keep``
    (a boolean mask of ``w``'s shape, e.g. :func:`.chip.block_weight_mask`) says which
    weights the block's synapse holds: only those count for ``max|w|`` and the report, and
    the others come out 0. Returns the int32 integers (``w``'s shape), the synapse's
    ``weight_exp`` and a :class:`WeightReport`. The stored chip value is
    ``ints // 2^(6 + weight_exp)`` (:func:`stored_weights`)."""
    w32 = np.asarray(w, dtype=np.float32)  # NengoLoihi's synapse weights are float32
    keep = np.ones(w32.shape, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    if keep.shape != w32.shape:
        raise PassError(f"weight mask of shape {keep.shape} does not match weights of shape {w32.shape}")
    kept = w32[keep]
    synapse_max = np.abs(kept).max() if kept.size else np.float32(0)
    weight_exp, dw_exp = synapse_weight_exp(w_max, synapse_max, w_exp)

    if np.ndim(w_scale) == 0:
        # float32 weights times a float64 scalar stay float32 in NumPy 1.24 (value-based casting)
        scaled = (kept * np.float32(w_scale)) * np.float32(2.0**dw_exp)
    else:
        # a per-compartment w_scale array makes NengoLoihi scale in float64
        ws = np.broadcast_to(np.asarray(w_scale, dtype=np.float64), w32.shape)[keep]
        scaled = (kept * ws) * 2.0**dw_exp
    ints_kept = discretize_weights(scaled, weight_exp)
    clipped = ints_kept != _discretize_unclipped(scaled, weight_exp)
    s2 = hw.WEIGHT_SHIFT_BITS + weight_exp

    ints = np.zeros(w32.shape, dtype=np.int32)
    ints[keep] = ints_kept
    step = 2 ** (hw.WEIGHT_SCALE_EXP + max(s2, 0))
    largest = int(np.abs(ints_kept).max()) if ints_kept.size else 0
    report = WeightReport(
        weights=int(kept.size),
        nonzero=int(np.count_nonzero(kept)),
        clipped=int(np.count_nonzero(clipped)),
        rounded_to_zero=int(np.count_nonzero((kept != 0) & (ints_kept == 0))),
        lost_bits=max(-s2, 0),
        effective_bits=math.log2(1 + largest / step),
        weight_exp=int(weight_exp),
        dw_exp=int(dw_exp),
        scale_error=2.0 ** (weight_exp - (w_exp - dw_exp)),
    )
    return ints, int(weight_exp), report


def stored_weights(ints: np.ndarray, weight_exp: int) -> np.ndarray:
    """The values written to chip synapse memory: ``ints // 2^(6 + weight_exp)``, in
    [-256, 255] (NengoLoihi's ``discretize_weights`` check and hardware builder)."""
    return np.asarray(ints) // weight_scale(weight_exp)
