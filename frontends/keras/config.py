"""Parse a Keras model config (JSON data) into one normalized description.

Keras generations write the same model differently:

- Keras 2.0/2.1 Sequential: the config *is* the list of layers, the first layer carries
  ``batch_input_shape``; Keras 2.2+ and Keras 3 wrap it as ``{"name", "layers"}``.
- Functional ``inbound_nodes``: Keras 2 writes each call as a list of
  ``[layer, node_index, tensor_index, kwargs]``; Keras 3 writes
  ``{"args": [...], "kwargs": {...}}`` with tensors as ``__keras_tensor__`` dicts holding a
  ``keras_history`` of ``[layer, node_index, tensor_index]``.
- Input shapes: ``batch_input_shape`` (Keras 2) or ``batch_shape`` (Keras 3).
- A nested model built from an ``Input`` has a first call of its own (the one that built it)
  which configs leave out but still count in node indices.

:func:`parse_model` resolves all of that into :class:`ModelSpec`, whose tensor references
name *calls* (0 = the layer's first call in the config), so the converter never sees the
differences. Raises :class:`KeyError`/:class:`TypeError`/:class:`ValueError` on malformed
data; the file readers turn those into :class:`~snnc.compiler.errors.ModelFormatError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from snnc.compiler.errors import UnsupportedError

MODEL_CLASSES = ("Sequential", "Functional", "Model")
#: Layers not built into Keras which snnc reads as data: those that train networks for spiking
#: neurons (converters in :mod:`.trained`) and keras-lmu's LMU (:mod:`.lmu`); the name a config
#: gives them -> the class name the converters use. Keras 2 writes a registered class's
#: ``package>Class`` name as its ``class_name``; Keras 3 writes ``Class`` with the registered
#: name beside it; nengo-extras' ``SoftLIF`` is not registered, so files name it ``SoftLIF`` alone.
TRAINED_LAYERS = {
    "snnc>SoftLIF": "SoftLIF", "snnc>QCFS": "QCFS", "SoftLIF": "SoftLIF", "QCFS": "QCFS", "keras-lmu>LMU": "LMU",
}
CONSTANT = "_CONSTANT_VALUE"  # Keras 2's marker for a non-tensor call argument


@dataclass(frozen=True)
class TensorRef:
    """Output ``tensor`` of call number ``call`` of the layer named ``layer``."""

    layer: str
    call: int = 0
    tensor: int = 0


@dataclass(frozen=True, eq=False)
class LayerSpec:
    """One layer of a model: its class, its config and the inputs of each call.

    ``ordinal`` counts the layers of the same class before this one in its model: the
    ``.keras`` weights file addresses layers by class name and that count, not by name.
    ``model`` is the inner model of a nested Sequential/functional layer.
    """

    name: str
    class_name: str
    config: dict
    calls: tuple[tuple[TensorRef, ...], ...]
    ordinal: int
    model: "ModelSpec | None" = None


@dataclass(frozen=True, eq=False)
class ModelSpec:
    name: str
    layers: tuple[LayerSpec, ...]
    inputs: tuple[TensorRef, ...]
    outputs: tuple[TensorRef, ...]

    def layer(self, name: str) -> LayerSpec:
        for spec in self.layers:
            if spec.name == name:
                return spec
        raise KeyError(f"no layer named {name!r} in model {self.name!r}")


def parse_model(data: dict, where: str) -> ModelSpec:
    """Normalize a model config ``{"class_name": ..., "config": ...}``; ``where`` names the
    file in error messages."""
    class_name = data["class_name"]
    if class_name not in MODEL_CLASSES:
        raise UnsupportedError(
            f"{where}: the model is a {class_name}, not a Sequential or functional Keras model "
            "(subclassed models hold Python code, which snnc does not run)"
        )
    check_not_custom(data, where)
    if class_name == "Sequential":
        return _parse_sequential(data["config"], where)
    return _parse_functional(data["config"], where)


def trained_layer_class(data: dict) -> str | None:
    """The class name under which :data:`TRAINED_LAYERS` knows a layer's data, or None."""
    return TRAINED_LAYERS.get(data.get("registered_name") or data["class_name"])


def check_not_custom(data: dict, where: str) -> None:
    """Reject custom (user-registered) classes that merely reuse a built-in class name; the
    :data:`TRAINED_LAYERS` are custom classes read as data (their converters check the config
    is the one those classes write)."""
    if trained_layer_class(data):
        return
    module = data.get("module")
    registered = data.get("registered_name")
    builtin_module = module is None or module.split(".")[0] in ("keras", "tf_keras", "tensorflow")
    if not builtin_module or (registered and ">" in registered):
        name = data.get("config", {}).get("name", "?") if isinstance(data.get("config"), dict) else "?"
        raise UnsupportedError(
            f"{where}: layer {name!r} is a custom class ({registered or data.get('class_name')} from "
            f"module {module}); snnc reads built-in Keras layers only and never runs model code"
        )


def input_shape(config: dict) -> list | None:
    """The shape (with batch dimension) an InputLayer or a model's first layer declares."""
    for key in ("batch_input_shape", "batch_shape"):
        if config.get(key) is not None:
            return list(config[key])
    for key in ("input_shape", "shape"):
        if config.get(key) is not None:
            return [None, *config[key]]
    return None


