"""What the security tests share: an MLflow server with basic authentication, started by `redes ui
--mlflow-auth` itself, and the `redes study` command they run against it.

The environment of a `redes` subprocess (`redes_env`) and PostgreSQL databases
(`optuna_postgres_url`) are fixtures of tests/integration/conftest.py.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.study_cli import QUIET
from support.study_cli import study_command as support_study_command

from runtime.servers import free_port, start_process, stop_process, wait_for_http


ADMIN = "admin"  # MLflow's admin_username (its basic_auth.ini; MLFLOW_AUTH_ADMIN_USERNAME unset)
SERVER_TIMEOUT = 180.0


@dataclass
class AuthServer:
    """`redes ui --mlflow-auth` running in ``workdir``: its process and the MLflow server it started."""

    workdir: Path
    url: str
    admin_password: str = field(repr=False)
    secret_key: str = field(repr=False)
    process: subprocess.Popen
    output: Path

    @property
    def mlflow_log(self) -> Path:
        return self.workdir / ".redes" / "logs" / "mlflow.log"

    def client_env(self) -> dict[str, str]:
        """What a client of this server sets: its URI and the admin's credentials."""
        return {
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_TRACKING_USERNAME": ADMIN,
            "MLFLOW_TRACKING_PASSWORD": self.admin_password,
        }


def ui_env(**extra: str) -> dict[str, str]:
    """The environment of a `redes ui` subprocess: no inherited stores or credentials, offline, EXTRA."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "REDES_", "PREFECT_"))}
    env.update(QUIET)
    env.update(extra)
    return env


def redes_executable() -> str:
    return str(Path(sys.executable).with_name("redes"))


def start_auth_ui(workdir: Path, admin_password: str | None = None) -> AuthServer:
    """Run `redes ui --mlflow-auth` in WORKDIR (its SQLite stores, basic_auth.db and logs go there).

    Ready when MLflow's /health and optuna-dashboard's /api/studies answer; the admin password
    and Flask secret travel in the environment only.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    admin_password = admin_password or secrets.token_hex(16)
    secret_key = secrets.token_hex(32)
    mlflow_port, optuna_port = free_port(), free_port()
    while optuna_port == mlflow_port:
        optuna_port = free_port()
    env = ui_env(
        MLFLOW_AUTH_ADMIN_PASSWORD=admin_password,
        MLFLOW_FLASK_SERVER_SECRET_KEY=secret_key,
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    argv = [
        redes_executable(), "ui", "--mlflow-auth",
        "--mlflow-port", str(mlflow_port), "--optuna-port", str(optuna_port), "--timeout", str(SERVER_TIMEOUT),
    ]  # fmt: skip
    output = workdir / "redes-ui.out"
    process = start_process(argv, env=env, cwd=workdir, log_path=output)
    server = AuthServer(workdir, f"http://127.0.0.1:{mlflow_port}", admin_password, secret_key, process, output)
    try:
        wait_for_http(f"{server.url}/health", timeout=SERVER_TIMEOUT, process=process, log_path=output)
        wait_for_http(
            f"http://127.0.0.1:{optuna_port}/api/studies", timeout=SERVER_TIMEOUT, process=process, log_path=output
        )
    except BaseException:
        stop_auth_ui(server)
        raise
    return server


def stop_auth_ui(server: AuthServer) -> None:
    """SIGTERM to `redes ui`, which stops the servers it started; SIGKILL after a timeout.

    A server still running in the working folder afterwards is stopped by its PID, and the
    test fails: `redes ui` must never leave one behind.
    """
    stop_process(server.process, sig=signal.SIGTERM, timeout=40)
    left = processes_in(server.workdir)
    for pid in left:
        stop_process(pid, sig=signal.SIGTERM, timeout=15)
    assert not left, f"redes ui left processes running in {server.workdir}: {left}"


def processes_in(folder: Path) -> list[int]:
    """PIDs of the live processes whose working folder is FOLDER (the servers `redes ui` starts there)."""
    from runtime.servers import pid_alive

    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if Path(cwd) == folder.resolve() and pid_alive(int(entry)):
                found.append(int(entry))
    return found


def study_command(name: str, workers: int = 1) -> list[str]:
    """A tiny `redes study`: three random trials of two epochs on a 2,000-image slice."""
    return support_study_command(name, 3, workers=workers, epochs=2)


@pytest.fixture(scope="session")
def security_helpers():
    """This module: the tests call its helpers (start_auth_ui, study_command, …) as functions."""
    return sys.modules[__name__]


@pytest.fixture(scope="module")
def auth_mlflow(tmp_path_factory) -> AuthServer:
    """One authenticated MLflow server for the tests of a module (`redes ui --mlflow-auth`)."""
    server = start_auth_ui(tmp_path_factory.mktemp("auth-ui"))
    try:
        yield server
    finally:
        stop_auth_ui(server)
