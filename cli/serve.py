"""`redes serve`: serve the scheduled deployments (flows/schedules.py) until Ctrl-C or SIGTERM.

Prefect's `serve` registers the deployments with the Prefect server of ``PREFECT_API_URL``
and runs their scheduled flow runs in child processes of this one. With no
``PREFECT_API_URL``, a local `prefect server start` is started on 127.0.0.1 (a Prefect
server is what turns schedules into flow runs; the temporary one of Prefect's local mode
does not) and stopped at the end.

Stopping: a Ctrl-C or SIGTERM first lets the flow runs in progress stop themselves (each
records its trial `interrupted` and exits at once, flows.signals), then stops Prefect's
runner, which pauses the schedules; a second Ctrl-C kills them. Left to Prefect, the
runner's own SIGTERM handler waits for a cancelled flow run in steps of 3 s (8-12 s
seen). The schedules are resumed by the next `redes serve`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import (
    BadInput,
    MirrorOption,
    TrainSizeOption,
    ValSizeOption,
    console,
    err_console,
    user_errors,
)
from flows import signals
from flows.defaults import MAIN_JOB
from flows.schedules import NIGHTLY_TRIALS

PREFECT_START_TIMEOUT = 180.0


def serve(
    cron: Annotated[Optional[str], typer.Option(help="Run every served deployment on this cron string (UTC) instead of its own schedule.")] = None,
    interval: Annotated[Optional[str], typer.Option(help="Run every served deployment at this interval instead: 30s, 10m, 1h or seconds.")] = None,
    name: Annotated[str, typer.Option(help="The study the nightly run continues.")] = MAIN_JOB.name,
    trials: Annotated[int, typer.Option(min=1, help="Trials each nightly run adds.")] = NIGHTLY_TRIALS,
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs per trial (must match the study's).")] = MAIN_JOB.epochs,
    patience: Annotated[int, typer.Option(min=1, help="Early-stopping patience per trial (must match the study's).")] = MAIN_JOB.patience,
    train_size: TrainSizeOption = MAIN_JOB.train_size,
    val_size: ValSizeOption = MAIN_JOB.val_size,
    mirror: MirrorOption = None,
    limit: Annotated[int, typer.Option(min=1, help="Flow runs at a time.")] = 1,
    prefect_port: Annotated[int, typer.Option(help="Port of the local Prefect server started when PREFECT_API_URL is unset.")] = 4200,
) -> None:
    """Serve the nightly study and the weekly refresh on their schedules until Ctrl-C."""
    from flows import schedules

    with user_errors():
        from tracking.names import check_name

        check_name("--name", name)
        seconds = _check_options(cron, interval, train_size, val_size)
        from flows.prefect_api import check_reachable

        check_reachable()  # a PREFECT_API_URL that names no server; unset, serve starts its own
    nightly = schedules.nightly_parameters(
        name=name, trials=trials, epochs=epochs, patience=patience, train_size=train_size, val_size=val_size,
        mirrors=tuple(mirror) if mirror else None,
    )  # fmt: skip
    refresh = schedules.refresh_parameters(train_size=train_size, val_size=val_size, mirrors=mirror)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stop = _Stop()
    for sig in previous:
        signal.signal(sig, stop.request)
    server = api_url = None
    try:
        api_url = _api_url()
        if api_url is None:
            with user_errors():
                server, api_url = _start_local_prefect(prefect_port)
                signals.register_server(server.process)  # killed by a forced stop
        os.environ["PREFECT_API_URL"] = api_url  # the flow runs (child processes) inherit it
        _serve(api_url, schedules, cron, seconds, nightly, refresh, limit, stop)
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:  # Prefect's SIGTERM handler exits when the runner had not started yet
        if exc.code not in (0, None):
            raise
    finally:
        for sig in previous:  # the clean-up runs to its end
            signal.signal(sig, signal.SIG_IGN)
        try:
            if api_url is not None:
                _pause(api_url, schedules)
        finally:
            if server is not None:
                from runtime.servers import stop_server

                stop_server(server, sig=signal.SIGINT)  # Prefect's server stops promptly on SIGINT
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    console.print("redes serve stopped; the schedules are paused until the next `redes serve`.")
    if stop.requested:  # everything is recorded and stopped: skip the interpreter's teardown (2-3 s)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _serve(api_url, schedules, cron, seconds, nightly, refresh, limit, stop: "_Stop") -> None:
    """`prefect.serve` of the deployments, with our stop (see :class:`_Stop`) as the runner's SIGTERM handler."""
    import asyncio

    from prefect.runner import Runner
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from runtime.servers import mask_url

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        deployments = schedules.build_deployments(cron=cron, interval=seconds, nightly=nightly, refresh=refresh)
        for spec in schedules.SCHEDULED:
            console.print(f"serving {spec.full_name}: {schedules.describe(spec, cron, seconds)}", highlight=False)
        console.print(f"Prefect API: {mask_url(api_url)} (UI: {mask_url(api_url.removesuffix('/api'))})", highlight=False)
        runner = Runner(pause_on_shutdown=True, limit=limit)
        for deployment in deployments:
            runner.add_deployment(deployment)  # registers it with the API
        runner.handle_sigterm = stop.request  # the runner installs it for SIGTERM when it starts
        stop.runner = runner
        console.print("Your deployments are being served. Ctrl-C (or SIGTERM) stops serving.", highlight=False)
        asyncio.run(runner.start())


