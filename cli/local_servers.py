"""The local servers redes starts for a person at a terminal: MLflow's UI, optuna-dashboard, Prefect.

`redes ui` (until Ctrl-C), `redes serve` (a Prefect server for its schedules) and `redes up`
(in the background, until `redes down`) plan and start them here, one way: every server is
checked before any starts (ports free, executables and settings present), runs in its own
process group with its log in `.redes/logs/`, binds 127.0.0.1 unless told otherwise, and is
ready when its health URL answers. Database URLs with passwords reach the servers through
their environment or a private file, never their command line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from cli.common import BadInput
from runtime.servers import (
    LOOPBACK,
    Server,
    child_env,
    connect_host,
    free_port,
    mask_url,
    port_in_use,
    start_process,
    url_host,
)

#: The admin password older MLflow releases shipped in basic_auth.ini; never accepted here.
PUBLISHED_MLFLOW_ADMIN_PASSWORD = "password1234"
MIN_MLFLOW_PASSWORD_LENGTH = 12  # mlflow.utils.validation._validate_password
PREFECT_PORT = 4200
#: Each server's option for its port, named in the error when the port is taken.
PORT_OPTIONS = {"mlflow": "--mlflow-port", "optuna-dashboard": "--optuna-port", "prefect": "--prefect-port"}


@dataclass
class Planned:
    """A server to start: its command, environment, where it answers, how it stops."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str
    base_url: str
    store: str
    stop_signal: int = signal.SIGTERM
    accept: tuple[int, ...] = (200,)
    cwd: Path | None = None


@dataclass
class Running:
    planned: Planned
    server: Server


def plan(
    settings,
    private: Path,
    *,
    mlflow_port: int | None = None,
    optuna_port: int | None = None,
    prefect_port: int | None = None,
    host: str = LOOPBACK,
    mlflow_auth: bool = False,
) -> list[Planned]:
    """Every server to start (a port of None: not that one; 0: any free port), checked before any is.

    PRIVATE is a folder only this user reads, for configuration files that hold secrets. No
    MLflow server is planned when MLFLOW_TRACKING_URI already points at one.
    """
    host = host.strip()
    wanted = {}
    if mlflow_port is not None and not is_http(settings.tracking_uri):
        wanted["mlflow"] = mlflow_port
    elif mlflow_auth:
        raise BadInput("--mlflow-auth starts a local MLflow server, but MLFLOW_TRACKING_URI points at a remote one")
    if optuna_port is not None:
        wanted["optuna-dashboard"] = optuna_port
    if prefect_port is not None:
        wanted["prefect"] = prefect_port
    given = [port for port in wanted.values() if port]
    if len(set(given)) < len(given):
        raise BadInput(f"two servers cannot share a port: {wanted}")
    for name, port in wanted.items():
        if port and port_in_use(port, host or LOOPBACK):
            raise BadInput(f"port {port} on {host} is in use; pass another {PORT_OPTIONS[name]} (0 for any free port)")
        wanted[name] = port or free_port(connect_host(host))
    reach = url_host(connect_host(host))
    plans = []
    if "mlflow" in wanted:
        plans.append(_mlflow(settings, wanted["mlflow"], host, reach, mlflow_auth))
    if "optuna-dashboard" in wanted:
        plans.append(_optuna_dashboard(settings, private, wanted["optuna-dashboard"], host, reach))
    if "prefect" in wanted:
        plans.append(prefect_plan(wanted["prefect"], host))
    return plans


def spawn(planned: Planned, workdir: Path, *, die_with_parent: bool = False) -> Running:
    """Start PLANNED in its own session, its output in `.redes/logs/NAME.log`; wait with `runtime.servers.wait_for_servers`."""
    log = workdir / ".redes" / "logs" / f"{planned.name}.log"
    process = start_process(planned.argv, env=planned.env, cwd=planned.cwd, log_path=log, die_with_parent=die_with_parent)
    server = Server(name=planned.name, process=process, health_url=planned.health_url, log_path=log, accept=planned.accept)
    return Running(planned, server)


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


# --- each server ----------------------------------------------------------------------------


def _mlflow(settings, port: int, host: str, reach: str, mlflow_auth: bool) -> Planned:
    argv = [
        _executable("mlflow"), "server",
        "--host", host, "--port", str(port), "--workers", "1",
        "--serve-artifacts", "--artifacts-destination", str(settings.artifact_root),
    ]  # fmt: skip
    if host not in ("127.0.0.1", "localhost", "::1"):
        argv += ["--allowed-hosts", _allowed_hosts(host)]
    env = {
        "MLFLOW_BACKEND_STORE_URI": settings.tracking_uri,  # read by `mlflow server`; never on argv
        # MLflow's job runner (GenAI scorers) starts eight more processes; redes has no jobs for it
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": os.environ.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"),
    }
    if mlflow_auth:
        _check_auth_settings()
        argv += ["--app-name", "basic-auth"]  # auth users in ./basic_auth.db (MLflow's default config)
    settings.artifact_root.mkdir(parents=True, exist_ok=True)
    base = f"http://{reach}:{port}"
    return Planned(
        "mlflow", argv, child_env(env), f"{base}/health", base, mask_url(settings.tracking_uri), cwd=settings.workdir
    )


