"""Fixtures shared by every test: where the real MNIST files are, and the repository root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = Path(os.environ.get("REDES_TEST_MNIST_DIR", REPO_ROOT.parent / "shared" / "data" / "mnist"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder of the four real gzipped MNIST IDX files (../shared/data/mnist)."""
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"The real MNIST files are missing from {SHARED_MNIST}; set REDES_TEST_MNIST_DIR to their folder")
    return SHARED_MNIST
