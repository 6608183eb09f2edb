"""`redes ui`: the MLflow UI and optuna-dashboard on the stores `redes run` used, until Ctrl-C.

The stores are the ones `flows.settings.Settings` resolves: a SQLite file and a journal
file in the working folder by default, or the URLs from the environment. Database URLs
with passwords reach the servers through their environment or a private file, never
their command line. Each server is started in its own process group, bound to
127.0.0.1 unless --host says otherwise, and is ready when its health URL answers.
Ctrl-C or SIGTERM stops every server: a signal to each group, a wait, SIGKILL after a
timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Iterator

import typer

from flows.commands.common import BadInput, console, err_console, user_errors
from flows.servers import (
    MLFLOW_UI_PORT,
    OPTUNA_DASHBOARD_PORT,
    Server,
    ServerError,
    child_env,
    connect_host,
    http_json,
    mask_url,
    port_in_use,
    start_process,
    stop_process,
    stop_processes,
    url_host,
    wait_for_servers,
)

#: The admin password older MLflow releases shipped in basic_auth.ini; never accepted here.
PUBLISHED_MLFLOW_ADMIN_PASSWORD = "password1234"
MIN_MLFLOW_PASSWORD_LENGTH = 12  # mlflow.utils.validation._validate_password
STOP_TIMEOUT = 15.0


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
    server: Server | None  # None: a remote server this command did not start
    link: str = ""
    note: str = ""


@dataclass
class _Signals:
    """SIGINT/SIGTERM become a `_Stop` exception, except while a child is being spawned."""

    received: int | None = None
    deferring: bool = False
    stopping: list[Running] | None = None  # set once the servers are being stopped

    def handle(self, signum, frame) -> None:  # noqa: ARG002
        self.received = signum
        if self.stopping is not None:  # a second Ctrl-C while stopping: no more waiting
            for running in self.stopping:
                stop_process(running.server.process, sig=signal.SIGKILL, timeout=2)
            return
        if not self.deferring:
            raise _Stop(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.received is not None:
            raise _Stop(self.received)


class _Stop(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, like KeyboardInterrupt: the `except Exception` of
    a library (or of the experiment lookup) that is running when the signal lands must not swallow it."""


