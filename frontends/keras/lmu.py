"""keras-lmu's ``LMU`` layer (Voelker et al. 2019; keras-lmu 0.9.0) on the IR's recurrence.

One step of the cell, for input ``x_t`` (``F``), memory ``m`` (``memory_d * order``, unit
``d``'s Legendre coefficients contiguous) and hidden output ``h``, all starting at 0::

    u_t = E_x x_t [+ E_h h_{t-1}] [+ R m_{t-1}] [+ b]         encoders: kernel, recurrent_kernel
    m_t = A_bar m_{t-1} + B_bar u_t                            per memory unit (block diagonal)
    h_t = hidden_cell([m_t, x_t?])                             SimpleRNNCell, Dense or none

``A_bar`` and ``B_bar`` are the Legendre delay system (:func:`legendre_system`) discretized
over one step as keras-lmu does (:func:`discretized`) for the saved ``theta`` (or the trained
``theta_inv`` weight with ``trainable_theta``). keras-lmu runs an LMU without recurrent
connections as a convolution with the system's impulse response (``LMUFeedforward``); that is
the same recurrence, which is what snnc builds either way. ``kernel_initializer=None`` means
no encoder (the identity); dropout acts only in training.

The memory is dense, add and delay ops only, a linear part of the graph that
``convert_to_spiking`` leaves alone; the hidden cell's activation is the relu node that it turns
into neurons: a hybrid network (non-spiking memory, spiking hidden layer).
"""

from __future__ import annotations

import numpy as np

from snnc.compiler import ops
from snnc.compiler.types import TensorType

from .config import check_not_custom
from .context import LayerCall
from .layers import apply_activation, activation_name
from .layout import Tensor
from .recurrent import RNN_ACTIVATIONS, SEQUENCE_ONLY_LAYERS, sequence_converts

SEQUENCE_ONLY_LAYERS.add("LMU")
#: the hidden cells snnc reads (besides ``None``: the memory is the output) and their
#: activations: a SimpleRNN's, which have spiking counterparts
HIDDEN_CELL_ACTIVATIONS = {"SimpleRNNCell": RNN_ACTIVATIONS, "Dense": RNN_ACTIVATIONS}
DISCRETIZERS = ("zoh", "euler")
#: terms of the Taylor series of the matrix exponential after scaling to a norm <= 1/2:
#: the remainder is below 2^-18 / 18! (about 1e-21), far under float64 rounding
EXPM_TERMS = 18


def legendre_system(order: int) -> tuple[np.ndarray, np.ndarray]:
    """The continuous Legendre delay system for a window of one time unit, ``dm/dt = A m + B u``
    (Voelker et al. 2019): ``A[i, j] = (2i + 1) * (-1 if i < j else (-1)^(i - j + 1))``,
    ``B[i] = (2i + 1) (-1)^i``, in float64."""
    i, j = np.indices((order, order))
    r = 2 * np.arange(order, dtype=np.float64) + 1
    a = np.where(i < j, -1.0, (-1.0) ** (i - j + 1)) * r[:, None]
    b = (-1.0) ** np.arange(order) * r
    return a, b


def expm(matrix: np.ndarray) -> np.ndarray:
    """The matrix exponential by scaling and squaring: ``exp(M) = exp(M / 2^s)^(2^s)``, with
    ``s`` such that ``||M / 2^s||_1 <= 1/2`` and the scaled exponential a Taylor series."""
    norm = np.abs(matrix).sum(axis=0).max()
    squarings = max(0, int(np.ceil(np.log2(norm))) + 1) if norm > 0 else 0
    scaled = matrix / 2.0**squarings
    term = result = np.eye(len(matrix))
    for k in range(1, EXPM_TERMS + 1):
        term = term @ scaled / k
        result = result + term
    for _ in range(squarings):
        result = result @ result
    return result


def discretized(order: int, theta_inv: float, discretizer: str) -> tuple[np.ndarray, np.ndarray]:
    """``(A_bar, B_bar)`` of ``m_t = A_bar m_{t-1} + B_bar u_t`` for the Legendre system of
    window ``theta = 1 / theta_inv`` steps, as keras-lmu discretizes it: ``"zoh"`` (zero-order
    hold) ``exp([[A, B], [0, 0]] / theta) = [[A_bar, B_bar], [0, I]]``; ``"euler"``
    ``A_bar = I + A / theta``, ``B_bar = B / theta``."""
    a, b = legendre_system(order)
    if discretizer == "zoh":
        block = np.zeros((order + 1, order + 1))
        block[:order, :order], block[:order, order] = a * theta_inv, b * theta_inv
        exp = expm(block)
        return exp[:order, :order], exp[:order, order]
    return np.eye(order) + a * theta_inv, b * theta_inv


