"""`redes up`: a Prefect server (and the dashboards) that outlive one command, until `redes down`.

Without it, every command that runs a flow starts Prefect's temporary server (8-15 s) and
stops it at the end. `redes up` starts `prefect server start` (with --ui, also the MLflow UI
and optuna-dashboard of `redes ui`) in the background on 127.0.0.1, each in its own session,
waits until every health URL answers, and records their PIDs, start times and addresses in
`.redes/servers.json`. Every later command in this folder then talks to that Prefect server
(runtime.server_record, applied by `cli.main`); a PREFECT_API_URL in the environment wins.
Servers already recorded and alive are kept; only the missing ones are started.

It also starts the warm launcher (`cli.launcher`, unless --no-launcher): a process that has
loaded Prefect, MLflow and the rest once, from which the commands typed here are forked
(`cli.delegate`), so that they start in a fraction of a second instead of 3-4.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from cli.common import BadInput, print_error, print_warning, user_errors
from cli.local_servers import PREFECT_PORT
from runtime.servers import MLFLOW_UI_PORT, OPTUNA_DASHBOARD_PORT



def up(
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Also start the MLflow UI and optuna-dashboard.")] = True,
    prefect_port: Annotated[int, typer.Option(min=0, max=65535, help="Port of the Prefect server (0: any free port).")] = PREFECT_PORT,
    mlflow_port: Annotated[int, typer.Option(min=0, max=65535, help="Port of the MLflow UI (0: any free port).")] = MLFLOW_UI_PORT,
    optuna_port: Annotated[int, typer.Option(min=0, max=65535, help="Port of optuna-dashboard (0: any free port).")] = OPTUNA_DASHBOARD_PORT,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for each server to answer.")] = 180.0,
    launcher: Annotated[
        bool, typer.Option("--launcher/--no-launcher", help="Also keep a warm process that starts commands in a second (~0.5 GB).")
    ] = True,
) -> None:
    """Start a Prefect server (and the dashboards) in the background for this folder; `redes down` stops them."""
    from cli import launcher_control as warm_launcher
    from cli import local_servers
    from cli.status import describe, plain_printer
    from runtime import server_record
    from runtime.servers import ServerError, process_started, stop_processes, wait_for_servers
    from runtime.settings import Settings

    settings = Settings.from_env()
    workdir = settings.workdir
    say = plain_printer()
    with server_record.locked(workdir):
        live, stale = server_record.sweep(workdir)
        for entry in stale:
            say(f"removed the stale record of {entry.name} (pid {entry.pid}: gone)")
        have = {entry.name for entry in live}
        explicit = (os.environ.get("PREFECT_API_URL") or "").strip()
        if explicit:
            print_warning("PREFECT_API_URL is set: commands use that server, so no Prefect server is started here")
        ports = {
            "prefect_port": None if explicit or "prefect" in have else prefect_port,
            "mlflow_port": mlflow_port if ui and "mlflow" not in have else None,
            "optuna_port": optuna_port if ui and "optuna-dashboard" not in have else None,
        }
        if ports["prefect_port"] is not None and "launcher" in have:  # it loaded Prefect's settings with the old server
            old = [entry for entry in live if entry.name == "launcher"]
            stop_processes([(entry.pid, entry.stop_signal) for entry in old], timeout=5)
            live = [entry for entry in live if entry not in old]
            have.discard("launcher")
            say(f"stopped the launcher (pid {old[0].pid}): it used the Prefect server that is gone")
        private = Path(tempfile.mkdtemp(prefix="redes-up-"))  # 0700: configuration files holding secrets
        running = []
        warm = None
        try:
            with user_errors():
                plans = local_servers.plan(settings, private, **ports)
                if not plans and not live and not (launcher and "launcher" not in have):
                    raise BadInput("nothing to start: PREFECT_API_URL is set and --no-ui was given")
            for planned in plans:
                running.append(local_servers.spawn(planned, workdir))
            if launcher and "launcher" not in have:  # loads its modules while the servers start
                warm = warm_launcher.start(workdir, prefect_api(explicit, live, running))
            wait_for_servers([entry.server for entry in running], timeout=timeout)
        except BaseException as exc:  # Ctrl-C included: nothing half-started is left behind
            stopping = [(entry.server.process, entry.planned.stop_signal) for entry in running]
            stop_processes(stopping + ([(warm, warm_launcher.STOP_SIGNAL)] if warm else []), timeout=15)
            if not isinstance(exc, ServerError):
                raise
            print_error(exc)
            raise typer.Exit(1) from None
        finally:
            shutil.rmtree(private, ignore_errors=True)  # the dashboard has read its configuration by now
        started = [
            server_record.Recorded(
                name=entry.planned.name, pid=entry.server.pid, started=process_started(entry.server.pid) or 0.0,
                url=entry.planned.base_url, health_url=entry.planned.health_url,
                stop_signal=int(entry.planned.stop_signal), log=str(entry.server.log_path),
            )
            for entry in running
        ]  # fmt: skip
        if warm is not None:
            try:
                started.append(warm_launcher.wait_ready(warm, workdir, timeout=timeout))
            except ServerError as exc:
                stop_processes([(warm, warm_launcher.STOP_SIGNAL)], timeout=5)
                print_warning(f"{exc}; commands here start as without it")
        server_record.write(workdir, live + started)
    for entry in running:
        say(f"started {entry.planned.name} (pid {entry.server.pid}), ready in {entry.server.seconds_to_ready:.1f} s")
    if warm is not None and any(entry.name == "launcher" for entry in started):
        say(f"started the launcher (pid {warm.pid}): commands here start without loading their libraries")
    describe(live + started, settings, say)


def prefect_api(explicit: str, live: list, running: list) -> str | None:
    """The Prefect API the commands of this folder will use: the environment's, or the recorded server's."""
    if explicit:
        return None  # in the environment already
    urls = [entry.url for entry in live if entry.name == "prefect"]
    urls += [entry.planned.base_url for entry in running if entry.planned.name == "prefect"]
    return urls[0] + "/api" if urls else None

