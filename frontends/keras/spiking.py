"""keras-spiking's layers (``keras_spiking.SpikingActivation``, ``Lowpass``, ``Alpha``) in
sequence models.

keras-spiking models run on the Keras time axis: one Keras step is one simulation step of
``dt`` seconds. Their layers read sequences only, so a model holding one takes sequences
(:mod:`.recurrent`): the IR graph runs once per Keras step.

- ``SpikingActivation("relu", dt)`` becomes ``spiking_relu{dt}``: as a float op the relu,
  the rate network that keras-spiking computes with ``spiking_aware_training=False``;
  ``convert_to_spiking`` turns it into the sigma-delta neurons keras-spiking runs at inference,
  where each unit integrates the *rate*, ``v += relu(x) dt; n = floor(v); v -= n; y = n / dt``
  (with the trained ``dt``, and ``v`` from a fixed start instead of keras-spiking's random one
  in [0, 1)). Threshold balancing leaves it at its trained scale.
- ``SpikingActivation`` over another activation becomes that activation itself (its rate
  network), converted as any such activation is (a sigma-delta neuron has no negative
  events, which keras-spiking gives a ``linear`` or ``tanh`` base).
- Either node's metadata records ``keras_spiking.dt``.
- ``Lowpass(tau, dt)`` is exactly its zero-order-hold recurrence,
  ``y_t = (1 - a) x_t + a y_{t-1}``, ``a = exp(-dt / max(tau, 1e-8))`` per unit, ``y_0`` the
  trained ``initial_level``.
- ``Alpha(tau, dt)`` is exactly its two-state zero-order-hold recurrence (keras-spiking's
  ``AlphaCell``), the second state being the output and starting at ``initial_level``.

``return_sequences=False`` gives the last step, as for ``SimpleRNN``. Options that keep state
between calls or change the RNN's shape (``stateful``, ``return_state``, ``time_major``) are
refused by name.
"""

from __future__ import annotations

import numpy as np

from snnc.compiler import ops
from snnc.compiler.types import TensorType

from .context import LayerCall
from .layers import activation_name, apply_activation
from .layout import Tensor
from .recurrent import SEQUENCE_ONLY_LAYERS, refuse_rnn_options, sequence_converts

KERAS_SPIKING_LAYERS = ("SpikingActivation", "Lowpass", "Alpha")
SEQUENCE_ONLY_LAYERS.update(KERAS_SPIKING_LAYERS)
#: keras-spiking's filters clip their time constants at this to stay finite
MIN_TAU = 1e-8


def _sequence(call: LayerCall, inputs: list[Tensor]) -> Tensor:
    if len(inputs) != 1:
        raise call.malformed(f"takes one input, the config gives it {len(inputs)}")
    refuse_rnn_options(call)
    return inputs[0]


def _dt(call: LayerCall) -> float:
    """The layer's simulation step in seconds (its config always holds it: keras-spiking
    writes its default, 0.001, there)."""
    dt = float(call.config["dt"])
    if not dt > 0:
        raise call.malformed(f"dt={dt} is not a positive time step")
    return dt


@sequence_converts("SpikingActivation")
def spiking_activation(call: LayerCall, inputs: list[Tensor]) -> Tensor:
    """``spiking_relu{dt}`` over a relu, otherwise the base activation on each step (the rate
    network), with ``keras_spiking.dt`` in the node's metadata."""
    x = _sequence(call, inputs)
    dt = _dt(call)
    meta = {"keras_spiking": {"dt": dt}}
    if activation_name(call.config["activation"]) == "relu":
        y = Tensor(call.add(ops.SpikingRelu(dt), [x.value], meta=meta), x.perm)
    else:
        y = apply_activation(call, Tensor(x.value, x.perm), call.config["activation"], suffix="", meta=meta)
    return Tensor(y.value, y.perm, sequence=bool(call.config.get("return_sequences", True)))


def _filter_weights(call: LayerCall, x: Tensor, lead: tuple[int, ...]) -> tuple[int, np.ndarray, np.ndarray]:
    """``(units, initial_level, tau)`` of a filter on vectors (weights of shape
    ``(*lead, units)``), flattened to ``(units,)``, tau clipped as keras-spiking clips it."""
    if x.rank != 1:
        raise call.unsupported(
            f"filters steps of rank {x.rank}; snnc converts {call.kind} on sequences of vectors (steps, features)"
        )
    units = call.shape(x.value)[0]
    level, tau = call.weights(("initial_level", (*lead, units)), ("tau", (*lead, units)))
    return units, level.reshape(units), np.maximum(tau.reshape(units), MIN_TAU)