@sequence_converts("LMU")
def lmu(call: LayerCall, inputs: list[Tensor]) -> Tensor:
    """The LMU cell per step (module docstring); a sequence with ``return_sequences``, else
    its last step."""
    if len(inputs) != 1:
        raise call.malformed(f"takes one input, the config gives it {len(inputs)}")
    x = inputs[0]
    if x.rank != 1:
        raise call.unsupported(f"reads steps of rank {x.rank}; snnc converts an LMU on sequences of vectors (steps, features)")
    cfg = call.config
    hidden = _hidden_cell(call)
    if hidden is None and cfg.get("hidden_to_memory"):
        raise call.malformed("has hidden_to_memory=True without a hidden cell")
    memory_d, order = int(cfg["memory_d"]), int(cfg["order"])
    cell_inputs = memory_d * order + (call.shape(x.value)[0] if cfg.get("input_to_hidden") else 0)
    units = cell_inputs if hidden is None else int(hidden["config"]["units"])
    weights = _lmu_weights(call, hidden, call.shape(x.value)[0], cell_inputs, units)

    memory_previous = call.builder.delay(TensorType((memory_d * order,)), name=f"{call.name}_memory_previous")
    hidden_previous = None
    if cfg.get("hidden_to_memory") or (hidden is not None and hidden["class_name"] == "SimpleRNNCell"):
        hidden_previous = call.builder.delay(TensorType((units,)), name=f"{call.name}_hidden_previous")
    u = _encoded_input(call, x.value, hidden_previous, memory_previous, weights)
    memory = _memory(call, memory_previous, u, _memory_matrices(call, order, weights))
    call.builder.close_delay(memory_previous, memory)

    cell_input = call.add(ops.Concat(), [memory, x.value], suffix="hidden_input") if cfg.get("input_to_hidden") else memory
    output = cell_input if hidden is None else _hidden_output(call, hidden, cell_input, hidden_previous, weights)
    if hidden_previous is not None:
        call.builder.close_delay(hidden_previous, output)
    return Tensor(output, (0,), sequence=bool(cfg.get("return_sequences", False)))


def _lmu_weights(call: LayerCall, hidden: dict | None, features: int, cell_inputs: int, units: int) -> dict[str, np.ndarray]:
    """The LMU's arrays by name, in Keras's order: the hidden cell's (tracked first), then the
    encoder ``kernel`` (the identity when ``kernel_initializer=None``), ``bias``,
    ``theta_inv`` and ``recurrent_kernel``, each where the config has it."""
    cfg = call.config
    memory_d = int(cfg["memory_d"])
    encoded = features + (units if cfg.get("hidden_to_memory") else 0)
    has_kernel = cfg.get("kernel_initializer", "glorot_uniform") is not None
    if not has_kernel and encoded != memory_d:
        raise call.malformed(f"has no encoder (kernel_initializer=None), so it needs {memory_d} (memory_d) inputs, not {encoded}")
    expected = _hidden_weights(hidden, cell_inputs, units)
    expected += [("kernel", (encoded, memory_d))] if has_kernel else []
    expected += [("bias", (memory_d,))] if cfg.get("use_bias") else []
    expected += [("theta_inv", ())] if cfg.get("trainable_theta") else []
    expected += [("recurrent_kernel", (memory_d * int(cfg["order"]), memory_d))] if cfg.get("memory_to_memory") else []
    weights = dict(zip((label for label, _ in expected), call.weights(*expected)))
    if not has_kernel:
        weights["kernel"] = np.eye(encoded, dtype=np.float32)
    return weights


