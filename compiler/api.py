"""The public Python API: load a model file into the IR, run it in its source layout."""

from __future__ import annotations

from collections.abc import Mapping
import numpy as np

from . import interpreter
from .errors import DataError, reraise_internal
from .graph import Graph


def load_model(path, weights=None) -> Graph:
    """Import a model file (Keras ``.keras``/``.h5``/SavedModel, a Keras ``.json`` model
    config with its weights file ``weights``, by default found beside it, ONNX ``.onnx``) or
    IR text (``.ir``, with its ``.npz``) into a verified float graph; a compiled artifact
    directory (``snnc compile -o``) gives its compiled graph. ``example:NAME`` names a model
    that ships with snnc (see :mod:`snnc.compiler.examples`)."""
    from snnc.frontends import load

    from .artifact import is_artifact, load_artifact
    from .examples import resolve

    try:
        if is_artifact(path) and weights is None:  # (with weights: refused by load, as for any non-.json)
            return load_artifact(path).model
        return load(resolve(path), weights)
    except BaseException as exc:
        reraise_internal(f"reading {path}", exc)


def layout_perm(source: str, target: str) -> tuple[int, ...]:
    """Axis permutation taking data in layout ``source`` to layout ``target``; ``target``
    may lack axes of ``source`` (taken to have size 1: see :func:`_relayout`)."""
    if len(set(source)) != len(source) or not set(target) <= set(source):
        raise DataError(f"cannot convert layout {source} to {target}")
    return tuple(source.index(axis) for axis in target)


def _relayout(x: np.ndarray, source: str, target: str, lead: int = 1) -> np.ndarray:
    """Batched data ``x`` in layout ``source`` arranged in layout ``target``; the first
    ``lead`` axes (the batch, and the steps of a sequence) stay. One layout may omit axes of
    size 1 that the other has: a 1-D signal in ``WC`` is the IR image ``CHW`` with ``H = 1``,
    so such axes are inserted (``source`` shorter) or dropped (``target`` shorter)."""
    if not source or not target or source == target:
        return x
    head, keep = x.shape[:lead], tuple(range(lead))
    if len(source) < len(target):  # insert the unit axes source lacks
        present = [axis for axis in target if axis in source]
        x = x.transpose(*keep, *(p + lead for p in layout_perm(source, "".join(present))))
        return x.reshape(*head, *(1 if axis not in source else x.shape[lead + present.index(axis)] for axis in target))
    kept = "".join(axis for axis in source if axis in target)
    x = x.reshape(*head, *(n for axis, n in zip(source, x.shape[lead:]) if axis in target))
    return x.transpose(*keep, *(p + lead for p in layout_perm(kept, target)))


def source_shape(graph: Graph, input_name: str) -> tuple[int, ...]:
    """The per-example shape the source model took for an input (in its own layout)."""
    node = graph.node(input_name)
    src, ir = node.op.source_layout, node.type.layout
    if not src or src == ir:
        return node.type.shape
    return tuple(node.type.shape[p] for p in layout_perm(ir, src))


def to_ir_layout(graph: Graph, inputs) -> dict[str, np.ndarray]:
    """Batched inputs in the source model's layout -> the IR's, checking shapes."""
    arrays = interpreter.name_inputs(graph, inputs)
    out = {}
    for node in graph.inputs:
        x = np.asarray(arrays[node.name])
        want = source_shape(graph, node.name)
        lead = 2 if node.op.sequence else 1  # a sequence: (N, steps, ...)
        if x.ndim != len(want) + lead or x.shape[lead:] != want:
            layout = node.op.source_layout or node.type.layout
            head = "N,steps" if node.op.sequence else "N"
            raise DataError(
                f"input {node.name} takes a batch of shape [{head},{','.join(map(str, want))}] "
                f"({layout}), got data of shape {list(x.shape)}"
            )
        if not np.issubdtype(x.dtype, np.number):
            raise DataError(f"input {node.name}: data of type {x.dtype} is not numeric")
        out[node.name] = _relayout(x, node.op.source_layout, node.type.layout, lead)
    return out


def from_ir_layout(graph: Graph, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Batched outputs in the IR's layout -> the layout the source model returned them in."""
    return {
        node.name: _relayout(outputs[node.name], node.type.layout, node.op.source_layout, 2 if node.op.sequence else 1)
        for node in graph.outputs
    }


def run_model(graph: Graph, inputs, batch_size: int = 256, progress: bool = False) -> dict[str, np.ndarray]:
    """Run a float graph through the interpreter on data in the source model's layout;
    returns ``{output name: batch}`` in the source model's output layout."""
    outputs = interpreter.run(graph, to_ir_layout(graph, inputs), batch_size=batch_size, progress=progress)
    return from_ir_layout(graph, outputs)


def run_spiking(graph: Graph, inputs, timesteps: int, batch_size: int = 256, progress: bool | None = False) -> dict[str, np.ndarray]:
    """Run a compiled spiking graph for ``timesteps`` steps (per input step, for sequence
    inputs) on data in the source model's layout; returns each output after the last step (a
    sequence output: at the end of each input step), in the source model's output layout.
    It runs on the default backend of its stage (:func:`snnc.compiler.backends.default_for`):
    a graph compiled for Loihi (integer stage) on refsim, the chip's integers."""
    from . import backends

    built = backends.default_for(graph.stage).build(graph)
    result = built.run(to_ir_layout(graph, inputs), [timesteps], batch_size=batch_size, progress=progress)
    return from_ir_layout(graph, result.outputs[timesteps])
