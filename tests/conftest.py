"""Fixtures shared by every test: where the real MNIST files are, and the repository root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.environment import apply_offline_defaults

# The test session is an entry point like `redes`: offline, patient Prefect start-up (the
# libraries themselves no longer set this at import).
apply_offline_defaults()

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


@pytest.fixture(autouse=True)
def library_log_levels_restored():
    """A `redes` command run in-process sets the libraries' log levels in os.environ (for the processes it
    starts); put them back after each test, so a later test's subprocesses see the environment it gave them."""
    from runtime.terminal import QUIET

    saved = {key: os.environ.get(key) for key in QUIET}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
