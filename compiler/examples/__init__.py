"""Small real models that ship with snnc, named ``example:NAME`` wherever a model path goes.

``digits_cnn``: a tf.keras CNN trained on scikit-learn's 8x8 digits by
``benchmarks/make_examples.py`` (Keras v3 ``.keras`` format, channels-last input (8, 8, 1)).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelFormatError

PREFIX = "example:"
EXAMPLES = {"digits_cnn": "digits_cnn.keras"}


def resolve(spec) -> Path:
    """``example:NAME`` -> the packaged file; any other path is returned unchanged."""
    text = str(spec)
    if not text.startswith(PREFIX):
        return Path(spec)
    name = text[len(PREFIX) :]
    if name not in EXAMPLES:
        raise ModelFormatError(f"{text}: no such example; examples: {', '.join(PREFIX + n for n in EXAMPLES)}")
    return Path(__file__).with_name(EXAMPLES[name])
