"""Frame sequences for feed-forward models: a network trained on single inputs (images) run on
a sequence of frames per example, e.g. event-camera (DVS) frames or video.

Data ``(N, steps, *shape)`` in the model's own layout are ``steps`` frames per example. The
graph's inputs become sequences (:func:`as_frames`) and nothing else changes: the float
interpreter gives the model's output on each frame, ``y_k = f(x_k)``; a spiking network holds
each frame for ``T`` simulation steps (a run of ``steps * T``), its state carried from frame to
frame (no reset), and reads its output over the last frame's window (or each frame's). The
rule that tells frames from single inputs is :func:`choose_frames`.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import DataError, SnncError
from .graph import Graph
from .ops import Input, Output
from .wellformed import check_well_formed

#: the graph metadata key marking a feed-forward graph made to take frame sequences
META_KEY = "frames"


def is_frames(graph: Graph) -> bool:
    """Whether ``graph`` is a feed-forward graph made to take frame sequences (:func:`as_frames`)."""
    return bool(graph.meta.get(META_KEY, False))


def as_frames(graph: Graph, every_step: bool = False) -> Graph:
    """``graph`` with every input a sequence of frames, ``(N, steps, *shape)``, and every output
    read at the last frame (``every_step``: at every frame, ``(N, steps, *shape)``); nodes,
    parameters and types are unchanged. A graph already made so gets its outputs set anew; a
    model that takes sequences itself (a recurrent one) is refused."""
    if graph.sequence and not is_frames(graph) or graph.delays:
        raise SnncError(f"model {graph.name} takes sequences itself (a recurrent model); frames are for models with constant inputs")

    def framed(node):
        if isinstance(node.op, Input):
            return node.replace(op=replace(node.op, sequence=True))
        if isinstance(node.op, Output):
            return node.replace(op=replace(node.op, sequence=every_step))
        return node

    meta = {**graph.meta, META_KEY: True}
    return check_well_formed(graph.replace(nodes=[framed(n) for n in graph.nodes], meta=meta))


def _fits(shape, want) -> bool:
    """Whether per-example ``shape`` fits the model's ``want`` as :func:`~.datasets.fit_inputs`
    takes it: equal once axes of size 1 are dropped."""
    return tuple(d for d in shape if d != 1) == tuple(d for d in want if d != 1)


def _dims(shape) -> str:
    return ", ".join(map(str, shape))


def choose_frames(x_shape, want, frames: bool | None, source: str) -> tuple[bool, str | None]:
    """Whether data of ``x_shape`` are frame sequences for a model taking ``want`` per example
    (its own layout), and a note saying an automatic choice where there was one to make.

    - ``x_shape[1:]`` fits ``want`` exactly, or fits it and ``x_shape[2:]`` does not: single
      inputs (the size-1 axes rule: MNIST's ``(N, 28, 28)`` fits ``(28, 28, 1)``);
    - only ``x_shape[2:]`` fits: frame sequences ``(N, steps, *want)``, said in the note;
    - both fit (only where ``x_shape[1] == 1``): single inputs, and the note says
      ``--frames`` takes them as one-frame sequences;
    - neither: refused.

    ``frames`` (``--frames`` / ``--no-frames``) decides instead when given; data that then do
    not fit are refused where they are fitted to the model.
    """
    single = len(x_shape) >= 1 and _fits(x_shape[1:], want)
    framed = len(x_shape) >= 2 and _fits(x_shape[2:], want)
    if frames is not None:
        return frames, None
    if single and (tuple(x_shape[1:]) == tuple(want) or not framed):
        return False, None
    shape = list(x_shape)
    if single:
        return False, (
            f"{source}: x of shape {shape} fits the model's input ({_dims(want)}) as single inputs and as "
            "sequences of one frame; taken as single inputs (give --frames for frame sequences)"
        )
    if framed:
        return True, (
            f"{source}: x of shape {shape} taken as {shape[0]} sequences of {shape[1]} frames of the model's input "
            f"({_dims(want)}) (give --no-frames to refuse them)"
        )
    raise DataError(
        f"{source}: examples of shape {shape[1:]} do not fit the model's input {list(want)}, nor do "
        f"{shape[2:]} as frames of sequences (N, steps, {_dims(want)})"
    )


def one_frame(x, want, source: str):
    """Data for a frames network (``want`` per frame): frame sequences as they are; single
    inputs that fit ``want`` as sequences of one frame, with a note (else None)."""
    if x.ndim >= 2 and _fits(x.shape[2:], want):  # (single inputs fit too only where x.shape[1] == 1)
        return x, None
    if _fits(x.shape[1:], want):
        return x[:, None], f"{source}: single inputs of shape {list(x.shape[1:])} taken as sequences of one frame"
    return x, None  # refused with the shape expected when fitted
