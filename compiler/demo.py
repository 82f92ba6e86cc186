"""``snnc demo``: the whole flow on real data that ships with the install, in about a minute.

Train a small CNN on scikit-learn's digits with tf.keras, save it as a Keras file, import it
like any user model, compile it for the target (calibrating on the training images) and
evaluate ANN vs SNN accuracy per T on the held-out images: on the interpreter for Nengo, on
refsim (the chip's integers) for Loihi.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .datasets import Dataset
from .driver import Compiled, Evaluation, compile_model, evaluate, write_artifact


@dataclass
class DemoResult:
    compiled: Compiled
    evaluation: Evaluation
    train_seconds: float


def run_demo(timesteps, out=None, epochs: int = 30, seed: int = 0, log=print, progress=None, target: str = "nengo",
             force: bool = False) -> DemoResult:
    from .api import load_model
    from .examples.digits import load_digits_split, train_digits_cnn

    log = log or (lambda *_: None)
    if out:
        from .artifact import check_replaceable

        check_replaceable(out, target, force)  # before training, not after
    (x_train, y_train), (x_test, y_test) = load_digits_split(seed)
    log(f"training a CNN on scikit-learn's 8x8 digits ({len(x_train)} training images, {epochs} epochs) ...")
    model, seconds = train_digits_cnn(x_train, y_train, epochs=epochs, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "digits_cnn.h5"
        model.save(path)
        ann = load_model(path)
    log(f"trained in {seconds:.1f} s; compiling for {target} (calibration: the training images) ...")
    compiled = compile_model(ann, Dataset(x_train, y_train, "digits (train)"), target=target)
    if out:
        write_artifact(compiled, out, force=force)
        log(f"wrote the compiled network to {out}/")
    log(f"simulating {len(x_test)} held-out images ...\n")
    evaluation = evaluate(compiled, Dataset(x_test, y_test, "digits (test)"), timesteps, progress=progress)
    return DemoResult(compiled, evaluation, seconds)
