"""Build the IR graph of a parsed Keras model: inputs, every layer call in dependency order
(nested models inlined), outputs."""

from __future__ import annotations

from snnc.compiler.errors import ModelFormatError, UnsupportedError, VerificationError
from snnc.compiler.graph import Graph, GraphBuilder
from snnc.compiler.types import default_layout

from .config import LayerSpec, ModelSpec, TensorRef, input_shape
from .context import LayerCall, Source
from .layers import CONVERTERS, SIGNAL_LAYERS
from .layout import IMAGE_PERMS, Tensor, identity, image_perm, ir_rank, ir_shape, signal_perm, source_layout
from .recurrent import SEQUENCE_CONVERTERS, is_recurrent, sequence_converter, sequence_input, takes_sequences
from . import spiking  # noqa: F401  (registers keras-spiking's layers)
from . import lmu  # noqa: F401  (registers keras-lmu's LMU)
from .weights import WeightStore
from . import trained  # noqa: F401  (registers the SoftLIF and QCFS converters)

SUPPORTED_LAYERS = sorted({*CONVERTERS, *SEQUENCE_CONVERTERS, "InputLayer", "Sequential", "Functional"})


def convert_model(model: ModelSpec, store: WeightStore, source: Source) -> Graph:
    """The verified float graph of ``model``, reading weights from ``store``."""
    builder = GraphBuilder(model.name)
    data_format = image_data_format(model)
    if data_format not in (None, *IMAGE_PERMS):
        raise ModelFormatError(
            f"{source.path}: unknown data_format {data_format!r} (Keras writes {', '.join(IMAGE_PERMS)})"
        )
    signals = has_signal_layers(model)
    recurrent = is_recurrent(model)
    feeds = {
        ref: _graph_input(builder, model.layer(ref.layer), data_format, signals, source, recurrent) for ref in model.inputs
    }
    values = _convert_calls(builder, model, (), feeds, store, source)
    for ref in model.outputs:
        out = values[ref]
        name = "output" if len(model.outputs) == 1 else f"output_{ref.layer}"
        layout = source_layout(out.perm, builder.type_of(out.value).layout)
        builder.output(out.value, name=name, source_layout=layout, sequence=out.sequence)
    try:
        return builder.build(meta=source.meta())
    except VerificationError as exc:  # e.g. a softmax that is not the last layer
        raise UnsupportedError(f"{source.path}: {exc}") from None


def image_data_format(model: ModelSpec) -> str | None:
    """The data_format of the model's image layers (the first one given), which decides
    whether rank-3 inputs are HWC or CHW; None if no layer has one. Flatten's data_format
    only says how it orders elements, so it does not count."""
    for layer in model.layers:
        if layer.model is not None:
            found = image_data_format(layer.model)
        else:
            found = layer.config.get("data_format") if layer.class_name != "Flatten" else None
        if found:
            return found
    return None


def has_signal_layers(model: ModelSpec) -> bool:
    """Whether the model (or a nested one) has 1-D layers (Conv1D, 1-D pooling, ...): then its
    rank-2 inputs are 1-D signals (steps, channels), held as IR images ``(C, 1, L)``."""
    return any(
        has_signal_layers(layer.model) if layer.model is not None else layer.class_name in SIGNAL_LAYERS
        for layer in model.layers
    )


def _input_perm(rank: int, data_format: str | None, signals: bool) -> tuple[int, ...]:
    if rank == 3 and data_format:
        return image_perm(data_format)
    if rank == 2 and signals:
        return signal_perm(data_format or "channels_last")
    return identity(rank)


