"""Recurrent Keras models: sequence inputs, ``SimpleRNN`` and the layers applied per step.

The rule (shared with the feed-forward converters): a model that contains a recurrent layer
takes sequences. Its inputs ``(steps, features)`` become IR inputs of shape ``(features,)``
with ``sequence=True`` (data ``(N, steps, features)``, ``steps`` fixed or None), and the
graph runs once per input step. A Keras tensor that holds a time axis is a
:class:`~.layout.Tensor` with ``sequence=True``: its IR value is one step of it.

``SimpleRNN`` lowers to ``h_t = act(W x_t + U h_{t-1} + b)``: two dense ops, an add, the
activation and a ``delay`` closing the loop (``h_0 = 0``). Its output is a sequence with
``return_sequences=True``; otherwise it is the value at the last step, which the graph's
output reads there. Layers after it run per step either way. Layers that act on each step
alone (Dense, ``TimeDistributed`` over Dense, Reshape, Flatten, Conv2D and 2-D pooling,
activations, Add, dropout) are converted by their feed-forward converters on one step; any
other layer taking a sequence is refused by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from snnc.compiler import ops
from snnc.compiler.errors import UnsupportedError
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.types import TensorType

from .config import LayerSpec, ModelSpec, check_not_custom
from .context import LayerCall, Source
from .layers import CONVERTERS, INFERENCE_IDENTITIES, Converter, activation_name, apply_activation
from .layout import Tensor

#: Keras's recurrent layers: a model holding one takes sequences
RECURRENT_LAYERS = (
    "SimpleRNN", "LSTM", "GRU", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
    "CuDNNLSTM", "CuDNNGRU",
)
#: activations a SimpleRNN may have (Keras's default, tanh, has no spiking counterpart)
RNN_ACTIVATIONS = ("relu", "linear")
#: layers that act on each step of a sequence alone, converted one step at a time
PER_STEP_LAYERS = ("Dense", "Activation", "ReLU", "LeakyReLU", "Add", *INFERENCE_IDENTITIES)
#: layers a TimeDistributed wrapper may hold in a recurrent model: a step of images is a step
#: of vectors reshaped (``TimeDistributed(Reshape((28, 28, 1)))``), then convolved per step
TIME_DISTRIBUTED_LAYERS = ("Dense", "Reshape", "Flatten", "Conv2D", "AveragePooling2D", "MaxPooling2D")

SEQUENCE_CONVERTERS: dict[str, Converter] = {}
#: layers besides Keras's recurrent ones that exist only on sequences (keras-spiking's, which
#: :mod:`.spiking` registers): a model holding one takes sequences too
SEQUENCE_ONLY_LAYERS: set[str] = set()


def sequence_converts(*class_names: str):
    def register(fn: Converter) -> Converter:
        for name in class_names:
            SEQUENCE_CONVERTERS[name] = fn
        return fn

    return register


def takes_sequences(class_name: str) -> bool:
    """Whether layers of ``class_name`` exist only on sequences (recurrent or keras-spiking)."""
    return class_name in RECURRENT_LAYERS or class_name in SEQUENCE_ONLY_LAYERS


def is_recurrent(model: ModelSpec) -> bool:
    """Whether ``model`` (or a model nested in it) has a layer that takes sequences."""
    return any(
        takes_sequences(layer.class_name) or (layer.model is not None and is_recurrent(layer.model))
        for layer in model.layers
    )


def sequence_input(builder: GraphBuilder, layer: LayerSpec, shape: list, source: Source) -> Tensor:
    """The input of a recurrent model: Keras ``(batch, steps, features)`` as a sequence
    input of ``(features,)``."""
    per_example = shape[1:]
    if len(per_example) != 2 or per_example[1] is None:
        raise UnsupportedError(
            f"{source.path}: input {layer.name!r} of a recurrent model has shape {shape}; snnc reads "
            "sequences (batch, steps, features) with a fixed number of features"
        )
    value = builder.input(layer.name, (int(per_example[1]),), sequence=True)
    return Tensor(value, (0,), sequence=True)


def sequence_converter(call: LayerCall, inputs: list[Tensor], supported: str) -> Callable[[LayerCall, list[Tensor]], Tensor]:
    """The converter of a layer in a recurrent model that reads a sequence or is recurrent
    (``supported``: the layer types snnc reads, for messages)."""
    class_name = call.spec.class_name
    if class_name in RECURRENT_LAYERS and class_name != "SimpleRNN":
        raise call.unsupported(
            f"snnc converts SimpleRNN layers only, for now (with activation relu or linear); supported types: {supported}"
        )
    if not all(x.sequence for x in inputs):
        if takes_sequences(class_name):
            raise call.unsupported(f"reads a tensor without a time axis; a {class_name} takes sequences (steps, features)")
        raise call.unsupported("mixes sequences (steps, ...) with tensors that have no time axis")
    converter = SEQUENCE_CONVERTERS.get(class_name)
    if converter is None:
        raise call.unsupported(
            "takes a sequence (steps, ...); layers snnc applies to sequences: "
            + ", ".join(sorted(SEQUENCE_CONVERTERS))
        )
    return converter


@sequence_converts(*PER_STEP_LAYERS)
def per_step(call: LayerCall, inputs: list[Tensor]) -> Tensor:
    """A layer acting on each step alone: its feed-forward converter on one step."""
    step = CONVERTERS[call.spec.class_name](call, [dataclasses.replace(x, sequence=False) for x in inputs])
    return dataclasses.replace(step, sequence=True)


@sequence_converts("TimeDistributed")
def time_distributed(call: LayerCall, inputs: list[Tensor]) -> Tensor:
    """``TimeDistributed(layer)``: ``layer`` applied to each step, with the wrapper's weights."""
    inner = call.config["layer"]
    check_not_custom(inner, str(call.source.path))
    if inner["class_name"] not in TIME_DISTRIBUTED_LAYERS:
        raise call.unsupported(
            f"wraps a {inner['class_name']}; in a recurrent model snnc applies TimeDistributed to: "
            + ", ".join(TIME_DISTRIBUTED_LAYERS)
        )
    inner_call = call.wrapping(f"TimeDistributed({inner['class_name']})", inner["config"])
    step = CONVERTERS[inner["class_name"]](inner_call, [dataclasses.replace(x, sequence=False) for x in inputs])
    return dataclasses.replace(step, sequence=True)