def _optuna_dashboard(settings, private: Path, port: int, host: str, reach: str) -> Planned:
    storage = settings.study_storage
    config = _dashboard_config(storage, private)
    base = f"http://{reach}:{port}"
    return Planned(
        "optuna-dashboard",
        [_executable("optuna-dashboard"), "--from-config", str(config), "--host", host, "--port", str(port)],
        child_env(),
        f"{base}/api/studies",
        base,
        mask_url(storage),
        cwd=settings.workdir,
    )


def prefect_plan(port: int, host: str = LOOPBACK) -> Planned:
    """`prefect server start` on HOST:PORT, with Prefect's database (PREFECT_API_DATABASE_CONNECTION_URL or its default)."""
    reach = url_host(connect_host(host))
    env = child_env()
    env.pop("PREFECT_API_URL", None)  # the server's UI would otherwise talk to that API instead of its own
    base = f"http://{reach}:{port}"
    database = env.get("PREFECT_API_DATABASE_CONNECTION_URL")
    return Planned(
        "prefect",
        [_executable("prefect"), "server", "start", "--host", host, "--port", str(port)],
        env,
        f"{base}/api/health",
        base,
        mask_url(database) if database else "Prefect's default database (~/.prefect)",
        stop_signal=signal.SIGINT,  # Prefect stops promptly on SIGINT
    )


def _dashboard_config(storage: str, private: Path) -> Path:
    """optuna-dashboard's TOML configuration naming the storage; the URL stays off the command line."""
    if "://" in storage:
        url = storage
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        _ensure_optuna_schema(url)
        storage_class = "RDBStorage"
    else:
        path = Path(storage)
        path.parent.mkdir(parents=True, exist_ok=True)
        url, storage_class = str(path), "JournalFileStorage"  # read even before the first study writes it
    config = private / "optuna-dashboard.toml"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("[optuna_dashboard]\n")
        out.write(f"storage = {json.dumps(url, ensure_ascii=False)}\n")
        out.write(f'storage_class = "{storage_class}"\n')
    return config


def _ensure_optuna_schema(url: str) -> None:
    """Create Optuna's tables on an empty database, as `redes study` would, so /api/studies answers."""
    try:
        from optuna.storages import RDBStorage

        RDBStorage(url)
    except Exception as exc:  # noqa: BLE001 - reported with the password masked
        text = str(exc).replace(url, mask_url(url))
        raise BadInput(f"cannot open the Optuna storage {mask_url(url)}: {text.splitlines()[0] if text else exc}")


def _check_auth_settings() -> None:
    import importlib.util

    if importlib.util.find_spec("flask_wtf") is None:
        raise BadInput("MLflow basic authentication needs mlflow[auth]: pip install 'mlflow[auth]>=3.17,<3.18'")
    missing = [n for n in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY") if not os.environ.get(n)]
    if missing:
        raise BadInput(f"--mlflow-auth needs {' and '.join(missing)} in the environment (choose long random values)")
    if os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"] == PUBLISHED_MLFLOW_ADMIN_PASSWORD:
        raise BadInput("MLFLOW_AUTH_ADMIN_PASSWORD is the password older MLflow releases published; choose another")
    if len(os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"]) < MIN_MLFLOW_PASSWORD_LENGTH:  # MLflow would refuse to start
        raise BadInput(
            f"MLFLOW_AUTH_ADMIN_PASSWORD is shorter than the {MIN_MLFLOW_PASSWORD_LENGTH} characters MLflow requires"
        )


def _allowed_hosts(host: str) -> str:
    """Host headers MLflow accepts when it binds beyond loopback: its defaults (loopback, private
    addresses), this machine's names and the bound address, on any port."""
    from mlflow.server.security_utils import get_default_allowed_hosts

    names = [socket.gethostname(), socket.getfqdn()]
    if host not in ("0.0.0.0", "::"):
        names.append(host)
    ours = [item for name in dict.fromkeys(n for n in names if n) for item in (name, f"{name}:*")]
    return ",".join(dict.fromkeys(get_default_allowed_hosts() + ours))


def _executable(name: str) -> str:
    """NAME from this Python's environment first (the venv's bin folder), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise BadInput(f"`{name}` is not installed in this environment")
    return found
