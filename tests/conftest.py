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
INTEGRATION = REPO_ROOT / "tests" / "integration"


def mnist_missing() -> bool:
    return not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists()


def pytest_addoption(parser):
    parser.addoption(
        "--skip-missing-mnist", action="store_true",
        help="skip the tests marked mnist when the real MNIST files are missing, instead of failing them (make test-fast)",
    )


def pytest_collection_modifyitems(config, items):
    """Mark `mnist` every test that asks for the real files, so `-m "not mnist"` and `make test-fast` can leave them out.

    Only `--skip-missing-mnist` turns a missing ../shared into skips: `make test` (CI has ../shared) fails on it.
    """
    skip = None
    if config.getoption("skip_missing_mnist") and mnist_missing():
        skip = pytest.mark.skip(reason=f"the real MNIST files are not in {SHARED_MNIST} (set REDES_TEST_MNIST_DIR; `make test` needs them)")
    for item in items:
        if "mnist_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mnist)
            if skip:
                item.add_marker(skip)


def pytest_runtest_setup(item):
    """Every test under tests/integration is marked `integration`, so that `-m "not integration"` leaves out every server."""
    if INTEGRATION in item.path.parents and item.get_closest_marker("integration") is None:
        pytest.fail(
            f"{item.nodeid} is under tests/integration but not marked integration: "
            "add `pytest.mark.integration` to its module's pytestmark",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder of the four real gzipped MNIST IDX files (../shared/data/mnist)."""
    if mnist_missing():
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
