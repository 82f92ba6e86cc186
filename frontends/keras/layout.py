"""Where a Keras tensor's axes live in the IR value that holds it.

The IR keeps images channels first (``CHW``); a channels-last Keras model's tensors are
``HWC``. Rather than transposing at every layer, each converted tensor carries ``perm``:
Keras axis ``k`` (batch excluded) is IR axis ``perm[k]``, i.e. the Keras tensor is
``np.transpose(ir_value, perm)``. Layers that care about axes (convolutions, Flatten,
Concatenate, axis arguments) read ``perm``; a transpose is emitted only where a layer needs a
different arrangement than the one its input has (e.g. a Reshape feeding a channels-last
convolution).

A 1-D signal (Keras ``(steps, channels)``, from Conv1D and 1-D pooling) lives in the IR as
an image with one row, ``(C, 1, L)``, so the IR's 2-D ops serve it unchanged. ``perm`` then
maps Keras's two axes into three IR axes: ``(2, 0)`` for channels last, ``(0, 2)`` for
channels first; IR axis 1, which no Keras axis maps to, has size 1. In general a value
holding a rank-``k`` Keras tensor has rank ``max(perm) + 1`` and size 1 on every axis not in
``perm``; :func:`full_perm` views it as the Keras tensor with those unit axes in front.

Invariant: every :class:`Tensor`'s IR value has its rank's default layout (``C``, ``CW``,
``CHW``); the IR ``transpose`` op permutes layout letters, so the helpers here always follow
one with a ``reshape`` that resets them, or feed it straight into a ``reshape``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: data_format -> perm of a Keras image tensor (H, W, C) or (C, H, W) over the IR's (C, H, W)
IMAGE_PERMS = {"channels_last": (1, 2, 0), "channels_first": (0, 1, 2)}
#: data_format -> perm of a Keras 1-D signal (L, C) or (C, L) over the IR's (C, 1, L)
SIGNAL_PERMS = {"channels_last": (2, 0), "channels_first": (0, 2)}


@dataclass(frozen=True)
class Tensor:
    """A Keras tensor in the IR: the value holding it and where its axes live (see module doc).
    ``sequence``: the Keras tensor has a time axis after the batch, which the IR value does
    not hold: the value is one step, and ``perm`` and ``rank`` describe a step
    (:mod:`.recurrent`)."""

    value: str
    perm: tuple[int, ...]
    sequence: bool = False

    @property
    def rank(self) -> int:
        """The Keras tensor's rank (without the batch axis)."""
        return len(self.perm)

    @property
    def ir_rank(self) -> int:
        return ir_rank(self.perm)


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def inverse(perm) -> tuple[int, ...]:
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return tuple(out)


def compose(perm, then) -> tuple[int, ...]:
    """``np.transpose(np.transpose(x, perm), then) == np.transpose(x, compose(perm, then))``."""
    return tuple(perm[t] for t in then)


def ir_rank(perm) -> int:
    """The rank of the IR value holding a Keras tensor with ``perm``."""
    return max(perm) + 1 if perm else 0


def full_perm(perm) -> tuple[int, ...]:
    """``perm`` extended to every IR axis: the unit axes no Keras axis maps to come first, so
    ``np.transpose(ir_value, full_perm(perm))`` is the Keras tensor with leading unit axes
    (same elements in the same row-major order)."""
    return (*sorted(set(range(ir_rank(perm))) - set(perm)), *perm)


def image_perm(data_format: str) -> tuple[int, ...]:
    return IMAGE_PERMS[data_format]


def signal_perm(data_format: str) -> tuple[int, ...]:
    return SIGNAL_PERMS[data_format]


def keras_shape(ir_shape, perm) -> tuple[int, ...]:
    return tuple(ir_shape[p] for p in perm)


def ir_shape(keras_shape, perm) -> tuple[int, ...]:
    out = [1] * ir_rank(perm)
    for k, p in enumerate(perm):
        out[p] = keras_shape[k]
    return tuple(out)


def keras_axis(axis: int, rank: int) -> int:
    """A Keras axis argument (counting the batch axis, negatives from the end) as an axis of
    the per-example tensor of ``rank``; raises :class:`ValueError` for the batch axis."""
    if axis == 0 or not -rank <= axis <= rank:
        raise ValueError(f"axis {axis} is not a per-example axis of a rank-{rank + 1} tensor")
    return axis - 1 if axis > 0 else axis + rank


def ir_axis(axis: int, perm) -> int:
    """The IR axis of a Keras axis argument on a tensor with ``perm``."""
    return perm[keras_axis(axis, len(perm))]


def source_layout(perm, ir_layout: str) -> str:
    """The Input/Output ``source_layout`` for a value with ``perm`` (``""`` if it is the IR's)."""
    if perm == identity(len(perm)):
        return ""
    return "".join(ir_layout[p] for p in perm)
