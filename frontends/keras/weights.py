"""Weight stores: a layer's weight arrays, in Keras's order (``layer.weights``), by layer.

A layer is addressed by its *scope*: the :class:`~.config.LayerSpec` path from the top-level
model down to it (one element unless it sits in a nested model). Each store raises
:class:`LookupError` for weights that are absent; h5py raises :class:`OSError` (or
:class:`RuntimeError`/:class:`ValueError` for damaged HDF5 structures) for unreadable data.
:meth:`~.context.LayerCall.weights` turns them into a ``ModelFormatError`` naming the layer.
"""

from __future__ import annotations

import re
from typing import Protocol, Sequence

import numpy as np

from .config import LayerSpec, snake_case


class WeightStore(Protocol):
    def get(self, scope: Sequence[LayerSpec]) -> list[np.ndarray]: ...


def text(value) -> str:
    """An HDF5 string attribute (bytes in files written by older h5py) as ``str``."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def chunked_attr(group, name: str) -> list[str]:
    """A list-valued attribute; Keras splits long ones into ``name0``, ``name1``, ..."""
    if name in group.attrs:
        return [text(v) for v in group.attrs[name]]
    values, i = [], 0
    while f"{name}{i}" in group.attrs:
        values += [text(v) for v in group.attrs[f"{name}{i}"]]
        i += 1
    if not i:
        raise LookupError(f"group {group.name} has no {name} attribute")
    return values


class LegacyH5Weights:
    """The ``model_weights`` group of a Keras 2 ``.h5`` model file.

    Each top-level layer has a group whose ``weight_names`` attribute lists its arrays in
    order. A nested model's group lists all its layers' arrays as ``<layer>/<weight>:0``
    (older files prefix more scopes), so a nested layer's arrays are those whose
    next-to-last name component is the layer's name.
    """

    def __init__(self, group):
        self.group = group

    def get(self, scope):
        top = scope[0].name
        if top not in self.group:
            raise LookupError(f"the file has no weights group {top!r}")
        group = self.group[top]
        names = chunked_attr(group, "weight_names")
        if len(scope) > 1:
            names = [n for n in names if n.split("/")[-2:-1] == [scope[-1].name]]
        missing = [n for n in names if n not in group]
        if missing:
            raise LookupError(f"weights group {top!r} lists {missing[0]!r} but does not hold it")
        return [np.asarray(group[n][()]) for n in names]


class KerasArchiveWeights:
    """``model.weights.h5`` of a ``.keras`` archive (Keras 2.12+ and Keras 3).

    Groups are named after the layer's class, not the layer: ``dense``, ``dense_1``, ...
    inside the model's layer container (``layers`` in Keras 3,
    ``_layer_checkpoint_dependencies`` in Keras 2.12, whose numbering skips a number after
    every layer that has weights). Either way the n-th group of a class name, in numeric
    order, belongs to the n-th layer of that class; the arrays are ``vars/0``, ``vars/1``, ...
    A wrapper without arrays of its own (SimpleRNN, TimeDistributed) has those of the layer it
    holds, in a group named after the attribute holding it (:attr:`WRAPPED`), maybe through
    more than one (a keras-spiking layer holds an RNN, which holds the cell: ``layer/cell``).
    A layer holding several (keras-lmu's LMU: ``hidden_cell``, then ``layer`` or ``layer/cell``
    for the memory) has theirs one after the other, in :attr:`WRAPPED`'s order, which is the
    order in which Keras lists them.
    """

    CONTAINERS = ("layers", "_layer_checkpoint_dependencies")
    WRAPPED = ("hidden_cell", "cell", "layer")

    def __init__(self, root):
        self.root = root

    def get(self, scope):
        group = self.root
        for spec in scope:
            group = self._layer_group(group, spec)
        return self._arrays(group)

    def _arrays(self, group) -> list[np.ndarray]:
        """A layer group's own arrays, else those of the layers it wraps."""
        arrays = group.get("vars", {})
        if len(arrays):
            return [np.asarray(arrays[str(i)][()]) for i in range(len(arrays))]
        return [array for w in self.WRAPPED if w in group for array in self._arrays(group[w])]

    def _layer_group(self, model_group, spec: LayerSpec):
        container = next((model_group[c] for c in self.CONTAINERS if c in model_group), None)
        if container is None:
            raise LookupError(f"no layer container in weights group {model_group.name!r}")
        base = snake_case(spec.class_name)
        pattern = re.compile(re.escape(base) + r"(?:_(\d+))?")
        numbered = sorted(
            (int(m.group(1) or 0), key) for key in container if (m := pattern.fullmatch(key))
        )
        if spec.ordinal >= len(numbered):
            raise LookupError(
                f"weights group {container.name!r} has {len(numbered)} {base} layer(s), "
                f"layer {spec.name!r} is number {spec.ordinal + 1}"
            )
        return container[numbered[spec.ordinal][1]]


class LiveModelWeights:
    """Weights of a model loaded by tf.keras (SavedModel directories)."""

    def __init__(self, model):
        self.model = model

    def get(self, scope):
        layer = self.model
        for spec in scope:
            try:
                layer = layer.get_layer(spec.name)
            except ValueError as exc:
                raise LookupError(str(exc)) from None
        return [np.asarray(w) for w in layer.get_weights()]
