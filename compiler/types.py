"""Tensor types: the shape without the batch dimension, an element type, and a layout.

The IR has one canonical layout for images: channels first, ``CHW`` (as ONNX, PyTorch,
Nengo's ``channels_last=False`` and Loihi's core mapping use). Frontends convert at the
border and record the source model's layout on the ``input``/``output`` nodes, so users
give and get data in their model's own layout. Vectors are ``C``; ``transpose`` permutes
the layout letters, and a ``reshape`` result gets the default layout of its rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Element types: name in the IR text -> NumPy dtype of values and parameters.
DTYPES: dict[str, np.dtype] = {
    "f32": np.dtype(np.float32),
    "i8": np.dtype(np.int8),
    "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "u8": np.dtype(np.uint8),
    "spike": np.dtype(np.uint8),  # spike counts per time step (0/1, graded spikes later)
    "bool": np.dtype(np.bool_),
}

_DEFAULT_LAYOUTS = {0: "", 1: "C", 2: "CW", 3: "CHW", 4: "CDHW"}


def default_layout(rank: int) -> str:
    """Layout letters (one per axis) of a tensor of this rank with no more specific layout."""
    return _DEFAULT_LAYOUTS.get(rank, "ABEFGIJKLMNOPQRSTUVXYZ"[:rank])


def dtype_name(dtype: np.dtype) -> str:
    """The IR name of a NumPy dtype (the first match in :data:`DTYPES`)."""
    for name, dt in DTYPES.items():
        if dt == np.dtype(dtype):
            return name
    raise ValueError(f"no IR element type for NumPy dtype {np.dtype(dtype)}")


@dataclass(frozen=True)
class TensorType:
    """Type of one value, per example: ``shape`` excludes the batch dimension."""

    shape: tuple[int, ...]
    dtype: str = "f32"
    layout: str = ""

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if not self.layout:
            object.__setattr__(self, "layout", default_layout(len(self.shape)))
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown element type {self.dtype!r}; known: {', '.join(DTYPES)}")
        if any(d <= 0 for d in self.shape):
            raise ValueError(f"tensor dimensions must be positive, got {list(self.shape)}")
        if len(self.layout) != len(self.shape):
            raise ValueError(f"layout {self.layout!r} does not match rank {len(self.shape)}")

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        text = f"{self.dtype}[{','.join(map(str, self.shape))}]"
        if self.layout != default_layout(self.rank):
            text += f"@{self.layout}"
        return text
