"""A real `mlflow server` on a free 127.0.0.1 port, started and restarted by tests, stopped by PID."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from runtime.servers import free_port, start_server

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
