"""The example that ships with snnc (README's main job) imports, dumps and runs like Keras."""

import numpy as np

from snnc.compiler import load_model, run_model
from snnc.compiler.cli import main
from snnc.compiler.examples import resolve


def test_dump_example(capsys):
    assert main(["dump", "example:digits_cnn"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("graph @digits_cnn : float")
    assert "%logits = dense(%flatten) {units=10" in out


def test_example_matches_keras_on_real_digits():
    import tensorflow as tf
    from sklearn.datasets import load_digits

    x = (load_digits().images[:200] / 16.0).astype(np.float32)[..., None]
    model = tf.keras.models.load_model(resolve("example:digits_cnn"), compile=False, safe_mode=True)
    got = run_model(load_model("example:digits_cnn"), x)["output"]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_unknown_example_is_a_clear_error(capsys):
    assert main(["dump", "example:nope"]) == 2
    assert capsys.readouterr().err.strip() == "snnc: error: example:nope: no such example; examples: example:digits_cnn"
