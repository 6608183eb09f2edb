"""runtime.servers: start a real process, wait on its health URL, stop its whole group by PID."""

from __future__ import annotations

import sys
import textwrap
import time

import pytest

from runtime.servers import (
    ServerError,
    free_port,
    group_alive,
    mask_url,
    pid_alive,
    port_in_use,
    start_process,
    start_server,
    stop_process,
    stop_server,
)

pytestmark = pytest.mark.integration  # real processes and ports


def test_start_server_waits_for_health_and_stop_frees_the_port(tmp_path):
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)],
        health_url=f"http://127.0.0.1:{port}/",
        log_path=tmp_path / "http.log",
        timeout=30,
    )
    assert server.seconds_to_ready is not None and port_in_use(port)
    stop_server(server)
    assert server.process.returncode is not None
    assert not group_alive(server.pid)
    assert not port_in_use(port)


def test_a_server_that_exits_fails_at_once_with_its_log(tmp_path):
    started = time.monotonic()
    with pytest.raises(ServerError, match="exited with code 3") as failure:
        start_server(
            [sys.executable, "-c", "import sys; print('no database here'); sys.exit(3)"],
            health_url=f"http://127.0.0.1:{free_port()}/health",
            log_path=tmp_path / "bad.log",
            timeout=60,
        )
    assert "no database here" in str(failure.value)
    assert time.monotonic() - started < 20


def test_stop_escalates_to_sigkill_and_reaches_grandchildren(tmp_path):
    """A leader and a grandchild that both ignore SIGTERM: the group is killed after the timeout."""
    pid_file = tmp_path / "grandchild.pid"
    script = textwrap.dedent(
        f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(600)
        """
    )
    process = start_process([sys.executable, "-c", script], log_path=tmp_path / "stubborn.log")
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, "the grandchild never started"
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    started = time.monotonic()
    stop_process(process, timeout=1.0)
    assert time.monotonic() - started < 10
    assert process.returncode is not None
    assert not pid_alive(grandchild)


def test_mask_url_hides_passwords_only():
    assert mask_url("postgresql+psycopg://redes:s3cret@db:5432/optuna") == "postgresql+psycopg://redes:***@db:5432/optuna"
    assert mask_url("http://mlflow:5000") == "http://mlflow:5000"
    assert mask_url("/tmp/optuna-journal.log") == "/tmp/optuna-journal.log"
    assert "s3cret" not in mask_url("postgresql://u:s3cret@[::1]:5432/db")
