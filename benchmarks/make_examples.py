"""Train the small example model that ships inside snnc (``example:digits_cnn``).

Real data that ships with scikit-learn (the UCI optical digits, 8x8, 1797 images), a
tf.keras 2.12 CNN (:mod:`snnc.compiler.examples.digits`), saved as
``compiler/examples/digits_cnn.keras``. Deterministic; about 10 s on 2 cores. Run from the
repository root::

    python benchmarks/make_examples.py
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OUT = Path(__file__).resolve().parents[1] / "compiler" / "examples" / "digits_cnn.keras"


def main():
    from snnc.compiler.examples.digits import load_digits_split, train_digits_cnn

    (x_train, y_train), (x_test, y_test) = load_digits_split()
    model, seconds = train_digits_cnn(x_train, y_train)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    model.save(OUT, save_format="keras_v3")  # TF 2.12 writes HDF5 for ".keras" unless asked
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) in {seconds:.1f} s; held-out accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
