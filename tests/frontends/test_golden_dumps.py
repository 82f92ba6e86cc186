"""Golden IR dumps of small models checked in under tests/golden, compared exactly.

After an intended change to the frontend or the text format, rewrite them with
``pytest tests/frontends/test_golden_dumps.py --update-golden`` and review the diff.
"""

from pathlib import Path

import pytest

from snnc.compiler import load_model, print_graph

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

MODELS = {
    "digits_cnn": "example:digits_cnn",  # tf.keras 2.12, Keras v3 zip format, channels-last
    "keras3_func_residual": FIXTURES / "keras3" / "func_residual.keras",  # Keras 3: residual Add, Concatenate
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dump_matches_golden(name, update_golden):
    text = print_graph(load_model(MODELS[name]))
    golden = GOLDEN / f"{name}.ir"
    if update_golden:
        golden.write_text(text)
    assert golden.exists(), f"no golden dump {golden}; run with --update-golden"
    assert text == golden.read_text()
