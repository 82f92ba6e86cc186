"""Files written by real Keras 3 (which the pinned tf.keras cannot load) against the outputs
Keras 3 computed for them; see fixtures/keras3/README.md for what each model holds."""

from pathlib import Path

import numpy as np
import pytest

from snnc.compiler import load_model, run_model

FIXTURES = Path(__file__).parent / "fixtures" / "keras3"
MODELS = ["seq_cnn", "func_residual", "func_norm_dense", "channels_first_cnn", "nested", "func_multi_io"]


def inputs_and_outputs(name):
    data = np.load(FIXTURES / f"{name}.npz")
    if "x" in data:
        return [data["x"]], [data["y"]]
    xs = [data[k] for k in sorted(k for k in data if k.startswith("x"))]
    ys = [data[k] for k in sorted(k for k in data if k.startswith("y"))]
    return xs, ys


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name", MODELS)
def test_matches_keras3(name, suffix):
    x, expected = inputs_and_outputs(name)
    got = list(run_model(load_model(FIXTURES / f"{name}{suffix}"), x).values())
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)