def lowpass_decay(tau: np.ndarray, dt: float) -> np.ndarray:
    """``a = exp(-dt / tau)``: Lowpass's zero-order-hold decay per step, in float32 as
    keras-spiking computes it."""
    return np.exp(np.float32(-dt) / tau.astype(np.float32))


@sequence_converts("Lowpass")
def lowpass(call: LayerCall, inputs: list[Tensor]) -> Tensor:
    """``y_t = (1 - a) x_t + a y_{t-1}``, ``y_0 = initial_level`` (weights ``initial_level``
    and ``tau``, each ``(1, units)``)."""
    x = _sequence(call, inputs)
    units, level, tau = _filter_weights(call, x, lead=(1,))
    a = lowpass_decay(tau, _dt(call))
    (y,) = linear_recurrence(call, x.value, [[a]], [1 - a], [level], {"keras_spiking": {"dt": _dt(call)}})
    return Tensor(y, (0,), sequence=bool(call.config.get("return_sequences", True)))


def alpha_matrices(tau: np.ndarray, dt: float) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
    """keras-spiking's ``AlphaCell`` zero-order-hold discretization, per unit: ``A`` (2x2)
    and ``B`` (2) of ``s_t = A s_{t-1} + B x_t``, output ``s_t[1]``; with ``r = dt / tau``,
    ``e = exp(-r)``: ``A = e [[1 - r, -r / tau], [dt, 1 + r]]``, ``B = [e r / tau, 1 - e (1 + r)]``."""
    tau = tau.astype(np.float32)
    r = np.float32(dt) / tau
    e = np.exp(-r)
    a = [[e * (1 - r), -e * r / tau], [e * np.float32(dt), e * (1 + r)]]
    b = [e * r / tau, 1 - e * (1 + r)]
    return a, b


@sequence_converts("Alpha")
def alpha(call: LayerCall, inputs: list[Tensor]) -> Tensor:
    """The alpha filter's two-state recurrence (:func:`alpha_matrices`); the output state
    starts at ``initial_level`` (``(units,)``), the other at 0 (weight ``tau``: ``(units,)``)."""
    x = _sequence(call, inputs)
    units, level, tau = _filter_weights(call, x, lead=())
    a, b = alpha_matrices(tau, _dt(call))
    init = [np.zeros(units, np.float32), level]
    _, y = linear_recurrence(call, x.value, a, b, init, {"keras_spiking": {"dt": _dt(call)}})
    return Tensor(y, (0,), sequence=bool(call.config.get("return_sequences", True)))


def linear_recurrence(call: LayerCall, x: str, a, b, init, meta: dict) -> list[str]:
    """The states of ``s_t = A s_{t-1} + B x_t`` with per-unit coefficients (``a[i][j]``,
    ``b[i]``: arrays of ``(units,)``), ``s_0 = init``; returns each state's value, the last one
    carrying ``meta``.

    The delays start at 0 (a delay's ``init`` is one number, the initial levels are per unit):
    the loop runs on ``z = s - init``, ``z_t = A z_{t-1} + B x_t + (A init - init)``, and each
    state is ``z + init``, added only where ``init`` is not 0."""
    units = call.shape(x)[0]
    n = len(b)
    names = [f"s{i}_" if n > 1 else "" for i in range(n)]
    delays = [call.builder.delay(TensorType((units,)), name=f"{call.name}_{name}previous") for name in names]
    states = []
    for i, name in enumerate(names):
        offset = sum(a[i][j] * init[j] for j in range(n)) - init[i]
        terms = [call.add(ops.Affine(), [x], {"scale": b[i], "shift": offset}, suffix=f"{name}input")]
        for j, delay in enumerate(delays):
            params = {"scale": a[i][j], "shift": np.zeros(units)}
            terms.append(call.add(ops.Affine(), [delay], params, suffix=f"{name}decay{j if n > 1 else ''}"))
        node_meta = meta if i == n - 1 else None
        if np.any(init[i]):
            z = call.add(ops.Add(), terms, suffix=f"{name}from_level")
            params = {"scale": np.ones(units), "shift": init[i]}
            state = call.add(ops.Affine(), [z], params, suffix=name.rstrip("_"), meta=node_meta)
        else:
            z = state = call.add(ops.Add(), terms, suffix=name.rstrip("_"), meta=node_meta)
        call.builder.close_delay(delays[i], z)
        states.append(state)
    return states
