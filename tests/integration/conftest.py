"""Real servers for integration tests: an MLflow tracking server on a free 127.0.0.1 port, Prefect's harness.

Each server is started by the fixture, polled on its health endpoint until it answers,
and stopped by PID at the end.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from flows.servers import free_port, start_server, stop_server

TEST_ENV = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def start_mlflow_server(root: Path, port: int | None = None, backend: str | None = None):
    """A real `mlflow server` keeping its runs in ROOT (SQLite backend, served artifacts), up and healthy.

    BACKEND (a database URL) replaces the SQLite file; it travels in the environment, never on
    the command line. Started again on the same ROOT and port, it serves the same runs: a restart.
    """
    port = port or free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    env = {
        **os.environ, **TEST_ENV,
        "MLFLOW_BACKEND_STORE_URI": backend or f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # eight job runners we do not use
    }  # fmt: skip
    return start_server(
        [
            str(mlflow), "server",
            "--serve-artifacts", "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        health_url=f"http://127.0.0.1:{port}/health",
        env=env,
        log_path=root / "server.log",
        timeout=120,
    )


def server_url(server) -> str:
    """http://127.0.0.1:PORT of a server started by :func:`start_mlflow_server`."""
    return server.health_url.rsplit("/", 1)[0]


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