def _text(value, what: str) -> str:
    """A name from the config, checked to be a string (it names IR values)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} is {value!r}, not a string")
    return value


def _layer_spec(data: dict, calls, ordinals: dict[str, int], where: str) -> LayerSpec:
    check_not_custom(data, where)
    class_name = trained_layer_class(data) or data["class_name"]
    config = data["config"]
    if not isinstance(config, dict) and not (class_name == "Sequential" and isinstance(config, list)):
        raise TypeError(f"the config of a {class_name} layer is a {type(config).__name__}, not an object")
    name = _text(data.get("name") or config["name"], "a layer name")
    ordinal = ordinals.get(class_name, 0)
    ordinals[class_name] = ordinal + 1
    inner = parse_model(data, where) if class_name in MODEL_CLASSES else None
    return LayerSpec(name, class_name, config, calls, ordinal, inner)


def _parse_sequential(config, where: str) -> ModelSpec:
    if isinstance(config, list):  # Keras 2.0/2.1
        name, layers = "sequential", config
    else:
        name, layers = _text(config.get("name", "sequential"), "the model name"), config["layers"]
        if not layers:
            raise ValueError("the Sequential model has no layers")
    specs: list[LayerSpec] = []
    ordinals: dict[str, int] = {}
    first = layers[0]
    if first["class_name"] == "InputLayer":
        specs.append(_layer_spec(first, (), ordinals, where))
        layers = layers[1:]
    else:  # Keras 2 before InputLayers were saved: the first layer declares the input
        # (None for a nested Sequential that was never built: its caller gives the shape)
        shape = input_shape(first["config"])
        if shape is None and isinstance(config, dict) and config.get("build_input_shape"):
            shape = list(config["build_input_shape"])
        input_name = f"{first['config']['name']}_input"
        specs.append(LayerSpec(input_name, "InputLayer", {"batch_input_shape": shape, "name": input_name}, (), 0))
    previous = TensorRef(specs[0].name)
    for data in layers:
        spec = _layer_spec(data, ((previous,),), ordinals, where)
        specs.append(spec)
        previous = TensorRef(spec.name)
    return ModelSpec(name, tuple(specs), (TensorRef(specs[0].name),), (previous,))


def _parse_functional(config: dict, where: str) -> ModelSpec:
    raw_calls: dict[str, list[list[tuple[str, int, int]]]] = {}
    specs_data = []
    for data in config["layers"]:
        name = data.get("name") or data["config"]["name"]
        raw_calls[name] = [list(_node_tensors(node)) for node in data.get("inbound_nodes", [])]
        if any(t[0] == CONSTANT for call in raw_calls[name] for t in call):
            raise UnsupportedError(
                f"{where}: layer {name!r} ({data['class_name']}) takes a constant instead of a tensor "
                "(a TensorFlow op recorded as a layer); snnc reads Keras layers only"
            )
        specs_data.append((name, data))
    keras3 = any(isinstance(node, dict) for _, d in specs_data for node in d.get("inbound_nodes", []))
    offsets = {name: _first_call_index(data, keras3) for name, data in specs_data}
    counts = {name: len(calls) for name, calls in raw_calls.items()}

    def ref(history) -> TensorRef:
        layer, node, tensor = history[0], int(history[1]), int(history[2])
        if layer not in counts:
            raise ValueError(f"a tensor refers to an unknown layer {layer!r}")
        # A layer called once is unambiguous whatever the node numbering convention.
        call = 0 if counts[layer] <= 1 else node - offsets[layer]
        return TensorRef(layer, call, tensor)

    ordinals: dict[str, int] = {}
    specs = tuple(
        _layer_spec(data, tuple(tuple(ref(t) for t in call) for call in raw_calls[name]), ordinals, where)
        for name, data in specs_data
    )
    return ModelSpec(
        _text(config.get("name", "model"), "the model name"),
        specs,
        tuple(ref(t) for t in _endpoint_list(config["input_layers"])),
        tuple(ref(t) for t in _endpoint_list(config["output_layers"])),
    )


def _first_call_index(data: dict, keras3: bool) -> int:
    """Node index of a layer's first call in the config: 1 for nested models that were
    built from an ``Input`` (their building call is not saved), else 0."""
    if data["class_name"] not in MODEL_CLASSES:
        return 0
    if keras3:
        return int(data["class_name"] == "Functional")
    inner = data["config"]
    layers = inner if isinstance(inner, list) else inner.get("layers", [])
    return int(data["class_name"] != "Sequential" or (bool(layers) and layers[0]["class_name"] == "InputLayer"))


def _endpoint_list(data) -> list:
    """``input_layers``/``output_layers``: one ``[layer, node, tensor]``, a list of them, or
    (Keras 3, dict inputs) a dict of them."""
    if isinstance(data, dict):
        data = list(data.values())
    if data and isinstance(data[0], str):
        return [data]
    return list(data)


def _node_tensors(node):
    """The tensors one call reads, in order, in either generation's format."""
    if isinstance(node, dict):  # Keras 3
        yield from _keras3_tensors(node.get("args", []))
    else:
        yield from _keras2_tensors(node)


def _keras2_tensors(data):
    if isinstance(data, list) and data and isinstance(data[0], str):
        yield data[0], data[1], data[2]
    elif isinstance(data, list):
        for item in data:
            yield from _keras2_tensors(item)
    elif isinstance(data, dict):
        for item in data.values():
            yield from _keras2_tensors(item)


def _keras3_tensors(data):
    if isinstance(data, dict):
        if data.get("class_name") == "__keras_tensor__":
            yield tuple(data["config"]["keras_history"])
        else:
            for item in data.values():
                yield from _keras3_tensors(item)
    elif isinstance(data, list):
        for item in data:
            yield from _keras3_tensors(item)


def snake_case(class_name: str) -> str:
    """Keras's ``to_snake_case`` of a class name (the ``.keras`` weights file's group names)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
