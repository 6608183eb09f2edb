"""`redes serve` for real: scheduled flow runs of both deployments execute and complete, then it stops cleanly.

A `prefect server start` of the test's own (its database in the test's folder) turns the
schedules into flow runs; `redes serve --interval 5` with a tiny study runs them as a
subprocess. The test asks the Prefect API until a run of each deployment is COMPLETED,
sends SIGTERM and asserts that `redes serve` exits in time, leaves no flow run RUNNING
and no process behind, and paused its schedules. A second test starts `redes serve`
without PREFECT_API_URL (it starts a local Prefect server itself) and stops it with SIGINT.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from support.processes import wait_for_output

from flows.schedules import NIGHTLY, WEEKLY_REFRESH
from runtime.servers import free_port, group_has_live_members, port_in_use, start_process, start_server, stop_process, stop_server

from support import processes

pytestmark = pytest.mark.integration

CHILD_ENV = {**processes.CHILD_ENV, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}  # runner polls every 2 s (default 10 s)
READY_MARK = "deployments are being served"  # printed once both are registered
TERMINAL_BAD = {"FAILED", "CRASHED", "CANCELLED"}


def executable(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "REDES_OPTUNA_STORAGE")}
    env.update(CHILD_ENV)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory) -> str:
    """A real `prefect server start` on a free 127.0.0.1 port, its SQLite database in a temporary folder."""
    root = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    server = start_server(
        [executable("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        health_url=f"http://127.0.0.1:{port}/api/health",
        env=base_env(PREFECT_HOME=str(root / "home")),
        log_path=root / "server.log",
        timeout=240,
        name="prefect",
    )
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        stop_server(server, sig=signal.SIGINT)


def test_serve_runs_both_schedules_to_completion_and_stops_on_sigterm(
    prefect_server, mlflow_server, mnist_dir, tmp_path, tmp_path_factory, stack_helpers
):
    env = base_env(
        PREFECT_API_URL=prefect_server,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        MLFLOW_TRACKING_URI=mlflow_server,
        REDES_OPTUNA_STORAGE=str(tmp_path / "optuna-journal.log"),
        REDES_DATA_DIR=str(tmp_path_factory.getbasetemp() / "shared-data-cache"),
        REDES_MNIST_MIRRORS=str(mnist_dir),
    )
    argv = [
        executable("redes"), "serve", "--interval", "5",
        "--name", "serve-test", "--trials", "1", "--epochs", "1", "--patience", "1",
        "--train-size", "2000", "--val-size", "500",
    ]  # fmt: skip
    log = tmp_path / "serve.log"
    started = time.monotonic()
    serve = start_process(argv, env=env, cwd=tmp_path, log_path=log)
    try:
        wait_for_output(serve, log, READY_MARK, timeout=180)
        with stack_helpers.prefect_client(prefect_server) as client:
            ids = {spec.name: client.read_deployment_by_name(spec.full_name).id for spec in (NIGHTLY, WEEKLY_REFRESH)}
            completed = wait_for_completed_runs(client, ids, serve, log, timeout=600)
        seconds_to_complete = time.monotonic() - started

        serve.send_signal(signal.SIGTERM)
        stop_started = time.monotonic()
        assert serve.wait(timeout=60) == 0, tail(log)
        stop_seconds = time.monotonic() - stop_started
        deadline = time.monotonic() + 30
        while group_has_live_members(serve.pid):  # the flow runs' processes too
            assert time.monotonic() < deadline, "processes of redes serve are still running after SIGTERM"
            time.sleep(0.2)

        with stack_helpers.prefect_client(prefect_server) as client:
            runs = runs_of(client, list(ids.values()))
            running = [(r.name, r.state_type.value) for r in runs if r.state_type.value in ("RUNNING", "PENDING")]
            assert running == [], running
            for spec in (NIGHTLY, WEEKLY_REFRESH):
                assert client.read_deployment(ids[spec.name]).paused, f"{spec.full_name} was not paused on shutdown"
        assert "redes serve stopped" in log.read_text()
        print(
            f"first COMPLETED runs of both deployments {seconds_to_complete:.0f} s after start "
            f"({completed}); stopped {stop_seconds:.1f} s after SIGTERM"
        )
    finally:
        if serve.poll() is None:
            stop_process(serve, sig=signal.SIGKILL, timeout=5)


def test_serve_without_prefect_api_url_starts_a_local_server_and_stops_on_sigint(tmp_path, stack_helpers):
    port = free_port()
    env = base_env(PREFECT_HOME=str(tmp_path / "prefect-home"))
    log = tmp_path / "serve.log"
    serve = start_process(
        [executable("redes"), "serve", "--interval", "3600", "--prefect-port", str(port)], env=env, cwd=tmp_path, log_path=log
    )
    try:
        text = wait_for_output(serve, log, READY_MARK, timeout=240)
        assert f"starting a Prefect server on 127.0.0.1:{port}" in text
        assert f"serving {NIGHTLY.full_name}: every 3600 s" in text and f"serving {WEEKLY_REFRESH.full_name}" in text
        assert port_in_use(port)
        with stack_helpers.prefect_client(f"http://127.0.0.1:{port}/api") as client:
            assert client.read_deployment_by_name(NIGHTLY.full_name).paused is False

        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0, tail(log)
        deadline = time.monotonic() + 30
        while port_in_use(port):  # the local Prefect server (its own process group) is stopped too
            assert time.monotonic() < deadline, f"the local Prefect server still listens on {port}"
            time.sleep(0.2)
        assert "redes serve stopped" in log.read_text()
    finally:
        if serve.poll() is None:
            stop_process(serve, sig=signal.SIGKILL, timeout=5)
        for pid in prefect_server_pids(port):
            stop_process(pid, sig=signal.SIGKILL, timeout=5)


# --- helpers ---------------------------------------------------------------------------------


def runs_of(client, deployment_ids: list) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=deployment_ids)))


def wait_for_completed_runs(client, ids: dict, serve, log: Path, timeout: float) -> dict[str, int]:
    """Poll until every deployment has a COMPLETED flow run; fail at once on a failed run or an exited serve."""
    deadline = time.monotonic() + timeout
    while True:
        runs = runs_of(client, list(ids.values()))
        bad = [(r.name, r.state_type.value, r.state.message) for r in runs if r.state_type.value in TERMINAL_BAD]
        assert not bad, f"flow runs ended badly: {bad}\n{tail(log)}"
        done = {name: sum(1 for r in runs if r.deployment_id == i and r.state_type.value == "COMPLETED") for name, i in ids.items()}
        if all(done.values()):
            return done
        assert serve.poll() is None, f"redes serve exited with {serve.returncode}\n{tail(log)}"
        assert time.monotonic() < deadline, f"no COMPLETED run of every deployment within {timeout:.0f} s: {done}\n{tail(log)}"
        time.sleep(1)


def tail(path: Path, lines: int = 60) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return f"--- last lines of {path} ---\n" + "\n".join(text[-lines:])


def prefect_server_pids(port: int) -> list[int]:
    """Processes whose command line is a Prefect server on PORT (a leftover after a failed test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"server" in argv and b"--port" in argv and str(port).encode() in argv:
                found.append(int(entry.name))
    return found
