"""Index arithmetic for lowering snnc's linear ops to Nengo transforms.

Values are flattened in row-major order of their IR shape (``CHW`` images), which is also
Nengo's ``channels_last=False`` order. Each function returns plain NumPy arrays: which
element goes where (for sliced connections) or the ``(row, column)`` indices and values of
a ``nengo.Sparse`` transform.
"""

from __future__ import annotations

import math

import numpy as np


def same_pads(in_hw, kernel, stride) -> tuple[int, int, int, int]:
    """The pads ``(top, left, bottom, right)`` of Nengo's (and TensorFlow's) ``"same"``
    padding: the output has ``ceil(size / stride)`` elements and any odd extra padding
    goes to the bottom/right."""
    before, after = [], []
    for size, k, s in zip(in_hw, kernel, stride):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return before[0], before[1], after[0], after[1]


def padded_positions(shape, pads) -> np.ndarray:
    """Where each element of a ``(C, H, W)`` value lands in its padded flattened value."""
    c, h, w = shape
    pt, pl, pb, pr = pads
    grid = np.arange(c * (h + pt + pb) * (w + pl + pr)).reshape(c, h + pt + pb, w + pl + pr)
    return grid[:, pt : pt + h, pl : pl + w].ravel()


def border_positions(shape, pads) -> np.ndarray:
    """The padded positions (the complement of :func:`padded_positions`)."""
    c, h, w = shape
    pt, pl, pb, pr = pads
    inside = np.zeros(c * (h + pt + pb) * (w + pl + pr), dtype=bool)
    inside[padded_positions(shape, pads)] = True
    return np.flatnonzero(~inside)


def avg_pool_weights(in_shape, out_shape, kernel, stride, pads, count_include_pad):
    """Sparse ``(indices, values)`` of average pooling: output ``(c, i, j)`` takes
    ``1 / count`` of each input in its window, where ``count`` is the window size or, without
    ``count_include_pad``, the number of window elements inside the input."""
    c, h, w = in_shape
    _, ho, wo = out_shape
    (kh, kw), (sh, sw), (pt, pl, _, _) = kernel, stride, pads
    ch, i, j, u, v = np.meshgrid(
        np.arange(c), np.arange(ho), np.arange(wo), np.arange(kh), np.arange(kw), indexing="ij"
    )
    rows, cols = i * sh + u - pt, j * sw + v - pl
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    out_index = (ch * ho + i) * wo + j
    in_index = (ch * h + rows) * w + cols
    if count_include_pad:
        counts = np.full(inside.shape, kh * kw)
    else:
        counts = np.broadcast_to(inside.sum(axis=(3, 4), keepdims=True), inside.shape)
    indices = np.stack([out_index[inside], in_index[inside]], axis=1)
    return indices, 1.0 / counts[inside]


def global_pool_weights(in_shape):
    """Sparse ``(indices, values)`` of the mean over H and W of a ``(C, H, W)`` value."""
    c, h, w = in_shape
    channel = np.repeat(np.arange(c), h * w)
    return np.stack([channel, np.arange(c * h * w)], axis=1), np.full(c * h * w, 1.0 / (h * w))


def channel_broadcast(shape):
    """Sparse ``(indices, values)`` that copies a per-channel vector ``(C,)`` to every element
    of a value of ``shape`` (channels first)."""
    n = math.prod(shape)
    channel = np.repeat(np.arange(shape[0]), n // shape[0])
    return np.stack([np.arange(n), channel], axis=1), np.ones(n)


def per_channel(vector, shape) -> np.ndarray:
    """A per-channel vector ``(C,)`` repeated over the other axes of ``shape``, flattened."""
    return np.repeat(np.asarray(vector, dtype=np.float64), math.prod(shape) // shape[0])


def transposed_order(shape, perm) -> np.ndarray:
    """The input element behind each output element of a transpose."""
    return np.arange(math.prod(shape)).reshape(shape).transpose(perm).ravel()


def concat_positions(shapes, axis) -> list[np.ndarray]:
    """Where each input's elements land in the concatenation along ``axis``."""
    out_shape = list(shapes[0])
    out_shape[axis] = sum(s[axis] for s in shapes)
    grid = np.arange(math.prod(out_shape)).reshape(out_shape)
    bounds = np.cumsum([s[axis] for s in shapes])[:-1]
    return [part.ravel() for part in np.split(grid, bounds, axis=axis)]


def dilated_kernel(weight: np.ndarray, dilation) -> np.ndarray:
    """A ``(F, C, kh, kw)`` kernel with ``dilation - 1`` zeros between its taps: the
    equivalent dense kernel of a dilated convolution."""
    dh, dw = dilation
    if (dh, dw) == (1, 1):
        return weight
    f, c, kh, kw = weight.shape
    out = np.zeros((f, c, dh * (kh - 1) + 1, dw * (kw - 1) + 1), dtype=weight.dtype)
    out[:, :, ::dh, ::dw] = weight
    return out


def as_index(positions: np.ndarray):
    """A contiguous run of positions as a ``slice`` (cheaper in Nengo), else the array."""
    if len(positions) and np.array_equal(positions, np.arange(positions[0], positions[0] + len(positions))):
        return slice(int(positions[0]), int(positions[0]) + len(positions))
    return positions
