import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """scikit-learn's digits split as .npz files: train (calibration) and the held-out test
    images (one-hot labels, which are accepted)."""
    from snnc.compiler.examples.digits import load_digits_split

    folder = tmp_path_factory.mktemp("digits")
    (x_train, y_train), (x_test, y_test) = load_digits_split()
    np.savez(folder / "train.npz", x=x_train, y=y_train)
    np.savez(folder / "test.npz", x=x_test, y=np.eye(10)[y_test])
    return folder
