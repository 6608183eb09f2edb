"""`redes ui` for real: MLflow and optuna-dashboard on the embedded stores of a fresh folder, then Ctrl-C.

The command runs as a subprocess on free 127.0.0.1 ports; the test waits for the printed
addresses (never a sleep), checks that both servers answer and that the links open the
study's runs table and dashboard page, sends SIGINT (or SIGTERM), and asserts that both
servers' process groups are gone.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.processes import wait_for_output

from flows.servers import free_port, group_alive, group_has_live_members, http_json, http_status, port_in_use, stop_process

pytestmark = pytest.mark.integration

READY_MARK = "Press Ctrl-C to stop"
STUDY = "ui-test-study"
CHILD_ENV = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "COLUMNS": "250",  # one table row per line, addresses unwrapped
}


def redes_command() -> list[str]:
    return [str(Path(sys.executable).with_name("redes")), "ui"]


def clean_env(workdir: Path) -> dict[str, str]:
    """Our environment without any store settings, so `redes ui` uses the embedded defaults of WORKDIR."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "REDES_OPTUNA_STORAGE", "PREFECT_API_URL")}
    env.update(CHILD_ENV)
    return env


@pytest.fixture
def embedded_stores(tmp_path) -> dict[str, str]:
    """A working folder whose SQLite MLflow store holds experiment STUDY and whose journal holds study STUDY."""
    script = f"""
import mlflow, optuna
from mlflow.tracking import MlflowClient
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
client = MlflowClient(tracking_uri="sqlite:///{tmp_path / 'mlflow.db'}")
print(client.create_experiment("{STUDY}", artifact_location="{(tmp_path / 'mlartifacts').as_uri()}"))
storage = JournalStorage(JournalFileBackend("{tmp_path / 'optuna-journal.log'}"))
study = optuna.create_study(study_name="{STUDY}", storage=storage, direction="maximize")
study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
print(study._study_id)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    experiment_id, study_id = done.stdout.split()[-2:]
    return {"workdir": str(tmp_path), "experiment_id": experiment_id, "study_id": study_id}


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ui_starts_both_servers_links_the_study_and_stops_cleanly(embedded_stores, stop_signal):
    workdir = Path(embedded_stores["workdir"])
    mlflow_port, optuna_port = free_port(), free_port()
    output = workdir / "ui.out"
    argv = redes_command() + ["--mlflow-port", str(mlflow_port), "--optuna-port", str(optuna_port), "--study", STUDY]
    with open(output, "wb") as out:
        ui = subprocess.Popen(
            argv, cwd=workdir, env=clean_env(workdir), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    pids: dict[str, int] = {}
    try:
        started = time.monotonic()
        text = wait_for_output(ui, output, READY_MARK, timeout=240)
        ready_after = time.monotonic() - started
        rows = table_rows(text)
        assert set(rows) == {"mlflow", "optuna-dashboard"}, text
        pids = {name: row["pid"] for name, row in rows.items()}

        mlflow_link = rows["mlflow"]["url"]
        assert mlflow_link == f"http://127.0.0.1:{mlflow_port}/#/experiments/{embedded_stores['experiment_id']}/runs?orderByKey=attributes.run_name&orderByAsc=true"
        assert rows["optuna-dashboard"]["url"] == (
            f"http://127.0.0.1:{optuna_port}/dashboard/studies/{embedded_stores['study_id']}"
        )
        assert http_status(f"http://127.0.0.1:{mlflow_port}/health") == 200
        assert http_status(f"http://127.0.0.1:{optuna_port}/api/studies") == 200
        names = [s["study_name"] for s in http_json(f"http://127.0.0.1:{optuna_port}/api/studies")["study_summaries"]]
        assert names == [STUDY]
        for name, pid in pids.items():  # bound to loopback, stores not on the command line
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert b"--host" in cmdline and cmdline[cmdline.index(b"--host") + 1] == b"127.0.0.1", name
            assert b"sqlite://" not in b" ".join(cmdline), name
        print(f"redes ui answered after {ready_after:.1f} s:\n{text}")

        ui.send_signal(stop_signal)
        assert ui.wait(timeout=60) == 0, output.read_text()
        deadline = time.monotonic() + 30
        while any(group_has_live_members(pid) for pid in pids.values()):
            assert time.monotonic() < deadline, f"servers still running after {stop_signal!r}: {pids}"
            time.sleep(0.2)
        assert not port_in_use(mlflow_port) and not port_in_use(optuna_port)
        assert "stopped: mlflow" in output.read_text()
    finally:
        if ui.poll() is None:
            stop_process(ui, sig=signal.SIGKILL, timeout=5)
        for pid in pids.values():
            if group_alive(pid):
                stop_process(pid, sig=signal.SIGKILL, timeout=5)


def test_ui_refuses_a_port_in_use_before_starting_anything(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            redes_command() + ["--mlflow-port", str(port), "--optuna-port", str(free_port())],
            cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"port {port}" in done.stderr and "in use" in done.stderr
    assert not (tmp_path / "mlflow.db").exists()


def table_rows(text: str) -> dict[str, dict]:
    """Service rows of the printed table: name → address and PID."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) >= 3 and cells[2].isdigit() and cells[1].startswith("http"):
            rows[cells[0]] = {"url": cells[1], "pid": int(cells[2])}
    return rows