def _pause(api_url: str, schedules) -> None:
    """Pause the served deployments' schedules, as Prefect's runner does when it stops after starting.

    Without it, a stop during start-up would leave the schedules active, and the flow runs
    they pile up would all start at the next `redes serve`.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
            for spec in schedules.SCHEDULED:
                try:
                    deployment = client.read_deployment_by_name(spec.full_name)
                except ObjectNotFound:
                    continue  # stopped before it was registered
                if not deployment.paused:
                    client.pause_deployment(deployment.id)
    except Exception as exc:  # noqa: BLE001 - the server may be gone; say so and finish stopping
        err_console.print(f"[yellow]warning:[/] could not pause the schedules: {str(exc).splitlines()[0][:120]}")


def _check_options(cron: str | None, interval: str | None, train_size: int, val_size: int) -> float | None:
    """Everything the user gave, checked before anything starts; the interval in seconds."""
    from mnist.split import SplitSpec

    if cron is not None and interval is not None:
        raise BadInput("give --cron or --interval, not both")
    seconds = None
    if interval is not None:
        from cli.common import parse_duration

        try:
            seconds = parse_duration(interval)
        except BadInput as exc:  # its message names --timeout
            raise BadInput(str(exc).replace("--timeout", "--interval")) from None
    if cron is not None:
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=cron, timezone="UTC")
        except ValueError:
            raise BadInput(f"--cron {cron!r} is not a cron string; write e.g. '0 2 * * *' (02:00 every day)") from None
    try:
        SplitSpec(train_size=train_size, val_size=val_size)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return seconds


def _api_url() -> str | None:
    """The Prefect server to use: PREFECT_API_URL from the environment or the active Prefect profile."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def _start_local_prefect(port: int):
    """`prefect server start` on 127.0.0.1:PORT with Prefect's default database; returns it and its API URL."""
    from cli import local_servers
    from runtime.servers import ServerError, port_in_use, stop_server, wait_for_servers

    if port_in_use(port):
        raise BadInput(
            f"port {port} is in use; if a Prefect server runs there, export PREFECT_API_URL=http://127.0.0.1:{port}/api, "
            "else pass another --prefect-port"
        )
    planned = local_servers.prefect_plan(port)
    workdir = Path.cwd()
    log = workdir / ".redes" / "logs" / "prefect.log"
    console.print(f"PREFECT_API_URL is unset: starting a Prefect server on 127.0.0.1:{port} (log: {log})", highlight=False)
    # die_with_parent: even a `kill -9` of redes serve leaves no server listening
    server = local_servers.spawn(planned, workdir, die_with_parent=True).server
    try:
        wait_for_servers([server], timeout=PREFECT_START_TIMEOUT)
    except BaseException as exc:
        stop_server(server, sig=planned.stop_signal)
        if not isinstance(exc, ServerError):
            raise
        err_console.print(f"[bold red]error:[/] the local Prefect server did not start: {exc}")
        raise typer.Exit(1) from None
    return server, f"{planned.base_url}/api"


class _Stop:
    """SIGINT and SIGTERM of `redes serve`: the flow runs stop themselves first, then the runner.

    Before the runner has started, a signal stops the start-up (KeyboardInterrupt). Once it
    runs: each flow run in progress (a child in our process group) gets a SIGTERM, which a
    study takes as its stop (a Ctrl-C in the terminal has already sent it a SIGINT: the repeat
    only waits), and is given :data:`flows.signals.FORCE_AFTER` seconds to record its trials
    and exit; then Prefect's runner is stopped, with nothing left for it to cancel. A second
    SIGINT kills the flow runs and the local server at once; a repeated SIGTERM only waits.
    """

    def __init__(self) -> None:
        self.runner = None
        self.requested: int | None = None

    def request(self, signum, frame=None) -> None:
        if self.requested is not None:
            if signum == signal.SIGINT:
                self.force(f"second {signal.Signals(signum).name}: stopped at once")
            return
        if self.runner is None or not self.runner.started:
            raise KeyboardInterrupt
        self.requested = signum
        flow_runs = _flow_run_processes()
        for process in flow_runs:
            signals.send(process.pid, signal.SIGTERM)
        threading.Thread(target=self._finish, args=(flow_runs,), name="redes-serve-stop", daemon=True).start()

    def _finish(self, flow_runs) -> None:
        """Wait for the flow runs to exit (killed after FORCE_AFTER s), then stop the runner."""
        import psutil

        _, alive = psutil.wait_procs(flow_runs, timeout=signals.FORCE_AFTER)
        for process in alive:
            _kill_tree(process)
        self.runner.stopping = True
        self.runner.execute_in_background(self.runner.astop)

    def force(self, message: str) -> None:
        """Kill the flow runs, then say MESSAGE and kill the local server as any forced stop of redes does."""
        for process in _flow_run_processes():
            _kill_tree(process)
        signals.force_exit(128 + signal.SIGINT, message)


def _flow_run_processes() -> list:
    """The flow runs the runner started: our children in our process group (the local server has its own)."""
    import psutil

    group = os.getpgid(0)
    found = []
    for child in psutil.Process().children():
        try:
            if os.getpgid(child.pid) == group:
                found.append(child)
        except ProcessLookupError:
            continue
    return found


def _kill_tree(process) -> None:
    """SIGKILL PROCESS and every process under it (a study's pool)."""
    import psutil

    try:
        tree = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in tree:
        signals.send(member.pid, signal.SIGKILL)