def _memory_matrices(call: LayerCall, order: int, weights: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(A_bar, B_bar)`` for the saved window: the trained ``theta_inv``, else ``1 / theta``."""
    discretizer = call.config.get("discretizer", "zoh")
    if discretizer not in DISCRETIZERS:
        raise call.unsupported(f"discretizer {discretizer!r}; keras-lmu (and snnc) discretize with: {', '.join(DISCRETIZERS)}")
    theta_inv = float(weights["theta_inv"]) if "theta_inv" in weights else 1 / float(call.config["theta"])
    if not (np.isfinite(theta_inv) and theta_inv >= 0):
        raise call.malformed(f"its window gives 1/theta = {theta_inv}; keras-lmu's windows are positive")
    return discretized(order, theta_inv, discretizer)


def _memory(call: LayerCall, memory_previous: str, u: str, matrices: tuple[np.ndarray, np.ndarray]) -> str:
    """``m_t = A_bar m_{t-1} + B_bar u_t`` for every memory unit: block-diagonal matrices."""
    a_bar, b_bar = matrices
    blocks = np.eye(call.shape(u)[0])
    decay = _dense(call, memory_previous, np.kron(blocks, a_bar), "memory_decay")
    drive = _dense(call, u, np.kron(blocks, b_bar[:, None]), "memory_input")
    return call.add(ops.Add(), [decay, drive], suffix="memory")


def _hidden_cell(call: LayerCall) -> dict | None:
    """The hidden cell's config (``class_name``, ``config``), checked to be one snnc reads."""
    cell = call.config.get("hidden_cell")
    if cell is None:
        return None
    check_not_custom(cell, str(call.source.path))
    kind = cell["class_name"]
    allowed = HIDDEN_CELL_ACTIVATIONS.get(kind)
    if allowed is None:
        raise call.unsupported(f"has a {kind} hidden cell; snnc reads LMU hidden cells {', '.join(HIDDEN_CELL_ACTIVATIONS)} or None")
    activation = _hidden_activation(cell)
    if activation not in allowed:
        raise call.unsupported(f"its {kind} hidden cell has activation {activation!r}; supported: {', '.join(allowed)}")
    return cell


def _hidden_activation(cell: dict) -> str:
    """The hidden cell's activation (Keras's defaults: tanh for a SimpleRNNCell, none for Dense)."""
    default = "tanh" if cell["class_name"] == "SimpleRNNCell" else "linear"
    return activation_name(cell["config"].get("activation", default)) or "linear"


def _hidden_weights(hidden: dict | None, inputs: int, units: int) -> list[tuple[str, tuple[int, ...]]]:
    """The hidden cell's weights, first in the LMU's (it is tracked before the memory's)."""
    if hidden is None:
        return []
    expected = [("hidden kernel", (inputs, units))]
    if hidden["class_name"] == "SimpleRNNCell":
        expected.append(("hidden recurrent_kernel", (units, units)))
    return expected + ([("hidden bias", (units,))] if hidden["config"].get("use_bias", True) else [])


def _dense(call: LayerCall, x: str, weight: np.ndarray, suffix: str, bias: np.ndarray | None = None) -> str:
    """``weight @ x + bias`` (``weight``: IR ``(out, in)``, no bias: zeros)."""
    units = weight.shape[0]
    params = {"weight": weight.astype(np.float32), "bias": np.zeros(units, np.float32) if bias is None else bias}
    return call.add(ops.Dense(units), [x], params, suffix=suffix)


def _encoded_input(call: LayerCall, x: str, hidden_previous: str | None, memory_previous: str, weights: dict) -> str:
    """``u_t``: the encoders applied to the input, and with ``hidden_to_memory`` /
    ``memory_to_memory`` to the previous hidden output and memory (Keras kernel ``(in, out)``:
    the IR's transposed; the input's rows come first)."""
    features, kernel = call.shape(x)[0], weights["kernel"]
    terms = [_dense(call, x, kernel[:features].T, "encoder", weights.get("bias"))]
    if call.config.get("hidden_to_memory"):
        terms.append(_dense(call, hidden_previous, kernel[features:].T, "hidden_encoder"))
    if call.config.get("memory_to_memory"):
        terms.append(_dense(call, memory_previous, weights["recurrent_kernel"].T, "memory_encoder"))
    return terms[0] if len(terms) == 1 else call.add(ops.Add(), terms, suffix="encoded")


def _hidden_output(call: LayerCall, hidden: dict, cell_input: str, hidden_previous: str | None, weights: dict) -> str:
    """The hidden cell on ``cell_input``: ``act(W i + b)`` (Dense) or ``act(W i + U h_{t-1} + b)``
    (SimpleRNNCell)."""
    bias = weights.get("hidden bias")
    total = _dense(call, cell_input, weights["hidden kernel"].T, "hidden", bias)
    if hidden["class_name"] == "SimpleRNNCell":
        recurrent = _dense(call, hidden_previous, weights["hidden recurrent_kernel"].T, "hidden_recurrent")
        total = call.add(ops.Add(), [total, recurrent], suffix="hidden_sum")
    activation = _hidden_activation(hidden)
    return apply_activation(call, Tensor(total, (0,)), activation, suffix=f"hidden_{activation}").value
