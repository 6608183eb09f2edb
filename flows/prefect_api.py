"""One Prefect API for every process of a run.

With no ``PREFECT_API_URL``, Prefect starts a temporary server in each Python process
that needs one, so every worker of a process pool would start its own (10-15 s each).
Starting the temporary server once here and handing its URL to the children through
the environment removes that cost; a user's own server URL is always used as is.

That server runs in its own session, so a Ctrl-C in the terminal does not stop it while the
workers still record their trials, and it dies with this process (PR_SET_PDEATHSIG), so
even a `kill -9` of redes leaves no server listening.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

from runtime.servers import die_with

#: Seconds a command waits for the Prefect API of PREFECT_API_URL to answer before it gives up.
REACH_TIMEOUT = 3.0

_started: list = []  # the server started here, if any


class PrefectUnavailable(RuntimeError):
    """The Prefect API named by PREFECT_API_URL does not answer; raised before any work."""


def check_reachable(timeout: float = REACH_TIMEOUT) -> None:
    """Fail in seconds, naming PREFECT_API_URL, when the API it names does not answer its health check.

    Prefect's client would retry for about ten seconds and end in a traceback. Unset, there is
    nothing to check: redes starts Prefect's server itself.
    """
    from runtime.servers import mask_url, probe

    url = (os.environ.get("PREFECT_API_URL") or "").strip()
    if not url:
        return
    status, reason = probe(url.rstrip("/") + "/health", timeout)
    if status in (200, 401, 403):  # 401/403: alive, behind authentication
        return
    raise PrefectUnavailable(
        f"the Prefect API at {mask_url(url)} (PREFECT_API_URL) does not answer ({reason}); start that server "
        "(e.g. `redes up`), or unset PREFECT_API_URL to let redes start Prefect's server itself"
    )


def shared_api_url() -> str:
    """The URL of the Prefect API that this process and its children use, started if needed."""
    from prefect.settings import PREFECT_API_URL

    url = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if url:
        return url
    from flows import signals

    server = _session_server_class()()  # the instance Prefect's client would otherwise start in this process
    server.start()
    _started.append(server)
    signals.register_server(server.server_process)
    os.environ["PREFECT_API_URL"] = server.api_url
    return server.api_url


#: Prefect's setting of the seconds between a flow run's heartbeats; a value the user set is kept.
HEARTBEAT_SETTING = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"


@contextmanager
def without_heartbeats() -> Iterator[None]:
    """Flow runs of this process, inside the block, without Prefect's heartbeat thread.

    Prefect 3.9 sends a heartbeat event every 180 s by default, for an automation that marks a
    deployment's silent run crashed; redes creates none, and its own flow runs are watched by
    redes itself (signals, orphaned trials). The thread sleeps in 1-second steps and every flow
    run's end waits for it: 0.5 s on average, about 1 s of each `redes train` (two flow runs).
    Runs that `redes serve` or a worker starts are separate processes and keep them; so does a
    user who sets PREFECT_FLOWS_HEARTBEAT_FREQUENCY. Enter it once the Prefect API is chosen
    (:func:`shared_api_url`): the block reads Prefect's settings once, at its start.
    """
    if os.environ.get(HEARTBEAT_SETTING):
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def lost_server() -> str | None:
    """One line saying that the Prefect server started here has exited, or None while it runs."""
    for server in _started:
        process = server.server_process
        if process is not None and process.poll() is not None:
            return f"Prefect's server (pid {process.pid}, {server.api_url}) exited with code {process.returncode}"
    return None


def _session_server_class():
    """Prefect's temporary server, started in its own session and bound to this process's life."""
    from prefect.server.api.server import SubprocessASGIServer

    class SessionASGIServer(SubprocessASGIServer):  # shares the base class's instances: Prefect's client finds it
        def _run_uvicorn_command(self) -> subprocess.Popen:
            """Prefect 3.9's command line and environment for its temporary server; a session of its own."""
            import prefect
            from prefect.settings import get_current_settings

            env = {
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **get_current_settings().to_environment_variables(exclude_unset=True),
            }
            app_dir = str(prefect.__module_path__.parent)
            parent = os.getpid()
            return subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory", "prefect.server.api.server:create_app",
                 "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
                env=env,
                start_new_session=True,
                preexec_fn=die_with(parent),
            )  # fmt: skip

    return SessionASGIServer
