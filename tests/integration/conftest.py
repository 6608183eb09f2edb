"""Real servers for integration tests: MLflow tracking servers on free 127.0.0.1 ports, Prefect's
harness, PostgreSQL databases of a test's own, and the environment of a `redes` subprocess.

Each server is started by the fixture, polled on its health endpoint until it answers,
and stopped by PID at the end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from support import mlflow_server as mlflow_servers_module
from support import postgres, study_cli as study_cli_module
from support.mlflow_server import TEST_ENV, server_url, start_mlflow_server
from support.study_cli import QUIET, SPACE_TOML

from runtime.servers import stop_server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """A real `mlflow server` for the whole session; yields its URL."""
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server_url(server)
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def prefect_harness():
    """Prefect's test harness: a temporary database and API for the whole session."""
    for key, value in TEST_ENV.items():
        os.environ.setdefault(key, value)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def tracked_env(monkeypatch, tmp_path, mlflow_server, mnist_dir, tmp_path_factory):
    """A working folder whose runs go to the test's MLflow server and whose data come from ../shared."""
    data_dir = tmp_path_factory.getbasetemp() / "shared-data-cache"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("REDES_DATA_DIR", str(data_dir))
    monkeypatch.setenv("REDES_MNIST_MIRRORS", str(mnist_dir))
    monkeypatch.setenv("REDES_OPTUNA_STORAGE", str(tmp_path / "optuna-journal.log"))
    return tmp_path


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


@pytest.fixture
def study_cli():
    """Helpers for tests that run `redes study` (study_command, trials_of, kill_mid_trial, …)."""
    return study_cli_module


@pytest.fixture
def mlflow_servers():
    """Start and restart MLflow servers of a test's own: start_mlflow_server(root, port, backend), server_url(server)."""
    return mlflow_servers_module


@pytest.fixture
def pg_study_databases():
    """Fresh PostgreSQL databases (own role, random password) for one test's stores; dropped at the end."""
    reason = postgres.postgres_unavailable()
    if reason:
        pytest.fail(f"PostgreSQL cannot be used ({reason}); `make test` starts it (tests/services.sh)")
    dbs = postgres.create_databases()
    try:
        yield dbs
    finally:
        postgres.drop_databases(dbs)


@pytest.fixture
def optuna_postgres_url(pg_study_databases):
    """The URL of a fresh PostgreSQL database for one study."""
    return pg_study_databases.url("optuna")
