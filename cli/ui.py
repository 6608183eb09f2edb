"""`redes ui`: the MLflow UI and optuna-dashboard on the stores `redes run` used, until Ctrl-C.

The stores are the ones `runtime.settings.Settings` resolves: a SQLite file and a journal
file in the working folder by default, or the URLs from the environment. Database URLs
with passwords reach the servers through their environment or a private file, never
their command line. Each server is started in its own process group, bound to
127.0.0.1 unless --host says otherwise, and is ready when its health URL answers.
Ctrl-C or SIGTERM stops every server: a signal to each group, a wait, SIGKILL after a
timeout.

Once they answer, it prints the links of the study named with --study, or of every study and
experiment there is: MLflow's runs table and charts (in the view of `tracking.ui_views`) and the
study's dashboard page. Plain lines, each URL whole on its own, never wrapped or cut by the
terminal's width or in a log file.
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
from typing import Annotated, Iterator, Optional

import typer

from cli.common import BadInput, console, err_console, user_errors
from runtime.servers import (
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
from tracking import ui_views

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
    server: Server


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
    study: Annotated[
        Optional[str], typer.Option(help="Study whose MLflow runs and dashboard page to link; without it, every study.")
    ] = None,
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
    from runtime.settings import Settings

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
        _print_links(running, _links(running, study, remote_mlflow, settings.study_storage), total, remote_mlflow)
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


# --- links ----------------------------------------------------------------------------------


@dataclass
class Listed:
    """One study (or experiment) and the pages that show it, each printed whole on a line of its own."""

    name: str
    heading: str
    links: list[tuple[str, str]]  # (label, URL)


def _links(running: list[Running], study: str | None, remote_mlflow: str | None, storage: str) -> list[Listed]:
    """The pages to open: the study named (or every study and experiment there is), and the servers' front pages."""
    mlflow_base = remote_mlflow.rstrip("/") if remote_mlflow else _base(running, "mlflow")
    dashboard_base = _base(running, "optuna-dashboard")
    experiments, note = _experiments(mlflow_base, study) if mlflow_base else ({}, "")
    dashboard_ids = _dashboard_ids(dashboard_base) if dashboard_base else {}
    counts = _trial_counts(storage)
    names = [study] if study is not None else sorted(set(counts) | set(dashboard_ids))
    listed = []
    for name in names:
        links = []
        if name in experiments:
            links += [("runs", experiments[name][0]), ("charts", experiments[name][1])]
        if name in dashboard_ids:
            links.append(("optuna", f"{dashboard_base}/dashboard/studies/{dashboard_ids[name]}"))
        trials = counts.get(name)
        heading = f"study {name!r}: " + (f"{trials} trial{'s' * (trials != 1)}" if trials is not None else "no study yet")
        if name not in experiments and mlflow_base:
            heading += f"; {note or 'no MLflow experiment yet'}"
        listed.append(Listed(name, heading, links))
    if study is None:  # experiments of `redes train` and `redes baselines`: no study behind them
        for name, (runs, charts) in sorted(experiments.items()):
            if name not in counts and name not in dashboard_ids and name != "Default":
                listed.append(Listed(name, f"experiment {name!r}", [("runs", runs), ("charts", charts)]))
    front = [("mlflow", ui_views.experiments_url(mlflow_base))] if mlflow_base else []
    front += [("optuna", f"{dashboard_base}/dashboard")] if dashboard_base else []
    listed.append(Listed("", "every experiment and study", front))
    return listed


def _base(running: list[Running], name: str) -> str | None:
    return next((r.planned.base_url for r in running if r.planned.name == name), None)


def _experiments(base: str, only: str | None = None) -> tuple[dict[str, tuple[str, str]], str]:
    """Each MLflow experiment's (or only ONLY's) runs table and charts, given redes' saved view first if it lacks it."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"  # this process only looks names up
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "10"
    if os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD") and not os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin"))
        os.environ["MLFLOW_TRACKING_PASSWORD"] = os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"]
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=base)
        found = client.search_experiments(max_results=1000)
    except Exception as exc:  # noqa: BLE001 - a missing link is not a reason to stop the servers
        return {}, f"MLflow experiments not looked up: {str(exc).splitlines()[0][:80]}"
    links = {}
    for experiment in found:
        if only is not None and experiment.name != only:
            continue
        try:
            ui_views.ensure_view(client, experiment)
            shared = True
        except Exception:  # noqa: BLE001 - a read-only user: the same sort, without the saved columns and charts
            shared = False
        links[experiment.name] = tuple(
            ui_views.runs_url(base, experiment.experiment_id, shared_view=shared, charts=charts) for charts in (False, True)
        )
    return links, ""


def _dashboard_ids(base: str) -> dict[str, int]:
    try:
        studies = http_json(f"{base}/api/studies").get("study_summaries", [])
    except (OSError, ValueError):
        studies = []
    return {item["study_name"]: item["study_id"] for item in studies if "study_name" in item}


def _trial_counts(storage: str) -> dict[str, int]:
    """Every study in the Optuna storage and how many trials it holds ({} when it cannot be read)."""
    if "://" not in storage and not Path(storage).is_file():
        return {}
    try:
        import optuna

        from tracking.studies import open_storage, quiet_optuna

        quiet_optuna()
        return {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(open_storage(storage), include_best_trial=False)}
    except Exception:  # noqa: BLE001 - the dashboard still lists them
        return {}


def _print_links(running: list[Running], listed: list[Listed], total: float, remote_mlflow: str | None) -> None:
    """Plain lines, never wrapped or cut (a narrow terminal, a pipe, a log file): each URL whole on its own line."""

    def say(text: str) -> None:
        console.print(text, soft_wrap=True, crop=False, highlight=False, markup=False)

    say("redes ui: the dashboards of this folder's stores")
    width = max(len(entry.planned.name) for entry in running)
    if remote_mlflow:
        say(f"  {'mlflow':<{width}}  remote server, not started here: {mask_url(remote_mlflow)}")
    for entry in running:
        server = entry.server
        ready = f", ready in {server.seconds_to_ready:.1f} s" if server.seconds_to_ready else ""
        say(f"  {entry.planned.name:<{width}}  pid {server.pid}{ready}, store {entry.planned.store}")
    logs = {r.server.log_path.parent for r in running if r.server.log_path}
    if logs:
        say(f"  logs: {', '.join(str(p) for p in logs)}")
    prefect = next((r for r in running if r.planned.name == "prefect"), None)
    if prefect is not None:
        say(f"  point redes at this Prefect server: export PREFECT_API_URL={prefect.planned.base_url}/api")
    if not any(item.name for item in listed):
        say("no study or experiment yet: run `redes study` or `redes train`, then open the links again")
    for item in listed:
        say(item.heading)
        label_width = max((len(label) for label, _ in item.links), default=0)
        for label, url in item.links:
            say(f"  {label:<{label_width}}  {url}")
    say(f"all servers answered in {total:.1f} s. Press Ctrl-C to stop.")


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))
