"""What the fault tests share: a small, safe search space and the environment of a `redes` subprocess."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

#: Trials of a second or two each on a 2,000-image slice, none that diverges.
SPACE_TOML = """
[space.eta]
low = 0.1
high = 0.5
[space.lmbda]
low = 0.1
high = 1.0
[space.dropout]
low = 0.0
high = 0.1
[space.n_hidden]
low = 1
high = 1
[space.hidden_1]
low = 300
high = 400
[space.batch_size]
choices = [32]
[space.activation]
choices = ["sigmoid"]
[space.cost]
choices = ["cross-entropy"]
"""


QUIET = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


@pytest.fixture
def redes_env(tmp_path, mnist_dir, tmp_path_factory, prefect_harness) -> Callable[..., dict[str, str]]:
    """Build the environment of a `redes` subprocess working in tmp_path (space.toml written there).

    It talks to this session's Prefect test API (no temporary server of its own), shares the
    session's data cache, and logs to an MLflow SQLite file in tmp_path unless told otherwise.
    """
    from prefect.settings import PREFECT_API_URL

    (tmp_path / "space.toml").write_text(SPACE_TOML)
    api_url = PREFECT_API_URL.value()

    def build(storage: str | Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "REDES_", "PREFECT_"))}
        env.update(QUIET)
        env.update(
            {
                "PREFECT_API_URL": api_url,
                "PREFECT_HOME": str(tmp_path_factory.getbasetemp() / "prefect-home"),
                "REDES_DATA_DIR": str(tmp_path_factory.getbasetemp() / "shared-data-cache"),
                "REDES_MNIST_MIRRORS": str(mnist_dir),
                "REDES_OPTUNA_STORAGE": str(storage),
                "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                "REDES_BLAS_THREADS": "1",
            }
        )
        env.update(extra)
        return env

    return build


def integration_helpers():
    """start_mlflow_server and server_url of tests/integration/conftest.py, loaded by path."""
    return _load_by_path("redes_integration_helpers", Path(__file__).resolve().parents[1] / "conftest.py")


def stack_helpers():
    """The PostgreSQL helpers of tests/integration/stack/conftest.py, loaded by path (another engineer's file)."""
    return _load_by_path("redes_stack_helpers", Path(__file__).resolve().parents[1] / "stack" / "conftest.py")


def _load_by_path(name: str, path: Path):
    import importlib.util
    import sys

    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mlflow_servers():
    """Start and restart MLflow servers of a test's own: start_mlflow_server(root, port, backend), server_url(server)."""
    return integration_helpers()


@pytest.fixture
def pg_study_databases():
    """Fresh PostgreSQL databases (own role, random password) for one test's stores; dropped at the end."""
    helpers = stack_helpers()
    reason = helpers.postgres_unavailable()
    if reason:
        pytest.fail(f"PostgreSQL cannot be used ({reason}); `make test` starts it (tests/services.sh)")
    dbs = helpers.create_databases()
    try:
        yield dbs
    finally:
        helpers.drop_databases(dbs)


@pytest.fixture
def optuna_postgres_url(pg_study_databases):
    """The URL of a fresh PostgreSQL database for one study."""
    return pg_study_databases.url("optuna")
