"""Bistable integrate-and-fire neurons (BSNN, Li, Zeng & Zhao 2021): the ``bistable_neuron`` op,
its step and rate curve. The choices the paper leaves open are argued in docs/bsnn.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import ops
from ..errors import PassError
from . import NUMPY, Neuron, register


@ops.register
@dataclass(frozen=True)
class BistableNeuron(ops.Op):
    """Bistable integrate-and-fire neurons: time is cut into cycles of ``period`` steps,
    ``k = (t - 1) // period``; with ``c = k - phase`` a population integrates during the
    cycles with ``c >= 0`` even and fires during those with ``c`` odd (idle while ``c < 0``,
    until the layers before it have delivered their first cycle)::

        v_t = v_{t-1} + gain * x_t        where c even      (v_0 = v_init; input
                                                              outside these cycles is ignored)
        s_t = 1 if c odd and v_t >= threshold else 0         (at most one spike per step)
        v_t = v_t - s_t * threshold                          (reset by subtraction)
        y_t = amplitude * s_t

    So a fire cycle sends ``min(floor(v / threshold), period)`` spikes, the potential
    accumulated over the integrate cycle before (the remainder carries over), while the next
    layer (``phase + 1``) integrates exactly then. For an input ``x`` held during the integrate
    cycles, the output per step of the fire cycles approaches ``amplitude * clip(gain * x /
    threshold, 0, 1)``; over all steps it is half that."""

    NAME: ClassVar[str] = "bistable_neuron"
    ALLOWED_STAGES: ClassVar[tuple[str, ...]] = ops.SPIKING_STAGES

    period: int = 1
    phase: int = 0
    threshold: float = 1.0
    gain: float = 1.0
    v_init: float = 0.0
    amplitude: float = 1.0

    def infer_type(self, inputs):
        ops.expect_positive(self, "period", "threshold", "gain", "amplitude")
        if self.phase < 0:
            raise ops.OpTypeError(f"bistable_neuron phase must not be negative, got {self.phase}")
        return ops.spikes_like(inputs[0])


def cycle_state(p, t: int) -> tuple[bool, bool]:
    """Whether neurons with parameters ``p`` integrate, and whether they fire, at the step
    after ``t`` steps (``c = t // period - phase``: even integrates, odd fires, < 0 idle)."""
    c = int(t) // p.period - p.phase
    return c >= 0 and c % 2 == 0, c >= 0 and c % 2 == 1


def fire_steps(p, steps: int) -> int:
    """The steps of the fire cycles begun within ``steps`` steps, whole cycles (a fire cycle
    sends its spikes first, one per step, so a cut one has sent most of them)."""
    last = (steps - 1) // p.period - p.phase  # the last cycle begun, relative to the phase
    return p.period * max((last + 1) // 2, 0)


@register
class Bistable(Neuron):
    """Bistable integrate-and-fire (:class:`BistableNeuron`): integrate during one cycle, fire
    the next, so each layer passes on its complete input of a cycle (BSNN)."""

    NAME = "bistable"
    OP = BistableNeuron
    LINEAR_RATES = True

    def initial_state(self, p, shape):
        return {"v": np.full(shape, float(p.v_init)), "t": np.zeros((), dtype=np.int64)}

    def step(self, p, state, x, xp=NUMPY):
        """Integrate ``v += gain * x`` in an integrate cycle; in a fire cycle ``s = v >= threshold``
        and ``v -= threshold`` where ``s``; ``t`` counts the steps. Returns ``({"v", "t"}, s)``."""
        integrating, firing = cycle_state(p, state["t"])
        v = state["v"] + p.gain * x if integrating else state["v"]
        spiked = (v >= p.threshold) if firing else xp.zeros_like(v) > 0
        v = xp.where(spiked, v - p.threshold, v) if firing else v
        return {"v": v, "t": state["t"] + 1}, spiked

    def rates(self, p, x):
        """Per step of the fire cycles, for ``x`` held during the integrate cycles:
        ``amplitude * clip(gain * x / threshold, 0, 1)`` (a cycle of ``period`` steps
        integrates ``period * gain * x`` and sends at most ``period`` spikes)."""
        return p.amplitude * np.clip(p.gain * np.asarray(x, dtype=np.float64) / p.threshold, 0.0, 1.0)

    def output_steps(self, p, steps):
        """Its output stands for its fire cycles' steps only (:func:`fire_steps`)."""
        return fire_steps(p, steps)

    def from_relu(self, *, max_rate, threshold=1.0, reset="subtract", v_init=0.5, v_min=None, period=2, bursts=1, **_):
        """As IF's (gain ``threshold * max_rate``, ``v_init`` times the threshold, so the first
        cycle rounds to nearest) with ``period`` steps per cycle; phases are set from the
        graph (:mod:`snnc.compiler.passes.bistable`). Resets by subtraction, unbounded below."""
        if max_rate > 1:
            raise PassError(f"option max_rate={max_rate}: a bistable neuron fires at most once per step")
        if bursts != 1:
            raise PassError(f"option bursts={bursts}: bistable neurons fire at most once per step; burst spikes need neuron=if")
        if reset != "subtract" or v_min is not None:
            raise PassError(
                f"neuron=bistable resets by subtraction with an unbounded membrane (got reset={reset}, "
                f"floor={'zero' if v_min is not None else 'none'}); use reset=subtract,floor=none"
            )
        if period < 1:
            raise PassError(f"option period={period}: a bistable cycle lasts at least one step")
        return BistableNeuron(
            period=period, threshold=threshold, gain=threshold * max_rate, v_init=v_init * threshold, amplitude=1.0 / max_rate
        )

    def relay(self, amplitude: float, period: int, phase: int) -> BistableNeuron:
        """A synchronous neuron: gain 1, threshold ``amplitude`` (each input spike of that
        amplitude gives one output spike, one cycle later), starting at half the threshold so
        rounding in the accumulated sum cannot lose a spike."""
        return BistableNeuron(period=period, phase=phase, threshold=amplitude, gain=1.0, v_init=amplitude / 2, amplitude=amplitude)