@sequence_converts("SimpleRNN")
def simple_rnn(call: LayerCall, inputs: list[Tensor]) -> Tensor:
    """``h_t = act(W x_t + U h_{t-1} + b)``, ``h_0 = 0``: Keras kernel ``(F, H)`` is ``W^T``,
    recurrent kernel ``(H, H)`` is ``U^T``."""
    if len(inputs) != 1:
        raise call.malformed(f"takes one input, the config gives it {len(inputs)}")
    x = inputs[0]
    _check_rnn_options(call)
    units = int(call.config["units"])
    features = call.shape(x.value)[0]
    expected = [("kernel", (features, units)), ("recurrent_kernel", (units, units))]
    use_bias = call.config.get("use_bias", True)
    arrays = call.weights(*expected, *([("bias", (units,))] if use_bias else []))
    kernel, recurrent = arrays[:2]
    bias = arrays[2] if use_bias else np.zeros(units, np.float32)
    previous = call.builder.delay(TensorType((units,)), name=f"{call.name}_previous")
    wx = call.add(ops.Dense(units), [x.value], {"weight": kernel.T, "bias": bias}, suffix="input")
    uh = call.add(ops.Dense(units), [previous], {"weight": recurrent.T, "bias": np.zeros(units, np.float32)}, suffix="recurrent")
    total = call.add(ops.Add(), [wx, uh], suffix="sum")
    h = apply_activation(call, Tensor(total, (0,)), call.config.get("activation", "tanh"), suffix="")
    call.builder.close_delay(previous, h.value)
    return Tensor(h.value, (0,), sequence=bool(call.config.get("return_sequences", False)))


def _check_rnn_options(call: LayerCall) -> None:
    name = activation_name(call.config.get("activation", "tanh"))
    if name not in RNN_ACTIVATIONS:
        raise call.unsupported(
            f"activation {name!r} is not supported in a SimpleRNN; supported: {', '.join(RNN_ACTIVATIONS)}"
        )
    refuse_rnn_options(call)


def refuse_rnn_options(call: LayerCall) -> None:
    """Refuse the options of Keras's RNN wrapper that snnc's recurrences do not have."""
    refused = {
        "go_backwards": "runs backwards in time",
        "stateful": "is stateful (keeps its state between batches)",
        "return_state": "returns its state as a second output",
        "time_major": "is time-major (steps before the batch)",
    }
    for key, what in refused.items():
        if call.config.get(key):
            raise call.unsupported(f"{what} ({key}=True); snnc converts forward, stateless recurrences")

