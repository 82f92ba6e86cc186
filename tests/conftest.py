"""Shared fixtures: seeded random numbers and the real data in ../shared/data.

Tests that need the shared data take the ``shared_data`` fixture (or ``mnist``) and are
skipped cleanly where the folder is absent.
"""

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SNNC_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def seed(request) -> int:
    """A per-test seed, stable across runs (derived from the test's name)."""
    return sum(map(ord, request.node.name)) % (2**31)


@pytest.fixture
def rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mnist_test(shared_data):
    """The 10,000 MNIST test images as float32 (N, 28, 28) in [0, 1], and their labels."""
    from snnc.compiler.datasets import load_idx

    folder = shared_data / "mnist"
    if not folder.is_dir():
        pytest.skip("MNIST is absent from the shared data")
    x = load_idx(folder / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = load_idx(folder / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y


@pytest.fixture(scope="session")
def mnist(shared_data):
    """MNIST as the conversion tests use it: the first 1000 training images (calibration) and
    the test set, as datasets read by snnc (8-bit pixels)."""
    from snnc.compiler.datasets import load_dataset

    folder = shared_data / "mnist"
    if not folder.is_dir():
        pytest.skip("MNIST is absent from the shared data")
    return load_dataset(folder, split="train").head(1000), load_dataset(folder, split="test")


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite the golden IR dumps under tests/golden"
    )


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")
