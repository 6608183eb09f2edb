"""runtime.server_record: live entries are told from stale ones by PID and start time, and a command
uses the recorded Prefect server only when the environment names none. A command that uses it is
noted as its user, and `redes down` leaves a server in use alone unless told --force.

Real processes throughout (a sleeping child, a dead PID, a small HTTP server that answers a
health URL), each stopped by PID at the end of its test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from runtime import server_record
from runtime.server_record import Recorded, User
from runtime.servers import free_port, pid_alive, process_started, start_server, stop_process, stop_server


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


def test_a_command_on_the_recorded_server_notes_itself_as_its_user_and_one_with_its_own_url_does_not(
    tmp_path, health_server, monkeypatch
):
    from cli import main as cli_main

    server, url = health_server
    server_record.write(tmp_path, [entry("prefect", server.pid, url=url)])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFECT_API_URL", "")
    monkeypatch.setattr(sys, "argv", ["redes", "serve", "--name", "nightly"])
    cli_main.options(SimpleNamespace(invoked_subcommand="serve"), verbose=False)
    assert os.environ["PREFECT_API_URL"] == f"{url}/api"
    assert server_record.users(tmp_path, server_record.read(tmp_path)) == [User(os.getpid(), process_started(os.getpid()), "redes serve --name nightly")]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server_record.write(elsewhere, [entry("prefect", server.pid, url=url)])
    monkeypatch.chdir(elsewhere)
    cli_main.options(SimpleNamespace(invoked_subcommand="serve"), verbose=False)  # PREFECT_API_URL is set now
    assert server_record.users(elsewhere, server_record.read(elsewhere)) == []


def user_process(workdir: Path) -> subprocess.Popen:
    """A process noted as a user of WORKDIR's recorded server, as a running `redes study` is; it waits on stdin."""
    code = (
        "import sys; from runtime import server_record; "
        "server_record.note_user(sys.argv[1], ['study', '--name', 'long']); sys.stdin.read()"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(workdir)], stdin=subprocess.PIPE, start_new_session=True)
    note = workdir / server_record.USERS / f"{process.pid}.json"
    while not note.exists():
        assert process.poll() is None, "the user process died"
    return process


def redes(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return subprocess.run([str(Path(sys.executable).with_name("redes")), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_down_leaves_a_server_in_use_alone_until_its_users_end(tmp_path, health_server):
    server, url = health_server
    server_record.write(tmp_path, [entry("prefect", server.pid, url=url)])
    user = user_process(tmp_path)
    try:
        refused = redes(["down"], tmp_path)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"pid {user.pid}: redes study --name long" in refused.stderr and "--force" in refused.stderr
        assert server.process.poll() is None and server_record.read(tmp_path) != []

        status = redes(["status"], tmp_path)
        assert f"in use by pid {user.pid}: redes study --name long" in status.stdout, status.stdout

        user.communicate(b"", timeout=30)  # the study ends; its note goes with it
        assert server_record.users(tmp_path, server_record.read(tmp_path)) == []
        down = redes(["down"], tmp_path)
        assert down.returncode == 0, down.stdout + down.stderr
        assert f"stopped prefect (pid {server.pid})" in down.stdout
        assert server.process.wait(timeout=30) is not None and not server_record.record_path(tmp_path).exists()
    finally:
        stop_process(user, timeout=5)


def test_down_force_stops_a_server_in_use_and_a_killed_users_note_is_stale(tmp_path, health_server):
    server, url = health_server
    server_record.write(tmp_path, [entry("prefect", server.pid, url=url)])
    killed = user_process(tmp_path)
    os.kill(killed.pid, signal.SIGKILL)  # no exit handler runs: its note stays, and is stale
    killed.wait(timeout=30)
    assert (tmp_path / server_record.USERS / f"{killed.pid}.json").exists()
    assert server_record.users(tmp_path, server_record.read(tmp_path)) == []
    assert not (tmp_path / server_record.USERS / f"{killed.pid}.json").exists()

    user = user_process(tmp_path)
    try:
        down = redes(["down", "--force"], tmp_path)
        assert down.returncode == 0, down.stdout + down.stderr
        assert f"stopped prefect (pid {server.pid})" in down.stdout
        assert server.process.wait(timeout=30) is not None
        assert user.poll() is None and pid_alive(user.pid)  # the user is not redes down's to stop
    finally:
        stop_process(user, timeout=5)
