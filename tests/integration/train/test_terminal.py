"""What `redes train` and `redes study` print: their own progress and results by default, the libraries'
logs only with --verbose, while Prefect's API keeps the INFO lines. Real commands in subprocesses on a
slice of MNIST, against this session's Prefect test API and an MLflow SQLite file of their own."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

TRAIN = ["train", "--sizes", "784,30,10", "--epochs", "3", "--patience", "10", "--train-size", "1000", "--val-size", "500"]
EPOCH_LINE = re.compile(r"^epoch (\d)/3  train loss \d+\.\d{4}  val accuracy 0\.\d{4}  \d+\.\d s$")
#: What Prefect, MLflow and alembic print when nobody quiets them.
NOISE = (
    "| INFO", "| WARNING", "Flow run", "Task run", "Starting temporary server", "prefect.io/docs",
    "mlflow.store.db.utils", "Creating initial MLflow database tables", "alembic", "UserWarning", "Add type hints",
    "Successfully registered model", "Created version",
)  # fmt: skip


def redes(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("redes")), *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def quiet_by_default(env: dict[str, str]) -> dict[str, str]:
    """The test environment without its own Prefect log level: what is quiet must be quiet because of redes."""
    return {k: v for k, v in env.items() if k not in ("PREFECT_LOGGING_LEVEL", "MLFLOW_LOGGING_LEVEL")}


def flow_run_logs(flow_name: str, since: datetime) -> list:
    """The API's log records of the latest run of FLOW_NAME started since SINCE (they arrive in batches)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterStartTime
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
            sort=FlowRunSort.START_TIME_DESC, limit=1,
        )  # fmt: skip
        assert runs, f"no {flow_name} flow run in Prefect's API"
        while True:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[runs[0].id])), limit=200)
            if any("Finished in state Completed" in log.message for log in logs) or time.monotonic() > deadline:
                return logs
            time.sleep(1)


def test_train_prints_its_epochs_and_result_and_no_library_noise(redes_env, tmp_path):
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    done = redes(TRAIN, quiet_by_default(redes_env(tmp_path / "optuna.log")), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert [noise for noise in NOISE if noise in output] == [], output
    epochs = [EPOCH_LINE.match(line) for line in done.stderr.splitlines()]
    assert [int(m.group(1)) for m in epochs if m] == [1, 2, 3], done.stderr
    assert all(epochs), done.stderr  # nothing else on stderr
    assert re.search(r"validation accuracy 0\.\d{4}, training 0\.\d{4} \(best epoch \d", " ".join(done.stdout.split()))
    # the terminal is quiet, the API is not: the flow run's INFO lines are in Prefect's UI
    logs = flow_run_logs("train-once", since)
    assert any(log.level == 20 and "Finished in state Completed" in log.message for log in logs), [l.message for l in logs]


def test_train_verbose_shows_the_libraries_logs(redes_env, tmp_path):
    done = redes(["--verbose", *TRAIN], quiet_by_default(redes_env(tmp_path / "optuna.log")), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Beginning flow run" in done.stderr and "| INFO" in done.stderr, done.stderr
    assert "Creating initial MLflow database tables" in done.stderr, done.stderr  # a fresh mlflow.db in tmp_path
    assert sum(bool(EPOCH_LINE.match(line)) for line in done.stderr.splitlines()) == 3


def test_train_json_is_one_object_on_stdout_and_the_epochs_go_to_stderr(redes_env, tmp_path):
    done = redes([*TRAIN, "--json"], quiet_by_default(redes_env(tmp_path / "optuna.log")), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout)
    assert outcome["stopped_epoch"] == 3 and 0 < outcome["val_accuracy"] <= 1
    assert sum(bool(EPOCH_LINE.match(line)) for line in done.stderr.splitlines()) == 3


@pytest.mark.timeout(1200)  # its own study waits up to 900 s
def test_a_study_with_two_workers_prints_its_summary_and_no_library_noise(redes_env, tmp_path, study_cli):
    env = quiet_by_default(redes_env(tmp_path / "optuna.log"))
    command = study_cli.study_command("quiet", trials=2, workers=2, epochs=2, train_size=1000)
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert [noise for noise in NOISE if noise in output] == [], output
    assert re.search(r"redes-mnist-train1000-val\d+ version \d", done.stdout), done.stdout  # registered, silently
    assert done.stderr.strip() == "", done.stderr


def test_data_prints_its_split_and_no_library_noise(redes_env, tmp_path):
    done = redes(["data", "--train-size", "1000", "--val-size", "500"], quiet_by_default(redes_env(tmp_path / "optuna.log")), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert [noise for noise in NOISE if noise in output] == [], output
    assert "split cached in" in done.stdout and "MLflow: experiment redes-data" in done.stdout
    assert done.stderr.strip() == "", done.stderr
