"""runtime.server_record: live entries are told from stale ones by PID and start time, and a command
uses the recorded Prefect server only when the environment names none.

Real processes throughout (a sleeping child, a dead PID, a small HTTP server that answers a
health URL), each stopped by PID at the end of its test.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from runtime import server_record
from runtime.server_record import Recorded
from runtime.servers import free_port, process_started, start_server, stop_process, stop_server


@pytest.fixture
def sleeper():
    """A live child process, stopped at the end."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    yield process
    stop_process(process, timeout=5)


@pytest.fixture
def health_server(tmp_path):
    """An HTTP server on 127.0.0.1 whose /api/health answers 200, as Prefect's does; its base URL."""
    root = tmp_path / "site"
    (root / "api").mkdir(parents=True)
    (root / "api" / "health").write_text("true")
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        health_url=f"http://127.0.0.1:{port}/api/health",
        timeout=30,
    )
    yield server, f"http://127.0.0.1:{port}"
    stop_server(server)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def entry(name: str, pid: int, started: float | None = None, url: str = "http://127.0.0.1:9") -> Recorded:
    started = process_started(pid) if started is None else started
    return Recorded(name=name, pid=pid, started=started or 0.0, url=url, health_url=f"{url}/api/health", stop_signal=signal.SIGINT)


def test_the_record_round_trips_and_an_empty_one_is_no_file(tmp_path, sleeper):
    server_record.write(tmp_path, [entry("prefect", sleeper.pid)])
    assert server_record.read(tmp_path) == [entry("prefect", sleeper.pid)]
    server_record.write(tmp_path, [])
    assert not server_record.record_path(tmp_path).exists()
    assert server_record.read(tmp_path) == []


def test_a_dead_pid_and_a_reused_pid_are_stale_and_swept(tmp_path, sleeper):
    live = entry("mlflow", sleeper.pid)
    dead = entry("prefect", dead_pid(), started=1.0)
    reused = entry("optuna-dashboard", sleeper.pid, started=live.started - 3600)  # same PID, started an hour earlier
    server_record.write(tmp_path, [live, dead, reused])
    assert live.alive() and not dead.alive() and not reused.alive()
    with server_record.locked(tmp_path):
        assert server_record.sweep(tmp_path) == ([live], [dead, reused])
    assert server_record.read(tmp_path) == [live]


def test_a_damaged_record_counts_as_none(tmp_path):
    path = server_record.record_path(tmp_path)
    path.parent.mkdir()
    path.write_text('{"servers": [{"name": "prefect"')
    assert server_record.read(tmp_path) == []


def test_a_command_uses_the_recorded_prefect_server_that_answers(tmp_path, health_server):
    server, url = health_server
    server_record.write(tmp_path, [entry("prefect", server.pid, url=url)])
    env: dict[str, str] = {}
    assert server_record.use_recorded_prefect(tmp_path, env) is None
    assert env == {"PREFECT_API_URL": f"{url}/api"}


def test_an_explicit_prefect_api_url_wins_over_the_record(tmp_path, health_server):
    server, url = health_server
    server_record.write(tmp_path, [entry("prefect", server.pid, url=url)])
    env = {"PREFECT_API_URL": "http://prefect.example:4200/api"}
    assert server_record.use_recorded_prefect(tmp_path, env) is None
    assert env == {"PREFECT_API_URL": "http://prefect.example:4200/api"}


def test_a_stale_prefect_record_is_removed_and_the_command_falls_back_to_local_mode(tmp_path):
    gone = dead_pid()
    server_record.write(tmp_path, [entry("prefect", gone, started=1.0)])
    env: dict[str, str] = {}
    note = server_record.use_recorded_prefect(tmp_path, env)
    assert note is not None and f"pid {gone}" in note and "is gone" in note
    assert env == {}
    assert not server_record.record_path(tmp_path).exists()


def test_a_live_server_that_does_not_answer_is_not_used(tmp_path, sleeper):
    port = free_port()  # nothing listens there
    server_record.write(tmp_path, [entry("prefect", sleeper.pid, url=f"http://127.0.0.1:{port}")])
    env: dict[str, str] = {}
    note = server_record.use_recorded_prefect(tmp_path, env)
    assert note is not None and "does not answer" in note
    assert env == {}
    assert server_record.read(tmp_path) != []  # alive: kept for `redes down` to stop


def test_without_a_record_nothing_changes(tmp_path):
    env: dict[str, str] = {}
    assert server_record.use_recorded_prefect(tmp_path, env) is None
    assert env == {}
    assert not (tmp_path / ".redes").exists()