def ui(
    mlflow_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the MLflow UI.")] = MLFLOW_UI_PORT,
    optuna_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of optuna-dashboard.")] = OPTUNA_DASHBOARD_PORT,
    prefect: Annotated[bool, typer.Option("--prefect/--no-prefect", help="Also start a local Prefect server.")] = False,
    prefect_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the Prefect server (with --prefect).")] = 4200,
    host: Annotated[
        str, typer.Option(help="Address the servers bind. Anything but 127.0.0.1 opens them to the network.")
    ] = "127.0.0.1",
    study: Annotated[str, typer.Option(help="Study whose MLflow experiment and dashboard page to link.")] = "mnist",
    mlflow_auth: Annotated[
        bool,
        typer.Option(
            "--mlflow-auth/--no-mlflow-auth",
            help="MLflow basic authentication (needs the auth extra of mlflow, MLFLOW_AUTH_ADMIN_PASSWORD and "
            "MLFLOW_FLASK_SERVER_SECRET_KEY in the environment).",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for each server to answer.")] = 180.0,
) -> None:
    """Start the MLflow UI and optuna-dashboard (and optionally Prefect) on this project's stores; Ctrl-C stops them."""
    from flows.settings import Settings

    settings = Settings.from_env()
    private = Path(tempfile.mkdtemp(prefix="redes-ui-"))  # 0700: configuration files holding secrets
    signals = _Signals()
    previous = {sig: signal.signal(sig, signals.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    running: list[Running] = []
    code = 0
    try:
        with user_errors():
            plans = _plan(settings, private, mlflow_port, optuna_port, prefect, prefect_port, host, mlflow_auth)
        remote_mlflow = settings.tracking_uri if _is_http(settings.tracking_uri) else None
        started = time.monotonic()
        for plan in plans:
            with signals.deferred():
                running.append(_spawn(plan, settings.workdir))
        wait_for_servers([entry.server for entry in running], timeout=timeout)
        total = time.monotonic() - started
        rows = _link(running, study, remote_mlflow)
        _print_table(rows, study, total)
        _watch(running)
        code = 1  # _watch returns only when a server died
    except _Stop:
        console.print("stopping…")
    except Exception as exc:  # noqa: BLE001 - one clear line, then the servers are stopped
        if not isinstance(exc, (ServerError, OSError)):
            raise
        err_console.print(f"[bold red]error:[/] {exc}")
        code = 1
    finally:
        signals.stopping = list(running)
        _stop_all(running)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(private, ignore_errors=True)
    if running:
        console.print("stopped: " + ", ".join(f"{r.planned.name} (pid {r.server.pid})" for r in running))
    if code:
        raise typer.Exit(code)


# --- what to start ---------------------------------------------------------------------------


def _plan(settings, private: Path, mlflow_port, optuna_port, prefect, prefect_port, host, mlflow_auth) -> list[Planned]:
    """Every server to start, checked before any is: ports free, executables and settings present."""
    host = host.strip()
    wanted = {"optuna-dashboard": optuna_port}
    if not _is_http(settings.tracking_uri):
        wanted["mlflow"] = mlflow_port
    elif mlflow_auth:
        raise BadInput("--mlflow-auth starts a local MLflow server, but MLFLOW_TRACKING_URI points at a remote one")
    if prefect:
        wanted["prefect"] = prefect_port
    if len(set(wanted.values())) < len(wanted):
        raise BadInput(f"two servers cannot share a port: {wanted}")
    for name, port in wanted.items():
        if port_in_use(port, host or "127.0.0.1"):
            raise BadInput(f"port {port} on {host} is in use; pass another --{name.split('-')[0]}-port")
    reach = url_host(connect_host(host))
    plans = []
    if "mlflow" in wanted:
        argv = [
            _executable("mlflow"), "server",
            "--host", host, "--port", str(mlflow_port), "--workers", "1",
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
        base = f"http://{reach}:{mlflow_port}"
        plans.append(
            Planned(
                "mlflow", argv, child_env(env), f"{base}/health", base, mask_url(settings.tracking_uri),
                cwd=settings.workdir,
            )
        )  # fmt: skip
    storage = settings.study_storage
    config = _dashboard_config(storage, private)
    base = f"http://{reach}:{optuna_port}"
    plans.append(
        Planned(
            "optuna-dashboard",
            [_executable("optuna-dashboard"), "--from-config", str(config), "--host", host, "--port", str(optuna_port)],
            child_env(),
            f"{base}/api/studies",
            base,
            mask_url(storage),
            cwd=settings.workdir,
        )
    )
    if prefect:
        env = child_env()
        env.pop("PREFECT_API_URL", None)  # the server's UI would otherwise talk to that API instead of its own
        base = f"http://{reach}:{prefect_port}"
        plans.append(
            Planned(
                "prefect",
                [_executable("prefect"), "server", "start", "--host", host, "--port", str(prefect_port)],
                env,
                f"{base}/api/health",
                base,
                env.get("PREFECT_API_DATABASE_CONNECTION_URL") and mask_url(env["PREFECT_API_DATABASE_CONNECTION_URL"])
                or "Prefect's default database (~/.prefect)",
                stop_signal=signal.SIGINT,  # Prefect stops promptly on SIGINT
            )
        )
    return plans


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


# --- running ---------------------------------------------------------------------------------


def _spawn(plan: Planned, workdir: Path) -> Running:
    log = workdir / ".redes" / "logs" / f"{plan.name}.log"
    process = start_process(plan.argv, env=plan.env, cwd=plan.cwd, log_path=log)
    server = Server(name=plan.name, process=process, health_url=plan.health_url, log_path=log, accept=plan.accept)
    return Running(plan, server)


def _watch(running: list[Running]) -> None:
    """Sleep until a signal arrives (raised as `_Stop`) or a server exits on its own."""
    while True:
        for entry in running:
            if entry.server.process.poll() is not None:
                err_console.print(
                    f"[bold red]error:[/] {entry.planned.name} (pid {entry.server.pid}) exited with code "
                    f"{entry.server.process.returncode}; see {entry.server.log_path}"
                )
                return
        time.sleep(0.5)


def _stop_all(running: list[Running]) -> None:
    stop_processes([(entry.server.process, entry.planned.stop_signal) for entry in running], timeout=STOP_TIMEOUT)


# --- links and the table ---------------------------------------------------------------------


def _link(running: list[Running], study: str, remote_mlflow: str | None) -> list[Running]:
    """The table's rows: each server with the page to open (the study's runs table, its dashboard page)."""
    rows = list(running)
    if remote_mlflow is not None:
        remote = Planned("mlflow", [], {}, "", remote_mlflow.rstrip("/"), mask_url(remote_mlflow))
        rows.insert(0, Running(remote, None))
    for entry in rows:
        if entry.planned.name == "mlflow":
            entry.link, entry.note = _experiment_link(entry.planned.base_url, study)
            if entry.server is None:
                entry.note += "; remote server, not started here"
        elif entry.planned.name == "optuna-dashboard":
            entry.link, entry.note = _study_link(entry.planned.base_url, study)
        else:
            entry.link = entry.planned.base_url
    return rows


def _experiment_link(base: str, study: str) -> tuple[str, str]:
    """The runs table of experiment STUDY, or the landing page when it does not exist (yet)."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"  # this process only looks one name up
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "10"
    if os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD") and not os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin"))
        os.environ["MLFLOW_TRACKING_PASSWORD"] = os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"]
    try:
        from mlflow.tracking import MlflowClient

        experiment = MlflowClient(tracking_uri=base).get_experiment_by_name(study)
    except Exception as exc:  # noqa: BLE001 - a missing link is not a reason to stop the servers
        return f"{base}/", f"experiment {study!r} not looked up: {str(exc).splitlines()[0][:80]}"
    if experiment is None:
        return f"{base}/", f"no experiment {study!r} yet"
    return f"{base}/#/experiments/{experiment.experiment_id}/runs?orderByKey=attributes.run_name&orderByAsc=true", f"experiment {study!r}"


def _study_link(base: str, study: str) -> tuple[str, str]:
    try:
        studies = http_json(f"{base}/api/studies").get("study_summaries", [])
    except (OSError, ValueError):
        studies = []
    for item in studies:
        if item.get("study_name") == study:
            return f"{base}/dashboard/studies/{item['study_id']}", f"study {study!r}"
    return f"{base}/dashboard", f"no study {study!r} yet"


def _print_table(running: list[Running], study: str, total: float) -> None:
    from rich.table import Table

    table = Table(title=f"redes ui: study {study!r}", title_justify="left")
    table.add_column("service", no_wrap=True)
    table.add_column("address", no_wrap=True, min_width=max((len(r.link) for r in running), default=20))
    table.add_column("pid", justify="right", no_wrap=True)
    table.add_column("ready in", justify="right", no_wrap=True)
    for entry in running:
        server = entry.server
        pid = str(server.pid) if server is not None else "-"
        ready = f"{server.seconds_to_ready:.1f} s" if server is not None and server.seconds_to_ready else "-"
        table.add_row(entry.planned.name, entry.link, pid, ready)
    console.print(table)
    for entry in running:
        note = f" ({entry.note})" if entry.note else ""
        console.print(f"  {entry.planned.name} store: {entry.planned.store}{note}", soft_wrap=True, highlight=False)
    logs = {r.server.log_path.parent for r in running if r.server is not None and r.server.log_path}
    if logs:
        console.print(f"  logs: {', '.join(str(p) for p in logs)}", soft_wrap=True, highlight=False)
    prefect = next((r for r in running if r.planned.name == "prefect" and r.server is not None), None)
    if prefect is not None:
        console.print(f"  point redes at this Prefect server: export PREFECT_API_URL={prefect.planned.base_url}/api")
    console.print(f"all servers answered in {total:.1f} s. Press Ctrl-C to stop.")


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))
