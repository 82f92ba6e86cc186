"""How data becomes a network's input, decided once at compile time and recorded.

Users hand snnc data as they have it: 8-bit pixels or floats. ``compile`` decides the scale
(``--input-scale S``; else 1/255 for integer data and 1 for float data, except that integer
data pass unscaled into a model that rescales its own input, e.g. with a Keras ``Rescaling``
layer) and records the decision and the range of the calibration inputs in the artifact's
manifest. ``evaluate``, ``verify`` and ``run`` on the artifact apply the recorded decision; a
different ``--input-scale`` is applied as an override that is said, and data whose prepared
range is far from the calibration range get a note. A network is never silently fed data
prepared differently from the data it was calibrated on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from . import ops
from .errors import DataError
from .graph import Graph

#: the scale integer data (8-bit pixels) get when nothing else is said
UINT8_SCALE = 1 / 255
#: an input affine that multiplies by at most this expects raw pixel values (Rescaling(1/255),
#: Rescaling(1/127.5, offset=-1), a Normalization adapted on pixels: std ~ 60)
_RAW_RANGE_SCALE = 0.05
#: prepared inputs whose largest magnitude is this many times the calibration inputs' (or
#: that fraction of it) were almost surely scaled differently
_RANGE_RATIO = 8.0


def valid_scale(scale: float) -> bool:
    return math.isfinite(scale) and scale > 0


def checked_scale(scale: float | None, what: str = "--input-scale") -> float | None:
    """``scale`` if it is a positive finite number (or None); else one clear error."""
    if scale is None:
        return None
    scale = float(scale)
    if not valid_scale(scale):
        raise DataError(f"{what} {scale:g}: the input scale must be a positive finite number (e.g. 1, or 0.00392 for 1/255)")
    return scale


def input_rescaling(graph: Graph) -> tuple[str, float] | None:
    """The node through which the model scales its own input, and its largest factor: an
    ``affine`` that is the input's only reader (Keras Rescaling / Normalization, ONNX Mul,
    Div, Sub on the input). None when the model takes its input as it is."""
    if len(graph.inputs) != 1:
        return None
    users = graph.users(graph.inputs[0].name)
    if len(users) != 1 or not isinstance(users[0].op, ops.Affine):
        return None
    return users[0].name, float(np.max(np.abs(users[0].params["scale"])))


@dataclass(frozen=True)
class InputPreparation:
    """Inputs are ``x * scale``: ``scale`` when given, else ``integer_scale`` for integer data
    and 1 for float data. ``reason`` says where ``integer_scale`` came from;
    ``calibration_range`` is (min, max) of the prepared calibration inputs."""

    scale: float | None = None
    integer_scale: float = UINT8_SCALE
    reason: str = "8-bit data are divided by 255"
    calibration_range: tuple[float, float] | None = None

    def scale_for(self, x: np.ndarray) -> float:
        if self.scale is not None:
            return self.scale
        return self.integer_scale if np.issubdtype(x.dtype, np.integer) else 1.0

    def describe(self) -> str:
        if self.scale is not None:
            return f"inputs x {self.scale:g} (--input-scale)"
        return f"integer inputs x {self.integer_scale:g}, float inputs x 1 ({self.reason})"

    def to_json(self) -> dict:
        return {
            "scale": self.scale,
            "integer_scale": self.integer_scale,
            "reason": self.reason,
            "calibration_range": None if self.calibration_range is None else list(self.calibration_range),
            "rule": self.describe(),
        }

    @classmethod
    def from_json(cls, record: dict | None) -> "InputPreparation":
        if not record:  # an artifact written before snnc recorded this: the default rule
            return cls()
        calibration_range = record.get("calibration_range")
        return cls(
            scale=record.get("scale"),
            integer_scale=float(record.get("integer_scale", UINT8_SCALE)),
            reason=str(record.get("reason", "")),
            calibration_range=None if calibration_range is None else tuple(calibration_range),
        )


def for_model(graph: Graph, scale: float | None = None) -> InputPreparation:
    """The preparation ``compile`` chooses for ``graph`` given ``--input-scale`` (or None)."""
    scale = checked_scale(scale)
    rescaling = input_rescaling(graph)
    if rescaling is not None and rescaling[1] <= _RAW_RANGE_SCALE:
        node, factor = rescaling
        return InputPreparation(scale, 1.0, f"the model scales its input itself: %{node} multiplies by {factor:.3g}, so 8-bit data pass unscaled")
    return InputPreparation(scale)


def resolve(recorded: InputPreparation, scale: float | None) -> tuple[InputPreparation, list[str]]:
    """The preparation to apply to an artifact's inputs: the recorded one, or ``scale``
    given on the command line as an override (said in the returned notes when it differs)."""
    scale = checked_scale(scale)
    if scale is None or scale == recorded.scale:
        return recorded, []
    was = f"scale {recorded.scale:g}" if recorded.scale is not None else f"rule ({recorded.describe()})"
    return replace(recorded, scale=scale), [f"--input-scale {scale:g} overrides the artifact's recorded {was}"]


def range_note(prep: InputPreparation, x: np.ndarray, source: str) -> str | None:
    """A note when prepared inputs ``x`` span a range far from the calibration inputs'."""
    if prep.calibration_range is None or x.size == 0:
        return None
    low, high = prep.calibration_range
    reach, seen = max(abs(low), abs(high)), float(np.max(np.abs(x)))
    if reach == 0 or seen == 0:
        return None
    if seen > _RANGE_RATIO * reach or seen < reach / _RANGE_RATIO:
        return (
            f"{source}: the prepared inputs reach {seen:.3g}, but the network was calibrated on inputs in "
            f"[{low:.3g}, {high:.3g}] ({prep.describe()}); if the data are scaled differently, give --input-scale"
        )
    return None
