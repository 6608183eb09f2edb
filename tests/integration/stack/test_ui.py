"""`redes ui` for real: MLflow and optuna-dashboard on the embedded stores of a fresh folder, then Ctrl-C.

The command runs as a subprocess on free 127.0.0.1 ports; the test waits for the printed
addresses (never a sleep), checks that both servers answer, that each link is printed whole on
its own line in a 60-column terminal, that the links open the study's runs view (with redes'
saved view in the experiment's tags) and dashboard page, with or without the study named,
sends SIGINT (or SIGTERM), and asserts that both servers' process groups are gone.
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

from runtime.servers import free_port, group_alive, group_has_live_members, http_json, http_status, port_in_use, stop_process
from tracking import ui_views

pytestmark = pytest.mark.integration

READY_MARK = "Press Ctrl-C to stop"
STUDY = "ui-test-study"
CHILD_ENV = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "COLUMNS": "60",  # narrower than any link: each must still be printed whole
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


@pytest.mark.parametrize(
    ("stop_signal", "named"), [(signal.SIGINT, True), (signal.SIGTERM, False)], ids=["SIGINT-study", "SIGTERM-all"]
)
def test_ui_starts_both_servers_links_the_study_and_stops_cleanly(embedded_stores, stop_signal, named):
    workdir = Path(embedded_stores["workdir"])
    mlflow_port, optuna_port = free_port(), free_port()
    output = workdir / "ui.out"
    argv = redes_command() + ["--mlflow-port", str(mlflow_port), "--optuna-port", str(optuna_port)]
    argv += ["--study", STUDY] if named else []  # without it: every study there is
    with open(output, "wb") as out:
        ui = subprocess.Popen(
            argv, cwd=workdir, env=clean_env(workdir), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    pids: dict[str, int] = {}
    try:
        started = time.monotonic()
        text = wait_for_output(ui, output, READY_MARK, timeout=240)
        ready_after = time.monotonic() - started
        pids = service_pids(text)
        assert set(pids) == {"mlflow", "optuna-dashboard"}, text

        links = study_links(text, STUDY)
        assert f"study {STUDY!r}: 2 trials" in text
        mlflow_base = f"http://127.0.0.1:{mlflow_port}"
        assert links == {
            "runs": ui_views.runs_url(mlflow_base, embedded_stores["experiment_id"]),
            "charts": ui_views.runs_url(mlflow_base, embedded_stores["experiment_id"], charts=True),
            "optuna": f"http://127.0.0.1:{optuna_port}/dashboard/studies/{embedded_stores['study_id']}",
        }, text
        assert "viewStateShareKey=redes" in links["runs"] and "workflowType=machine_learning" in links["runs"]
        experiment = http_json(f"{mlflow_base}/api/2.0/mlflow/experiments/get?experiment_id={embedded_stores['experiment_id']}")
        tags = {t["key"]: t["value"] for t in experiment["experiment"]["tags"]}
        assert tags[ui_views.VIEW_TAG] == ui_views.experiment_tags()[ui_views.VIEW_TAG]  # the saved view the link loads
        if not named:
            assert ui_views.experiments_url(mlflow_base) in text.split()
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


def service_pids(text: str) -> dict[str, int]:
    """The servers' lines of the output: name → PID."""
    found = re.findall(r"^  (\S+)\s+pid (\d+)", text, flags=re.MULTILINE)
    return {name: int(pid) for name, pid in found}


def study_links(text: str, study: str) -> dict[str, str]:
    """The links printed under the heading of STUDY: label → URL, each a whole line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"study {study!r}"))
    links = {}
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        label, url = line.split()
        links[label] = url
    return links