def _graph_input(
    builder: GraphBuilder, layer: LayerSpec, data_format: str | None, signals: bool, source: Source, recurrent: bool
) -> Tensor:
    """A model input; in a model with a recurrent layer, a sequence (:mod:`.recurrent`)."""
    shape = _declared_shape(layer, source)
    if shape is None:
        raise ModelFormatError(f"{source.path}: input {layer.name!r} declares no shape")
    if recurrent:
        return sequence_input(builder, layer, shape, source)
    per_example = shape[1:]  # the first dimension is the batch, even when fixed (often 1)
    if not per_example or any(d is None for d in per_example):
        raise UnsupportedError(
            f"{source.path}: input {layer.name!r} has shape {shape}; snnc needs a fixed size for "
            "every dimension but the batch"
        )
    perm = _input_perm(len(per_example), data_format, signals)
    value = builder.input(
        layer.name,
        ir_shape([int(d) for d in per_example], perm),
        source_layout=source_layout(perm, default_layout(ir_rank(perm))),
    )
    return Tensor(value, perm)


def _declared_shape(layer: LayerSpec, source: Source) -> list | None:
    """The input's shape (batch first), checked to be a list of positive ints or nulls."""
    try:
        shape = input_shape(layer.config)
    except TypeError:  # a number where the list belongs
        shape = False
    if shape is not None and not (shape and all(d is None or (type(d) is int and d > 0) for d in shape)):
        raise ModelFormatError(
            f"{source.path}: input {layer.name!r} declares a malformed shape; dimensions are positive integers or null"
        )
    return shape


def _convert_calls(builder, model: ModelSpec, scope, feeds: dict, store, source) -> dict[TensorRef, Tensor]:
    """Convert every call of every layer of ``model``, in config order as far as inputs
    allow (configs list layers in call order, except that a shared layer's later calls may
    need layers listed after it); returns all tensors by reference."""
    values: dict[TensorRef, Tensor] = dict(feeds)
    pending = [(layer, i) for layer in model.layers for i in range(len(layer.calls))]
    while pending:
        waiting = []
        for layer, i in pending:
            if all(ref in values for ref in layer.calls[i]):
                outputs = _convert_call(builder, layer, [values[ref] for ref in layer.calls[i]], scope, store, source)
                values.update({TensorRef(layer.name, i, k): out for k, out in enumerate(outputs)})
            else:
                waiting.append((layer, i))
        if len(waiting) == len(pending):
            layer, i = waiting[0]
            missing = next(ref for ref in layer.calls[i] if ref not in values)
            raise ModelFormatError(
                f"{source.path}: layer {layer.name!r} reads output {missing.tensor} of call "
                f"{missing.call} of layer {missing.layer!r}, which the model never computes"
            )
        pending = waiting
    for ref in model.outputs:
        if ref not in values:
            raise ModelFormatError(f"{source.path}: model output {ref.layer!r} is never computed")
    return values


def _convert_call(builder, layer: LayerSpec, inputs: list[Tensor], scope, store, source) -> list[Tensor]:
    scope = (*scope, layer)
    if layer.model is not None:  # a nested model: inline its layers
        inner = layer.model
        if len(inputs) != len(inner.inputs):
            raise ModelFormatError(
                f"{source.path}: nested model {layer.name!r} takes {len(inner.inputs)} inputs, "
                f"is called with {len(inputs)}"
            )
        values = _convert_calls(builder, inner, scope, dict(zip(inner.inputs, inputs)), store, source)
        return [values[ref] for ref in inner.outputs]
    call = LayerCall(builder, scope, source, store)
    if takes_sequences(layer.class_name) or any(x.sequence for x in inputs):
        converter = sequence_converter(call, inputs, ", ".join(SUPPORTED_LAYERS))
    else:
        converter = CONVERTERS.get(layer.class_name)
    if converter is None:
        raise call.unsupported(f"layer type not supported; supported types: {', '.join(SUPPORTED_LAYERS)}")
    try:
        return [converter(call, inputs)]
    except (KeyError, TypeError, ValueError) as exc:  # a config missing a key or with a bad value
        raise call.malformed(f"malformed layer config ({type(exc).__name__}: {exc})") from exc
