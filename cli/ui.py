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

import shutil
import signal
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

from cli import local_servers, ui_links
from cli.common import console, err_console, user_errors
from cli.local_servers import Running
from cli.ui_links import Listed
from runtime.servers import (
    MLFLOW_UI_PORT,
    OPTUNA_DASHBOARD_PORT,
    ServerError,
    stop_process,
    stop_processes,
    wait_for_servers,
)

STOP_TIMEOUT = 15.0


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
            plans = local_servers.plan(
                settings, private, mlflow_port=mlflow_port, optuna_port=optuna_port,
                prefect_port=prefect_port if prefect else None, host=host, mlflow_auth=mlflow_auth,
            )  # fmt: skip
        remote_mlflow = settings.tracking_uri if local_servers.is_http(settings.tracking_uri) else None
        started = time.monotonic()
        for planned in plans:
            with signals.deferred():
                running.append(local_servers.spawn(planned, settings.workdir))
        wait_for_servers([entry.server for entry in running], timeout=timeout)
        total = time.monotonic() - started
        bases = {entry.planned.name: entry.planned.base_url for entry in running}
        _print_links(running, ui_links.links(bases, study, remote_mlflow, settings.study_storage), total, remote_mlflow)
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


# --- running ---------------------------------------------------------------------------------


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
    ui_links.say_links(listed, say)
    say(f"all servers answered in {total:.1f} s. Press Ctrl-C to stop.")
